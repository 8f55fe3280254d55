//! Bad OTLP input against the running binary: every case gets its clear error, and the
//! next good request still succeeds.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;

use common::Hopscope;
use common::otlp::{self, request};
use flate2::Compression;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

const PROTOBUF: &str = "application/x-protobuf";

fn span(trace: u8, id: u8) -> Span {
    let now = otlp::now_ns();
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        name: format!("op-{id}"),
        kind: 2,
        start_time_unix_nano: now - 1_000_000,
        end_time_unix_nano: now,
        ..Default::default()
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

async fn post(hopscope: &Hopscope, content_type: &str, encoding: Option<&str>, body: Vec<u8>) -> (u16, String) {
    let mut builder = hopscope
        .client
        .post(format!("{}/v1/traces", hopscope.http_endpoint()))
        .header("content-type", content_type)
        .body(body);
    if let Some(encoding) = encoding {
        builder = builder.header("content-encoding", encoding);
    }
    let response = builder.send().await.expect("collector reachable");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// A good request that must always succeed; each call uses a fresh trace id.
async fn good_request_succeeds(hopscope: &Hopscope, n: u8) {
    let body = request("malformed-test", vec![span(n, 1)]).encode_to_vec();
    let (status, text) = post(hopscope, PROTOBUF, None, body).await;
    assert_eq!(status, 200, "good request after a bad one failed: {text}");
}

#[tokio::test]
async fn bad_http_requests_get_clear_errors_and_the_server_keeps_serving() {
    let hopscope = Hopscope::start(&["--max-request-bytes", "1048576"]).await;
    let good = request("malformed-test", vec![span(1, 1)]).encode_to_vec();

    let truncated = good[..good.len() - 7].to_vec();
    let (status, text) = post(&hopscope, PROTOBUF, None, truncated).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.to_lowercase().contains("protobuf"), "{text}");
    good_request_succeeds(&hopscope, 10).await;

    let (status, text) = post(&hopscope, "application/json", None, b"{\"resourceSpans\": [".to_vec()).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.to_lowercase().contains("json"), "{text}");
    good_request_succeeds(&hopscope, 11).await;

    let (status, text) = post(&hopscope, "text/plain", None, good.clone()).await;
    assert_eq!(status, 415, "{text}");
    assert!(text.contains("application/x-protobuf"), "{text}");
    good_request_succeeds(&hopscope, 12).await;

    let mut bad_ids = span(2, 1);
    bad_ids.trace_id = vec![2; 5];
    let zero = span(0, 2);
    let mut backwards = span(3, 3);
    backwards.end_time_unix_nano = backwards.start_time_unix_nano - 1;
    let batch = request("malformed-test", vec![bad_ids, zero, backwards, span(4, 4)]).encode_to_vec();
    let (status, text) = post(&hopscope, "application/json", None, Vec::new()).await;
    assert_eq!(status, 400, "an empty JSON body is not a JSON object: {text}");
    let response = hopscope
        .client
        .post(format!("{}/v1/traces", hopscope.http_endpoint()))
        .header("content-type", "application/json")
        .body(serde_json::json!({"resourceSpans": []}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "an empty batch is valid OTLP");
    let (status, _) = post(&hopscope, PROTOBUF, None, batch).await;
    assert_eq!(status, 200, "partly bad batches are accepted with partial success");
    let trace = hopscope.wait_for_trace(&hex::encode([4u8; 16]), 1).await;
    assert_eq!(trace["spans"].as_array().unwrap().len(), 1);
    let (status, _) = hopscope.get(&format!("/api/traces/{}", hex::encode([3u8; 16]))).await;
    assert_eq!(status, 404, "a span ending before it starts must not be stored");

    let mut huge = span(5, 5);
    huge.attributes.push(KeyValue {
        key: "payload".into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue("x".repeat(512 * 1024))),
        }),
        ..Default::default()
    });
    let (status, text) = post(
        &hopscope,
        PROTOBUF,
        None,
        request("malformed-test", vec![huge]).encode_to_vec(),
    )
    .await;
    assert_eq!(status, 200, "a 512 KiB attribute within the limit is accepted: {text}");
    let trace = hopscope.wait_for_trace(&hex::encode([5u8; 16]), 1).await;
    let payload = common::typed_tag(&trace["spans"][0]["tags"], "payload", "string");
    assert_eq!(payload.as_str().unwrap().len(), 512 * 1024);

    let (status, text) = post(&hopscope, PROTOBUF, None, vec![0u8; 2 * 1024 * 1024]).await;
    assert_eq!(status, 413, "oversized body: {text}");
    good_request_succeeds(&hopscope, 13).await;

    // 64 MiB of zeros gzip to ~64 KiB: under the raw limit, far over it decompressed.
    let bomb = gzip(&vec![0u8; 64 * 1024 * 1024]);
    assert!(bomb.len() < 1024 * 1024);
    let (status, text) = post(&hopscope, PROTOBUF, Some("gzip"), bomb).await;
    assert_eq!(status, 413, "gzip bomb: {text}");
    good_request_succeeds(&hopscope, 14).await;

    let (status, _) = post(&hopscope, PROTOBUF, Some("gzip"), gzip(&good)).await;
    assert_eq!(status, 200, "gzip protobuf is accepted");
}

#[tokio::test]
async fn bad_grpc_requests_get_status_codes_and_the_server_keeps_serving() {
    let hopscope = Hopscope::start(&["--max-request-bytes", "1048576"]).await;
    let mut client = TraceServiceClient::connect(hopscope.grpc_endpoint()).await.unwrap();

    let mut bad = span(6, 1);
    bad.span_id = vec![1; 3];
    let response = client
        .export(request("grpc-test", vec![bad, span(7, 1)]))
        .await
        .unwrap()
        .into_inner();
    let partial = response.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("span_id has 3 bytes"),
        "{}",
        partial.error_message
    );

    let mut huge = span(8, 1);
    huge.attributes.push(KeyValue {
        key: "payload".into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue("y".repeat(2 * 1024 * 1024))),
        }),
        ..Default::default()
    });
    let status = client.export(request("grpc-test", vec![huge])).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");

    let ok = client.export(request("grpc-test", vec![span(9, 1)])).await;
    assert!(ok.is_ok(), "good request after an oversized one: {ok:?}");
    hopscope.wait_for_trace(&hex::encode([9u8; 16]), 1).await;
}
