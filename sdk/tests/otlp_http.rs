//! The OTLP/HTTP exporter against a local OTLP/HTTP endpoint (axum on 127.0.0.1:0):
//! selection and endpoint from `OTEL_EXPORTER_OTLP_*`, protobuf body (gzip when asked),
//! headers, retry on 503 and no retry on 400, as the batch worker drives it.

#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hopscope_sdk::{BatchConfig, OtlpConfig, OtlpExporter, OtlpHttpExporter, Resource, SpanExporter, TracerProvider};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;

#[derive(Clone, Default)]
struct Endpoint {
    /// Statuses to answer with, in order; 200 once exhausted.
    statuses: Arc<Mutex<VecDeque<u16>>>,
    /// (headers, decoded request) of every call.
    calls: Arc<Mutex<Vec<(HeaderMap, ExportTraceServiceRequest)>>>,
}

async fn traces(State(ep): State<Endpoint>, headers: HeaderMap, body: Bytes) -> (StatusCode, Vec<u8>) {
    let mut raw = body.to_vec();
    if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out).unwrap();
        raw = out;
    }
    let request = ExportTraceServiceRequest::decode(&raw[..]).unwrap();
    ep.calls.lock().unwrap().push((headers, request));
    let status = ep.statuses.lock().unwrap().pop_front().unwrap_or(200);
    (
        StatusCode::from_u16(status).unwrap(),
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
}

async fn serve(statuses: &[u16]) -> (Endpoint, String) {
    let ep = Endpoint {
        statuses: Arc::new(Mutex::new(statuses.iter().copied().collect())),
        ..Endpoint::default()
    };
    let app = Router::new().route("/v1/traces", post(traces)).with_state(ep.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (ep, base)
}

fn pipeline(exporter: impl SpanExporter) -> TracerProvider {
    TracerProvider::builder()
        .with_resource(Resource::builder().with_service_name("http-test").build())
        .with_exporter(exporter)
        .with_batch_config(BatchConfig {
            initial_backoff: Duration::from_millis(10),
            ..BatchConfig::default()
        })
        .build()
        .unwrap()
}

fn span_names(ep: &Endpoint) -> Vec<String> {
    let calls = ep.calls.lock().unwrap();
    let (_, request) = calls.last().unwrap();
    let mut names: Vec<String> = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| s.name.clone())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn exports_protobuf_chosen_by_the_environment() {
    let (ep, base) = serve(&[]).await;
    let vars = [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", base),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip".to_owned()),
        ("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer t0k3n".to_owned()),
    ];
    let get = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let exporter = OtlpExporter::from_env_vars(get).unwrap();
    assert!(matches!(exporter, OtlpExporter::Http(_)));
    let provider = pipeline(exporter);
    let tracer = provider.tracer("t");
    let mut a = tracer.start("a");
    a.set_attribute("server.port", 6379);
    a.end();
    tracer.start("b").end();
    provider.flush().await.unwrap();
    assert_eq!(span_names(&ep), ["a", "b"]);
    let calls = ep.calls.lock().unwrap();
    let (headers, request) = &calls[0];
    assert_eq!(headers["content-type"], "application/x-protobuf");
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(headers["authorization"], "Bearer t0k3n");
    let resource = request.resource_spans[0].resource.as_ref().unwrap();
    assert!(resource.attributes.iter().any(|kv| kv.key == "service.name"));
    assert_eq!(provider.stats().exported, 2);
}

#[tokio::test]
async fn retries_unavailable_and_gives_up_on_bad_request() {
    let (ep, base) = serve(&[503]).await;
    let provider = pipeline(OtlpHttpExporter::new(OtlpConfig::with_endpoint(format!("{base}/v1/traces"))).unwrap());
    provider.tracer("t").start("retried").end();
    provider.flush().await.unwrap();
    let stats = provider.stats();
    assert_eq!(
        (stats.exported, stats.failed, stats.failed_attempts),
        (1, 0, 1),
        "{stats:?}"
    );
    assert_eq!(ep.calls.lock().unwrap().len(), 2);

    let (ep, base) = serve(&[400]).await;
    let provider = pipeline(OtlpHttpExporter::new(OtlpConfig::with_endpoint(format!("{base}/v1/traces"))).unwrap());
    provider.tracer("t").start("rejected").end();
    provider.flush().await.unwrap();
    let stats = provider.stats();
    assert_eq!(
        (stats.exported, stats.failed, stats.failed_attempts),
        (0, 1, 1),
        "{stats:?}"
    );
    assert_eq!(ep.calls.lock().unwrap().len(), 1, "400 is not retried");
}
