//! hopscope spans → Jaeger JSON, following the OpenTelemetry → Jaeger translation
//! (opentelemetry-collector-contrib `pkg/translator/jaeger`) so that Jaeger UI and Grafana
//! show OTel spans the way they show them from Jaeger itself.

use std::sync::Arc;

use hopscope_schemas::{AttrValue, KeyValue as Attr, Resource, SpanKind, SpanRecord, StatusCode};
use hopscope_storage::Trace as StoredTrace;
use serde_json::Value;

use super::model::{KeyValue, Log, Process, Processes, Reference, Span, Trace};

/// Converts one stored trace.
pub fn trace(stored: &StoredTrace) -> Trace {
    // Distinct (service, resource) pairs in first-seen order; spans of one OTLP batch
    // share their resource `Arc`, so the pointer check usually settles it.
    let mut keys: Vec<(&str, &Arc<Resource>)> = Vec::new();
    let mut processes = Processes::default();
    let spans = stored
        .spans
        .iter()
        .map(|span| {
            let found = keys.iter().position(|(service, resource)| {
                *service == span.service_name
                    && (Arc::ptr_eq(resource, &span.resource) || resource.as_ref() == span.resource.as_ref())
            });
            let index = found.unwrap_or_else(|| {
                keys.push((&span.service_name, &span.resource));
                processes.0.push((format!("p{}", keys.len()), process(span)));
                keys.len() - 1
            });
            self::span(span, format!("p{}", index + 1))
        })
        .collect();
    Trace {
        trace_id: stored.trace_id.to_hex(),
        spans,
        processes,
        warnings: None,
    }
}

fn process(span: &SpanRecord) -> Process {
    Process {
        service_name: span.service_name.clone(),
        tags: span
            .resource
            .attributes
            .iter()
            .filter(|kv| kv.key != "service.name")
            .map(|kv| key_value(&kv.key, &kv.value))
            .collect(),
    }
}

/// Converts one span; `process_id` names its entry in the trace's processes.
pub fn span(span: &SpanRecord, process_id: String) -> Span {
    let trace_id = span.trace_id.to_hex();
    let mut references = Vec::with_capacity(span.links.len() + 1);
    if let Some(parent) = span.parent_span_id {
        references.push(Reference {
            ref_type: "CHILD_OF",
            trace_id: trace_id.clone(),
            span_id: parent.to_hex(),
        });
    }
    references.extend(span.links.iter().map(|link| Reference {
        ref_type: "FOLLOWS_FROM",
        trace_id: link.trace_id.to_hex(),
        span_id: link.span_id.to_hex(),
    }));
    Span {
        trace_id,
        span_id: span.span_id.to_hex(),
        // Bits 0-7 are the W3C trace flags; the rest are OTLP-only.
        flags: span.flags & 0xff,
        operation_name: span.name.clone(),
        references,
        start_time: span.start_time_unix_nano / 1_000,
        duration: span.duration_nanos() / 1_000,
        tags: tags(span),
        logs: span
            .events
            .iter()
            .map(|event| {
                let mut fields = Vec::with_capacity(event.attributes.len() + 1);
                if !event.name.is_empty() && !event.attributes.iter().any(|kv| kv.key == "event") {
                    fields.push(string("event", &event.name));
                }
                fields.extend(attrs(&event.attributes));
                Log {
                    timestamp: event.time_unix_nano / 1_000,
                    fields,
                }
            })
            .collect(),
        process_id,
        warnings: None,
    }
}

fn tags(span: &SpanRecord) -> Vec<KeyValue> {
    let mut tags: Vec<KeyValue> = attrs(&span.attributes).collect();
    if span.kind != SpanKind::Unspecified {
        tags.push(string("span.kind", span.kind.as_str()));
    }
    if span.status_code != StatusCode::Unset {
        tags.push(string("otel.status_code", span.status_code.as_str()));
    }
    if span.status_code == StatusCode::Error {
        tags.push(KeyValue {
            key: "error".to_owned(),
            value_type: "bool",
            value: Value::Bool(true),
        });
    }
    if !span.status_message.is_empty() {
        tags.push(string("otel.status_description", &span.status_message));
    }
    if !span.trace_state.is_empty() {
        tags.push(string("w3c.tracestate", &span.trace_state));
    }
    if !span.scope.name.is_empty() {
        tags.push(string("otel.scope.name", &span.scope.name));
    }
    if !span.scope.version.is_empty() {
        tags.push(string("otel.scope.version", &span.scope.version));
    }
    tags.push(string("hopscope.hop_kind", span.hop_kind.as_str()));
    if let Some(peer) = &span.peer {
        tags.push(string("hopscope.peer", peer));
    }
    if let Some(host) = &span.host {
        tags.push(string("hopscope.host", host));
    }
    tags
}

fn attrs(attrs: &[Attr]) -> impl Iterator<Item = KeyValue> + '_ {
    attrs.iter().map(|kv| key_value(&kv.key, &kv.value))
}

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value_type: "string",
        value: Value::String(value.to_owned()),
    }
}

/// One attribute as a typed Jaeger tag; arrays and key/value lists become JSON text, as
/// the OTel → Jaeger translation does.
pub fn key_value(key: &str, value: &AttrValue) -> KeyValue {
    let (value_type, value) = match value {
        AttrValue::String(s) => ("string", Value::String(s.clone())),
        AttrValue::Bool(b) => ("bool", Value::Bool(*b)),
        AttrValue::Int(i) => ("int64", Value::from(*i)),
        // JSON has no NaN or infinity; send those as text rather than a lossy null.
        AttrValue::Double(d) if d.is_finite() => ("float64", Value::from(*d)),
        AttrValue::Double(d) => ("string", Value::String(d.to_string())),
        AttrValue::Bytes(b) => ("binary", Value::String(base64(b))),
        other => ("string", Value::String(other.to_text())),
    };
    KeyValue {
        key: key.to_owned(),
        value_type,
        value,
    }
}

/// Standard base64 with padding, how Go's `encoding/json` writes `[]byte`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_go() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xff, 0xfe, 0x00, 0x01]), "//4AAQ==");
    }

    #[test]
    fn typed_values() {
        let kv = |v: AttrValue| {
            let kv = key_value("k", &v);
            (kv.value_type, kv.value)
        };
        assert_eq!(kv(AttrValue::String("x".into())), ("string", Value::from("x")));
        assert_eq!(kv(AttrValue::Bool(true)), ("bool", Value::Bool(true)));
        assert_eq!(kv(AttrValue::Int(-3)), ("int64", Value::from(-3)));
        assert_eq!(kv(AttrValue::Double(0.5)), ("float64", Value::from(0.5)));
        assert_eq!(kv(AttrValue::Double(f64::NAN)), ("string", Value::from("NaN")));
        assert_eq!(kv(AttrValue::Bytes(vec![1, 2, 3])), ("binary", Value::from("AQID")));
        assert_eq!(
            kv(AttrValue::Array(vec![AttrValue::Int(1), AttrValue::String("a".into())])),
            ("string", Value::from(r#"[1,"a"]"#))
        );
        assert_eq!(
            kv(AttrValue::KvList(vec![Attr::new("a", AttrValue::Bool(false))])),
            ("string", Value::from(r#"{"a":false}"#))
        );
        assert_eq!(kv(AttrValue::Empty), ("string", Value::from("")));
    }
}
