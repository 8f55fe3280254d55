//! hopscope-sdk's OTLP exporters, chosen from the environment the way the OpenTelemetry
//! SDKs choose them (`OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_EXPORTER_OTLP_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_COMPRESSION`), against hopscope's own collector: every protocol
//! delivers a trace that the query API serves with its parentage intact.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use common::{Hopscope, span_named};
use hopscope_sdk::{FutureExt, OtlpExporter, Resource, SpanKind, TracerProvider};

/// Sends a server span with a client span under it; returns the trace id.
async fn send_trace(env: &HashMap<&str, String>, service: &'static str) -> String {
    let exporter = OtlpExporter::from_env_vars(|k| env.get(k).cloned()).expect("exporter from env");
    let provider = TracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(service).build())
        .with_exporter(exporter)
        .build()
        .expect("provider");
    let tracer = provider.tracer("sdk-export-test");
    let root = tracer.span("GET /accounts").kind(SpanKind::Server).start();
    let trace_id = root.context().trace_id.to_string();
    let t = tracer.clone();
    async move {
        let mut query = t.span("SELECT accounts").kind(SpanKind::Client).start();
        query.set_attribute("db.system.name", "postgresql");
        query.end();
    }
    .in_span(root)
    .await;
    provider.shutdown().await.expect("flush on shutdown");
    let stats = provider.stats();
    assert_eq!((stats.exported, stats.failed), (2, 0), "{service}: {stats:?}");
    trace_id
}

#[tokio::test]
async fn grpc_http_and_gzipped_http_exports_reach_the_collector() {
    let hopscope = Hopscope::start(&[]).await;
    let cases = [
        (
            "sdk-grpc",
            vec![("OTEL_EXPORTER_OTLP_ENDPOINT", hopscope.grpc_endpoint())],
        ),
        (
            "sdk-http",
            vec![
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", hopscope.http_endpoint()),
            ],
        ),
        (
            "sdk-http-gzip",
            vec![
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf".to_owned()),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    format!("{}/v1/traces", hopscope.http_endpoint()),
                ),
                ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip".to_owned()),
            ],
        ),
    ];
    for (service, env) in cases {
        let env: HashMap<&str, String> = env.into_iter().collect();
        let trace_id = send_trace(&env, service).await;
        let trace = hopscope.wait_for_trace(&trace_id, 2).await;
        let (root, child) = (
            span_named(&trace, "GET /accounts"),
            span_named(&trace, "SELECT accounts"),
        );
        let parent = child["references"][0]["spanID"].as_str();
        assert_eq!(parent, root["spanID"].as_str(), "{service}: {trace}");
        let process = root["processID"].as_str().unwrap();
        assert_eq!(trace["processes"][process]["serviceName"], service);
    }
}
