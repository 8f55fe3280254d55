//! Reads the spans of an encoded OTLP `ExportTraceServiceRequest` in place, as
//! [`SpanView`]s borrowing the body's strings and bytes.
//!
//! Decoding with prost and mapping with [`crate::otlp::spans_from_request`] allocates
//! a string per attribute key and value, a vector per attribute list and a record per
//! span, which a store then encodes its own way and frees. A store that encodes views
//! ([`SpanView`]) skips all of that by walking the body once.
//!
//! # Contract
//!
//! When [`WireRequest::parse`] and then [`WireRequest::views`] return `Some`, the views,
//! made owned with [`SpanView::to_record`], equal the spans of
//! `spans_from_request(ExportTraceServiceRequest::decode(body)?)`, in order, and that
//! mapping rejects no span. Whatever this walk does not follow exactly like prost — a
//! malformed body, an invalid span, a singular message field repeated (prost merges
//! those), nesting deeper than [`crate::otlp_scan::MAX_DEPTH`] — gives `None`, and the
//! caller decodes the body with prost instead. `None` is never wrong, only slower.
//!
//! Resources and scopes (one per `ResourceSpans`/`ScopeSpans`, not per span) are
//! decoded with prost and mapped as usual; arrays and key/value lists inside attribute
//! values are too.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1 as otlp_common;
use opentelemetry_proto::tonic::resource::v1 as otlp_resource;
use prost::Message;
use prost::encoding::WireType;

use crate::derive;
use crate::otlp::{resource_from_otlp, scope_from_otlp, span_id, span_id_or_zero, trace_id, value_from_otlp};
use crate::otlp_scan::{Simple, any_value, delimited, each_field, fixed, fixed64, simple_key_value, skip, varint};
use crate::span::{AttrValue, HopKind, Resource, Scope, SpanKind, StatusCode};
use crate::view::{AttrRef, EventView, LinkView, SpanView, ValueRef};

/// A request body split into its resources and scopes, each decoded once; the spans
/// stay encoded until [`WireRequest::views`].
#[derive(Debug)]
pub struct WireRequest<'a> {
    resources: Vec<WireResource<'a>>,
}

#[derive(Debug)]
struct WireResource<'a> {
    header: Arc<ResourceHeader>,
    scopes: Vec<WireScope<'a>>,
}

/// A decoded resource with what is derived from it once for all its spans.
#[derive(Debug)]
struct ResourceHeader {
    resource: Arc<Resource>,
    service_name: String,
    host: Option<String>,
}

/// Resources and scopes of earlier requests, by their encoded bytes. An agent sends the
/// same resource and scope in every request, so each is decoded once, and the spans of
/// every request share one `Arc` of it (a store can then recognise it by address rather
/// than by comparing contents). Holds at most [`HeaderCache::MAX_ENTRIES`] resources and
/// as many scopes; a full cache starts over.
#[derive(Debug, Default)]
pub struct HeaderCache {
    resources: ByBytes<Arc<ResourceHeader>>,
    scopes: ByBytes<Arc<Scope>>,
}

impl HeaderCache {
    /// Most entries of each kind.
    pub const MAX_ENTRIES: usize = 1024;
}

/// Values by the exact bytes they were decoded from: a header message's occurrences and
/// its schema URL, keyed as the number of occurrences, each occurrence length-prefixed,
/// then the schema URL (so no two different inputs share a key).
#[derive(Debug)]
struct ByBytes<V> {
    map: HashMap<Box<[u8]>, V>,
}

impl<V> Default for ByBytes<V> {
    fn default() -> Self {
        Self { map: HashMap::new() }
    }
}

impl<V: Clone> ByBytes<V> {
    /// The value for `occurrences` and `schema_url`, made with `make` on a miss.
    fn get_or_make(&mut self, occurrences: &[&[u8]], schema_url: &str, make: impl FnOnce() -> Option<V>) -> Option<V> {
        let mut key = Vec::with_capacity(4 + occurrences.iter().map(|o| o.len() + 4).sum::<usize>() + schema_url.len());
        key.extend_from_slice(&u32::try_from(occurrences.len()).ok()?.to_le_bytes());
        for occurrence in occurrences {
            key.extend_from_slice(&u32::try_from(occurrence.len()).ok()?.to_le_bytes());
            key.extend_from_slice(occurrence);
        }
        key.extend_from_slice(schema_url.as_bytes());
        if let Some(value) = self.map.get(key.as_slice()) {
            return Some(value.clone());
        }
        let value = make()?;
        if self.map.len() >= HeaderCache::MAX_ENTRIES {
            self.map.clear();
        }
        self.map.insert(key.into(), value.clone());
        Some(value)
    }
}

