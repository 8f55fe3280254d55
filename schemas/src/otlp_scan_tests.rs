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
            value: Some(any_value::Value::ArrayValue(ArrayValue {
                values: vec![value],
            })),
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
