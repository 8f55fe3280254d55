//! The row types exchanged with ClickHouse (through the `clickhouse` crate's `Row`
//! derive; RowBinary is never written by hand) and the mapping from [`SpanRecord`].

use clickhouse::Row;
use hopscope_schemas::{KeyValue, SpanRecord, find_str};
use serde::{Deserialize, Serialize};

use crate::matching::SYNTHETIC_KEYS;

/// Separates key and value in a `tags` entry. Keys containing NUL are not searchable
/// exactly (the only ambiguity of this encoding).
pub(crate) const TAG_SEPARATOR: char = '\0';

/// One row of the `spans` table.
#[derive(Debug, Row, Serialize)]
pub(crate) struct SpanRow<'a> {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: [u8; 8],
    /// Unix ns (`DateTime64(9)` on modern servers, `Int64` on legacy ones: both are
    /// a little-endian i64 in RowBinary).
    pub start_time: i64,
    pub duration_ns: u64,
    pub service: &'a str,
    pub name: &'a str,
    pub kind: u8,
    pub status_code: u8,
    pub hop_kind: &'a str,
    pub peer: &'a str,
    pub host: &'a str,
    pub cloud_kind: &'a str,
    pub cloud_provider: &'a str,
    pub cloud_region: &'a str,
    pub cloud_zone: &'a str,
    pub tags: Vec<String>,
    pub record: String,
}

/// The full span as stored in `record`.
#[derive(Debug, Row, Deserialize)]
pub(crate) struct RecordRow {
    pub record: String,
}

/// Unix ns as the signed 64-bit value ClickHouse stores (saturating; year 2262).
pub(crate) fn ns_to_i64(ns: u64) -> i64 {
    i64::try_from(ns).unwrap_or(i64::MAX)
}

/// A tag filter's lookup value in `tags`.
pub(crate) fn tag_entry(key: &str, value: &str) -> String {
    let mut entry = String::with_capacity(key.len() + value.len() + 1);
    entry.push_str(key);
    entry.push(TAG_SEPARATOR);
    entry.push_str(value);
    entry
}

/// Every `key\0value` a tag filter can match on this span (see [`crate::matching`]):
/// span, resource and event attributes in their text form, plus the synthetic tags whose
/// field is set.
pub(crate) fn tags_of(span: &SpanRecord) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    let mut push = |attrs: &[KeyValue]| {
        for kv in attrs {
            tags.push(tag_entry(&kv.key, &kv.value.to_text()));
        }
    };
    push(&span.attributes);
    push(&span.resource.attributes);
    for event in &span.events {
        push(&event.attributes);
    }
    debug_assert_eq!(SYNTHETIC_KEYS.len(), 6);
    let synthetic = [
        ("error", if span.is_error() { "true" } else { "" }),
        ("span.kind", span.kind.as_str()),
        ("otel.status_code", span.status_code.as_str()),
        ("otel.status_description", span.status_message.as_str()),
        ("otel.scope.name", span.scope.name.as_str()),
        ("otel.scope.version", span.scope.version.as_str()),
    ];
    for (key, value) in synthetic {
        if !value.is_empty() {
            tags.push(tag_entry(key, value));
        }
    }
    tags.sort_unstable();
    tags.dedup();
    tags
}

/// Builds the row for one span.
pub(crate) fn span_row(span: &SpanRecord) -> Result<SpanRow<'_>, serde_json::Error> {
    let resource = &span.resource.attributes;
    Ok(SpanRow {
        trace_id: span.trace_id.0,
        span_id: span.span_id.0,
        parent_span_id: span.parent_span_id.map(|p| p.0).unwrap_or_default(),
        start_time: ns_to_i64(span.start_time_unix_nano),
        duration_ns: span.duration_nanos(),
        service: &span.service_name,
        name: &span.name,
        kind: u8::try_from(span.kind.to_otlp()).unwrap_or_default(),
        status_code: u8::try_from(span.status_code.to_otlp()).unwrap_or_default(),
        hop_kind: span.hop_kind.as_str(),
        peer: span.peer.as_deref().unwrap_or_default(),
        host: span.host.as_deref().unwrap_or_default(),
        cloud_kind: find_str(resource, "hopscope.cloud.kind").unwrap_or_default(),
        cloud_provider: find_str(resource, "cloud.provider").unwrap_or_default(),
        cloud_region: find_str(resource, "cloud.region").unwrap_or_default(),
        cloud_zone: find_str(resource, "cloud.availability_zone").unwrap_or_default(),
        tags: tags_of(span),
        record: serde_json::to_string(span)?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use hopscope_schemas::{
        AttrValue, Event, HopKind, Resource, Scope, SpanId, SpanKind, StatusCode, TraceId,
    };

    use super::*;
    use crate::matching::tag_matches;
    use crate::query::TagFilter;

    fn span() -> SpanRecord {
        SpanRecord {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([2; 8]),
            parent_span_id: None,
            trace_state: String::new(),
            flags: 0,
            name: "GET".into(),
            kind: SpanKind::Server,
            start_time_unix_nano: 5,
            end_time_unix_nano: 9,
            status_code: StatusCode::Error,
            status_message: String::new(),
            attributes: vec![KeyValue::new("n", AttrValue::Int(3))],
            dropped_attributes_count: 0,
            events: vec![Event {
                time_unix_nano: 6,
                name: "e".into(),
                attributes: vec![KeyValue::new("b", AttrValue::Bool(true))],
                dropped_attributes_count: 0,
            }],
            dropped_events_count: 0,
            links: vec![],
            dropped_links_count: 0,
            resource: Arc::new(Resource {
                attributes: vec![KeyValue::new("cloud.provider", AttrValue::String("aws".into()))],
                ..Default::default()
            }),
            scope: Arc::new(Scope::default()),
            service_name: "s".into(),
            hop_kind: HopKind::Http,
            peer: None,
            host: None,
        }
    }

    #[test]
    fn tags_agree_with_the_reference_matcher() {
        let s = span();
        let tags = tags_of(&s);
        for (k, v) in [
            ("n", "3"),
            ("b", "true"),
            ("cloud.provider", "aws"),
            ("error", "true"),
            ("span.kind", "server"),
            ("otel.status_code", "ERROR"),
            ("otel.status_description", ""),
            ("otel.scope.name", ""),
            ("n", "4"),
        ] {
            let filter = TagFilter { key: k.into(), value: v.into() };
            assert_eq!(
                tags.contains(&tag_entry(k, v)),
                tag_matches(&s, &filter),
                "{k}={v}"
            );
        }
        let row = span_row(&s).unwrap();
        assert_eq!(row.duration_ns, 4);
        assert_eq!(row.cloud_provider, "aws");
        let back: SpanRecord = serde_json::from_str(&row.record).unwrap();
        assert_eq!(back, s);
    }
}
