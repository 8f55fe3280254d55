//! The Rust `opentelemetry-otlp` exporter sends a three-service trace (HTTP call, then a
//! RabbitMQ publish consumed by another service) over OTLP/gRPC, OTLP/HTTP protobuf and
//! OTLP/HTTP JSON; hopscope must serve it back with the right parentage, kinds, hop kinds
//! and peers, find it, and list the service dependencies, including producer → consumer.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use common::{Hopscope, span_named, trace_ids, typed_tag};
use opentelemetry::trace::{Link, Span, SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

#[derive(Clone, Copy, Debug)]
enum Transport {
    Grpc,
    HttpProtobuf,
    HttpJson,
}

impl Transport {
    fn label(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::HttpProtobuf => "httpproto",
            Transport::HttpJson => "httpjson",
        }
    }
}

/// Where the exporters send to.
struct Endpoints {
    grpc: String,
    http: String,
}

fn provider(transport: Transport, endpoints: &Endpoints, service: &str, host: &str) -> SdkTracerProvider {
    let exporter = match transport {
        Transport::Grpc => SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoints.grpc.clone())
            .build(),
        Transport::HttpProtobuf => SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{}/v1/traces", endpoints.http))
            .build(),
        Transport::HttpJson => SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpJson)
            .with_endpoint(format!("{}/v1/traces", endpoints.http))
            .build(),
    }
    .expect("build exporter");
    let resource = Resource::builder()
        .with_service_name(service.to_owned())
        .with_attributes([
            KeyValue::new("host.name", host.to_owned()),
            KeyValue::new("deployment.environment", "test"),
        ])
        .build();
    SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(resource)
        .build()
}

struct Sent {
    trace_id: String,
    services: [String; 3],
}

/// Emits the trace. The SDK's simple processor blocks on each export, so this runs on a
/// blocking thread that has entered the test's runtime (tonic and reqwest need it).
fn emit(transport: Transport, endpoints: &Endpoints) -> Sent {
    let label = transport.label();
    let services = [
        format!("rs-{label}-gateway"),
        format!("rs-{label}-payment"),
        format!("rs-{label}-ledger"),
    ];
    let gateway = provider(transport, endpoints, &services[0], "vm-gw-1");
    let payment = provider(transport, endpoints, &services[1], "vm-pay-2");
    let ledger = provider(transport, endpoints, &services[2], "vm-ledger-1");
    let (gw, pay, led) = (
        gateway.tracer("gateway"),
        payment.tracer("payment"),
        ledger.tracer("ledger"),
    );

    let t0 = SystemTime::now() - Duration::from_secs(5);
    let at = |ms: u64| t0 + Duration::from_millis(ms);

    let mut root = gw
        .span_builder("POST /pay")
        .with_kind(SpanKind::Server)
        .with_start_time(at(0))
        .with_attributes([
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("http.route", "/pay"),
        ])
        .start(&gw);
    let trace_id = root.span_context().trace_id().to_string();
    let root_cx = Context::new().with_remote_span_context(root.span_context().clone());

    let mut call = gw
        .span_builder("POST")
        .with_kind(SpanKind::Client)
        .with_start_time(at(10))
        .with_attributes([
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("server.address", "payment.internal"),
            KeyValue::new("server.port", 8080),
        ])
        .start_with_context(&gw, &root_cx);
    let call_cx = Context::new().with_remote_span_context(call.span_context().clone());

    let mut handler = pay
        .span_builder("POST /charge")
        .with_kind(SpanKind::Server)
        .with_start_time(at(15))
        .with_attributes([
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("payment.amount", 12.5),
        ])
        .start_with_context(&pay, &call_cx);
    let handler_cx = Context::new().with_remote_span_context(handler.span_context().clone());

    let mut publish = pay
        .span_builder("payments publish")
        .with_kind(SpanKind::Producer)
        .with_start_time(at(20))
        .with_attributes([
            KeyValue::new("messaging.system", "rabbitmq"),
            KeyValue::new("messaging.destination.name", "payments"),
            KeyValue::new("messaging.operation.type", "send"),
        ])
        .start_with_context(&pay, &handler_cx);
    let publish_cx = Context::new().with_remote_span_context(publish.span_context().clone());
    publish.end_with_timestamp(at(25));

    let mut consume = led
        .span_builder("payments process")
        .with_kind(SpanKind::Consumer)
        .with_start_time(at(300))
        .with_attributes([
            KeyValue::new("messaging.system", "rabbitmq"),
            KeyValue::new("messaging.destination.name", "payments"),
            KeyValue::new("messaging.operation.type", "process"),
        ])
        .with_links(vec![Link::with_context(publish_cx.span().span_context().clone())])
        .start_with_context(&led, &publish_cx);
    consume.add_event_with_timestamp(
        "exception",
        at(350),
        vec![
            KeyValue::new("exception.type", "LedgerLocked"),
            KeyValue::new("exception.message", "row lock wait timeout"),
        ],
    );
    consume.set_status(Status::error("row lock wait timeout"));
    consume.end_with_timestamp(at(400));

    handler.end_with_timestamp(at(200));
    call.end_with_timestamp(at(210));
    root.end_with_timestamp(at(220));

    for provider in [gateway, payment, ledger] {
        provider.shutdown().expect("flush spans");
    }
    Sent { trace_id, services }
}

