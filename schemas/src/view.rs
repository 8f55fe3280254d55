//! A span borrowed rather than owned: [`SpanView`] has every field of a [`SpanRecord`],
//! with strings and bytes pointing into whatever holds them — an owned record
//! ([`SpanView::of_record`]) or an encoded OTLP request ([`crate::otlp_wire`]).
//!
//! A store that encodes spans its own way reads views, so one encoder serves both the
//! spans a caller maps itself and the spans of a request body walked in place, without
//! allocating a string per attribute for the latter.

use std::borrow::Cow;
use std::sync::Arc;

use crate::derive::{AttrLookup, LookedUp};
use crate::ids::{SpanId, TraceId};
use crate::span::{AttrValue, Event, HopKind, KeyValue, Link, Resource, Scope, SpanKind, SpanRecord, StatusCode};

/// An attribute value, borrowed. Arrays, key/value lists and empty values (rare on the
/// ingest path) are [`ValueRef::Other`].
#[derive(Debug, Clone, PartialEq)]
pub enum ValueRef<'a> {
    /// A string.
    Str(&'a str),
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A double.
    Double(f64),
    /// Bytes.
    Bytes(&'a [u8]),
    /// An array, a key/value list or the empty value.
    Other(Cow<'a, AttrValue>),
}

impl<'a> ValueRef<'a> {
    /// Borrows an owned value.
    pub fn of(value: &'a AttrValue) -> Self {
        match value {
            AttrValue::String(s) => ValueRef::Str(s),
            AttrValue::Bool(b) => ValueRef::Bool(*b),
            AttrValue::Int(i) => ValueRef::Int(*i),
            AttrValue::Double(d) => ValueRef::Double(*d),
            AttrValue::Bytes(b) => ValueRef::Bytes(b),
            other => ValueRef::Other(Cow::Borrowed(other)),
        }
    }

    /// The owned value.
    pub fn to_owned_value(&self) -> AttrValue {
        match self {
            ValueRef::Str(s) => AttrValue::String((*s).to_owned()),
            ValueRef::Bool(b) => AttrValue::Bool(*b),
            ValueRef::Int(i) => AttrValue::Int(*i),
            ValueRef::Double(d) => AttrValue::Double(*d),
            ValueRef::Bytes(b) => AttrValue::Bytes(b.to_vec()),
            ValueRef::Other(v) => v.clone().into_owned(),
        }
    }
}

/// One attribute, borrowed.
#[derive(Debug, Clone, PartialEq)]
pub struct AttrRef<'a> {
    /// Attribute name.
    pub key: &'a str,
    /// Its value.
    pub value: ValueRef<'a>,
}

impl<'a> AttrRef<'a> {
    /// Borrows an owned attribute.
    pub fn of(kv: &'a KeyValue) -> Self {
        Self {
            key: &kv.key,
            value: ValueRef::of(&kv.value),
        }
    }

    /// Borrows owned attributes.
    pub fn all_of(kvs: &'a [KeyValue]) -> Vec<Self> {
        kvs.iter().map(Self::of).collect()
    }

    /// Owned attributes.
    pub fn to_owned_all(attrs: &[AttrRef<'_>]) -> Vec<KeyValue> {
        attrs
            .iter()
            .map(|a| KeyValue::new(a.key, a.value.to_owned_value()))
            .collect()
    }
}

impl AttrLookup for [AttrRef<'_>] {
    fn look_up(&self, key: &str) -> Option<LookedUp<'_>> {
        self.iter().find(|a| a.key == key).map(|a| match &a.value {
            ValueRef::Str(s) => LookedUp::Str(s),
            ValueRef::Int(i) => LookedUp::Int(*i),
            _ => LookedUp::Other,
        })
    }
}

/// A span event, borrowed.
#[derive(Debug, Clone, PartialEq)]
pub struct EventView<'a> {
    /// Unix nanoseconds.
    pub time_unix_nano: u64,
    /// Event name.
    pub name: &'a str,
    /// Event attributes.
    pub attributes: Vec<AttrRef<'a>>,
    /// Attributes the SDK dropped.
    pub dropped_attributes_count: u32,
}

/// A link, borrowed.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkView<'a> {
    /// Linked trace.
    pub trace_id: TraceId,
    /// Linked span.
    pub span_id: SpanId,
    /// W3C trace state of the link.
    pub trace_state: &'a str,
    /// Link attributes.
    pub attributes: Vec<AttrRef<'a>>,
    /// Attributes the SDK dropped.
    pub dropped_attributes_count: u32,
    /// W3C trace flags of the link.
    pub flags: u32,
}

