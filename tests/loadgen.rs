//! `hopscope loadgen` against a running hopscope: the load is acknowledged over both
//! protocols, and what was acknowledged can be queried.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Hopscope, binary, trace_ids};
use serde_json::Value;

fn loadgen(protocol: &str, endpoint: &str) -> Value {
    let output = Command::new(binary())
        .args(["loadgen", "--protocol", protocol, "--endpoint", endpoint])
        .args([
            "--duration",
            "1",
            "--connections",
            "2",
            "--spans-per-request",
            "100",
            "--pool",
            "4",
        ])
        .args(["--format", "json", "--quiet"])
        .output()
        .expect("run hopscope loadgen");
    assert!(
        output.status.success(),
        "loadgen failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("loadgen prints a JSON summary")
}

#[tokio::test(flavor = "multi_thread")]
async fn loadgen_spans_are_acked_and_queryable() {
    let hopscope = Hopscope::start(&[]).await;

    let grpc = loadgen("grpc", &hopscope.grpc_endpoint());
    let http = loadgen("http", &hopscope.http_endpoint());
    for summary in [&grpc, &http] {
        assert!(summary["acked_spans"].as_u64().unwrap_or(0) >= 100, "{summary}");
        assert_eq!(summary["errors"], 0, "{summary}");
        assert_eq!(summary["rejected_spans"], 0, "{summary}");
        assert!(summary["latency_ms"]["p99"].as_f64().unwrap_or(0.0) > 0.0, "{summary}");
    }
    let acked = grpc["acked_spans"].as_u64().unwrap_or(0) + http["acked_spans"].as_u64().unwrap_or(0);

    // Everything acknowledged reaches the store.
    let deadline = Instant::now() + Duration::from_secs(20);
    while hopscope.metric("hopscope_store_spans_written_total").await < acked as f64 {
        assert!(
            Instant::now() < deadline,
            "the store did not receive all {acked} acknowledged spans"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(hopscope.metric("hopscope_spans_accepted_total").await, acked as f64);

    let services = hopscope.get_ok("/api/services").await;
    let names: Vec<&str> = services["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for service in ["frontend", "checkout", "payment"] {
        assert!(names.contains(&service), "{service} missing from {names:?}");
    }
    let found = hopscope.get_ok("/api/traces?service=frontend&limit=5").await;
    let ids = trace_ids(&found);
    assert!(!ids.is_empty(), "search found nothing: {found}");
    let trace = hopscope.wait_for_trace(&ids[0], 5).await;
    let spans = trace["spans"].as_array().unwrap();
    assert!(
        (5..=50).contains(&spans.len()),
        "a loadgen trace has 5–50 spans, got {}",
        spans.len()
    );
}
