//! OTLP export over TLS (feature `tls`), configured only through the OpenTelemetry
//! environment variables, to a TLS-terminating OTLP server in this test: rustls on
//! 127.0.0.1:0 with a certificate from a CA made here with rcgen, serving OTLP/gRPC and
//! OTLP/HTTP on one port, refusing requests without the expected bearer token and
//! recording what it accepted. Checks that the spans arrive intact over both protocols,
//! with a bearer token, with and without client certificates (mTLS), and that a wrong
//! token, a missing client certificate or an untrusted server make the export fail.

#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hopscope_sdk::{BatchConfig, ExportStats, FutureExt, OtlpExporter, Resource, SpanKind, Status, TracerProvider};
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
use parking_lot::Mutex;
use prost::Message;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const TOKEN: &str = "Bearer s3cret-token";

/// A test CA and the PEM files it issued, in a temporary directory.
struct Pki {
    dir: PathBuf,
    ca_pem: String,
    server: (String, String),
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("hopscope-sdk-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let issue = |names: Vec<String>| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(names).unwrap().signed_by(&key, &ca).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let server = issue(vec!["127.0.0.1".into(), "localhost".into()]);
        let client = issue(vec!["sdk-client".into()]);
        let pki = Pki {
            dir,
            ca_pem: ca.pem(),
            server,
        };
        pki.write("ca.pem", &pki.ca_pem);
        pki.write("client.pem", &client.0);
        pki.write("client.key", &client.1);
        // A CA that issued nothing the server uses: trusting it alone must fail.
        let other = CertifiedIssuer::self_signed(
            CertificateParams::new(Vec::<String>::new()).unwrap(),
            KeyPair::generate().unwrap(),
        )
        .unwrap();
        pki.write("other-ca.pem", &other.pem());
        pki
    }

