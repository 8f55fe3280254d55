//! OTLP/HTTP receiver over a real socket (reqwest), plus a few `Router::oneshot` checks.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{
    Recorder, Server, assert_rejects_the_bad_spans, gzip, gzip_bomb, http_server, partly_bad_request, peak_rss,
    request, span,
};
use hopscope_collector::{OtlpHttpReceiver, RpcStatus};
use hopscope_storage::StorageError;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;
use reqwest::StatusCode;
use serde_json::Value;

const MIB: usize = 1 << 20;
const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

fn url(server: &Server) -> String {
    format!("http://{}/v1/traces", server.addr)
}

async fn post(server: &Server, content_type: &str, encoding: Option<&str>, body: Vec<u8>) -> reqwest::Response {
    let mut builder = reqwest::Client::new()
        .post(url(server))
        .header("content-type", content_type)
        .body(body);
    if let Some(encoding) = encoding {
        builder = builder.header("content-encoding", encoding);
    }
    builder.send().await.unwrap()
}

async fn protobuf_response(response: reqwest::Response) -> ExportTraceServiceResponse {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], PROTOBUF);
    ExportTraceServiceResponse::decode(response.bytes().await.unwrap()).unwrap()
}

async fn json_body(response: reqwest::Response) -> Value {
    assert_eq!(response.headers()["content-type"], JSON);
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

async fn rpc_status(response: reqwest::Response) -> RpcStatus {
    assert_eq!(response.headers()["content-type"], PROTOBUF);
    RpcStatus::decode(response.bytes().await.unwrap()).unwrap()
}

/// A good protobuf request still succeeds and is stored.
async fn assert_still_serving(server: &Server, recorder: &Recorder) {
    let before = recorder.count();
    let body = request(vec![span("still-serving")]).encode_to_vec();
    let response = protobuf_response(post(server, PROTOBUF, None, body).await).await;
    assert_eq!(response.partial_success, None);
    assert_eq!(recorder.count(), before + 1);
}

async fn setup(max: usize) -> (Server, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    (http_server(recorder.clone(), max).await, recorder)
}

const OTLP_JSON: &str = r#"{"resourceSpans":[{
  "resource":{"attributes":[{"key":"service.name","value":{"stringValue":"cart"}}]},
  "scopeSpans":[{"scope":{"name":"io.opentelemetry.http"},"spans":[{
    "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","parentSpanId":"",
    "name":"GET /cart","kind":2,
    "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000250000000",
    "attributes":[
      {"key":"http.request.method","value":{"stringValue":"GET"}},
      {"key":"http.response.status_code","value":{"intValue":"500"}},
      {"key":"tags","value":{"arrayValue":{"values":[{"stringValue":"a"},{"intValue":"2"}]}}},
      {"key":"ctx","value":{"kvlistValue":{"values":[{"key":"k","value":{"boolValue":true}}]}}}],
    "status":{"code":2,"message":"internal error"}
  }]}]}]}"#;

#[tokio::test]
async fn good_protobuf_is_stored() {
    let (server, recorder) = setup(16 * MIB).await;
    let body = request(vec![span("a"), span("b")]).encode_to_vec();
    let response = protobuf_response(post(&server, PROTOBUF, None, body.clone()).await).await;
    assert_eq!(response.partial_success, None);
    assert_eq!(recorder.count(), 2);
    assert_eq!(recorder.spans.lock().unwrap()[0].service_name, "checkout");
    // The other protobuf media type is accepted too.
    protobuf_response(post(&server, "application/protobuf", None, body).await).await;
    let stats = server.ingest.stats();
    assert_eq!((stats.requests, stats.spans_accepted), (2, 4));
}

#[tokio::test]
async fn good_otlp_json_is_stored() {
    let (server, recorder) = setup(16 * MIB).await;
    let response = post(&server, "application/json; charset=utf-8", None, OTLP_JSON.into()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await, serde_json::json!({}));
    let spans = recorder.spans.lock().unwrap();
    let stored = &spans[0];
    assert_eq!(stored.trace_id.to_hex(), "5b8efff798038103d269b633813fc60c");
    assert_eq!(stored.service_name, "cart");
    assert_eq!(stored.start_time_unix_nano, 1_700_000_000_000_000_000);
    assert_eq!(stored.kind, hopscope_schemas::SpanKind::Server);
    assert_eq!(stored.status_code, hopscope_schemas::StatusCode::Error);
    assert_eq!(
        hopscope_schemas::find_attr(&stored.attributes, "http.response.status_code"),
        Some(&hopscope_schemas::AttrValue::Int(500))
    );
}

#[tokio::test]
async fn gzip_bodies_in_both_encodings() {
    let (server, recorder) = setup(16 * MIB).await;
    let response = post(&server, JSON, Some("gzip"), gzip(OTLP_JSON.as_bytes())).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = gzip(&request(vec![span("zipped")]).encode_to_vec());
    protobuf_response(post(&server, PROTOBUF, Some("gzip"), body).await).await;
    assert_eq!(recorder.count(), 2);
}

