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
fn fire_and_forget_consumer_is_background_not_the_path() {
    let a = run(fixtures::async_queue(), fixtures::QUEUE_TRACE);
    assert_eq!(a.duration_us, 20_000);
    assert_eq!(ops(&a), [("POST /order", 17_000), ("payments publish", 3_000)]);
    let culprit = a.culprit.clone().unwrap();
    assert_eq!(culprit.item.operation, "POST /order");
    assert!((culprit.share - 0.85).abs() < 1e-9);
    assert_eq!(a.background.len(), 1);
    let bg = &a.background[0];
    assert_eq!(bg.span_id, span_id(fixtures::QUEUE_CONSUMER_SPAN));
    assert_eq!(bg.queue.as_deref(), Some("payments"));
    assert_eq!(bg.duration_us, 122_000);
    let path: Vec<_> = bg
        .critical_path
        .iter()
        .map(|i| (i.operation.as_str(), i.self_time_us))
        .collect();
    assert_eq!(
        path,
        [
            (QUEUE_WAIT, 100_000),
            ("payments process", 7_000),
            ("INSERT invoices", 15_000)
        ]
    );
    let bg_culprit = bg.culprit.as_ref().unwrap();
    assert_eq!(bg_culprit.item.item, ItemKind::QueueWait);
    assert_eq!(bg_culprit.item.peer.as_deref(), Some("payments"));
    assert_eq!(bg_culprit.item.service, "rabbitmq");
    let consumer = a
        .timeline
        .iter()
        .find(|t| t.span_id == span_id(fixtures::QUEUE_CONSUMER_SPAN))
        .unwrap();
    assert_eq!(consumer.edge, Edge::Background);
    assert!(consumer.background);
}

#[test]
fn request_reply_over_a_queue_blames_the_wait_in_the_queue() {
    let a = run(fixtures::request_reply(), fixtures::REPLY_TRACE);
    assert_eq!(a.duration_us, 140_000);
    assert_eq!(
        ops(&a),
        [
            ("POST /order", 9_000),
            ("payments publish", 3_000),
            (QUEUE_WAIT, 100_000),
            ("payments process", 3_000),
            ("INSERT invoices", 15_000),
            ("order-replies publish", 2_000),
            (QUEUE_WAIT, 2_000),
            ("order-replies process", 5_000),
            ("audit publish", 1_000),
        ]
    );
    // The path explains the response exactly: its self times add up to it.
    assert_eq!(
        a.critical_path.iter().map(|i| i.self_time_us).sum::<u64>(),
        a.duration_us
    );
    let culprit = a.culprit.clone().unwrap();
    assert_eq!(culprit.item.item, ItemKind::QueueWait);
    assert_eq!(culprit.item.peer.as_deref(), Some("payments"));
    assert_eq!(culprit.item.span_id, span_id(fixtures::REPLY_REQUEST_CONSUMER_SPAN));
    // The queue's node is the wait in it and the publish to it.
    assert_eq!((culprit.node_self_time_us, culprit.node_items), (103_000, 2));
    assert!((culprit.share - 103.0 / 140.0).abs() < 1e-9);
    // The audit consumer runs after the response: background, with its own queue wait.
    assert_eq!(a.background.len(), 1);
    let bg = &a.background[0];
    assert_eq!(bg.span_id, span_id(fixtures::REPLY_AUDIT_SPAN));
    assert_eq!(bg.critical_path[0].self_time_us, 263_000);
    assert_eq!(bg.culprit.as_ref().unwrap().item.peer.as_deref(), Some("audit"));
    let edges: Vec<_> = a.timeline.iter().map(|t| t.edge).collect();
    assert_eq!(edges.iter().filter(|e| **e == Edge::Blocking).count(), 2, "{edges:?}");
    assert_eq!(edges.iter().filter(|e| **e == Edge::Background).count(), 1, "{edges:?}");
}

#[test]
fn a_reply_attached_by_a_link_blocks_like_a_child() {
    // The same shape with the consumers attached by links instead of parent ids, as
    // OpenTelemetry's messaging conventions allow.
    let mut spans = fixtures::request_reply();
    for s in &mut spans {
        if s.kind == SpanKind::Consumer {
            let producer = s.parent_span_id.take().unwrap();
            s.links.push(hopscope_schemas::Link {
                trace_id: s.trace_id,
                span_id: producer,
                trace_state: String::new(),
                attributes: Vec::new(),
                dropped_attributes_count: 0,
                flags: 0,
            });
        }
    }
    let a = run(spans, fixtures::REPLY_TRACE);
    assert_eq!(a.culprit.unwrap().item.peer.as_deref(), Some("payments"));
    assert_eq!(a.background.len(), 1);
}

