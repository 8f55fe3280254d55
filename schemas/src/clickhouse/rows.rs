//! The row types exchanged with ClickHouse (through the `clickhouse` crate's `Row`
//! derive; RowBinary is never written by hand) and the mapping between them and
//! [`SpanRecord`].
//!
//! A span is one [`SpanRow`] of `spans_v2` (typed columns; attributes, events and links
//! as parallel arrays, see [`super::attrs`]) plus a reference, `resource_hash`, to one
//! [`ResourceRow`] of `resources` holding its resource and instrumentation scope once per
//! distinct value and day. [`encode_batch`] and [`decode_span`] are exact inverses for
//! every field, with two documented limits: a start time after year 2262 saturates, and
//! an empty `peer`/`host` reads back as absent.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::{
    Event, HopKind, KeyValue, Link, Resource, Scope, SpanId, SpanKind, SpanRecord, StatusCode, TraceId, find_str,
};
use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::attrs::{self, AttrColumns};

/// Separates key and value in a `tags` entry. Keys containing NUL are not searchable
/// exactly (the only ambiguity of this encoding).
pub const TAG_SEPARATOR: char = '\0';

const NS_PER_DAY: u64 = 86_400_000_000_000;

/// One row of the `spans_v2` table (column order = DDL order: RowBinary is positional).
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct SpanRow {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// All zeros for a root span.
    pub parent_span_id: [u8; 8],
    /// Unix ns (`DateTime64(9)` on modern servers, `Int64` on legacy ones: both are
    /// a little-endian i64 in RowBinary).
    pub start_time: i64,
    pub duration_ns: u64,
    pub service: String,
    pub name: String,
    pub kind: u8,
    pub status_code: u8,
    pub hop_kind: String,
    pub peer: String,
    pub host: String,
    pub cloud_kind: String,
    pub cloud_provider: String,
    pub cloud_region: String,
    pub cloud_zone: String,
    /// `key\0text` of every event attribute and of each span attribute whose stored
    /// value is not its text form (arrays and key/value lists), sorted and
    /// deduplicated; with the scalar span attributes (matched in `attributes.*`
    /// directly) and the resource's `tags` this is what a tag filter looks up.
    pub tags: Vec<String>,
    pub trace_state: String,
    pub flags: u32,
    pub status_message: String,
    #[serde(rename = "attributes.key")]
    pub attr_keys: Vec<String>,
    #[serde(rename = "attributes.type")]
    pub attr_types: Vec<u8>,
    #[serde(rename = "attributes.value")]
    pub attr_values: Vec<String>,
    pub dropped_attributes_count: u32,
    /// Event times minus the span start (ns, wrapping), which compress far better than
    /// absolute times.
    #[serde(rename = "events.offset_ns")]
    pub event_offsets: Vec<i64>,
    #[serde(rename = "events.name")]
    pub event_names: Vec<String>,
    #[serde(rename = "events.attr_keys")]
    pub event_attr_keys: Vec<Vec<String>>,
    #[serde(rename = "events.attr_types")]
    pub event_attr_types: Vec<Vec<u8>>,
    #[serde(rename = "events.attr_values")]
    pub event_attr_values: Vec<Vec<String>>,
    #[serde(rename = "events.dropped")]
    pub event_dropped: Vec<u32>,
    pub dropped_events_count: u32,
    #[serde(rename = "links.trace_id")]
    pub link_trace_ids: Vec<[u8; 16]>,
    #[serde(rename = "links.span_id")]
    pub link_span_ids: Vec<[u8; 8]>,
    #[serde(rename = "links.trace_state")]
    pub link_trace_states: Vec<String>,
    #[serde(rename = "links.flags")]
    pub link_flags: Vec<u32>,
    #[serde(rename = "links.attr_keys")]
    pub link_attr_keys: Vec<Vec<String>>,
    #[serde(rename = "links.attr_types")]
    pub link_attr_types: Vec<Vec<u8>>,
    #[serde(rename = "links.attr_values")]
    pub link_attr_values: Vec<Vec<String>>,
    #[serde(rename = "links.dropped")]
    pub link_dropped: Vec<u32>,
    pub dropped_links_count: u32,
    pub resource_hash: u64,
}