#[tokio::test]
async fn partial_success_in_protobuf_and_json() {
    let (server, recorder) = setup(16 * MIB).await;
    let body = partly_bad_request().encode_to_vec();
    let partial = protobuf_response(post(&server, PROTOBUF, None, body).await)
        .await
        .partial_success
        .unwrap();
    assert_rejects_the_bad_spans(partial.rejected_spans, &partial.error_message);
    assert_eq!(recorder.count(), 2);

    let body = serde_json::to_vec(&partly_bad_request()).unwrap();
    let response = post(&server, JSON, None, body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let json = json_body(response).await;
    assert_eq!(json["partialSuccess"]["rejectedSpans"], 3);
    assert!(
        json["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("span_id is all zeros")
    );
    assert_eq!(recorder.count(), 4);
    assert_eq!(server.ingest.stats().spans_rejected, 6);
}

#[tokio::test]
async fn empty_batches_succeed_and_store_nothing() {
    let (server, recorder) = setup(16 * MIB).await;
    let response = protobuf_response(post(&server, PROTOBUF, None, Vec::new()).await).await;
    assert_eq!(response.partial_success, None);
    let response = post(&server, JSON, None, br#"{"resourceSpans":[]}"#.to_vec()).await;
    assert_eq!(json_body(response).await, serde_json::json!({}));
    assert_eq!(recorder.count(), 0);
    assert_still_serving(&server, &recorder).await;
}

#[tokio::test]
async fn truncated_protobuf_is_400_naming_the_problem() {
    let (server, recorder) = setup(16 * MIB).await;
    let body = request(vec![span("cut")]).encode_to_vec();
    let response = post(&server, PROTOBUF, None, body[..body.len() - 7].to_vec()).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let status = rpc_status(response).await;
    assert_eq!(status.code, 3);
    assert!(
        status.message.starts_with("invalid OTLP protobuf:"),
        "{}",
        status.message
    );
    assert_eq!(server.ingest.stats().invalid_requests, 1);
    assert_still_serving(&server, &recorder).await;
}

#[tokio::test]
async fn invalid_json_is_400_naming_the_problem() {
    let (server, recorder) = setup(16 * MIB).await;
    let response = post(&server, JSON, None, br#"{"resourceSpans":[{"scopeSpans":"#.to_vec()).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let json = json_body(response).await;
    assert_eq!(json["code"], 3);
    assert!(
        json["message"].as_str().unwrap().starts_with("invalid OTLP JSON: EOF"),
        "{json}"
    );
    // Valid JSON, invalid hex id.
    let response = post(&server, JSON, None, OTLP_JSON.replace("eee19b7ec3c1b174", "xyz").into()).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // Corrupt gzip.
    let response = post(&server, JSON, Some("gzip"), b"\x1f\x8bnot really".to_vec()).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        json_body(response).await["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid gzip body")
    );
    assert_still_serving(&server, &recorder).await;
}

#[tokio::test]
async fn wrong_length_and_zero_ids_in_json_are_rejected_per_span() {
    let (server, recorder) = setup(16 * MIB).await;
    let bad = OTLP_JSON
        .replace(r#""spanId":"eee19b7ec3c1b174""#, r#""spanId":"0000000000000000""#)
        .replace(r#""parentSpanId":"""#, r#""parentSpanId":"abcd""#);
    let response = post(&server, JSON, None, bad.into()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let json = json_body(response).await;
    assert_eq!(json["partialSuccess"]["rejectedSpans"], 1);
    assert!(
        json["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("span_id is all zeros"),
        "{json}"
    );
    let short = OTLP_JSON.replace("5b8efff798038103d269b633813fc60c", "5b8efff7");
    let json = json_body(post(&server, JSON, None, short.into()).await).await;
    assert!(
        json["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("trace_id has 4 bytes"),
        "{json}"
    );
    assert_eq!(recorder.count(), 0);
    assert_still_serving(&server, &recorder).await;
}

#[tokio::test]
async fn unsupported_content_type_and_encoding_are_415() {
    let (server, recorder) = setup(16 * MIB).await;
    let response = post(&server, "text/plain", None, b"hello".to_vec()).await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let message = json_body(response).await["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("application/x-protobuf") && message.contains("application/json"),
        "{message}"
    );
    let response = post(&server, PROTOBUF, Some("br"), b"x".to_vec()).await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(rpc_status(response).await.message.contains("\"br\""));
    assert_still_serving(&server, &recorder).await;
}

#[tokio::test]
async fn one_mib_attribute_is_accepted() {
    let (server, recorder) = setup(16 * MIB).await;
    let mut big = span("big");
    big.attributes.push(common::string_attr("payload", "x".repeat(MIB)));
    let body = request(vec![big.clone()]).encode_to_vec();
    protobuf_response(post(&server, PROTOBUF, None, body).await).await;
    let body = serde_json::to_vec(&request(vec![big])).unwrap();
    assert_eq!(post(&server, JSON, None, body).await.status(), StatusCode::OK);
    let spans = recorder.spans.lock().unwrap();
    let value = hopscope_schemas::find_str(&spans[0].attributes, "payload").unwrap();
    assert_eq!(value.len(), MIB);
    assert_eq!(spans.len(), 2);
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let (server, recorder) = setup(MIB).await;
    let mut big = span("too-big");
    big.attributes.push(common::string_attr("payload", "x".repeat(2 * MIB)));
    let body = request(vec![big]).encode_to_vec();
    let response = post(&server, PROTOBUF, None, body.clone()).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(rpc_status(response).await.code, 8);
    // Small when compressed, too big once inflated.
    let response = post(&server, PROTOBUF, Some("gzip"), gzip(&body)).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(rpc_status(response).await.message.contains("decompressed"));
    assert_eq!(recorder.count(), 0);
    assert_still_serving(&server, &recorder).await;
}

#[tokio::test]
async fn gzip_bomb_is_413_without_inflating() {
    let (server, recorder) = setup(4 * MIB).await;
    let bomb = gzip_bomb(1024); // 1 GiB of zeros
    assert!(bomb.len() < 2 * MIB, "bomb is {} bytes", bomb.len());
    let before = peak_rss();
    let response = post(&server, PROTOBUF, Some("gzip"), bomb).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        rpc_status(response)
            .await
            .message
            .starts_with("decompressed request body is larger")
    );
    let grown = peak_rss().saturating_sub(before);
    assert!(before > 0, "peak RSS is readable");
    assert!(grown < 256 * MIB as u64, "peak memory grew by {grown} bytes");
    assert_still_serving(&server, &recorder).await;
}

#[tokio::test]
async fn storage_unavailable_is_503_with_retry_after() {
    let server = http_server(Recorder::failing(|| StorageError::Retryable("db down".into())), MIB).await;
    let body = request(vec![span("a")]).encode_to_vec();
    let response = post(&server, PROTOBUF, None, body.clone()).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "5");
    assert_eq!(rpc_status(response).await.code, 14);
    let server = http_server(Recorder::failing(|| StorageError::Permanent("schema".into())), MIB).await;
    let response = post(
        &server,
        JSON,
        None,
        serde_json::to_vec(&request(vec![span("b")])).unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(json_body(response).await["code"], 13);
}

#[tokio::test]
async fn only_post_and_cors_preflight() {
    let (server, recorder) = setup(MIB).await;
    let client = reqwest::Client::new();
    let response = client.get(url(&server)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST, OPTIONS");
    let response = client
        .request(reqwest::Method::OPTIONS, url(&server))
        .header("origin", "http://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert_eq!(response.headers()["access-control-allow-methods"], "POST, OPTIONS");
    assert_eq!(response.headers()["access-control-allow-headers"], "content-type");
    let response = post(&server, PROTOBUF, None, request(vec![span("x")]).encode_to_vec()).await;
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert_still_serving(&server, &recorder).await;
}

/// Through the router without a socket: with no `Content-Length` header the body is
/// still capped while it is read.
#[tokio::test]
async fn router_caps_bodies_without_content_length() {
    use tower::ServiceExt;
    let recorder = Arc::new(Recorder::default());
    let ingest = Arc::new(common::ingest_into(recorder.clone()));
    let router = OtlpHttpReceiver::builder(ingest)
        .max_request_bytes(1024)
        .build()
        .router();
    let post = |body: Vec<u8>| {
        http::Request::post("/v1/traces")
            .header("content-type", PROTOBUF)
            .body(axum::body::Body::from(body))
            .unwrap()
    };
    let response = router.clone().oneshot(post(vec![0u8; 2048])).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::PAYLOAD_TOO_LARGE);
    let body = request(vec![span("ok")]).encode_to_vec();
    assert_eq!(router.oneshot(post(body)).await.unwrap().status(), http::StatusCode::OK);
    assert_eq!(recorder.count(), 1);
    let _ = ExportTraceServiceRequest::default();
}

#[tokio::test]
async fn serve_returns_after_shutdown() {
    let (server, recorder) = setup(MIB).await;
    assert_still_serving(&server, &recorder).await;
    server.shutdown().await;
}

#[tokio::test]
async fn requests_past_the_in_flight_limit_are_429_with_retry_after() {
    let recorder = Arc::new(Recorder::default());
    let server = http_server(recorder.clone(), MIB).await;
    let held: Vec<_> = (0..hopscope_collector::config::DEFAULT_MAX_INFLIGHT_REQUESTS)
        .map(|_| server.ingest.admit().unwrap())
        .collect();
    let body = request(vec![span("over")]).encode_to_vec();
    let response = post(&server, PROTOBUF, None, body.clone()).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "5");
    assert_eq!(rpc_status(response).await.code, 8);
    assert_eq!(server.ingest.stats().requests_throttled, 1);
    assert_eq!(recorder.count(), 0);
    drop(held);
    let response = post(&server, PROTOBUF, None, body).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(recorder.count(), 1);
}
