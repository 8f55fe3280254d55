//! The `tracing` layer (feature `tracing`) mapping, span by span: fields and later
//! records as attributes, the `otel.*` fields, events (an ERROR one sets the status),
//! error fields as `exception` events, explicit parents and roots, `follows_from` as a
//! link, and the context shared with SDK spans both ways.

#![cfg(feature = "tracing")]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use hopscope_sdk::{
    BatchConfig, InMemoryExporter, Resource, SpanData, SpanKind, Status, TracerProvider, TracingLayer, Value,
};
use tracing_subscriber::layer::SubscriberExt;

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name}: {spans:#?}"))
}

fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
}

#[derive(Debug)]
struct Boom;
impl std::fmt::Display for Boom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("boom")
    }
}
impl std::error::Error for Boom {}

#[tokio::test]
async fn tracing_spans_become_hopscope_spans() {
    let exporter = InMemoryExporter::new();
    let provider = TracerProvider::builder()
        .with_resource(Resource::builder().with_service_name("t").build())
        .with_exporter(exporter.clone())
        .with_batch_config(BatchConfig {
            scheduled_delay: Duration::from_millis(10),
            ..BatchConfig::default()
        })
        .build()
        .unwrap();
    let tracer = provider.tracer("t");
    let subscriber = tracing_subscriber::registry().with(TracingLayer::new(tracer.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let root = tracing::info_span!(
            "handle",
            otel.name = "GET /orders",
            otel.kind = "server",
            order.id = 7_u64,
            vip = true,
            ratio = 0.5,
            who = "ann",
            later = tracing::field::Empty
        );
        let _entered = root.enter();
        root.record("later", 3_i64);
        // An SDK span inside a tracing span is its child, and the reverse.
        let sdk = tracer.span("sdk child").kind(SpanKind::Client).start();
        {
            let _g = sdk.enter();
            let inner = tracing::info_span!("under sdk", otel.status_code = "ok");
            let _e = inner.enter();
            tracing::info!(rows = 2, "fetched");
            tracing::error!(error = &Boom as &dyn std::error::Error, "query failed");
        }
        sdk.end();
        let failing = tracing::info_span!("failing", otel.status_code = "error", otel.status_message = "bad input");
        failing.in_scope(|| {});
        let detached = tracing::info_span!(parent: None, "detached");
        detached.follows_from(&root);
        drop(detached);
        let explicit = tracing::info_span!(parent: &root, "explicit");
        drop(explicit);
        drop(failing);
    });
    provider.flush().await.unwrap();
    let spans = exporter.spans();
    assert_eq!(spans.len(), 6, "{spans:#?}");

    let root = named(&spans, "GET /orders");
    assert_eq!(root.kind, SpanKind::Server);
    assert_eq!(root.parent_span_id, None);
    assert_eq!(attr(root, "order.id"), Some(&Value::I64(7)));
    assert_eq!(attr(root, "vip"), Some(&Value::Bool(true)));
    assert_eq!(attr(root, "ratio"), Some(&Value::F64(0.5)));
    assert_eq!(attr(root, "who"), Some(&Value::from("ann")));
    assert_eq!(attr(root, "later"), Some(&Value::I64(3)));
    assert_eq!(attr(root, "otel.kind"), None);

    let sdk = named(&spans, "sdk child");
    assert_eq!(sdk.parent_span_id, Some(root.context.span_id));
    let under = named(&spans, "under sdk");
    assert_eq!(under.parent_span_id, Some(sdk.context.span_id));
    assert_eq!(under.context.trace_id, root.context.trace_id);
    // ok is final: the error event records the exception but cannot undo it.
    assert_eq!(under.status, Status::Ok);
    let names: Vec<&str> = under.events.iter().map(|e| e.name.as_ref()).collect();
    assert_eq!(names, ["fetched", "exception", "query failed"], "{under:#?}");
    let fetched = &under.events[0];
    assert!(
        fetched
            .attributes
            .iter()
            .any(|kv| kv.key == "rows" && kv.value == Value::I64(2))
    );
    assert!(
        fetched
            .attributes
            .iter()
            .any(|kv| kv.key == "level" && kv.value == Value::from("INFO"))
    );
    let exception = &under.events[1];
    assert!(
        exception
            .attributes
            .iter()
            .any(|kv| kv.key == "exception.message" && kv.value == Value::from("boom"))
    );

    assert_eq!(named(&spans, "failing").status, Status::error("bad input"));
    let detached = named(&spans, "detached");
    assert_eq!(detached.parent_span_id, None);
    assert_ne!(detached.context.trace_id, root.context.trace_id);
    assert_eq!(detached.links.len(), 1);
    assert_eq!(detached.links[0].context.span_id, root.context.span_id);
    assert_eq!(named(&spans, "explicit").parent_span_id, Some(root.context.span_id));
    // Leaving every span restored the (empty) SDK context.
    assert_eq!(hopscope_sdk::context::current(), None);
}