/// One row of the `resources` table: a resource and scope pair, per day of the spans
/// that use it (so that it expires with them).
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct ResourceRow {
    /// Days since the unix epoch (`Date`).
    pub day: u16,
    pub resource_hash: u64,
    #[serde(rename = "attributes.key")]
    pub attr_keys: Vec<String>,
    #[serde(rename = "attributes.type")]
    pub attr_types: Vec<u8>,
    #[serde(rename = "attributes.value")]
    pub attr_values: Vec<String>,
    pub dropped_attributes_count: u32,
    pub schema_url: String,
    pub scope_name: String,
    pub scope_version: String,
    #[serde(rename = "scope_attributes.key")]
    pub scope_attr_keys: Vec<String>,
    #[serde(rename = "scope_attributes.type")]
    pub scope_attr_types: Vec<u8>,
    #[serde(rename = "scope_attributes.value")]
    pub scope_attr_values: Vec<String>,
    pub scope_dropped_attributes_count: u32,
    pub scope_schema_url: String,
    /// `key\0text` of every resource attribute, plus `otel.scope.name` and
    /// `otel.scope.version` when set: what a tag filter looks up here.
    pub tags: Vec<String>,
}

/// The full span as JSON, the `record` column of the pre-0005 `spans` table (read only
/// when upgrading).
#[derive(Debug, Row, Deserialize)]
pub struct RecordRow {
    pub record: String,
}

/// A resource and scope as spans share them after decoding.
pub type SharedResource = (Arc<Resource>, Arc<Scope>);

/// Unix ns as the signed 64-bit value ClickHouse stores (saturating; year 2262).
pub fn ns_to_i64(ns: u64) -> i64 {
    i64::try_from(ns).unwrap_or(i64::MAX)
}

/// A tag filter's lookup value in `tags`.
pub fn tag_entry(key: &str, value: &str) -> String {
    let mut entry = String::with_capacity(key.len() + value.len() + 1);
    entry.push_str(key);
    entry.push(TAG_SEPARATOR);
    entry.push_str(value);
    entry
}

fn push_tags(tags: &mut Vec<String>, attrs: &[KeyValue]) {
    for kv in attrs {
        tags.push(tag_entry(&kv.key, &kv.value.to_text()));
    }
}

fn sorted(mut tags: Vec<String>) -> Vec<String> {
    tags.sort_unstable();
    tags.dedup();
    tags
}

