//! gRPC hops through the tonic layers (feature `tonic`) against a real tonic service on
//! loopback (the OTLP trace service, whose generated server and client tonic makes): the
//! client span, the server span and a span made inside the handler form one trace across
//! the hop, with W3C or B3 context in the metadata, `rpc.*` attributes and status codes
//! read from trailers (OK, UNAVAILABLE) and from trailers-only responses
//! (INVALID_ARGUMENT), with the OpenTelemetry client/server error rules.

#![cfg(feature = "tonic")]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use hopscope_sdk::integrations::grpc::{GrpcClientLayer, GrpcServerLayer};
use hopscope_sdk::propagation::{B3Encoding, B3Propagator};
use hopscope_sdk::{
    BatchConfig, InMemoryExporter, Propagator, Resource, SpanData, SpanKind, Status, Tracer, TracerProvider, Value,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use parking_lot::Mutex;
use std::sync::Arc;

const SERVICE: &str = "opentelemetry.proto.collector.trace.v1.TraceService";

fn provider(service: &'static str, exporter: &InMemoryExporter, propagator: Propagator) -> TracerProvider {
    TracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(service).build())
        .with_propagator(propagator)
        .with_exporter(exporter.clone())
        .with_batch_config(BatchConfig {
            scheduled_delay: Duration::from_millis(10),
            ..BatchConfig::default()
        })
        .build()
        .unwrap()
}

/// Answers by the number of resource spans: 0 → INVALID_ARGUMENT (returned before any
/// body: a trailers-only response), 2 → UNAVAILABLE, else OK. Makes an SDK span inside
/// the handler and keeps the trace headers it received.
#[derive(Clone)]
struct Handler {
    tracer: Tracer,
    headers: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl TraceService for Handler {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut keys: Vec<String> = request
            .metadata()
            .keys()
            .filter_map(|k| match k {
                tonic::metadata::KeyRef::Ascii(k) => Some(k.as_str().to_owned()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .filter(|k| k == "traceparent" || k.starts_with("b3") || k.starts_with("x-b3"))
            .collect();
        keys.sort();
        *self.headers.lock() = keys;
        let span = self.tracer.start("store batch");
        tokio::time::sleep(Duration::from_millis(1)).await;
        span.end();
        match request.get_ref().resource_spans.len() {
            0 => Err(tonic::Status::invalid_argument("empty request")),
            2 => Err(tonic::Status::unavailable("store down")),
            _ => Ok(tonic::Response::new(ExportTraceServiceResponse::default())),
        }
    }
}

struct Hop {
    client_spans: InMemoryExporter,
    server_spans: InMemoryExporter,
    client_provider: TracerProvider,
    server_provider: TracerProvider,
    headers: Arc<Mutex<Vec<String>>>,
    codes: Vec<Result<(), tonic::Code>>,
    port: u16,
}

/// Serves the handler behind the server layer on loopback and makes one call per entry
/// of `calls` (the number of resource spans to send) through the client layer.
async fn hop(propagator: Propagator, calls: &[usize]) -> Hop {
    let (client_spans, server_spans) = (InMemoryExporter::new(), InMemoryExporter::new());
    let server_provider = provider("inventory", &server_spans, propagator.clone());
    let client_provider = provider("checkout", &client_spans, propagator);
    let headers = Arc::new(Mutex::new(Vec::new()));
    let handler = Handler {
        tracer: server_provider.tracer("inventory"),
        headers: headers.clone(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let layer = GrpcServerLayer::new(server_provider.tracer("grpc-server"));
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(TraceServiceServer::new(handler))
            .serve_with_incoming(tokio_stream_from(listener)),
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let traced = tower::ServiceBuilder::new()
        .layer(GrpcClientLayer::new(client_provider.tracer("grpc-client")).with_server("127.0.0.1", port))
        .service(channel);
    let mut client = TraceServiceClient::new(traced);
    let mut codes = Vec::new();
    for &n in calls {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans::default(); n],
        };
        codes.push(client.export(request).await.map(|_| ()).map_err(|s| s.code()));
    }
    client_provider.flush().await.unwrap();
    server_provider.flush().await.unwrap();
    Hop {
        client_spans,
        server_spans,
        client_provider,
        server_provider,
        headers,
        codes,
        port,
    }
}

/// A listener as the stream of connections tonic's `serve_with_incoming` takes.
fn tokio_stream_from(
    listener: tokio::net::TcpListener,
) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(listener, |l| async move {
        let conn = l.accept().await.map(|(s, _)| s);
        Some((conn, l))
    })
}

fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
}

fn only<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let found: Vec<&SpanData> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "{name}: {spans:#?}");
    found[0]
}

