//! What it means for a span to match a [`TraceQuery`]: the reference semantics every
//! store implements and the conformance tests check against.
//!
//! All filters of a query must hold for one and the same span. Tag filters follow
//! [`TagFilter`]: a tag matches when the key names one of the span's attributes, its
//! resource's attributes or an attribute of one of its events and the value's text form
//! ([`AttrValue::to_text`]) equals the filter value exactly (case-sensitive), or when the
//! key is one of Jaeger's synthetic tags and the span's own field matches:
//!
//! | key                        | matches when                                     |
//! |----------------------------|--------------------------------------------------|
//! | `error`                    | value is `true` and the status is ERROR          |
//! | `span.kind`                | value is the kind's name (`server`, `client`, ...) |
//! | `otel.status_code`         | value is `OK` or `ERROR` and equals the status   |
//! | `otel.status_description`  | value is the (non-empty) status message          |
//! | `otel.scope.name`          | value is the (non-empty) scope name              |
//! | `otel.scope.version`       | value is the (non-empty) scope version           |
//!
//! A synthetic key still matches a literal attribute of that name too (`error=true` also
//! matches a span carrying the attribute `error: true`). An empty synthetic value never
//! matches a missing field.

use hopscope_schemas::{AttrValue, KeyValue, SpanRecord};

use crate::query::{TagFilter, TraceQuery};

/// The number of traces a search returns when the query's limit is 0.
pub const DEFAULT_LIMIT: usize = 20;

/// Tag keys that can match a span field rather than an attribute (see the module doc).
pub const SYNTHETIC_KEYS: &[&str] = &[
    "error",
    "span.kind",
    "otel.status_code",
    "otel.status_description",
    "otel.scope.name",
    "otel.scope.version",
];

/// The limit a search applies: `query.limit`, or [`DEFAULT_LIMIT`] when it is 0.
pub fn effective_limit(limit: usize) -> usize {
    if limit == 0 { DEFAULT_LIMIT } else { limit }
}

/// True when the span satisfies every filter of the query, the time window included.
pub fn span_matches(span: &SpanRecord, query: &TraceQuery) -> bool {
    if query.service.as_deref().is_some_and(|s| s != span.service_name)
        || query.operation.as_deref().is_some_and(|o| o != span.name)
        || query.span_kind.is_some_and(|k| k != span.kind)
    {
        return false;
    }
    let start = span.start_time_unix_nano;
    if query.start_ns.is_some_and(|t| start < t) || query.end_ns.is_some_and(|t| start > t) {
        return false;
    }
    let duration = span.duration_nanos();
    if query.min_duration_ns.is_some_and(|d| duration < d) || query.max_duration_ns.is_some_and(|d| duration > d) {
        return false;
    }
    query.tags.iter().all(|tag| tag_matches(span, tag))
}

/// True when the span matches one tag filter (see the module doc).
pub fn tag_matches(span: &SpanRecord, tag: &TagFilter) -> bool {
    let (key, value) = (tag.key.as_str(), tag.value.as_str());
    synthetic_matches(span, key, value)
        || attrs_match(&span.attributes, key, value)
        || attrs_match(&span.resource.attributes, key, value)
        || span.events.iter().any(|e| attrs_match(&e.attributes, key, value))
}

fn synthetic_matches(span: &SpanRecord, key: &str, value: &str) -> bool {
    let field = match key {
        "error" => return value == "true" && span.is_error(),
        "span.kind" => span.kind.as_str(),
        "otel.status_code" => span.status_code.as_str(),
        "otel.status_description" => span.status_message.as_str(),
        "otel.scope.name" => span.scope.name.as_str(),
        "otel.scope.version" => span.scope.version.as_str(),
        _ => return false,
    };
    !value.is_empty() && field == value
}

fn attrs_match(attrs: &[KeyValue], key: &str, value: &str) -> bool {
    attrs.iter().any(|kv| kv.key == key && text_equals(&kv.value, value))
}

