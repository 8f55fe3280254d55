//! OTLP/gRPC receiver over a real socket: the generated tonic client for well-formed
//! requests, and hand-made gRPC frames (sent through a tonic `Channel`) for malformed
//! ones and for the gzip bomb.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::{
    Recorder, Server, assert_rejects_the_bad_spans, grpc_server, gzip, gzip_bomb, partly_bad_request, peak_rss,
    request, span,
};
use hopscope_storage::StorageError;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tower::ServiceExt;

const MIB: usize = 1 << 20;
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

async fn channel(server: &Server) -> Channel {
    Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn client(server: &Server, gzip: bool) -> TraceServiceClient<Channel> {
    let client = TraceServiceClient::new(channel(server).await);
    if gzip {
        client
            .send_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Gzip)
    } else {
        client
    }
}

/// Sends one raw gRPC frame (`compressed` flag, length, `payload`) and returns the status.
async fn send_frame(server: &Server, compressed: bool, payload: &[u8]) -> Status {
    let mut frame = Vec::with_capacity(payload.len() + 5);
    frame.push(u8::from(compressed));
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    let mut builder = http::Request::post(format!("http://{}{EXPORT_PATH}", server.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if compressed {
        builder = builder.header("grpc-encoding", "gzip");
    }
    let request = builder
        .body(tonic::body::Body::new(Full::new(Bytes::from(frame))))
        .unwrap();
    let response = channel(server).await.oneshot(request).await.unwrap();
    if let Some(status) = Status::from_header_map(response.headers()) {
        return status;
    }
    let trailers = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .trailers()
        .cloned()
        .unwrap();
    Status::from_header_map(&trailers).unwrap()
}

async fn assert_still_serving(server: &Server, recorder: &Recorder) {
    let before = recorder.count();
    let response = client(server, false)
        .await
        .export(request(vec![span("still-serving")]))
        .await
        .unwrap();
    assert_eq!(response.into_inner().partial_success, None);
    assert_eq!(recorder.count(), before + 1);
}

async fn setup(max: usize) -> (Server, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    (grpc_server(recorder.clone(), max).await, recorder)
}

#[tokio::test]
async fn export_with_and_without_gzip() {
    let (server, recorder) = setup(16 * MIB).await;
    for gzip in [false, true] {
        let response = client(&server, gzip)
            .await
            .export(request(vec![span("a"), span("b")]))
            .await
            .unwrap();
        assert_eq!(response.into_inner().partial_success, None);
    }
    assert_eq!(recorder.count(), 4);
    assert_eq!(recorder.spans.lock().unwrap()[0].service_name, "checkout");
    assert_eq!(server.ingest.stats().spans_accepted, 4);
}

#[tokio::test]
async fn partial_success_names_rejected_spans() {
    let (server, recorder) = setup(16 * MIB).await;
    let response = client(&server, true).await.export(partly_bad_request()).await.unwrap();
    let partial = response.into_inner().partial_success.unwrap();
    assert_rejects_the_bad_spans(partial.rejected_spans, &partial.error_message);
    assert_eq!(recorder.count(), 2);
}

#[tokio::test]
async fn empty_request_succeeds_and_stores_nothing() {
    let (server, recorder) = setup(16 * MIB).await;
    let response = client(&server, false)
        .await
        .export(ExportTraceServiceRequest::default())
        .await
        .unwrap();
    assert_eq!(response.into_inner().partial_success, None);
    assert_eq!(recorder.count(), 0);
    assert_still_serving(&server, &recorder).await;
}

#[tokio::test]
async fn one_mib_attribute_is_accepted() {
    let (server, recorder) = setup(16 * MIB).await;
    let mut big = span("big");
    big.attributes.push(common::string_attr("payload", "x".repeat(MIB)));
    client(&server, true).await.export(request(vec![big])).await.unwrap();
    let spans = recorder.spans.lock().unwrap();
    assert_eq!(
        hopscope_schemas::find_str(&spans[0].attributes, "payload")
            .unwrap()
            .len(),
        MIB
    );
}

#[tokio::test]
async fn malformed_protobuf_is_invalid_argument() {
    let (server, recorder) = setup(16 * MIB).await;
    let body = request(vec![span("cut")]).encode_to_vec();
    let status = send_frame(&server, false, &body[..body.len() - 7]).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().starts_with("invalid OTLP protobuf:"),
        "{}",
        status.message()
    );
    let status = send_frame(&server, true, b"\x1f\x8bnot gzip").await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(server.ingest.stats().invalid_requests, 2);
    assert_still_serving(&server, &recorder).await;
}

#[tokio::test]
async fn oversized_request_is_resource_exhausted() {
    let (server, recorder) = setup(MIB).await;
    let mut big = span("too-big");
    big.attributes.push(common::string_attr("payload", "x".repeat(2 * MIB)));
    for gzip in [false, true] {
        let status = client(&server, gzip)
            .await
            .export(request(vec![big.clone()]))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted, "gzip={gzip}: {status:?}");
    }
    assert_eq!(recorder.count(), 0);
    assert_still_serving(&server, &recorder).await;
}

#[tokio::test]
async fn gzip_bomb_is_resource_exhausted_without_inflating() {
    let (server, recorder) = setup(4 * MIB).await;
    let bomb = gzip_bomb(1024); // 1 GiB of zeros in about 1 MiB
    assert!(bomb.len() < 2 * MIB);
    let before = peak_rss();
    let status = send_frame(&server, true, &bomb).await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let grown = peak_rss().saturating_sub(before);
    assert!(before > 0, "peak RSS is readable");
    assert!(grown < 256 * MIB as u64, "peak memory grew by {grown} bytes");
    // A well-formed gzip frame through the same raw path is accepted.
    let status = send_frame(&server, true, &gzip(&request(vec![span("raw")]).encode_to_vec())).await;
    assert_eq!(status.code(), Code::Ok, "{status:?}");
    assert_still_serving(&server, &recorder).await;
}

#[tokio::test]
async fn storage_errors_map_to_unavailable_and_internal() {
    for (fail, code) in [
        (
            (|| StorageError::Retryable("db down".into())) as fn() -> StorageError,
            Code::Unavailable,
        ),
        (|| StorageError::Permanent("schema".into()), Code::Internal),
    ] {
        let server = grpc_server(Recorder::failing(fail), MIB).await;
        let status = client(&server, false)
            .await
            .export(request(vec![span("a")]))
            .await
            .unwrap_err();
        assert_eq!(status.code(), code);
        assert_eq!(server.ingest.stats().write_errors, 1);
    }
}

#[tokio::test]
async fn serve_returns_after_shutdown() {
    let (server, recorder) = setup(MIB).await;
    assert_still_serving(&server, &recorder).await;
    server.shutdown().await;
}

#[tokio::test]
async fn requests_past_the_in_flight_limit_are_resource_exhausted_with_a_retry_delay() {
    let (server, recorder) = setup(MIB).await;
    let held: Vec<_> = (0..hopscope_collector::config::DEFAULT_MAX_INFLIGHT_REQUESTS)
        .map(|_| server.ingest.admit().unwrap())
        .collect();
    let status = client(&server, false)
        .await
        .export(request(vec![span("over")]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("in flight"), "{status:?}");
    assert!(
        !status.details().is_empty(),
        "a RetryInfo detail tells OTLP clients to retry"
    );
    assert_eq!(server.ingest.stats().requests_throttled, 1);
    assert_eq!(recorder.count(), 0);
    drop(held);
    assert_still_serving(&server, &recorder).await;
}