/// The allocation of an attribute list for [`WireRequest::views`], kept from one walk to
/// the next (the list borrows each request's body, so the list itself cannot be kept).
#[derive(Debug, Default)]
pub struct AttributeSpace(Vec<AttrRef<'static>>);

impl AttributeSpace {
    /// Largest list (in attributes) whose allocation is kept: about 4 MB, the
    /// attributes of a few thousand typical spans; a larger one (an unusual request) is
    /// freed rather than held for good.
    pub const MAX_KEPT: usize = 65_536;

    /// An empty list in the kept allocation (a new one when none is kept).
    pub fn take<'a>(&mut self) -> Vec<AttrRef<'a>> {
        reuse(std::mem::take(&mut self.0))
    }

    /// Keeps `list`'s allocation (emptied) for the next [`AttributeSpace::take`], unless
    /// it holds more than [`AttributeSpace::MAX_KEPT`] attributes.
    pub fn keep(&mut self, list: Vec<AttrRef<'_>>) {
        if list.capacity() <= Self::MAX_KEPT {
            self.0 = reuse(list);
        }
    }

    /// Attributes the kept allocation holds.
    pub fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

/// `list` emptied, as a list of attributes of another lifetime in the same allocation
/// (collecting a vector's own iterator into a vector of a same-sized type reuses it).
#[allow(clippy::unnecessary_filter_map)] // `filter` would keep the old lifetime
fn reuse<'b>(mut list: Vec<AttrRef<'_>>) -> Vec<AttrRef<'b>> {
    list.clear();
    list.into_iter().filter_map(|_| None).collect()
}

#[derive(Debug)]
struct WireScope<'a> {
    scope: Arc<Scope>,
    spans: Vec<&'a [u8]>,
}

impl<'a> WireRequest<'a> {
    /// Splits `body`; `None` when it is not a well-formed request this walk follows
    /// exactly (see the module doc).
    pub fn parse(body: &'a [u8]) -> Option<Self> {
        Self::parse_cached(body, &mut HeaderCache::default())
    }

    /// [`WireRequest::parse`], decoding only the resources and scopes `cache` has not
    /// seen.
    pub fn parse_cached(body: &'a [u8], cache: &mut HeaderCache) -> Option<Self> {
        let mut resources = Vec::new();
        each_field(body, |tag, wire, buf| match tag {
            1 => {
                resources.push(resource_spans(delimited(wire, buf)?, cache)?);
                Some(())
            }
            _ => skip(tag, wire, buf),
        })?;
        Some(Self { resources })
    }

    /// Spans in the request.
    pub fn span_count(&self) -> usize {
        self.resources
            .iter()
            .flat_map(|r| &r.scopes)
            .map(|s| s.spans.len())
            .sum()
    }

    /// Every span, in request order; `None` as for [`WireRequest::parse`].
    ///
    /// The spans' attributes are kept in `attributes` (cleared first), each view
    /// borrowing its own run of it, so a caller that walks many requests with one vector
    /// allocates no attribute list per span.
    pub fn views<'w>(&'w self, attributes: &'w mut Vec<AttrRef<'a>>) -> Option<Vec<SpanView<'w>>> {
        attributes.clear();
        let count = self.span_count();
        let (mut views, mut ends) = (Vec::with_capacity(count), Vec::with_capacity(count));
        for r in &self.resources {
            for s in &r.scopes {
                for body in &s.spans {
                    views.push(span(body, &r.header, &s.scope, attributes)?);
                    ends.push(attributes.len());
                }
            }
        }
        let attributes: &'w [AttrRef<'a>] = attributes;
        let mut start = 0;
        for (view, end) in views.iter_mut().zip(ends) {
            let own = attributes.get(start..end)?;
            start = end;
            view.hop_kind = derive::hop_kind(own);
            view.peer = derive::peer(view.kind, view.hop_kind, own).map(Cow::Owned);
            view.attributes = Cow::Borrowed(own);
        }
        Some(views)
    }
}