#[test]
fn the_waiter_may_be_a_synchronous_descendant() {
    // gateway -> (HTTP) -> orders handler, which publishes a request and waits for the
    // reply inside its own span; the gateway only sees a slow HTTP call.
    let gw = resource("gateway", "g1", None);
    let orders = resource("orders", "o1", None);
    let pricing = resource("pricing", "p1", None);
    let spans = vec![
        span(&gw, 7, 1, None, "GET /quote", SpanKind::Server, 0, 100_000).build(),
        span(&gw, 7, 2, Some(1), "POST /quote", SpanKind::Client, 1_000, 98_000)
            .http("orders")
            .build(),
        span(&orders, 7, 3, Some(2), "POST /quote", SpanKind::Server, 2_000, 96_000).build(),
        span(
            &orders,
            7,
            4,
            Some(3),
            "prices publish",
            SpanKind::Producer,
            3_000,
            1_000,
        )
        .rabbit("prices")
        .build(),
        span(
            &pricing,
            7,
            5,
            Some(4),
            "prices process",
            SpanKind::Consumer,
            80_000,
            10_000,
        )
        .rabbit("prices")
        .build(),
        span(
            &pricing,
            7,
            6,
            Some(5),
            "replies publish",
            SpanKind::Producer,
            89_000,
            1_000,
        )
        .rabbit("replies")
        .build(),
        span(
            &orders,
            7,
            7,
            Some(6),
            "replies process",
            SpanKind::Consumer,
            91_000,
            2_000,
        )
        .rabbit("replies")
        .build(),
    ];
    let a = run(spans, 7);
    let c = a.culprit.unwrap();
    assert_eq!(
        (c.item.operation.as_str(), c.item.peer.as_deref()),
        (QUEUE_WAIT, Some("prices"))
    );
    assert_eq!(c.item.self_time_us, 76_000);
    let handler = a
        .critical_path
        .iter()
        .find(|i| i.service == "orders" && i.operation == "POST /quote")
        .unwrap();
    // 96 ms minus the chain from the publish (3 ms) to the reply's end (93 ms).
    assert_eq!(handler.self_time_us, 6_000);
    assert!(a.background.is_empty());
}

#[test]
fn retries_against_one_instance_add_up_in_the_culprit() {
    // Three 40 ms attempts against one slow instance outweigh one 100 ms computation.
    let r = resource("svc", "h", None);
    let mut spans = vec![
        span(&r, 8, 1, None, "POST /pay", SpanKind::Server, 0, 230_000).build(),
        span(&r, 8, 2, Some(1), "score", SpanKind::Internal, 0, 100_000).build(),
    ];
    for k in 0..3u64 {
        spans.push(
            span(
                &r,
                8,
                3 + k,
                Some(1),
                "GET /limits",
                SpanKind::Client,
                100_000 + k * 43_000,
                40_000,
            )
            .http("limits:8080")
            .build(),
        );
    }
    let a = run(spans, 8);
    let c = a.culprit.unwrap();
    assert_eq!(c.item.peer.as_deref(), Some("limits:8080"));
    assert_eq!((c.node_self_time_us, c.node_items), (120_000, 3));
    assert!((c.share - 120.0 / 230.0).abs() < 1e-9);
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

#[test]
fn work_begun_after_the_caller_gave_up_takes_none_of_its_time() {
    // api's client times out at 300 ms; ledger's UPDATE waits on a lock until 900 ms, then
    // ledger journals (INSERT) after the caller is gone. The INSERT is not skew to be
    // shifted back over the UPDATE: it gets no time, and the UPDATE stays the culprit.
    let api = resource("api", "a1", None);
    let ledger = resource("ledger", "l1", None);
    let spans = vec![
        span(&api, 11, 1, None, "POST /pay", SpanKind::Server, 0, 310_000).build(),
        span(&api, 11, 2, Some(1), "POST /ledger", SpanKind::Client, 5_000, 300_000)
            .http("ledger")
            .error("timeout")
            .build(),
        span(
            &ledger,
            11,
            3,
            Some(2),
            "POST /ledger",
            SpanKind::Server,
            6_000,
            950_000,
        )
        .build(),
        span(
            &ledger,
            11,
            4,
            Some(3),
            "UPDATE accounts",
            SpanKind::Client,
            7_000,
            893_000,
        )
        .postgres("ledger-db")
        .build(),
        span(
            &ledger,
            11,
            5,
            Some(3),
            "INSERT journal",
            SpanKind::Client,
            901_000,
            40_000,
        )
        .postgres("ledger-db")
        .build(),
    ];
    let a = run(spans, 11);
    let c = a.culprit.unwrap();
    assert_eq!(c.item.operation, "UPDATE accounts");
    assert_eq!(c.item.self_time_us, 298_000);
    let insert = a.timeline.iter().find(|t| t.span_id == span_id(5)).unwrap();
    assert_eq!(insert.end_ns - insert.start_ns, 0);
    assert_eq!(insert.clamped_ns, 40_000_000);
}

#[test]
fn a_callee_whose_clock_is_ahead_is_shifted_not_cut() {
    // The server's clock is 30 ms ahead: it starts inside its (successful) client span and
    // ends after it. It is shifted back to end with the client, not cut as a timeout, so
    // the client's own time stays the network's 2 ms.
    let web = resource("web", "h1", None);
    let db = resource("db-svc", "h2", None);
    let spans = vec![
        span(&web, 12, 1, None, "GET /", SpanKind::Server, 0, 110_000).build(),
        span(&web, 12, 2, Some(1), "call", SpanKind::Client, 5_000, 100_000)
            .http("db-svc")
            .build(),
        span(&db, 12, 3, Some(2), "handle", SpanKind::Server, 36_000, 98_000).build(),
    ];
    let a = run(spans, 12);
    let handle = a.critical_path.iter().find(|i| i.operation == "handle").unwrap();
    assert_eq!(handle.duration_us, 98_000);
    let call = a.critical_path.iter().find(|i| i.operation == "call").unwrap();
    assert_eq!(call.self_time_us, 2_000);
    assert_eq!(a.culprit.unwrap().item.operation, "handle");
    let timing = a.timeline.iter().find(|t| t.span_id == span_id(3)).unwrap();
    assert_eq!((timing.shift_ns, timing.clamped_ns), (-29_000_000, 0));
}
