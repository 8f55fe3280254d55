#![allow(clippy::unwrap_used)]

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use proptest::prelude::*;
use prost::Message;

use super::*;
use crate::otlp::{request_is_valid, span_count};

pub(crate) fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn attributes(seed: u8) -> Vec<KeyValue> {
    use any_value::Value;
    vec![
        kv("http.request.method", Value::StringValue("GET".into())),
        kv("retry", Value::BoolValue(seed.is_multiple_of(2))),
        kv("count", Value::IntValue(-i64::from(seed))),
        kv("ratio", Value::DoubleValue(f64::from(seed) / 3.0)),
        kv("blob", Value::BytesValue(vec![seed, 0, 255])),
        kv(
            "list",
            Value::ArrayValue(ArrayValue {
                values: vec![
                    AnyValue {
                        value: Some(Value::StringValue("é".into())),
                    },
                    AnyValue { value: None },
                ],
            }),
        ),
        kv(
            "map",
            Value::KvlistValue(KeyValueList {
                values: vec![kv(
                    "inner",
                    Value::ArrayValue(ArrayValue {
                        values: vec![AnyValue {
                            value: Some(Value::IntValue(7)),
                        }],
                    }),
                )],
            }),
        ),
    ]
}

pub(crate) fn span(n: u8) -> Span {
    Span {
        trace_id: vec![n | 1; 16],
        span_id: vec![n | 1; 8],
        parent_span_id: if n.is_multiple_of(3) { Vec::new() } else { vec![n; 8] },
        trace_state: "k=v".into(),
        flags: 0x101,
        name: format!("op-{n}"),
        kind: i32::from(n % 6),
        start_time_unix_nano: 1_700_000_000_000_000_000 + u64::from(n),
        end_time_unix_nano: 1_700_000_000_000_100_000 + u64::from(n),
        attributes: attributes(n),
        dropped_attributes_count: 1,
        events: vec![span::Event {
            time_unix_nano: 1_700_000_000_000_050_000,
            name: "exception".into(),
            attributes: attributes(n.wrapping_add(1)),
            dropped_attributes_count: 2,
        }],
        dropped_events_count: 3,
        links: vec![span::Link {
            trace_id: vec![9; 16],
            span_id: vec![8; 8],
            trace_state: String::new(),
            attributes: attributes(n.wrapping_add(2)),
            dropped_attributes_count: 0,
            flags: 1,
        }],
        dropped_links_count: 4,
        status: Some(Status {
            message: "boom".into(),
            code: 2,
        }),
    }
}

pub(crate) fn request(spans_per_scope: &[u8]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: attributes(42),
                dropped_attributes_count: 1,
                entity_refs: vec![EntityRef {
                    schema_url: "s".into(),
                    r#type: "host".into(),
                    id_keys: vec!["host.id".into()],
                    description_keys: vec!["host.name".into()],
                }],
            }),
            scope_spans: spans_per_scope
                .iter()
                .enumerate()
                .map(|(i, &count)| ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: format!("scope-{i}"),
                        version: "1.0".into(),
                        attributes: attributes(7),
                        dropped_attributes_count: 0,
                    }),
                    spans: (0..count).map(span).collect(),
                    schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
                })
                .collect(),
            schema_url: String::new(),
        }],
    }
}

#[test]
fn counts_the_spans_of_a_valid_request_with_every_field_set() {
    let request = request(&[3, 0, 5]);
    assert!(request_is_valid(&request));
    assert_eq!(valid_span_count(&request.encode_to_vec()), Some(8));
    assert_eq!(valid_span_count(&[]), Some(0));
}

#[test]
fn an_invalid_span_sends_the_request_to_the_decoder() {
    let cases: [fn(&mut Span); 6] = [
        |s| s.trace_id = vec![0; 16],
        |s| s.trace_id.truncate(8),
        |s| s.span_id = vec![0; 8],
        |s| s.parent_span_id = vec![1; 4],
        |s| s.start_time_unix_nano = 0,
        |s| s.end_time_unix_nano = s.start_time_unix_nano - 1,
    ];
    for break_span in cases {
        let mut request = request(&[2]);
        break_span(&mut request.resource_spans[0].scope_spans[0].spans[1]);
        assert!(!request_is_valid(&request));
        assert_eq!(valid_span_count(&request.encode_to_vec()), None);
    }
}

#[test]
fn invalid_utf8_deep_in_an_attribute_is_refused_like_prost_refuses_it() {
    let mut body = request(&[1]).encode_to_vec();
    let at = body.windows(2).position(|w| w == "é".as_bytes()).unwrap();
    body[at] = 0xff;
    assert!(ExportTraceServiceRequest::decode(body.as_slice()).is_err());
    assert_eq!(valid_span_count(&body), None);
}

#[test]
fn wrong_wire_types_and_groups_are_left_to_the_decoder() {
    // Field 1 (resource_spans) as a varint: prost refuses it.
    assert!(ExportTraceServiceRequest::decode(&[0x08, 0x01][..]).is_err());
    assert_eq!(valid_span_count(&[0x08, 0x01]), None);
    // An unknown field as a group: prost may skip it, the scan does not try.
    assert_eq!(valid_span_count(&[0x13, 0x14]), None);
    // Unknown fields of the other wire types are skipped as prost skips them.
    let mut body = request(&[1]).encode_to_vec();
    body.extend_from_slice(&[0x78, 0x05, 0x82, 0x01, 0x02, 0xAA, 0xBB]);
    assert!(ExportTraceServiceRequest::decode(body.as_slice()).is_ok());
    assert_eq!(valid_span_count(&body), Some(1));
}

