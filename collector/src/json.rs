//! OTLP JSON decoding.
//!
//! The fast path is `opentelemetry-proto`'s serde support, which handles the OTLP JSON
//! mapping (lowerCamelCase keys, hex ids, 64-bit integers as strings or numbers, enums as
//! numbers, unknown keys ignored). It refuses a few forms the proto3 JSON mapping allows
//! and real exporters send: `{"arrayValue":{}}` / `{"kvlistValue":{}}` (empty lists
//! omitted), `null` for a default value, and enum names (`"SPAN_KIND_SERVER"`). Only when
//! the fast path fails on such data (not on a syntax error) is the body parsed into a
//! `serde_json::Value`, normalised, and decoded again. Not supported: `"NaN"` /
//! `"Infinity"` as a `doubleValue`.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};
use serde_json::{Map, Value};

use crate::error::{IngestError, Result};

/// Decodes an OTLP JSON `ExportTraceServiceRequest`.
pub fn request_from_json(body: &[u8]) -> Result<ExportTraceServiceRequest> {
    let first = match serde_json::from_slice(body) {
        Ok(request) => return Ok(request),
        Err(err) => err,
    };
    if first.classify() != serde_json::error::Category::Data {
        return Err(IngestError::InvalidJson(first.to_string()));
    }
    let mut value: Value = serde_json::from_slice(body).map_err(|err| IngestError::InvalidJson(err.to_string()))?;
    normalize(&mut value);
    // The first error names the line and column in the client's body; keep it.
    serde_json::from_value(value).map_err(|_| IngestError::InvalidJson(first.to_string()))
}

/// Rewrites proto3-JSON forms the generated deserializers refuse into ones they accept.
fn normalize(value: &mut Value) {
    match value {
        Value::Object(map) => normalize_object(map),
        Value::Array(items) => items.iter_mut().for_each(normalize),
        _ => {}
    }
}