fn string<'a>(wire: WireType, buf: &mut &'a [u8]) -> Option<&'a str> {
    std::str::from_utf8(delimited(wire, buf)?).ok()
}

/// Merges every occurrence of a singular message field, as prost does.
fn merged<M: Message + Default>(occurrences: &[&[u8]]) -> Option<Option<M>> {
    if occurrences.is_empty() {
        return Some(None);
    }
    let mut message = M::default();
    for bytes in occurrences {
        message.merge(*bytes).ok()?;
    }
    Some(Some(message))
}

/// Header occurrences, items and schema URL of a `ResourceSpans` or `ScopeSpans`.
type Parts<'a> = (Vec<&'a [u8]>, Vec<&'a [u8]>, &'a str);

/// The parts of a `ResourceSpans` or `ScopeSpans`, which share a layout: every
/// occurrence of its header message (field 1: resource or scope, merged by prost), its
/// items (field 2: scope spans or spans) and its schema URL (field 3, the last wins).
fn parts(body: &[u8]) -> Option<Parts<'_>> {
    let (mut header, mut items, mut schema_url) = (Vec::new(), Vec::new(), "");
    each_field(body, |tag, wire, buf| match tag {
        1 => delimited(wire, buf).map(|m| header.push(m)),
        2 => delimited(wire, buf).map(|m| items.push(m)),
        3 => string(wire, buf).map(|s| schema_url = s),
        _ => skip(tag, wire, buf),
    })?;
    Some((header, items, schema_url))
}

fn resource_spans<'a>(body: &'a [u8], cache: &mut HeaderCache) -> Option<WireResource<'a>> {
    let (resource, scopes, schema_url) = parts(body)?;
    let header = cache.resources.get_or_make(&resource, schema_url, || {
        let resource = resource_from_otlp(merged::<otlp_resource::Resource>(&resource)?, schema_url.to_owned());
        Some(Arc::new(ResourceHeader {
            service_name: derive::service_name(&resource.attributes),
            host: derive::host(&resource.attributes),
            resource: Arc::new(resource),
        }))
    })?;
    let scopes = scopes
        .into_iter()
        .map(|body| scope_spans(body, cache))
        .collect::<Option<_>>()?;
    Some(WireResource { header, scopes })
}

fn scope_spans<'a>(body: &'a [u8], cache: &mut HeaderCache) -> Option<WireScope<'a>> {
    let (scope, spans, schema_url) = parts(body)?;
    let scope = cache.scopes.get_or_make(&scope, schema_url, || {
        Some(Arc::new(scope_from_otlp(
            merged::<otlp_common::InstrumentationScope>(&scope)?,
            schema_url.to_owned(),
        )))
    })?;
    Some(WireScope { scope, spans })
}

/// The fields of a span as found on the wire, the last occurrence of each scalar
/// winning, as in prost.
#[derive(Default)]
struct RawSpan<'a> {
    trace_id: &'a [u8],
    span_id: &'a [u8],
    parent_span_id: &'a [u8],
    trace_state: &'a str,
    name: &'a str,
    kind: i32,
    start: u64,
    end: u64,
    flags: u32,
    status: Option<(i32, &'a str)>,
    dropped: [u32; 3],
}

