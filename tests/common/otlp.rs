//! OTLP requests for the end-to-end tests.

#![allow(clippy::unwrap_used)]

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

/// Unix time now, in nanoseconds.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A string attribute.
pub fn string_attr(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

/// One export request: `spans` from one resource with this `service.name`.
pub fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string_attr("service.name", service.into())],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A 16-byte trace id: `prefix` repeated in the first 8 bytes, then `n + 1` big-endian.
pub fn numbered_trace_id(prefix: u8, n: u64) -> Vec<u8> {
    let mut id = vec![prefix; 8];
    id.extend_from_slice(&(n + 1).to_be_bytes());
    id
}

/// A trace of `spans` server spans (span ids 1..=spans, all children of span 1) that ended
/// just now, each with a `padding` attribute of `padding` bytes.
pub fn trace_spans(trace_id: &[u8], spans: u64, padding: usize) -> Vec<Span> {
    let now = now_ns();
    (1..=spans)
        .map(|i| Span {
            trace_id: trace_id.to_vec(),
            span_id: i.to_be_bytes().to_vec(),
            parent_span_id: if i == 1 {
                Vec::new()
            } else {
                1u64.to_be_bytes().to_vec()
            },
            name: format!("step-{i}"),
            kind: 2,
            start_time_unix_nano: now - 5_000_000 + i * 1000,
            end_time_unix_nano: now,
            attributes: vec![string_attr("padding", "p".repeat(padding))],
            ..Default::default()
        })
        .collect()
}
