//! A service instrumented only with `tracing` macros (`#[tracing::instrument]`,
//! `info_span!`, `Span::record`) through hopscope-sdk's `TracingLayer` produces the same
//! trace in hopscope as the same service written against the SDK's span API: both call,
//! over real loopback HTTP, a second service instrumented with the SDK (axum server
//! layer), and both traces are read back from the real `hopscope` binary's Jaeger API and
//! compared span by span (service, name, parent, tags), the hop included.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::Hopscope;
use hopscope_sdk::integrations::http::HttpServerLayer;
use hopscope_sdk::{
    BatchConfig, FutureExt, KeyValue, OtlpConfig, OtlpGrpcExporter, Resource, SpanKind, Tracer, TracerProvider,
    TracingLayer,
};
use serde_json::Value;
use tracing::Instrument;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

fn provider(hopscope: &Hopscope, service: &'static str) -> TracerProvider {
    TracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(service).build())
        .with_exporter(OtlpGrpcExporter::new(OtlpConfig::with_endpoint(hopscope.grpc_endpoint())).unwrap())
        .with_batch_config(BatchConfig {
            scheduled_delay: Duration::from_millis(50),
            ..BatchConfig::default()
        })
        .build()
        .unwrap()
}

/// The SDK-instrumented service: a server span from the axum layer and a database client
/// span under it.
async fn stock(tracer: Tracer) -> String {
    let handler_tracer = tracer.clone();
    let app = Router::new()
        .route(
            "/stock/{sku}",
            get(move || {
                let tracer = handler_tracer.clone();
                async move {
                    let mut query = tracer.span("SELECT stock").kind(SpanKind::Client).start();
                    query.set_attribute("db.system.name", "postgresql");
                    query.set_attribute("db.operation.name", "SELECT");
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    query.end();
                    "7"
                }
            }),
        )
        .route_layer(HttpServerLayer::new(tracer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/stock/42", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// The checkout service with `tracing` alone; the trace context crosses the hop through
/// the SDK's propagator, which sees the entered `tracing` span as the current context.
#[tracing::instrument(
    name = "GET /checkout",
    skip_all,
    fields(otel.kind = "server", http.request.method = "GET", http.route = "/checkout", http.response.status_code)
)]
async fn checkout_with_tracing(http: reqwest::Client, tracer: Tracer, url: String) -> String {
    let trace_id = hopscope_sdk::context::current().unwrap().trace_id.to_string();
    let call = tracing::info_span!(
        "GET /stock/{sku}",
        otel.kind = "client",
        http.request.method = "GET",
        url.full = %url,
        http.response.status_code = tracing::field::Empty,
    );
    async {
        let mut request = http.get(&url).build().unwrap();
        tracer.inject(&hopscope_sdk::context::current().unwrap(), request.headers_mut());
        let response = http.execute(request).await.unwrap();
        tracing::Span::current().record("http.response.status_code", response.status().as_u16());
        tracing::info!(bytes = response.content_length().unwrap_or(0), "stock answered");
    }
    .instrument(call)
    .await;
    tracing::Span::current().record("http.response.status_code", 200_u16);
    trace_id
}

/// The same service with the SDK's span API.
async fn checkout_with_sdk(http: reqwest::Client, tracer: Tracer, url: String) -> String {
    let mut root = tracer
        .span("GET /checkout")
        .kind(SpanKind::Server)
        .attribute("http.request.method", "GET")
        .attribute("http.route", "/checkout")
        .start();
    let trace_id = root.context().trace_id.to_string();
    let t = tracer.clone();
    async move {
        let mut call = t
            .span("GET /stock/{sku}")
            .kind(SpanKind::Client)
            .attribute("http.request.method", "GET")
            .attribute("url.full", url.clone())
            .start();
        let mut request = http.get(&url).build().unwrap();
        t.inject(call.context(), request.headers_mut());
        let response = http.execute(request).await.unwrap();
        call.set_attribute("http.response.status_code", response.status().as_u16());
        let bytes = i64::try_from(response.content_length().unwrap_or(0)).unwrap();
        call.add_event(
            "stock answered",
            vec![
                KeyValue::new("bytes", bytes),
                KeyValue::new("level", "INFO"),
                KeyValue::new("target", "sdk_tracing"),
            ],
        );
        call.end();
    }
    .with_context(root.context().clone())
    .await;
    root.set_attribute("http.response.status_code", 200_u16);
    root.end();
    trace_id
}

/// A Jaeger trace reduced to what must match: per span its service, name, parent's name,
/// tags (sorted) and event names and fields; sorted.
fn shape(trace: &Value) -> Vec<String> {
    let spans = trace["spans"].as_array().unwrap();
    let name_of = |id: &str| {
        spans
            .iter()
            .find(|s| s["spanID"] == id)
            .map(|s| s["operationName"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| format!("missing parent {id}"))
    };
    let mut out: Vec<String> = spans
        .iter()
        .map(|s| {
            let service = &trace["processes"][s["processID"].as_str().unwrap()]["serviceName"];
            let parent = s["references"][0]["spanID"].as_str().map(name_of).unwrap_or_default();
            let mut tags: Vec<String> = s["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| format!("{}={}", t["key"], t["value"]))
                .collect();
            tags.sort();
            let logs: Vec<String> = s["logs"]
                .as_array()
                .map(|logs| {
                    logs.iter()
                        .map(|l| {
                            let mut fields: Vec<String> = l["fields"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|f| format!("{}={}", f["key"], f["value"]))
                                .collect();
                            fields.sort();
                            fields.join(",")
                        })
                        .collect()
                })
                .unwrap_or_default();
            let name = s["operationName"].as_str().unwrap();
            format!(
                "{service} {name:?} <- {parent:?} tags [{}] logs [{}]",
                tags.join(" "),
                logs.join("; ")
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_tracing_instrumented_service_makes_the_same_trace_as_the_sdk() {
    let hopscope = Hopscope::start(&[]).await;
    let stock_provider = provider(&hopscope, "stock");
    let url = stock(stock_provider.tracer("stock")).await;
    let http = reqwest::Client::new();

    // The tracing version: spans come only from tracing macros (this crate's target;
    // libraries' spans are filtered out, as a service would).
    let tracing_provider = provider(&hopscope, "checkout");
    let layer = TracingLayer::new(tracing_provider.tracer("checkout")).with_filter(
        tracing_subscriber::filter::filter_fn(|m| m.target().starts_with("sdk_tracing")),
    );
    let subscriber = tracing_subscriber::registry().with(layer);
    let traced_id = {
        let _default = tracing::subscriber::set_default(subscriber);
        checkout_with_tracing(http.clone(), tracing_provider.tracer("checkout"), url.clone()).await
    };
    tracing_provider.shutdown().await.unwrap();

    let sdk_provider = provider(&hopscope, "checkout");
    let sdk_id = checkout_with_sdk(http, sdk_provider.tracer("checkout"), url).await;
    sdk_provider.shutdown().await.unwrap();
    stock_provider.shutdown().await.unwrap();
    assert_ne!(traced_id, sdk_id);

    let traced = hopscope.wait_for_trace(&traced_id, 4).await;
    let direct = hopscope.wait_for_trace(&sdk_id, 4).await;
    let (traced_shape, direct_shape) = (shape(&traced), shape(&direct));
    assert_eq!(traced_shape.len(), 4, "{traced_shape:#?}");
    assert_eq!(traced_shape, direct_shape);
    // The hop: stock's server span is the child of checkout's client span.
    assert!(
        traced_shape
            .iter()
            .any(|s| s.starts_with("\"stock\" \"GET /stock/{sku}\" <- \"GET /stock/{sku}\"")),
        "{traced_shape:#?}"
    );
}