async fn check(transport: Transport, hopscope: &Hopscope) {
    let handle = tokio::runtime::Handle::current();
    let endpoints = Endpoints {
        grpc: hopscope.grpc_endpoint(),
        http: hopscope.http_endpoint(),
    };
    let sent = tokio::task::spawn_blocking(move || {
        let _guard = handle.enter();
        emit(transport, &endpoints)
    })
    .await
    .expect("emit spans");

    let trace = hopscope.wait_for_trace(&sent.trace_id, 5).await;
    let root = span_named(&trace, "POST /pay");
    let call = span_named(&trace, "POST");
    let handler = span_named(&trace, "POST /charge");
    let publish = span_named(&trace, "payments publish");
    let consume = span_named(&trace, "payments process");

    let parent_of = |span: &serde_json::Value| span["references"][0]["spanID"].clone();
    assert_eq!(parent_of(call), root["spanID"], "{transport:?}");
    assert_eq!(parent_of(handler), call["spanID"]);
    assert_eq!(parent_of(publish), handler["spanID"]);
    assert_eq!(parent_of(consume), publish["spanID"]);
    assert_eq!(consume["references"][1]["refType"], "FOLLOWS_FROM");

    assert_eq!(typed_tag(&publish["tags"], "span.kind", "string"), "producer");
    assert_eq!(typed_tag(&consume["tags"], "span.kind", "string"), "consumer");
    assert_eq!(typed_tag(&publish["tags"], "hopscope.hop_kind", "string"), "mq");
    assert_eq!(typed_tag(&consume["tags"], "hopscope.peer", "string"), "payments");
    assert_eq!(
        typed_tag(&call["tags"], "hopscope.peer", "string"),
        "payment.internal:8080"
    );
    assert_eq!(typed_tag(&handler["tags"], "payment.amount", "float64"), 12.5);
    assert_eq!(typed_tag(&handler["tags"], "hopscope.host", "string"), "vm-pay-2");
    assert_eq!(typed_tag(&consume["tags"], "error", "bool"), true);
    assert_eq!(root["duration"], 220_000);
    assert_eq!(
        consume["startTime"].as_u64().unwrap() - root["startTime"].as_u64().unwrap(),
        300_000
    );
    let logs = consume["logs"].as_array().unwrap();
    assert_eq!(
        typed_tag(&logs[0]["fields"], "exception.type", "string"),
        "LedgerLocked"
    );

    let processes = trace["processes"].as_object().unwrap();
    assert_eq!(processes.len(), 3, "one process per service: {processes:?}");
    let service_of =
        |span: &serde_json::Value| trace["processes"][span["processID"].as_str().unwrap()]["serviceName"].clone();
    assert_eq!(service_of(root), sent.services[0].as_str());
    assert_eq!(service_of(handler), sent.services[1].as_str());
    assert_eq!(service_of(consume), sent.services[2].as_str());

    let found = trace_ids(
        &hopscope
            .get_ok(&format!(
                "/api/traces?service={}&tags=exception.type%3DLedgerLocked",
                sent.services[2]
            ))
            .await,
    );
    assert_eq!(found, vec![sent.trace_id.clone()]);
    let found = trace_ids(
        &hopscope
            .get_ok(&format!(
                "/api/traces?service={}&operation=POST%20%2Fcharge&minDuration=180ms&maxDuration=190ms",
                sent.services[1]
            ))
            .await,
    );
    assert_eq!(found, vec![sent.trace_id.clone()]);

    let end_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let deps = hopscope
        .get_ok(&format!("/api/dependencies?endTs={end_ms}&lookback=3600000"))
        .await;
    let edge = |parent: &str, child: &str| {
        deps["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["parent"] == parent && d["child"] == child)
            .cloned()
    };
    assert_eq!(
        edge(&sent.services[0], &sent.services[1]).expect("gateway → payment")["callCount"],
        1
    );
    assert_eq!(
        edge(&sent.services[1], &sent.services[2]).expect("payment → ledger (producer → consumer)")["callCount"],
        1
    );

    // The api_v3 form answers OTLP JSON.
    let v3 = hopscope.get_ok(&format!("/api/v3/traces/{}", sent.trace_id)).await;
    let resource_spans = v3["result"]["resourceSpans"].as_array().expect("OTLP resourceSpans");
    let span_count: usize = resource_spans
        .iter()
        .flat_map(|rs| rs["scopeSpans"].as_array().unwrap())
        .map(|ss| ss["spans"].as_array().unwrap().len())
        .sum();
    assert_eq!(span_count, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_over_grpc_http_protobuf_and_http_json() {
    let hopscope = Hopscope::start(&[]).await;
    for transport in [Transport::Grpc, Transport::HttpProtobuf, Transport::HttpJson] {
        check(transport, &hopscope).await;
    }
}