/// A span, its attributes appended to `attributes`; the view's own attributes, hop kind
/// and peer are left empty for [`WireRequest::views`] to fill in from them.
fn span<'a, 'w>(
    body: &'a [u8],
    r: &'w ResourceHeader,
    scope: &'w Arc<Scope>,
    attributes: &mut Vec<AttrRef<'a>>,
) -> Option<SpanView<'w>>
where
    'a: 'w,
{
    let mut raw = RawSpan::default();
    let mut events = Vec::new();
    let mut links = Vec::new();
    let mut dropped_links = 0u32;
    each_field(body, |tag, wire, buf| match tag {
        1 => delimited(wire, buf).map(|v| raw.trace_id = v),
        2 => delimited(wire, buf).map(|v| raw.span_id = v),
        3 => string(wire, buf).map(|v| raw.trace_state = v),
        4 => delimited(wire, buf).map(|v| raw.parent_span_id = v),
        5 => string(wire, buf).map(|v| raw.name = v),
        6 => varint(wire, buf).map(|v| raw.kind = v as i32),
        7 => fixed64(wire, buf).map(|v| raw.start = v),
        8 => fixed64(wire, buf).map(|v| raw.end = v),
        9 => key_value(delimited(wire, buf)?).map(|a| attributes.push(a)),
        10 => varint(wire, buf).map(|v| raw.dropped[0] = v as u32),
        11 => event(delimited(wire, buf)?).map(|e| events.push(e)),
        12 => varint(wire, buf).map(|v| raw.dropped[1] = v as u32),
        13 => {
            match link(delimited(wire, buf)?)? {
                Some(link) => links.push(link),
                // A link with unusable ids cannot be followed; counted as dropped.
                None => dropped_links += 1,
            }
            Some(())
        }
        14 => varint(wire, buf).map(|v| raw.dropped[2] = v as u32),
        15 => status(delimited(wire, buf)?, &mut raw.status),
        16 => fixed::<4>(wire, buf).map(|v| raw.flags = u32::from_le_bytes(v)),
        _ => skip(tag, wire, buf),
    })?;
    let trace_id = trace_id(raw.trace_id, "trace_id").ok()?;
    let span_id = span_id(raw.span_id, "span_id").ok()?;
    let parent_span_id = match raw.parent_span_id.len() {
        0 => None,
        _ => span_id_or_zero(raw.parent_span_id).ok()?,
    };
    if raw.start == 0 || raw.end < raw.start {
        return None;
    }
    let (status_code, status_message) = raw.status.unwrap_or((0, ""));
    Some(SpanView {
        trace_id,
        span_id,
        parent_span_id,
        trace_state: raw.trace_state,
        flags: raw.flags,
        name: raw.name,
        kind: SpanKind::from_otlp(raw.kind),
        start_time_unix_nano: raw.start,
        end_time_unix_nano: raw.end,
        status_code: StatusCode::from_otlp(status_code),
        status_message,
        attributes: Cow::Borrowed(&[]),
        dropped_attributes_count: raw.dropped[0],
        events,
        dropped_events_count: raw.dropped[1],
        links,
        dropped_links_count: raw.dropped[2].wrapping_add(dropped_links),
        resource: &r.resource,
        scope,
        service_name: &r.service_name,
        hop_kind: HopKind::default(),
        peer: None,
        host: r.host.as_deref(),
    })
}

/// `Status`, merged into `status` (prost merges repeated occurrences field by field).
fn status<'a>(body: &'a [u8], status: &mut Option<(i32, &'a str)>) -> Option<()> {
    let (code, message) = status.get_or_insert((0, ""));
    each_field(body, |tag, wire, buf| match tag {
        2 => string(wire, buf).map(|v| *message = v),
        3 => varint(wire, buf).map(|v| *code = v as i32),
        _ => skip(tag, wire, buf),
    })
}

fn event(body: &[u8]) -> Option<EventView<'_>> {
    let mut event = EventView {
        time_unix_nano: 0,
        name: "",
        attributes: Vec::new(),
        dropped_attributes_count: 0,
    };
    each_field(body, |tag, wire, buf| match tag {
        1 => fixed64(wire, buf).map(|v| event.time_unix_nano = v),
        2 => string(wire, buf).map(|v| event.name = v),
        3 => key_value(delimited(wire, buf)?).map(|a| event.attributes.push(a)),
        4 => varint(wire, buf).map(|v| event.dropped_attributes_count = v as u32),
        _ => skip(tag, wire, buf),
    })?;
    Some(event)
}