/// The stable 64-bit id of a resource and scope pair: FNV-1a over their JSON (the same
/// content gives the same hash in every process and version).
pub fn resource_hash(resource: &Resource, scope: &Scope) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    // Serialising these plain structs cannot fail; an empty text would still hash.
    let text = serde_json::to_vec(&(resource, scope)).unwrap_or_default();
    for byte in text {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn resource_row(day: u16, hash: u64, resource: &Resource, scope: &Scope) -> ResourceRow {
    let attrs = attrs::encode(&resource.attributes);
    let scope_attrs = attrs::encode(&scope.attributes);
    let mut tags = Vec::new();
    push_tags(&mut tags, &resource.attributes);
    if !scope.name.is_empty() {
        tags.push(tag_entry("otel.scope.name", &scope.name));
    }
    if !scope.version.is_empty() {
        tags.push(tag_entry("otel.scope.version", &scope.version));
    }
    ResourceRow {
        day,
        resource_hash: hash,
        attr_keys: attrs.keys,
        attr_types: attrs.types,
        attr_values: attrs.values,
        dropped_attributes_count: resource.dropped_attributes_count,
        schema_url: resource.schema_url.clone(),
        scope_name: scope.name.clone(),
        scope_version: scope.version.clone(),
        scope_attr_keys: scope_attrs.keys,
        scope_attr_types: scope_attrs.types,
        scope_attr_values: scope_attrs.values,
        scope_dropped_attributes_count: scope.dropped_attributes_count,
        scope_schema_url: scope.schema_url.clone(),
        tags: sorted(tags),
    }
}

/// The `spans_v2` row of one span, given its resource hash.
pub fn span_row(span: &SpanRecord, resource_hash: u64) -> SpanRow {
    let res = &span.resource.attributes;
    let text = |key: &str| find_str(res, key).unwrap_or_default().to_owned();
    let mut tags = Vec::new();
    let complex: Vec<KeyValue> = span
        .attributes
        .iter()
        .filter(|kv| !attrs::is_text(&kv.value))
        .cloned()
        .collect();
    push_tags(&mut tags, &complex);
    for event in &span.events {
        push_tags(&mut tags, &event.attributes);
    }
    let attributes = attrs::encode(&span.attributes);
    let (events, links) = (&span.events, &span.links);
    let event_attrs: Vec<AttrColumns> = events.iter().map(|e| attrs::encode(&e.attributes)).collect();
    let link_attrs: Vec<AttrColumns> = links.iter().map(|l| attrs::encode(&l.attributes)).collect();
    let (event_attr_keys, event_attr_types, event_attr_values) = split(event_attrs);
    let (link_attr_keys, link_attr_types, link_attr_values) = split(link_attrs);
    SpanRow {
        trace_id: span.trace_id.0,
        span_id: span.span_id.0,
        parent_span_id: span.parent_span_id.map(|p| p.0).unwrap_or_default(),
        start_time: ns_to_i64(span.start_time_unix_nano),
        duration_ns: span.duration_nanos(),
        service: span.service_name.clone(),
        name: span.name.clone(),
        kind: u8::try_from(span.kind.to_otlp()).unwrap_or_default(),
        status_code: u8::try_from(span.status_code.to_otlp()).unwrap_or_default(),
        hop_kind: span.hop_kind.as_str().to_owned(),
        peer: span.peer.clone().unwrap_or_default(),
        host: span.host.clone().unwrap_or_default(),
        cloud_kind: text("hopscope.cloud.kind"),
        cloud_provider: text("cloud.provider"),
        cloud_region: text("cloud.region"),
        cloud_zone: text("cloud.availability_zone"),
        tags: sorted(tags),
        trace_state: span.trace_state.clone(),
        flags: span.flags,
        status_message: span.status_message.clone(),
        attr_keys: attributes.keys,
        attr_types: attributes.types,
        attr_values: attributes.values,
        dropped_attributes_count: span.dropped_attributes_count,
        event_offsets: events
            .iter()
            .map(|e| e.time_unix_nano.wrapping_sub(span.start_time_unix_nano).cast_signed())
            .collect(),
        event_names: events.iter().map(|e| e.name.clone()).collect(),
        event_attr_keys,
        event_attr_types,
        event_attr_values,
        event_dropped: events.iter().map(|e| e.dropped_attributes_count).collect(),
        dropped_events_count: span.dropped_events_count,
        link_trace_ids: links.iter().map(|l| l.trace_id.0).collect(),
        link_span_ids: links.iter().map(|l| l.span_id.0).collect(),
        link_trace_states: links.iter().map(|l| l.trace_state.clone()).collect(),
        link_flags: links.iter().map(|l| l.flags).collect(),
        link_attr_keys,
        link_attr_types,
        link_attr_values,
        link_dropped: links.iter().map(|l| l.dropped_attributes_count).collect(),
        dropped_links_count: span.dropped_links_count,
        resource_hash,
    }
}

type Split = (Vec<Vec<String>>, Vec<Vec<u8>>, Vec<Vec<String>>);

fn split(columns: Vec<AttrColumns>) -> Split {
    let mut out: Split = (Vec::new(), Vec::new(), Vec::new());
    for c in columns {
        out.0.push(c.keys);
        out.1.push(c.types);
        out.2.push(c.values);
    }
    out
}

/// The rows of one batch: every distinct (resource, scope, day) once, then every span.
/// Resources are hashed once per shared `Arc` pair, not per span.
pub fn encode_batch(spans: &[SpanRecord]) -> (Vec<ResourceRow>, Vec<SpanRow>) {
    let mut hashes: HashMap<(*const Resource, *const Scope), u64> = HashMap::new();
    let mut seen: HashSet<(u64, u16)> = HashSet::new();
    let mut resources = Vec::new();
    let mut rows = Vec::with_capacity(spans.len());
    for span in spans {
        let key = (Arc::as_ptr(&span.resource), Arc::as_ptr(&span.scope));
        let hash = *hashes
            .entry(key)
            .or_insert_with(|| resource_hash(&span.resource, &span.scope));
        let day = u16::try_from(span.start_time_unix_nano / NS_PER_DAY).unwrap_or(u16::MAX);
        if seen.insert((hash, day)) {
            resources.push(resource_row(day, hash, &span.resource, &span.scope));
        }
        rows.push(span_row(span, hash));
    }
    (resources, rows)
}

/// The resource and scope of a `resources` row.
pub fn decode_resource(row: ResourceRow) -> Result<SharedResource, String> {
    let resource = Resource {
        attributes: attrs::decode(row.attr_keys, &row.attr_types, row.attr_values)?,
        dropped_attributes_count: row.dropped_attributes_count,
        schema_url: row.schema_url,
    };
    let scope = Scope {
        name: row.scope_name,
        version: row.scope_version,
        attributes: attrs::decode(row.scope_attr_keys, &row.scope_attr_types, row.scope_attr_values)?,
        dropped_attributes_count: row.scope_dropped_attributes_count,
        schema_url: row.scope_schema_url,
    };
    Ok((Arc::new(resource), Arc::new(scope)))
}

fn nonzero<const N: usize>(id: [u8; N]) -> Option<[u8; N]> {
    (id != [0; N]).then_some(id)
}

/// The span of a `spans_v2` row with its (already decoded) resource and scope.
pub fn decode_span(row: SpanRow, resource: &SharedResource) -> Result<SpanRecord, String> {
    let start = u64::try_from(row.start_time).map_err(|_| "negative start time".to_string())?;
    let n = row.event_offsets.len();
    if [
        row.event_names.len(),
        row.event_attr_keys.len(),
        row.event_attr_types.len(),
        row.event_attr_values.len(),
        row.event_dropped.len(),
    ] != [n; 5]
    {
        return Err("event arrays differ in length".into());
    }
    let mut events = Vec::with_capacity(n);
    let event_parts = row
        .event_names
        .into_iter()
        .zip(row.event_attr_keys)
        .zip(row.event_attr_types)
        .zip(row.event_attr_values);
    for (i, (((name, keys), types), values)) in event_parts.enumerate() {
        events.push(Event {
            time_unix_nano: start.wrapping_add(row.event_offsets[i].cast_unsigned()),
            name,
            attributes: attrs::decode(keys, &types, values)?,
            dropped_attributes_count: row.event_dropped[i],
        });
    }
    let n = row.link_trace_ids.len();
    if [
        row.link_span_ids.len(),
        row.link_trace_states.len(),
        row.link_flags.len(),
        row.link_attr_keys.len(),
        row.link_attr_types.len(),
        row.link_attr_values.len(),
        row.link_dropped.len(),
    ] != [n; 7]
    {
        return Err("link arrays differ in length".into());
    }
    let mut links = Vec::with_capacity(n);
    let link_parts = row
        .link_attr_keys
        .into_iter()
        .zip(row.link_attr_types)
        .zip(row.link_attr_values);
    for (i, ((keys, types), values)) in link_parts.enumerate() {
        links.push(Link {
            trace_id: TraceId(row.link_trace_ids[i]),
            span_id: SpanId(row.link_span_ids[i]),
            trace_state: row.link_trace_states[i].clone(),
            attributes: attrs::decode(keys, &types, values)?,
            dropped_attributes_count: row.link_dropped[i],
            flags: row.link_flags[i],
        });
    }
    let hop_kind = HopKind::parse(&row.hop_kind).ok_or_else(|| format!("unknown hop kind {:?}", row.hop_kind))?;
    Ok(SpanRecord {
        trace_id: TraceId(row.trace_id),
        span_id: SpanId(row.span_id),
        parent_span_id: nonzero(row.parent_span_id).map(SpanId),
        trace_state: row.trace_state,
        flags: row.flags,
        name: row.name,
        kind: SpanKind::from_otlp(i32::from(row.kind)),
        start_time_unix_nano: start,
        end_time_unix_nano: start.saturating_add(row.duration_ns),
        status_code: StatusCode::from_otlp(i32::from(row.status_code)),
        status_message: row.status_message,
        attributes: attrs::decode(row.attr_keys, &row.attr_types, row.attr_values)?,
        dropped_attributes_count: row.dropped_attributes_count,
        events,
        dropped_events_count: row.dropped_events_count,
        links,
        dropped_links_count: row.dropped_links_count,
        resource: resource.0.clone(),
        scope: resource.1.clone(),
        service_name: row.service,
        hop_kind,
        peer: Some(row.peer).filter(|p| !p.is_empty()),
        host: Some(row.host).filter(|h| !h.is_empty()),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::fixtures::every_field;

    #[test]
    fn every_field_round_trips_and_resources_are_shared() {
        let s = every_field();
        let mut other = s.clone();
        other.span_id = SpanId([9; 8]);
        other.start_time_unix_nano = NS_PER_DAY + 5;
        other.end_time_unix_nano = NS_PER_DAY + 5;
        let (resources, rows) = encode_batch(&[s.clone(), s.clone(), other.clone()]);
        // One resource, on two days.
        assert_eq!(resources.len(), 2);
        assert_eq!(resources[0].resource_hash, resources[1].resource_hash);
        assert_eq!((resources[0].day, resources[1].day), (0, 1));
        assert_eq!(rows[0].duration_ns, 4);
        assert_eq!(rows[0].cloud_provider, "aws");
        let shared = decode_resource(resources[0].clone()).unwrap();
        assert_eq!(decode_span(rows[0].clone(), &shared).unwrap(), s);
        assert_eq!(decode_span(rows[2].clone(), &shared).unwrap(), other);
        assert!(resources[0].tags.contains(&tag_entry("otel.scope.version", "1")));
        // Equal content in distinct Arcs hashes equally.
        let copy = Resource::clone(&s.resource);
        assert_eq!(resource_hash(&copy, &s.scope), rows[0].resource_hash);
    }
}
