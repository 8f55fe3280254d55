//! `hopscope demo` runs the all-in-one plus the banking workload; within a bounded time
//! the Jaeger API serves multi-hop traces that cross all four services, with the ledger's
//! consumer span under payment's producer span — once over the real middleware on this
//! machine and once fully simulated (what a fresh machine without the services gets).
//! Nodes carry the names a reader expects (`mariadb-core:3306`, `payment:80`), a timeout
//! says "timeout", and on SIGTERM the workload flushes before the collector closes.

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
                check_node_names(&hopscope).await;
                check_timeout_says_timeout(&hopscope).await;
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

/// `start`/`end` of the last ten minutes, in µs.
fn recent() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    format!("start={}&end={}", now - 600_000_000, now + 60_000_000)
}

/// Peers of the middleware page of `kind`.
async fn peers(hopscope: &Hopscope, kind: &str) -> Vec<String> {
    let body = hopscope
        .get_ok(&format!("/api/v1/middleware?kind={kind}&{}", recent()))
        .await;
    body["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["peer"].as_str().map(str::to_owned))
        .collect()
}

/// The middleware pages read like a real system: named nodes, no loopback addresses.
async fn check_node_names(hopscope: &Hopscope) {
    let http = peers(hopscope, "http").await;
    assert!(http.iter().any(|p| p == "payment:80"), "{http:?}");
    assert!(http.iter().any(|p| p.starts_with("account-")), "{http:?}");
    let db = peers(hopscope, "db").await;
    assert!(db.iter().any(|p| p == "mariadb-core:3306"), "{db:?}");
    assert!(db.iter().any(|p| p == "postgres-main:5432"), "{db:?}");
    for peer in http.iter().chain(&db).chain(&peers(hopscope, "mq").await) {
        assert!(!peer.starts_with("127.0.0.1"), "a loopback node name: {peer}");
    }
}

/// With the timeout fault, account's call to payment fails with an error that says so.
async fn check_timeout_says_timeout(hopscope: &Hopscope) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = hopscope.get_ok("/api/traces?service=demo-account&limit=500").await;
        let timed_out: Vec<&Value> = body["data"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|t| t["spans"].as_array().into_iter().flatten())
            .filter(|s| tag(s, "error.type") == Some("timeout"))
            .collect();
        if let Some(span) = timed_out.first() {
            let message = tag(span, "otel.status_description").unwrap_or_default();
            assert!(
                message.starts_with("timeout"),
                "root-cause message: {message:?} in {span}"
            );
            return;
        }
        assert!(Instant::now() < deadline, "no timed-out call within 30 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn demo_stops_its_workload_before_the_collector() {
    let queue = format!("hopscope-demo-stop-{}", std::process::id());
    let mut hopscope =
        Hopscope::start_logged(&["demo", "--simulate", "--all-faults", "--rate", "20", "--queue", &queue]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !hopscope.log().contains("demo workload running") {
        assert!(
            Instant::now() < deadline,
            "the demo did not start:
{}",
            hopscope.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let it export for a few seconds (batches every 500 ms), then stop it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = hopscope.terminate();
    assert!(status.success(), "{status:?}");
    let log = hopscope.log();
    assert!(
        log.contains("faults=slow-redis-shard, db-lock-wait, timeout, queue-backlog, noisy-host"),
        "faults in words:\n{log}"
    );
    assert!(
        !log.contains("span export failed"),
        "exports failed during shutdown:\n{log}"
    );
    let flushed: Vec<&str> = log.lines().filter(|l| l.contains("demo spans")).collect();
    assert_eq!(
        flushed.len(),
        6,
        "one flush line per service instance (risk included):\n{log}"
    );
    for line in &flushed {
        assert!(line.contains("failed=0") && line.contains("dropped=0"), "{line}");
        assert!(!line.contains("exported=0 "), "{line}");
    }
    let (flush, close) = (log.find("demo spans").unwrap(), log.find("shutting down").unwrap());
    assert!(
        flush < close,
        "the collector closed before the workload flushed:\n{log}"
    );
}

#[tokio::test]
async fn demo_over_real_middleware_serves_multi_hop_traces() {
    check(&["--all-faults"]).await;
}

#[tokio::test]
async fn demo_fully_simulated_serves_multi_hop_traces() {
    check(&["--simulate", "--all-faults"]).await;
}
