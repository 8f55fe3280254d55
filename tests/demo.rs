//! `hopscope demo` runs the all-in-one plus the banking workload; within a bounded time
//! the Jaeger API serves multi-hop traces that cross all four services, with the ledger's
//! consumer span under payment's producer span — once over the real middleware on this
//! machine and once fully simulated (what a fresh machine without the services gets).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::Hopscope;
use serde_json::Value;

fn service<'a>(trace: &'a Value, span: &Value) -> &'a str {
    trace["processes"][span["processID"].as_str().unwrap_or_default()]["serviceName"]
        .as_str()
        .unwrap_or_default()
}

fn tag<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    span["tags"]
        .as_array()?
        .iter()
        .find(|t| t["key"] == key)
        .and_then(|t| t["value"].as_str())
}

fn parent<'a>(trace: &'a Value, span: &Value) -> Option<&'a Value> {
    let id = span["references"]
        .as_array()?
        .iter()
        .find(|r| r["refType"] == "CHILD_OF")?["spanID"]
        .as_str()?;
    trace["spans"].as_array()?.iter().find(|s| s["spanID"] == id)
}

/// A trace that crosses gateway → account → payment → queue → ledger with correct
/// parentage on the queue hop, if `trace` is one.
fn full_chain(trace: &Value) -> bool {
    let Some(spans) = trace["spans"].as_array() else {
        return false;
    };
    let services: std::collections::HashSet<&str> = spans.iter().map(|s| service(trace, s)).collect();
    if !["demo-gateway", "demo-account", "demo-payment", "demo-ledger"]
        .iter()
        .all(|s| services.contains(s))
    {
        return false;
    }
    let consumer = spans.iter().find(|s| tag(s, "span.kind") == Some("consumer"));
    let Some(consumer) = consumer else { return false };
    let Some(producer) = parent(trace, consumer) else {
        return false;
    };
    tag(producer, "span.kind") == Some("producer")
        && service(trace, producer) == "demo-payment"
        && service(trace, consumer) == "demo-ledger"
        && tag(consumer, "hopscope.hop_kind") == Some("mq")
        && spans.iter().any(|s| tag(s, "hopscope.hop_kind") == Some("cache"))
        && spans.iter().any(|s| tag(s, "hopscope.hop_kind") == Some("db"))
}

async fn check(extra: &[&str]) {
    let queue = format!("hopscope-demo-test-{}-{}", std::process::id(), extra.len());
    let mut args = vec!["demo", "--rate", "20", "--queue", queue.as_str()];
    args.extend_from_slice(extra);
    let hopscope = Hopscope::start(&args).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = hopscope.get("/api/traces?service=demo-gateway&limit=200").await;
        if status == 200 {
            let traces = body["data"].as_array().cloned().unwrap_or_default();
            if let Some(trace) = traces.iter().find(|t| full_chain(t)) {
                let spans = trace["spans"].as_array().map_or(0, Vec::len);
                assert!(spans >= 10, "a full transfer has at least 10 spans: {trace}");
                let hosts: std::collections::HashSet<&str> = trace["spans"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| tag(s, "hopscope.host"))
                    .collect();
                assert!(hosts.len() >= 4, "services run on different hosts: {hosts:?}");
                let services = hopscope.get_ok("/api/services").await;
                assert!(services["data"].as_array().is_some_and(|d| d.len() >= 4), "{services}");
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "hopscope demo {extra:?} served no full multi-hop trace within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn demo_over_real_middleware_serves_multi_hop_traces() {
    check(&["--all-faults"]).await;
}

#[tokio::test]
async fn demo_fully_simulated_serves_multi_hop_traces() {
    check(&["--simulate", "--all-faults"]).await;
}