#[tokio::test]
async fn a_grpc_call_is_one_trace_across_the_hop() {
    let hop = hop(Propagator::default(), &[1]).await;
    assert_eq!(hop.codes, vec![Ok(())]);
    assert_eq!(*hop.headers.lock(), vec!["traceparent".to_owned()]);
    let name = format!("{SERVICE}/Export");
    let (client_spans, server_spans) = (hop.client_spans.spans(), hop.server_spans.spans());
    let client = only(&client_spans, &name);
    let server = only(&server_spans, &name);
    let inner = only(&server_spans, "store batch");

    assert_eq!(client.kind, SpanKind::Client);
    assert_eq!(server.kind, SpanKind::Server);
    assert_eq!(server.context.trace_id, client.context.trace_id);
    assert_eq!(server.parent_span_id, Some(client.context.span_id));
    assert!(server.parent_is_remote);
    assert_eq!(inner.parent_span_id, Some(server.context.span_id));
    for span in [client, server] {
        assert_eq!(attr(span, "rpc.system"), Some(&Value::from("grpc")));
        assert_eq!(attr(span, "rpc.service"), Some(&Value::from(SERVICE)));
        assert_eq!(attr(span, "rpc.method"), Some(&Value::from("Export")));
        assert_eq!(attr(span, "rpc.grpc.status_code"), Some(&Value::I64(0)));
        assert_eq!(span.status, Status::Unset);
    }
    assert_eq!(attr(client, "server.address"), Some(&Value::from("127.0.0.1")));
    assert_eq!(attr(client, "server.port"), Some(&Value::I64(i64::from(hop.port))));
    // The server span lasts until the response (and its trailers) went out.
    assert!(server.end_time >= inner.end_time);
    assert_eq!(hop.client_provider.stats().exported, 1);
    assert_eq!(hop.server_provider.stats().exported, 2);
}

#[tokio::test]
async fn status_codes_follow_the_client_and_server_error_rules() {
    let hop = hop(Propagator::default(), &[2, 0]).await;
    assert_eq!(
        hop.codes,
        vec![Err(tonic::Code::Unavailable), Err(tonic::Code::InvalidArgument)]
    );
    let name = format!("{SERVICE}/Export");
    let (client_spans, server_spans) = (hop.client_spans.spans(), hop.server_spans.spans());
    let code = |s: &&SpanData| attr(s, "rpc.grpc.status_code").cloned();
    let by_code = |spans: &[SpanData], c: i64| -> SpanData {
        spans
            .iter()
            .filter(|s| s.name == name)
            .find(|s| code(s) == Some(Value::I64(c)))
            .unwrap_or_else(|| panic!("no span with code {c}: {spans:#?}"))
            .clone()
    };
    // UNAVAILABLE is an error on both sides.
    for span in [by_code(&client_spans, 14), by_code(&server_spans, 14)] {
        assert_eq!(span.status, Status::error("UNAVAILABLE: store down"), "{span:#?}");
        assert_eq!(attr(&span, "error.type"), Some(&Value::from("UNAVAILABLE")));
    }
    // INVALID_ARGUMENT is the caller's fault: an error for the client only.
    assert_eq!(
        by_code(&client_spans, 3).status,
        Status::error("INVALID_ARGUMENT: empty request")
    );
    let server = by_code(&server_spans, 3);
    assert_eq!(server.status, Status::Unset, "{server:#?}");
    assert_eq!(attr(&server, "error.type"), None);
}

#[tokio::test]
async fn b3_context_in_metadata_carries_the_trace() {
    let hop = hop(Propagator::new(B3Propagator::new(B3Encoding::MultipleHeader)), &[1]).await;
    assert_eq!(hop.codes, vec![Ok(())]);
    assert_eq!(
        *hop.headers.lock(),
        vec![
            "x-b3-sampled".to_owned(),
            "x-b3-spanid".to_owned(),
            "x-b3-traceid".to_owned()
        ]
    );
    let name = format!("{SERVICE}/Export");
    let (client_spans, server_spans) = (hop.client_spans.spans(), hop.server_spans.spans());
    let (client, server) = (only(&client_spans, &name), only(&server_spans, &name));
    assert_eq!(server.context.trace_id, client.context.trace_id);
    assert_eq!(server.parent_span_id, Some(client.context.span_id));
}