/// A span, borrowed: the fields of [`SpanRecord`] with the same meaning and contracts.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanView<'a> {
    /// Trace id (never all zeros).
    pub trace_id: TraceId,
    /// Span id (never all zeros).
    pub span_id: SpanId,
    /// Parent span id; `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    /// W3C trace state.
    pub trace_state: &'a str,
    /// W3C trace flags and OTLP span flags.
    pub flags: u32,
    /// Operation name.
    pub name: &'a str,
    /// Span kind.
    pub kind: SpanKind,
    /// Start, unix nanoseconds.
    pub start_time_unix_nano: u64,
    /// End, unix nanoseconds (never before the start).
    pub end_time_unix_nano: u64,
    /// Status code.
    pub status_code: StatusCode,
    /// Status message.
    pub status_message: &'a str,
    /// Span attributes: borrowed from a shared list when walked from the wire
    /// ([`crate::otlp_wire::WireRequest::views`]), owned when borrowed from a record.
    pub attributes: Cow<'a, [AttrRef<'a>]>,
    /// Attributes the SDK dropped.
    pub dropped_attributes_count: u32,
    /// Events.
    pub events: Vec<EventView<'a>>,
    /// Events the SDK dropped.
    pub dropped_events_count: u32,
    /// Links.
    pub links: Vec<LinkView<'a>>,
    /// Links the SDK dropped.
    pub dropped_links_count: u32,
    /// The resource.
    pub resource: &'a Arc<Resource>,
    /// The instrumentation scope.
    pub scope: &'a Arc<Scope>,
    /// Derived: see [`SpanRecord::service_name`].
    pub service_name: &'a str,
    /// Derived: see [`SpanRecord::hop_kind`].
    pub hop_kind: HopKind,
    /// Derived: see [`SpanRecord::peer`].
    pub peer: Option<Cow<'a, str>>,
    /// Derived: see [`SpanRecord::host`].
    pub host: Option<&'a str>,
}

impl<'a> SpanView<'a> {
    /// Borrows an owned record.
    pub fn of_record(span: &'a SpanRecord) -> Self {
        Self {
            trace_id: span.trace_id,
            span_id: span.span_id,
            parent_span_id: span.parent_span_id,
            trace_state: &span.trace_state,
            flags: span.flags,
            name: &span.name,
            kind: span.kind,
            start_time_unix_nano: span.start_time_unix_nano,
            end_time_unix_nano: span.end_time_unix_nano,
            status_code: span.status_code,
            status_message: &span.status_message,
            attributes: Cow::Owned(AttrRef::all_of(&span.attributes)),
            dropped_attributes_count: span.dropped_attributes_count,
            events: span
                .events
                .iter()
                .map(|e| EventView {
                    time_unix_nano: e.time_unix_nano,
                    name: &e.name,
                    attributes: AttrRef::all_of(&e.attributes),
                    dropped_attributes_count: e.dropped_attributes_count,
                })
                .collect(),
            dropped_events_count: span.dropped_events_count,
            links: span
                .links
                .iter()
                .map(|l| LinkView {
                    trace_id: l.trace_id,
                    span_id: l.span_id,
                    trace_state: &l.trace_state,
                    attributes: AttrRef::all_of(&l.attributes),
                    dropped_attributes_count: l.dropped_attributes_count,
                    flags: l.flags,
                })
                .collect(),
            dropped_links_count: span.dropped_links_count,
            resource: &span.resource,
            scope: &span.scope,
            service_name: &span.service_name,
            hop_kind: span.hop_kind,
            peer: span.peer.as_deref().map(Cow::Borrowed),
            host: span.host.as_deref(),
        }
    }

    /// True when the status is ERROR.
    pub fn is_error(&self) -> bool {
        self.status_code == StatusCode::Error
    }

    /// The owned record.
    pub fn to_record(&self) -> SpanRecord {
        SpanRecord {
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent_span_id: self.parent_span_id,
            trace_state: self.trace_state.to_owned(),
            flags: self.flags,
            name: self.name.to_owned(),
            kind: self.kind,
            start_time_unix_nano: self.start_time_unix_nano,
            end_time_unix_nano: self.end_time_unix_nano,
            status_code: self.status_code,
            status_message: self.status_message.to_owned(),
            attributes: AttrRef::to_owned_all(&self.attributes),
            dropped_attributes_count: self.dropped_attributes_count,
            events: self
                .events
                .iter()
                .map(|e| Event {
                    time_unix_nano: e.time_unix_nano,
                    name: e.name.to_owned(),
                    attributes: AttrRef::to_owned_all(&e.attributes),
                    dropped_attributes_count: e.dropped_attributes_count,
                })
                .collect(),
            dropped_events_count: self.dropped_events_count,
            links: self
                .links
                .iter()
                .map(|l| Link {
                    trace_id: l.trace_id,
                    span_id: l.span_id,
                    trace_state: l.trace_state.to_owned(),
                    attributes: AttrRef::to_owned_all(&l.attributes),
                    dropped_attributes_count: l.dropped_attributes_count,
                    flags: l.flags,
                })
                .collect(),
            dropped_links_count: self.dropped_links_count,
            resource: Arc::clone(self.resource),
            scope: Arc::clone(self.scope),
            service_name: self.service_name.to_owned(),
            hop_kind: self.hop_kind,
            peer: self.peer.as_ref().map(|p| p.clone().into_owned()),
            host: self.host.map(str::to_owned),
        }
    }
}
