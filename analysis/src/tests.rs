use std::sync::Arc;

use hopscope_schemas::fixtures::{self, T0, resource, span, span_id, trace_id};
use hopscope_schemas::{SpanKind, SpanRecord};

use super::*;

fn arcs(spans: Vec<SpanRecord>) -> Vec<Arc<SpanRecord>> {
    spans.into_iter().map(Arc::new).collect()
}

fn run(spans: Vec<SpanRecord>, trace: u64) -> TraceAnalysis {
    let spans: Vec<_> = arcs(spans)
        .into_iter()
        .filter(|s| s.trace_id == trace_id(trace))
        .collect();
    analyze(trace_id(trace), &spans, None).unwrap()
}

fn ops(a: &TraceAnalysis) -> Vec<(&str, u64)> {
    a.critical_path
        .iter()
        .map(|i| (i.operation.as_str(), i.self_time_us))
        .collect()
}

#[test]
fn slow_shard_is_the_culprit() {
    // An incident trace on shard 2.
    let n = (30..60).find(|n| n % 3 == 1).unwrap();
    let a = run(fixtures::slow_redis_shard(), fixtures::REDIS_TRACES + n);
    let culprit = a.culprit.clone().unwrap();
    assert_eq!(culprit.item.peer.as_deref(), Some("redis-shard-2:6379"));
    assert_eq!(culprit.item.hop_kind, HopKind::Cache);
    assert_eq!(culprit.item.self_time_us, 40_000);
    assert!((culprit.share - 40.0 / 42.0).abs() < 1e-9);
    assert_eq!(a.duration_us, 42_000);
    assert_eq!(ops(&a), [("GET /cart", 2_000), ("GET", 40_000)]);
    assert!(a.errors.is_empty());
}

#[test]
fn lock_wait_behind_a_timeout() {
    let a = run(fixtures::db_lock_wait(), fixtures::LOCK_TRACE);
    let culprit = a.culprit.as_ref().unwrap();
    assert_eq!(culprit.item.span_id, span_id(fixtures::LOCK_DB_SPAN));
    assert_eq!(culprit.item.peer.as_deref(), Some("ledger-db:5432"));
    // The ledger spans are clamped at the client's end (1 010 ms).
    assert_eq!(
        ops(&a),
        [
            ("POST /pay", 20_000),
            ("POST /ledger", 5_000),
            ("POST /ledger", 5_000),
            ("UPDATE accounts", 990_000)
        ]
    );
    assert_eq!(a.duration_us, 1_020_000);
    let errors: Vec<_> = a.errors.iter().map(|e| e.span_id).collect();
    assert_eq!(errors, [span_id(fixtures::LOCK_CLIENT_SPAN)]);
    assert_eq!(a.errors[0].exception_type.as_deref(), Some("TimeoutError"));
}

#[test]
fn async_hop_has_an_explicit_queue_wait() {
    let a = run(fixtures::async_queue(), fixtures::QUEUE_TRACE);
    assert_eq!(a.duration_us, 130_000);
    assert_eq!(
        ops(&a),
        [
            ("POST /order", 17_000),
            ("payments publish", 3_000),
            (QUEUE_WAIT, 100_000),
            ("payments process", 7_000),
            ("INSERT invoices", 15_000)
        ]
    );
    let culprit = a.culprit.unwrap();
    assert_eq!(culprit.item.item, ItemKind::QueueWait);
    assert_eq!(culprit.item.peer.as_deref(), Some("payments"));
    assert_eq!(culprit.item.service, "rabbitmq");
    assert_eq!(culprit.item.span_id, span_id(fixtures::QUEUE_CONSUMER_SPAN));
    assert!((culprit.share - 100.0 / 130.0).abs() < 1e-9);
}

#[test]
fn deepest_error_is_the_root_cause() {
    let a = run(fixtures::layering(), fixtures::LAYER_TRACE);
    assert_eq!(a.errors.len(), 1);
    assert_eq!(a.errors[0].operation, "GET /reserve");
    assert_eq!(a.errors[0].service, "orders");
    assert_eq!(a.errors[0].exception_type.as_deref(), Some("StockError"));
    // Every span is nested, so the whole chain is the path.
    assert_eq!(a.critical_path.len(), 7);
    assert_eq!(a.critical_path[0].operation, "GET /");
}