/// `value.to_text() == text` without allocating for strings.
pub fn text_equals(value: &AttrValue, text: &str) -> bool {
    match value {
        AttrValue::String(s) => s == text,
        AttrValue::Bool(b) => text == if *b { "true" } else { "false" },
        AttrValue::Empty => text.is_empty(),
        other => other.to_text() == text,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use hopscope_schemas::{Event, HopKind, Resource, Scope, SpanId, SpanKind, StatusCode, TraceId};

    use super::*;

    fn kv(key: &str, value: AttrValue) -> KeyValue {
        KeyValue::new(key, value)
    }

    fn span() -> SpanRecord {
        SpanRecord {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([2; 8]),
            parent_span_id: None,
            trace_state: String::new(),
            flags: 0,
            name: "GET /pay".into(),
            kind: SpanKind::Server,
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 1_500,
            status_code: StatusCode::Error,
            status_message: "boom".into(),
            attributes: vec![
                kv("http.status_code", AttrValue::Int(500)),
                kv("retry", AttrValue::Bool(false)),
                kv("ratio", AttrValue::Double(0.5)),
                kv("list", AttrValue::Array(vec![AttrValue::Int(1), AttrValue::Int(2)])),
            ],
            dropped_attributes_count: 0,
            events: vec![Event {
                time_unix_nano: 1_100,
                name: "exception".into(),
                attributes: vec![kv("exception.type", AttrValue::String("Timeout".into()))],
                dropped_attributes_count: 0,
            }],
            dropped_events_count: 0,
            links: vec![],
            dropped_links_count: 0,
            resource: Arc::new(Resource {
                attributes: vec![kv("service.name", AttrValue::String("pay".into()))],
                ..Default::default()
            }),
            scope: Arc::new(Scope {
                name: "io.opentelemetry.http".into(),
                ..Default::default()
            }),
            service_name: "pay".into(),
            hop_kind: HopKind::Http,
            peer: None,
            host: None,
        }
    }

    fn tag(key: &str, value: &str) -> TagFilter {
        TagFilter {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn tags_match_attributes_resource_and_events_by_text() {
        let s = span();
        for (k, v) in [
            ("http.status_code", "500"),
            ("retry", "false"),
            ("ratio", "0.5"),
            ("list", "[1,2]"),
            ("service.name", "pay"),
            ("exception.type", "Timeout"),
        ] {
            assert!(tag_matches(&s, &tag(k, v)), "{k}={v}");
        }
        assert!(!tag_matches(&s, &tag("http.status_code", "200")));
        assert!(!tag_matches(&s, &tag("exception.type", "timeout")));
        assert!(!tag_matches(&s, &tag("missing", "")));
    }

    #[test]
    fn synthetic_tags() {
        let mut s = span();
        assert!(tag_matches(&s, &tag("error", "true")));
        assert!(tag_matches(&s, &tag("span.kind", "server")));
        assert!(tag_matches(&s, &tag("otel.status_code", "ERROR")));
        assert!(tag_matches(&s, &tag("otel.status_description", "boom")));
        assert!(tag_matches(&s, &tag("otel.scope.name", "io.opentelemetry.http")));
        assert!(!tag_matches(&s, &tag("otel.scope.version", "")));
        assert!(!tag_matches(&s, &tag("error", "false")));
        s.status_code = StatusCode::Unset;
        assert!(!tag_matches(&s, &tag("error", "true")));
        assert!(!tag_matches(&s, &tag("otel.status_code", "")));
        s.attributes.push(kv("error", AttrValue::Bool(true)));
        assert!(tag_matches(&s, &tag("error", "true")));
    }

    #[test]
    fn every_filter_applies_to_the_same_span() {
        let s = span();
        let q = TraceQuery {
            service: Some("pay".into()),
            operation: Some("GET /pay".into()),
            span_kind: Some(SpanKind::Server),
            tags: vec![tag("error", "true")],
            min_duration_ns: Some(500),
            max_duration_ns: Some(500),
            start_ns: Some(1_000),
            end_ns: Some(1_000),
            limit: 0,
        };
        assert!(span_matches(&s, &q));
        for q in [
            TraceQuery {
                service: Some("cart".into()),
                ..q.clone()
            },
            TraceQuery {
                operation: Some("GET".into()),
                ..q.clone()
            },
            TraceQuery {
                span_kind: Some(SpanKind::Client),
                ..q.clone()
            },
            TraceQuery {
                min_duration_ns: Some(501),
                ..q.clone()
            },
            TraceQuery {
                max_duration_ns: Some(499),
                ..q.clone()
            },
            TraceQuery {
                start_ns: Some(1_001),
                ..q.clone()
            },
            TraceQuery {
                end_ns: Some(999),
                ..q.clone()
            },
            TraceQuery {
                tags: vec![tag("retry", "true")],
                ..q.clone()
            },
        ] {
            assert!(!span_matches(&s, &q), "{q:?}");
        }
        assert_eq!(effective_limit(0), DEFAULT_LIMIT);
        assert_eq!(effective_limit(3), 3);
    }
}