#[test]
fn nesting_deeper_than_the_limit_is_left_to_the_decoder() {
    let mut value = AnyValue {
        value: Some(any_value::Value::IntValue(1)),
    };
    for _ in 0..MAX_DEPTH + 2 {
        value = AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![value] })),
        };
    }
    let mut request = request(&[1]);
    request.resource_spans[0].scope_spans[0].spans[0].attributes = vec![KeyValue {
        key: "deep".into(),
        value: Some(value),
        ..Default::default()
    }];
    assert_eq!(valid_span_count(&request.encode_to_vec()), None);
}

/// A damaged body: each edit is (position as a fraction of the length, kind, byte).
pub(crate) fn damage(mut body: Vec<u8>, edits: &[(f64, u8, u8)]) -> Vec<u8> {
    for &(at, kind, byte) in edits {
        if body.is_empty() {
            break;
        }
        let i = ((body.len() - 1) as f64 * at) as usize;
        match kind % 4 {
            0 => body[i] ^= byte | 1,
            1 => body.truncate(i),
            2 => body.insert(i, byte),
            _ => {
                body.remove(i);
            }
        }
    }
    body
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The contract: whenever the scan says `Some(n)`, prost decodes the body into a
    /// request whose `n` spans are all valid.
    #[test]
    fn some_implies_prost_decodes_a_valid_request(
        scopes in proptest::collection::vec(0u8..4, 1..3),
        edits in proptest::collection::vec((0.0f64..1.0, any::<u8>(), any::<u8>()), 0..4),
    ) {
        let body = damage(request(&scopes).encode_to_vec(), &edits);
        if let Some(count) = valid_span_count(&body) {
            let decoded = ExportTraceServiceRequest::decode(body.as_slice());
            prop_assert!(decoded.is_ok(), "scan accepted a body prost refuses: {decoded:?}");
            let decoded = decoded.unwrap();
            prop_assert!(request_is_valid(&decoded));
            prop_assert_eq!(span_count(&decoded), count);
        }
    }

    /// And it is useful: undamaged valid requests are recognised.
    #[test]
    fn valid_requests_are_recognised(scopes in proptest::collection::vec(0u8..6, 0..4)) {
        let request = request(&scopes);
        prop_assert_eq!(valid_span_count(&request.encode_to_vec()), Some(span_count(&request)));
    }
}

/// What prost makes of a `KeyValue` body, in the terms of [`simple_key_value`].
fn prost_simple(body: &[u8]) -> Option<(Vec<u8>, Option<any_value::Value>)> {
    let decoded = KeyValue::decode(body).ok()?;
    Some((decoded.key.into_bytes(), decoded.value.and_then(|v| v.value)))
}

fn same_as_prost(body: &[u8]) -> bool {
    let Some((key, value)) = simple_key_value(body) else {
        return true;
    };
    let Some((prost_key, Some(prost_value))) = prost_simple(body) else {
        // prost refuses only bad UTF-8 here, which the callers check themselves.
        return std::str::from_utf8(key).is_err() || matches!(value, Simple::Str(t) if std::str::from_utf8(t).is_err());
    };
    key == prost_key.as_slice()
        && match (value, prost_value) {
            (Simple::Str(t), any_value::Value::StringValue(p)) => t == p.as_bytes(),
            (Simple::Bool(b), any_value::Value::BoolValue(p)) => b == p,
            (Simple::Int(i), any_value::Value::IntValue(p)) => i == p,
            (Simple::Double(d), any_value::Value::DoubleValue(p)) => d.to_bits() == p.to_bits(),
            _ => false,
        }
}

#[test]
fn simple_key_values_read_as_prost_reads_them_and_other_layouts_are_walked() {
    use any_value::Value;
    for value in [
        Value::StringValue("GET".into()),
        Value::StringValue(String::new()),
        Value::StringValue("ünïcode".into()),
        Value::BoolValue(true),
        Value::BoolValue(false),
        Value::IntValue(-5),
        Value::IntValue(i64::MAX),
        Value::DoubleValue(2.5),
    ] {
        let body = kv("http.route", value.clone()).encode_to_vec();
        assert!(simple_key_value(&body).is_some(), "{value:?} is the simple layout");
        assert!(same_as_prost(&body), "{value:?}");
    }
    let long = kv(&"k".repeat(200), Value::StringValue("v".into())).encode_to_vec();
    let bytes = kv("k", Value::BytesValue(vec![1])).encode_to_vec();
    let array = kv("k", Value::ArrayValue(ArrayValue::default())).encode_to_vec();
    let no_value = KeyValue {
        key: "k".into(),
        ..Default::default()
    }
    .encode_to_vec();
    let mut trailing = kv("k", Value::IntValue(1)).encode_to_vec();
    trailing.push(0x18);
    for other in [long, bytes, array, no_value, trailing] {
        assert_eq!(simple_key_value(&other), None, "{other:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    /// Whatever bytes it is given, the simple reading agrees with prost's decode.
    #[test]
    fn the_simple_reading_agrees_with_prost_on_damaged_bodies(
        key in "[a-z.ü]{0,8}",
        text in "[a-z ü]{0,8}",
        int in any::<i64>(),
        pick in 0u8..4,
        edits in proptest::collection::vec((0.0f64..1.0, any::<u8>(), any::<u8>()), 0..3),
    ) {
        use any_value::Value;
        let value = match pick {
            0 => Value::StringValue(text),
            1 => Value::BoolValue(int % 2 == 0),
            2 => Value::IntValue(int),
            _ => Value::DoubleValue(int as f64 / 7.0),
        };
        let body = damage(kv(&key, value).encode_to_vec(), &edits);
        prop_assert!(same_as_prost(&body), "{body:?}");
    }
}