#[test]
fn skewed_child_is_shifted_into_its_parent() {
    let web = resource("web", "h1", None);
    let db = resource("db-svc", "h2", Some("private"));
    // The child's host runs 50 ms ahead: it appears to start after its parent ended.
    let spans = vec![
        span(&web, 1, 1, None, "GET /", SpanKind::Server, 0, 10_000).build(),
        span(&web, 1, 2, Some(1), "call", SpanKind::Client, 1_000, 8_000)
            .http("db-svc")
            .build(),
        span(&db, 1, 3, Some(2), "handle", SpanKind::Server, 60_000, 6_000).build(),
        span(&db, 1, 4, Some(3), "query", SpanKind::Internal, 61_000, 5_000).build(),
    ];
    let a = run(spans, 1);
    assert_eq!(a.duration_us, 10_000);
    let handle = a.critical_path.iter().find(|i| i.operation == "handle").unwrap();
    // Shifted back so it ends with the client span (at 9 ms), its child moved with it.
    assert_eq!(handle.start_us, (T0 / 1_000) + 3_000);
    let query = a.critical_path.iter().find(|i| i.operation == "query").unwrap();
    assert_eq!(query.start_us, (T0 / 1_000) + 4_000);
    assert_eq!(query.self_time_us, 5_000);
    assert_eq!(handle.self_time_us, 1_000);
    assert_eq!(a.culprit.unwrap().item.operation, "query");
}

#[test]
fn concurrent_children_only_the_last_finisher_is_on_the_path() {
    let r = resource("svc", "h", None);
    let spans = vec![
        span(&r, 2, 1, None, "root", SpanKind::Server, 0, 100).build(),
        span(&r, 2, 2, Some(1), "a", SpanKind::Internal, 10, 50).build(),
        span(&r, 2, 3, Some(1), "b", SpanKind::Internal, 20, 70).build(),
        span(&r, 2, 4, Some(1), "c", SpanKind::Internal, 0, 15).build(),
    ];
    let a = run(spans, 2);
    let names: Vec<_> = a.critical_path.iter().map(|i| i.operation.as_str()).collect();
    assert_eq!(names, ["root", "c", "b"]);
    // Root self time: 100 - union([0,15],[10,60],[20,90]) = 10.
    assert_eq!(a.critical_path[0].self_time_us, 10);
}

#[test]
fn empty_and_unknown_root() {
    assert!(analyze(trace_id(9), &[], None).is_none());
    let r = resource("svc", "h", None);
    let spans = arcs(vec![span(&r, 9, 1, None, "root", SpanKind::Server, 0, 100).build()]);
    assert!(analyze(trace_id(9), &spans, Some(span_id(77))).is_none());
    let a = analyze(trace_id(9), &spans, None).unwrap();
    assert_eq!(a.culprit.unwrap().share, 1.0);
}

#[test]
fn orphans_and_cycles_do_not_hang() {
    let r = resource("svc", "h", None);
    let spans = vec![
        span(&r, 3, 1, Some(2), "x", SpanKind::Internal, 0, 100).build(),
        span(&r, 3, 2, Some(1), "y", SpanKind::Internal, 10, 50)
            .error("boom")
            .build(),
        span(&r, 3, 3, Some(99), "orphan", SpanKind::Internal, 5, 10)
            .error("lost")
            .build(),
    ];
    let a = run(spans, 3);
    assert!(!a.critical_path.is_empty());
    assert_eq!(a.errors.len(), 2);
}

/// A wide and deep synthetic trace, as the bench uses.
pub(crate) fn big_trace(spans: usize) -> Vec<Arc<SpanRecord>> {
    let r = resource("svc", "h", Some("public"));
    let mut out = vec![span(&r, 5, 1, None, "root", SpanKind::Server, 0, 10_000_000).build()];
    for i in 2..=spans as u64 {
        // Each span's parent is i / 2 (a binary tree); times overlap loosely, so skew
        // adjustment, clamping and the walk all get exercised.
        let p = i / 2;
        let start = (i * 37) % 1_000;
        out.push(
            span(&r, 5, i, Some(p), "op", SpanKind::Internal, start, 5_000)
                .redis("r1")
                .build(),
        );
    }
    arcs(out)
}

#[test]
fn ten_thousand_spans() {
    let spans = big_trace(10_000);
    let a = analyze(trace_id(5), &spans, None).unwrap();
    assert!(!a.critical_path.is_empty());
}