    fn write(&self, name: &str, pem: &str) {
        std::fs::write(self.dir.join(name), pem).unwrap();
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Clone, Default)]
struct Recorded {
    requests: Arc<Mutex<Vec<(&'static str, ExportTraceServiceRequest)>>>,
    refused: Arc<Mutex<u32>>,
}

#[tonic::async_trait]
impl TraceService for Recorded {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.requests.lock().push(("grpc", request.into_inner()));
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn http_export(State(rec): State<Recorded>, body: axum::body::Bytes) -> Response {
    match ExportTraceServiceRequest::decode(body) {
        Ok(req) => {
            rec.requests.lock().push(("http", req));
            let body = ExportTraceServiceResponse::default().encode_to_vec();
            ([(axum::http::header::CONTENT_TYPE, "application/x-protobuf")], body).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

/// Refuses (HTTP 401, which gRPC clients see as UNAUTHENTICATED) any request without
/// the bearer token.
async fn require_token(State(rec): State<Recorded>, request: Request, next: Next) -> Response {
    if request.headers().get("authorization").and_then(|v| v.to_str().ok()) != Some(TOKEN) {
        *rec.refused.lock() += 1;
        return StatusCode::UNAUTHORIZED.into_response();
    }
    next.run(request).await
}

/// Serves OTLP/gRPC and OTLP/HTTP over TLS on one loopback port; with `mtls`, the
/// handshake requires a client certificate from the test CA.
async fn serve(pki: &Pki, mtls: bool) -> (std::net::SocketAddr, Recorded) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = vec![CertificateDer::from_pem_slice(pki.server.0.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(pki.server.1.as_bytes()).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if mtls {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
            .unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_single_cert(chain, key).unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let rec = Recorded::default();
    let app = tonic::service::Routes::new(TraceServiceServer::new(rec.clone()))
        .into_axum_router()
        .route("/v1/traces", axum::routing::post(http_export).with_state(rec.clone()))
        .layer(axum::middleware::from_fn_with_state(rec.clone(), require_token));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                // A failed handshake (no or untrusted client certificate) just closes.
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (addr, rec)
}

/// Exports one server span with a child (attributes of every type, an event, an error
/// status) with the exporter the environment describes; returns the export counters.
async fn export(env: &[(&str, String)], service: &'static str) -> (ExportStats, String) {
    let env: HashMap<&str, String> = env.iter().cloned().collect();
    let exporter = OtlpExporter::from_env_vars(|k| env.get(k).cloned()).unwrap();
    let provider = TracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(service).build())
        .with_exporter(exporter)
        .with_batch_config(BatchConfig {
            max_retries: 0,
            export_timeout: Duration::from_secs(5),
            ..BatchConfig::default()
        })
        .build()
        .unwrap();
    let tracer = provider.tracer("tls-test");
    let root = tracer
        .span("POST /charge")
        .kind(SpanKind::Server)
        .attribute("http.request.method", "POST")
        .start();
    let trace_id = root.context().trace_id.to_string();
    let t = tracer.clone();
    async move {
        let mut child = t.span("SELECT accounts").kind(SpanKind::Client).start();
        child.set_attribute("db.system.name", "postgresql");
        child.set_attribute("server.port", 5432);
        child.set_attribute("db.cached", false);
        child.set_attribute("ratio", 0.5);
        child.add_event("retry", vec![hopscope_sdk::KeyValue::new("attempt", 2)]);
        child.set_status(Status::error("deadlock"));
        child.end();
    }
    .in_span(root)
    .await;
    let _ = provider.shutdown().await;
    (provider.stats(), trace_id)
}

fn spans(rec: &Recorded, protocol: &str) -> Vec<ProtoSpan> {
    rec.requests
        .lock()
        .iter()
        .filter(|(p, _)| *p == protocol)
        .flat_map(|(_, r)| r.resource_spans.iter())
        .flat_map(|rs| rs.scope_spans.iter())
        .flat_map(|ss| ss.spans.iter().cloned())
        .collect()
}

/// The recorded spans are the two spans exported, field for field.
fn assert_intact(spans: &[ProtoSpan], trace_id: &str) {
    assert_eq!(spans.len(), 2, "{spans:?}");
    let root = spans.iter().find(|s| s.name == "POST /charge").unwrap();
    let child = spans.iter().find(|s| s.name == "SELECT accounts").unwrap();
    assert_eq!(hex(&root.trace_id), trace_id);
    assert_eq!(child.trace_id, root.trace_id);
    assert_eq!(child.parent_span_id, root.span_id);
    assert!(root.parent_span_id.is_empty());
    let attr = |s: &ProtoSpan, k: &str| {
        s.attributes
            .iter()
            .find(|kv| kv.key == k)
            .and_then(|kv| kv.value.clone()?.value)
    };
    assert_eq!(
        attr(root, "http.request.method"),
        Some(AnyValue::StringValue("POST".into()))
    );
    assert_eq!(
        attr(child, "db.system.name"),
        Some(AnyValue::StringValue("postgresql".into()))
    );
    assert_eq!(attr(child, "server.port"), Some(AnyValue::IntValue(5432)));
    assert_eq!(attr(child, "db.cached"), Some(AnyValue::BoolValue(false)));
    assert_eq!(attr(child, "ratio"), Some(AnyValue::DoubleValue(0.5)));
    assert_eq!(child.events.len(), 1);
    assert_eq!(child.events[0].name, "retry");
    let status = child.status.clone().unwrap();
    assert_eq!((status.code, status.message.as_str()), (2, "deadlock"));
    assert!(child.end_time_unix_nano >= child.start_time_unix_nano);
    assert!(root.end_time_unix_nano >= child.end_time_unix_nano);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn grpc_env(addr: std::net::SocketAddr) -> Vec<(&'static str, String)> {
    vec![
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("https://127.0.0.1:{}", addr.port()),
        ),
        ("OTEL_EXPORTER_OTLP_HEADERS", format!("authorization={TOKEN}")),
    ]
}

fn http_env(addr: std::net::SocketAddr) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("https://localhost:{}", addr.port()),
        ),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", format!("Authorization={TOKEN}")),
    ]
}

fn with(mut env: Vec<(&'static str, String)>, more: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    env.extend_from_slice(more);
    env
}

#[tokio::test]
async fn grpc_and_http_export_over_tls_with_a_bearer_token() {
    let pki = Pki::new("bearer");
    let (addr, rec) = serve(&pki, false).await;
    let ca = [("OTEL_EXPORTER_OTLP_CERTIFICATE", pki.path("ca.pem"))];
    let traces_ca = [("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", pki.path("ca.pem"))];

    let (stats, trace_id) = export(&with(grpc_env(addr), &ca), "sdk-grpc-tls").await;
    assert_eq!((stats.exported, stats.failed), (2, 0), "{stats:?}");
    assert_intact(&spans(&rec, "grpc"), &trace_id);

    let (stats, trace_id) = export(&with(http_env(addr), &traces_ca), "sdk-http-tls").await;
    assert_eq!((stats.exported, stats.failed), (2, 0), "{stats:?}");
    assert_intact(&spans(&rec, "http"), &trace_id);
    assert_eq!(*rec.refused.lock(), 0);

    // A wrong token is refused over both protocols, and nothing is recorded.
    let before = rec.requests.lock().len();
    for env in [grpc_env(addr), http_env(addr)] {
        let mut env = with(env, &ca);
        for (k, v) in &mut env {
            if k.ends_with("HEADERS") {
                *v = "authorization=Bearer wrong".into();
            }
        }
        let (stats, _) = export(&env, "sdk-wrong-token").await;
        assert_eq!((stats.exported, stats.failed), (0, 2), "{stats:?}");
    }
    assert_eq!(*rec.refused.lock(), 2);
    assert_eq!(rec.requests.lock().len(), before);

    // Without the test CA the server is not trusted (system roots, or another CA).
    let other = [("OTEL_EXPORTER_OTLP_CERTIFICATE", pki.path("other-ca.pem"))];
    for env in [
        grpc_env(addr),
        http_env(addr),
        with(grpc_env(addr), &other),
        with(http_env(addr), &other),
    ] {
        let (stats, _) = export(&env, "sdk-untrusted").await;
        assert_eq!((stats.exported, stats.failed), (0, 2), "{stats:?}");
    }
    assert_eq!(rec.requests.lock().len(), before);
}

#[tokio::test]
async fn mtls_export_needs_the_client_certificate() {
    let pki = Pki::new("mtls");
    let (addr, rec) = serve(&pki, true).await;
    let client = [
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", pki.path("ca.pem")),
        ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", pki.path("client.pem")),
        ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", pki.path("client.key")),
    ];
    for (protocol, env) in [("grpc", grpc_env(addr)), ("http", http_env(addr))] {
        let (stats, trace_id) = export(&with(env.clone(), &client), "sdk-mtls").await;
        assert_eq!((stats.exported, stats.failed), (2, 0), "{protocol}: {stats:?}");
        assert_intact(&spans(&rec, protocol), &trace_id);

        // The same without a client certificate: the handshake fails.
        let (stats, _) = export(&with(env, &client[..1]), "sdk-no-client-cert").await;
        assert_eq!((stats.exported, stats.failed), (0, 2), "{protocol}: {stats:?}");
    }
    assert_eq!(rec.requests.lock().len(), 2);
}

#[test]
fn a_client_certificate_without_its_key_is_a_configuration_error() {
    let pki = Pki::new("config");
    let env: HashMap<&str, String> = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://127.0.0.1:4317".to_owned()),
        ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", pki.path("client.pem")),
    ]
    .into_iter()
    .collect();
    let err = OtlpExporter::from_env_vars(|k| env.get(k).cloned()).unwrap_err();
    assert!(err.to_string().contains("client key"), "{err}");
    let missing: HashMap<&str, String> = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://127.0.0.1:4317".to_owned()),
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            Path::new("/nonexistent/ca.pem").display().to_string(),
        ),
    ]
    .into_iter()
    .collect();
    assert!(OtlpExporter::from_env_vars(|k| missing.get(k).cloned()).is_err());
}
