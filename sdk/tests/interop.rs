//! Propagation interop with the official OpenTelemetry SDKs: a trace started in the Rust
//! `opentelemetry` 0.33 SDK or the Python SDK continues in hopscope's SDK, and the other
//! way round, over W3C trace context (with tracestate) and B3 single and multi header.
//!
//! The Python side runs `tests/python/propagation.py` with `$HOPSCOPE_TEST_PYTHON` (or
//! `.venv/bin/python` at the workspace root, which `scripts/test.sh` sets up); the test
//! fails with instructions if that interpreter or its packages are missing.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use hopscope_sdk::propagation::{B3Encoding, B3Propagator, TraceContextPropagator};
use hopscope_sdk::{InMemoryExporter, Propagator, SpanId, TextMapPropagator, TraceId, TracerProvider};
use opentelemetry::propagation::TextMapPropagator as OtelPropagator;
use opentelemetry::trace::{Span as _, TraceContextExt, TraceState, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::Value;

fn hopscope() -> (TracerProvider, InMemoryExporter) {
    let exporter = InMemoryExporter::new();
    (
        TracerProvider::builder()
            .with_exporter(exporter.clone())
            .build()
            .unwrap(),
        exporter,
    )
}

#[test]
fn rust_otel_sdk_to_hopscope_and_back_over_w3c() {
    let otel = SdkTracerProvider::builder().build();
    let otel_tracer = otel.tracer("otel");
    let w3c = opentelemetry_sdk::propagation::TraceContextPropagator::new();

    // otel → hopscope
    let root = otel_tracer.start("otel-root");
    let root_sc = root.span_context().clone();
    let root_sc = opentelemetry::trace::SpanContext::new(
        root_sc.trace_id(),
        root_sc.span_id(),
        root_sc.trace_flags(),
        false,
        TraceState::from_key_value([("vendor", "abc")]).unwrap(),
    );
    let cx = opentelemetry::Context::new().with_remote_span_context(root_sc.clone());
    let mut headers: HashMap<String, String> = HashMap::new();
    w3c.inject_context(&cx, &mut headers);

    let (provider, _) = hopscope();
    let tracer = provider.tracer("hop");
    let parent = tracer
        .extract(&headers)
        .expect("hopscope extracts the otel traceparent");
    assert_eq!(parent.trace_id.0, root_sc.trace_id().to_bytes());
    assert_eq!(parent.span_id.0, root_sc.span_id().to_bytes());
    assert_eq!(parent.trace_state.as_str(), "vendor=abc");
    let child = tracer.span("hop-child").parent(Some(&parent)).start();
    assert_eq!(child.context().trace_id, parent.trace_id);

    // hopscope → otel
    let mut back: HashMap<String, String> = HashMap::new();
    tracer.inject(child.context(), &mut back);
    let otel_cx = w3c.extract(&back);
    let remote = otel_cx.span().span_context().clone();
    assert!(remote.is_valid() && remote.is_remote() && remote.is_sampled());
    assert_eq!(remote.trace_id().to_bytes(), root_sc.trace_id().to_bytes());
    assert_eq!(remote.span_id().to_bytes(), child.context().span_id.0);
    assert_eq!(remote.trace_state().header(), "vendor=abc");
    let grandchild = otel_tracer.start_with_context("otel-grandchild", &otel_cx);
    assert_eq!(grandchild.span_context().trace_id(), root_sc.trace_id());
}

fn python() -> PathBuf {
    let path = std::env::var_os("HOPSCOPE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"));
    assert!(
        path.exists(),
        "no Python with the OpenTelemetry SDK at {} — run scripts/test.sh (it installs tests/python/requirements.txt into .venv) or set HOPSCOPE_TEST_PYTHON",
        path.display()
    );
    path
}

fn run_python(args: &[&str]) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/python/propagation.py");
    let out = Command::new(python())
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python propagation peer failed ({}); is tests/python/requirements.txt installed?\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python prints JSON")
}

fn propagator(format: &str) -> Box<dyn TextMapPropagator> {
    match format {
        "w3c" => Box::new(TraceContextPropagator),
        "b3single" => Box::new(B3Propagator::new(B3Encoding::SingleHeader)),
        _ => Box::new(B3Propagator::new(B3Encoding::MultipleHeader)),
    }
}

#[test]
fn python_sdk_round_trips_w3c_and_b3() {
    let (provider, _) = hopscope();
    let tracer = provider.tracer("hop");
    for format in ["w3c", "b3single", "b3multi"] {
        let p = propagator(format);

        // Python → hopscope
        let started = run_python(&["inject", format]);
        let headers: HashMap<String, String> = serde_json::from_value(started["headers"].clone()).unwrap();
        let parent = p
            .extract(&headers)
            .unwrap_or_else(|| panic!("{format}: cannot extract {headers:?}"));
        assert_eq!(
            parent.trace_id,
            TraceId::from_hex(started["trace_id"].as_str().unwrap()).unwrap(),
            "{format}"
        );
        assert_eq!(
            parent.span_id,
            SpanId::from_hex(started["span_id"].as_str().unwrap()).unwrap(),
            "{format}"
        );
        assert!(parent.is_sampled() && parent.is_remote, "{format}");

        // hopscope → Python
        let child = tracer.span("hop-child").parent(Some(&parent)).start();
        let mut out: HashMap<String, String> = HashMap::new();
        p.inject(child.context(), &mut out);
        assert_eq!(
            out.keys().len(),
            if format == "b3multi" { 3 } else { 1 },
            "{format}: {out:?}"
        );
        let continued = run_python(&["extract", format, &serde_json::to_string(&out).unwrap()]);
        assert_eq!(continued["parent_valid"], true, "{format}: {continued}");
        assert_eq!(continued["parent_remote"], true, "{format}");
        assert_eq!(
            continued["trace_id"], started["trace_id"],
            "{format}: one trace across both SDKs"
        );
        assert_eq!(
            continued["parent_span_id"],
            child.context().span_id.to_string(),
            "{format}"
        );
        assert_eq!(continued["sampled"], true, "{format}");
    }

    // tracestate survives a Python round trip through hopscope.
    let mut headers: HashMap<String, String> = HashMap::new();
    let child = tracer.start("with-state");
    let mut cx = child.context().clone();
    cx.trace_state = hopscope_sdk::TraceState::from_header("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    Propagator::default().inject(&cx, &mut headers);
    let continued = run_python(&["extract", "w3c", &serde_json::to_string(&headers).unwrap()]);
    assert_eq!(continued["tracestate"], "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
}