fn normalize_object(map: &mut Map<String, Value>) {
    // Proto3 JSON: `null` means the field's default value.
    map.retain(|_, v| !v.is_null());
    for (key, child) in map.iter_mut() {
        match (key.as_str(), &mut *child) {
            ("arrayValue" | "kvlistValue", Value::Object(list)) => {
                list.entry("values").or_insert_with(|| Value::Array(Vec::new()));
            }
            ("kind", Value::String(name)) => {
                if let Some(kind) = SpanKind::from_str_name(name) {
                    *child = Value::from(kind as i32);
                }
            }
            ("code", Value::String(name)) => {
                if let Some(code) = StatusCode::from_str_name(name) {
                    *child = Value::from(code as i32);
                }
            }
            _ => {}
        }
        normalize(child);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use opentelemetry_proto::tonic::trace::v1::Span;

    const TRACE: &str = "5b8efff798038103d269b633813fc60c";

    fn one_span(extra: &str) -> String {
        format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"checkout"}}}}]}},
              "scopeSpans":[{{"scope":{{"name":"lib","version":"1.0"}},"spans":[{{
                "traceId":"{TRACE}","spanId":"eee19b7ec3c1b174","parentSpanId":"eee19b7ec3c1b173",
                "name":"GET /cart","kind":2,
                "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000001000000000"{extra}
              }}]}}]}}]}}"#
        )
    }

    fn span_of(json: &str) -> Span {
        let request = request_from_json(json.as_bytes()).unwrap();
        request.resource_spans[0].scope_spans[0].spans[0].clone()
    }

    fn attr(span: &Span, key: &str) -> Option<Any> {
        span.attributes.iter().find(|kv| kv.key == key)?.value.clone()?.value
    }

    #[test]
    fn spec_conformant_otlp_json() {
        let span = span_of(&one_span(
            r#","attributes":[
                {"key":"int","value":{"intValue":"42"}},
                {"key":"int_num","value":{"intValue":7}},
                {"key":"dbl","value":{"doubleValue":1.5}},
                {"key":"flag","value":{"boolValue":true}},
                {"key":"raw","value":{"bytesValue":"aGk="}},
                {"key":"arr","value":{"arrayValue":{"values":[{"stringValue":"a"},{"intValue":"1"}]}}},
                {"key":"map","value":{"kvlistValue":{"values":[{"key":"k","value":{"stringValue":"v"}}]}}}
              ],
              "events":[{"timeUnixNano":"1700000000500000000","name":"retry"}],
              "links":[{"traceId":"5b8efff798038103d269b633813fc60d","spanId":"eee19b7ec3c1b175"}],
              "status":{"code":2,"message":"boom"},"flags":257,"unknownFutureField":{"x":1}"#,
        ));
        assert_eq!(hex(&span.trace_id), TRACE);
        assert_eq!(span.span_id.len(), 8);
        assert_eq!(span.kind, 2);
        assert_eq!(span.start_time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(span.end_time_unix_nano, 1_700_000_001_000_000_000);
        assert_eq!(attr(&span, "int"), Some(Any::IntValue(42)));
        assert_eq!(attr(&span, "int_num"), Some(Any::IntValue(7)));
        assert_eq!(attr(&span, "dbl"), Some(Any::DoubleValue(1.5)));
        assert_eq!(attr(&span, "flag"), Some(Any::BoolValue(true)));
        assert_eq!(attr(&span, "raw"), Some(Any::BytesValue(b"hi".to_vec())));
        let Some(Any::ArrayValue(arr)) = attr(&span, "arr") else {
            panic!("array")
        };
        assert_eq!(arr.values.len(), 2);
        let Some(Any::KvlistValue(map)) = attr(&span, "map") else {
            panic!("kvlist")
        };
        assert_eq!(map.values[0].key, "k");
        assert_eq!(span.events[0].time_unix_nano, 1_700_000_000_500_000_000);
        assert_eq!(span.links.len(), 1);
        let status = span.status.unwrap();
        assert_eq!((status.code, status.message.as_str()), (2, "boom"));
        assert_eq!(span.flags, 257);
    }

    #[test]
    fn proto3_forms_the_fast_path_refuses() {
        let json = one_span(
            r#","attributes":[{"key":"empty_arr","value":{"arrayValue":{}}},
                              {"key":"empty_map","value":{"kvlistValue":{}}}],
               "links":null,"status":{"code":"STATUS_CODE_ERROR"}"#,
        )
        .replace(r#""kind":2"#, r#""kind":"SPAN_KIND_CLIENT""#)
        .replace(r#""parentSpanId":"eee19b7ec3c1b173""#, r#""parentSpanId":null"#);
        let span = span_of(&json);
        assert_eq!(attr(&span, "empty_arr"), Some(Any::ArrayValue(Default::default())));
        assert_eq!(attr(&span, "empty_map"), Some(Any::KvlistValue(Default::default())));
        assert_eq!(span.kind, SpanKind::Client as i32);
        assert_eq!(span.status.unwrap().code, StatusCode::Error as i32);
        assert!(span.parent_span_id.is_empty());
    }

    #[test]
    fn empty_and_minimal_requests() {
        assert!(request_from_json(b"{}").unwrap().resource_spans.is_empty());
        let request = request_from_json(br#"{"resourceSpans":[{"scopeSpans":[{}]}]}"#).unwrap();
        assert!(request.resource_spans[0].scope_spans[0].spans.is_empty());
    }

    #[test]
    fn errors_name_the_problem() {
        let err = request_from_json(br#"{"resourceSpans":[{"#).unwrap_err().to_string();
        assert!(err.starts_with("invalid OTLP JSON: EOF while parsing"), "{err}");
        let bad_hex = one_span("").replace(TRACE, "zz");
        let err = request_from_json(bad_hex.as_bytes()).unwrap_err().to_string();
        assert!(err.starts_with("invalid OTLP JSON:") && err.contains("line"), "{err}");
        let err = request_from_json(b"[1,2]").unwrap_err().to_string();
        assert!(err.starts_with("invalid OTLP JSON:"), "{err}");
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