/// A link, `Some(None)` when its ids are unusable (the mapping drops such links).
fn link(body: &[u8]) -> Option<Option<LinkView<'_>>> {
    let (mut trace, mut span, mut trace_state) = (&[][..], &[][..], "");
    let (mut attributes, mut dropped, mut flags) = (Vec::new(), 0, 0);
    each_field(body, |tag, wire, buf| match tag {
        1 => delimited(wire, buf).map(|v| trace = v),
        2 => delimited(wire, buf).map(|v| span = v),
        3 => string(wire, buf).map(|v| trace_state = v),
        4 => key_value(delimited(wire, buf)?).map(|a| attributes.push(a)),
        5 => varint(wire, buf).map(|v| dropped = v as u32),
        6 => fixed::<4>(wire, buf).map(|v| flags = u32::from_le_bytes(v)),
        _ => skip(tag, wire, buf),
    })?;
    let (Ok(trace_id), Ok(span_id)) = (trace_id(trace, "link.trace_id"), span_id(span, "link.span_id")) else {
        return Some(None);
    };
    Some(Some(LinkView {
        trace_id,
        span_id,
        trace_state,
        attributes,
        dropped_attributes_count: dropped,
        flags,
    }))
}

/// An attribute (`KeyValue` at nesting depth 1).
fn key_value(body: &[u8]) -> Option<AttrRef<'_>> {
    if let Some((key, value)) = simple_key_value(body) {
        let value = match value {
            Simple::Str(text) => {
                // Every byte around the two strings is below 0x80 in this layout, so the
                // whole message is UTF-8 exactly when both strings are: one check, and
                // both slices fall on character boundaries.
                let whole = std::str::from_utf8(body).ok()?;
                let key = whole.get(2..2 + key.len())?;
                let text = whole.get(body.len() - text.len()..)?;
                return Some(AttrRef {
                    key,
                    value: ValueRef::Str(text),
                });
            }
            Simple::Bool(b) => ValueRef::Bool(b),
            Simple::Int(i) => ValueRef::Int(i),
            Simple::Double(d) => ValueRef::Double(d),
        };
        let key = std::str::from_utf8(key).ok()?;
        return Some(AttrRef { key, value });
    }
    let mut key = "";
    let mut value = None;
    each_field(body, |tag, wire, buf| match tag {
        1 => string(wire, buf).map(|v| key = v),
        // A repeated singular message is merged by prost: not followed here.
        2 if value.is_none() => delimited(wire, buf).map(|v| value = Some(v)),
        2 => None,
        3 => varint(wire, buf).map(drop),
        _ => skip(tag, wire, buf),
    })?;
    let value = match value {
        Some(body) => any(body)?,
        None => ValueRef::Other(Cow::Owned(AttrValue::Empty)),
    };
    Some(AttrRef { key, value })
}

/// An `AnyValue`: scalars borrowed, arrays and key/value lists decoded with prost.
fn any(body: &[u8]) -> Option<ValueRef<'_>> {
    let mut value = ValueRef::Other(Cow::Owned(AttrValue::Empty));
    let mut set = 0;
    let mut nested = false;
    each_field(body, |tag, wire, buf| {
        if (1..=8).contains(&tag) {
            set += 1;
        }
        match tag {
            1 => string(wire, buf).map(|v| value = ValueRef::Str(v)),
            2 => varint(wire, buf).map(|v| value = ValueRef::Bool(v != 0)),
            3 => varint(wire, buf).map(|v| value = ValueRef::Int(v as i64)),
            4 => fixed64(wire, buf).map(|v| value = ValueRef::Double(f64::from_bits(v))),
            5 | 6 => delimited(wire, buf).map(|_| nested = true),
            7 => delimited(wire, buf).map(|v| value = ValueRef::Bytes(v)),
            8 => varint(wire, buf).map(|_| value = ValueRef::Other(Cow::Owned(AttrValue::Empty))),
            _ => skip(tag, wire, buf),
        }
    })?;
    if set > 1 {
        // The last of several oneof fields wins in prost, merging repeated messages.
        return None;
    }
    if nested {
        // Depth 2: the value of an attribute of a span, event or link.
        any_value(body, 2)?;
        let decoded = otlp_common::AnyValue::decode(body).ok()?;
        value = ValueRef::Other(Cow::Owned(value_from_otlp(Some(decoded))));
    }
    Some(value)
}

#[cfg(test)]
#[path = "otlp_wire_tests.rs"]
mod tests;
