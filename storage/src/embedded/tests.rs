//! Store-level tests of the embedded store (no I/O).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use hopscope_schemas::{
    AttrValue, Event, HopKind, KeyValue, Resource, Scope, SpanId, SpanKind, SpanRecord, StatusCode, TraceId,
};

use super::*;
use crate::matching::span_matches;
use crate::query::TagFilter;

fn tid(n: u128) -> TraceId {
    TraceId(n.to_be_bytes())
}

fn sid(n: u64) -> SpanId {
    SpanId(n.to_be_bytes())
}

/// A span of trace `trace`, id `id`, in `service`, starting at `start` for `duration` ns.
fn span(trace: u128, id: u64, service: &str, name: &str, start: u64, duration: u64) -> SpanRecord {
    SpanRecord {
        trace_id: tid(trace),
        span_id: sid(id),
        parent_span_id: None,
        trace_state: String::new(),
        flags: 0,
        name: name.into(),
        kind: SpanKind::Server,
        start_time_unix_nano: start,
        end_time_unix_nano: start + duration,
        status_code: StatusCode::Unset,
        status_message: String::new(),
        attributes: vec![],
        dropped_attributes_count: 0,
        events: vec![],
        dropped_events_count: 0,
        links: vec![],
        dropped_links_count: 0,
        resource: Arc::new(Resource {
            attributes: vec![KeyValue::new("service.name", AttrValue::String(service.into()))],
            ..Default::default()
        }),
        scope: Arc::new(Scope::default()),
        service_name: service.into(),
        hop_kind: HopKind::Internal,
        peer: None,
        host: None,
    }
}

fn child(mut s: SpanRecord, parent: u64, kind: SpanKind) -> SpanRecord {
    s.parent_span_id = Some(sid(parent));
    s.kind = kind;
    s
}

fn with_attr(mut s: SpanRecord, key: &str, value: AttrValue) -> SpanRecord {
    s.attributes.push(KeyValue::new(key, value));
    s
}

fn tag(key: &str, value: &str) -> TagFilter {
    TagFilter {
        key: key.into(),
        value: value.into(),
    }
}

fn big() -> EmbeddedStore {
    EmbeddedStore::new(EmbeddedConfig::default())
}

async fn ids(store: &EmbeddedStore, query: TraceQuery) -> Vec<u128> {
    let traces = store.find_traces(&query).await.expect("find_traces");
    traces.iter().map(|t| u128::from_be_bytes(t.trace_id.0)).collect()
}

#[tokio::test]
async fn writes_and_reads_a_trace_by_id() {
    let store = big();
    let root = span(1, 1, "front", "GET /", 100, 50);
    let db = child(span(1, 2, "front", "SELECT", 110, 10), 1, SpanKind::Client);
    let late = child(span(1, 3, "cart", "add", 105, 5), 1, SpanKind::Server);
    store.write_spans(vec![db.clone(), root.clone()]).await.expect("write");
    store.write_spans(vec![late.clone()]).await.expect("write");
    let trace = store.trace(tid(1)).await.expect("trace").expect("stored");
    let got: Vec<SpanRecord> = trace.spans.iter().map(|s| (**s).clone()).collect();
    assert_eq!(got, vec![root, late, db], "sorted by start");
    assert!(store.trace(tid(2)).await.expect("trace").is_none());
    assert_eq!(store.services().await.expect("services"), vec!["cart", "front"]);
    let stats = store.stats();
    assert_eq!((stats.spans, stats.traces), (3, 1));
    assert!(stats.bytes > 0);
}

#[tokio::test]
async fn duplicate_spans_are_stored_once() {
    let store = big();
    let batch = vec![span(1, 1, "a", "x", 10, 1), span(1, 2, "a", "y", 11, 1)];
    store.write_spans(batch.clone()).await.expect("write");
    let bytes = store.stats().bytes;
    store.write_spans(batch).await.expect("retry");
    store
        .write_spans(vec![span(1, 1, "a", "other name", 12, 1)])
        .await
        .expect("write");
    let trace = store.trace(tid(1)).await.expect("trace").expect("stored");
    assert_eq!(trace.spans.len(), 2);
    assert_eq!(trace.spans[0].name, "x", "the first copy is kept");
    assert_eq!(store.stats().spans, 2);
    assert_eq!(store.stats().bytes, bytes);
    let q = TraceQuery {
        operation: Some("other name".into()),
        ..Default::default()
    };
    assert!(ids(&store, q).await.is_empty());
}

/// Trace 1: front server (error, 100 ns) → pay client (db attrs, event); trace 2: pay
/// server with `peer=db1` resource attribute.
async fn sample_store() -> EmbeddedStore {
    let store = big();
    let mut front = with_attr(
        span(1, 1, "front", "GET /checkout", 1_000, 100),
        "http.status_code",
        AttrValue::Int(500),
    );
    front.status_code = StatusCode::Error;
    let mut pay = child(span(1, 2, "pay", "charge", 1_010, 60), 1, SpanKind::Client);
    pay = with_attr(pay, "db.system", AttrValue::String("postgresql".into()));
    pay.events.push(Event {
        time_unix_nano: 1_020,
        name: "exception".into(),
        attributes: vec![KeyValue::new("exception.type", AttrValue::String("Timeout".into()))],
        dropped_attributes_count: 0,
    });
    let mut pay2 = span(2, 3, "pay", "charge", 2_000, 30);
    pay2.resource = Arc::new(Resource {
        attributes: vec![
            KeyValue::new("service.name", AttrValue::String("pay".into())),
            KeyValue::new("host.name", AttrValue::String("vm-2".into())),
        ],
        ..Default::default()
    });
    store.write_spans(vec![front, pay, pay2]).await.expect("write");
    store
}

#[tokio::test]
async fn searches_by_every_filter() {
    let store = sample_store().await;
    let q = |f: fn(&mut TraceQuery)| {
        let mut q = TraceQuery::default();
        f(&mut q);
        q
    };
    assert_eq!(
        ids(&store, q(|q| q.service = Some("pay".into()))).await,
        vec![2, 1],
        "newest first"
    );
    assert_eq!(ids(&store, q(|q| q.service = Some("front".into()))).await, vec![1]);
    assert!(ids(&store, q(|q| q.service = Some("nope".into()))).await.is_empty());
    assert_eq!(
        ids(&store, q(|q| q.operation = Some("GET /checkout".into()))).await,
        vec![1]
    );
    let pay_charge = |q: &mut TraceQuery| {
        q.service = Some("pay".into());
        q.operation = Some("charge".into());
    };
    assert_eq!(ids(&store, q(pay_charge)).await, vec![2, 1]);
    assert_eq!(ids(&store, q(|q| q.span_kind = Some(SpanKind::Client))).await, vec![1]);
    assert_eq!(
        ids(&store, q(|q| q.tags = vec![tag("http.status_code", "500")])).await,
        vec![1]
    );
    assert_eq!(
        ids(&store, q(|q| q.tags = vec![tag("host.name", "vm-2")])).await,
        vec![2],
        "resource"
    );
    assert_eq!(
        ids(&store, q(|q| q.tags = vec![tag("exception.type", "Timeout")])).await,
        vec![1],
        "event"
    );
    assert_eq!(ids(&store, q(|q| q.tags = vec![tag("error", "true")])).await, vec![1]);
    assert_eq!(
        ids(&store, q(|q| q.tags = vec![tag("span.kind", "client")])).await,
        vec![1]
    );
    assert_eq!(
        ids(&store, q(|q| q.tags = vec![tag("otel.status_code", "ERROR")])).await,
        vec![1]
    );
    assert!(
        ids(&store, q(|q| q.tags = vec![tag("http.status_code", "200")]))
            .await
            .is_empty()
    );
    assert_eq!(ids(&store, q(|q| q.min_duration_ns = Some(60))).await, vec![1]);
    assert_eq!(ids(&store, q(|q| q.max_duration_ns = Some(30))).await, vec![2]);
    assert_eq!(ids(&store, q(|q| q.start_ns = Some(1_500))).await, vec![2]);
    assert_eq!(ids(&store, q(|q| q.end_ns = Some(1_005))).await, vec![1]);
    assert!(
        ids(
            &store,
            q(|q| {
                q.start_ns = Some(5);
                q.end_ns = Some(4)
            })
        )
        .await
        .is_empty()
    );
    assert!(
        ids(
            &store,
            q(|q| {
                q.min_duration_ns = Some(5);
                q.max_duration_ns = Some(4)
            })
        )
        .await
        .is_empty()
    );
}

#[tokio::test]
async fn all_filters_hold_on_the_same_span() {
    let store = sample_store().await;
    // Trace 1 has a `front` span with status ERROR and a `pay` span; no single span is both.
    let q = TraceQuery {
        service: Some("pay".into()),
        tags: vec![tag("error", "true")],
        ..Default::default()
    };
    assert!(ids(&store, q).await.is_empty());
    let q = TraceQuery {
        service: Some("front".into()),
        tags: vec![tag("exception.type", "Timeout")],
        ..Default::default()
    };
    assert!(ids(&store, q).await.is_empty());
    let q = TraceQuery {
        service: Some("pay".into()),
        min_duration_ns: Some(100),
        ..Default::default()
    };
    assert!(ids(&store, q).await.is_empty(), "the 100 ns span is front's");
    let q = TraceQuery {
        service: Some("pay".into()),
        span_kind: Some(SpanKind::Client),
        tags: vec![tag("db.system", "postgresql"), tag("exception.type", "Timeout")],
        min_duration_ns: Some(60),
        max_duration_ns: Some(60),
        start_ns: Some(1_010),
        end_ns: Some(1_010),
        ..Default::default()
    };
    assert_eq!(ids(&store, q).await, vec![1]);
}

#[tokio::test]
async fn limit_and_newest_first() {
    let store = big();
    let spans = (1..=30u64)
        .map(|i| span(u128::from(i), i, "svc", "op", i * 10, 1))
        .collect();
    store.write_spans(spans).await.expect("write");
    let q = TraceQuery {
        service: Some("svc".into()),
        limit: 3,
        ..Default::default()
    };
    assert_eq!(ids(&store, q).await, vec![30, 29, 28]);
    let all = ids(&store, TraceQuery::default()).await;
    assert_eq!(all, (11..=30u128).rev().collect::<Vec<_>>(), "limit 0 means 20");
    let q = TraceQuery {
        start_ns: Some(50),
        end_ns: Some(100),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(ids(&store, q).await, (5..=10u128).rev().collect::<Vec<_>>());
}

/// With `max_spans: 4` every block holds one span, so eviction goes span block by span
/// block, oldest first, each taking every trace with a span in it whole.
#[tokio::test]
async fn evicts_oldest_blocks_with_their_traces_whole_by_span_count() {
    let store = EmbeddedStore::new(EmbeddedConfig {
        max_spans: 4,
        ..Default::default()
    });
    let a = vec![span(1, 1, "a", "x", 10, 1), span(1, 2, "a", "x", 11, 1)];
    let b = vec![with_attr(
        span(2, 3, "b", "y", 20, 1),
        "k",
        AttrValue::String("v".into()),
    )];
    store.write_spans(a).await.expect("write");
    store.write_spans(b).await.expect("write");
    assert!(store.trace(tid(1)).await.expect("trace").is_some());
    store
        .write_spans(vec![span(3, 4, "c", "z", 30, 1)])
        .await
        .expect("write");
    assert_eq!(store.stats().evicted_traces, 0);
    store
        .write_spans(vec![span(3, 5, "c", "z", 31, 1)])
        .await
        .expect("write");
    let stats = store.stats();
    assert_eq!(
        (stats.spans, stats.traces, stats.evicted_traces, stats.evicted_spans),
        (3, 2, 1, 2)
    );
    assert!(store.trace(tid(1)).await.expect("trace").is_none());
    assert_eq!(store.services().await.expect("services"), vec!["b", "c"]);
    // Writing to trace 2 again does not keep it: its first span is in the oldest block,
    // so it goes next, whole (its newer span included).
    store
        .write_spans(vec![span(2, 6, "b", "y", 21, 1)])
        .await
        .expect("write");
    store
        .write_spans(vec![span(4, 7, "d", "w", 40, 1)])
        .await
        .expect("write");
    assert!(store.trace(tid(2)).await.expect("trace").is_none());
    let kept = store.trace(tid(3)).await.expect("trace").expect("kept");
    assert_eq!(kept.spans.len(), 2);
    assert_eq!(store.services().await.expect("services"), vec!["c", "d"]);
    let stats = store.stats();
    assert_eq!(
        (stats.spans, stats.traces, stats.evicted_traces, stats.evicted_spans),
        (3, 2, 2, 4)
    );
    for q in [
        TraceQuery {
            service: Some("b".into()),
            ..Default::default()
        },
        TraceQuery {
            tags: vec![tag("k", "v")],
            ..Default::default()
        },
    ] {
        assert!(ids(&store, q).await.is_empty());
    }
    assert_eq!(ids(&store, TraceQuery::default()).await, vec![4, 3]);
}

#[tokio::test]
async fn evicts_by_bytes_and_accounting_returns_to_zero() {
    // One span in a sealed block (one row per block at 16 spans): what each trace takes
    // below, where every block is sealed after one span (its byte target is 1/16 of the
    // limit) and the next one's lookup tables exist only while it takes its span.
    let store = EmbeddedStore::new(EmbeddedConfig {
        max_spans: 16,
        ..Default::default()
    });
    let one = with_attr(span(1, 1, "a", "x", 10, 1), "url", AttrValue::String("u".repeat(100)));
    store.write_spans(vec![one]).await.expect("write");
    let per_trace = store.stats().bytes;
    let limit = per_trace * 3 + per_trace / 2;
    let store = EmbeddedStore::new(EmbeddedConfig {
        max_bytes: limit,
        ..Default::default()
    });
    for i in 1..=10u64 {
        let s = with_attr(
            span(u128::from(i), i, &format!("s{i}"), "x", i, 1),
            "url",
            AttrValue::String("u".repeat(100)),
        );
        store.write_spans(vec![s]).await.expect("write");
        assert!(store.stats().bytes <= limit);
    }
    let stats = store.stats();
    assert_eq!(stats.traces, 3);
    assert_eq!(stats.evicted_traces, 7);
    assert_eq!(store.services().await.expect("services"), vec!["s10", "s8", "s9"]);

    // Everything evicted: nothing left in any index and no bytes counted.
    let tiny = EmbeddedStore::new(EmbeddedConfig {
        max_spans: 0,
        ..Default::default()
    });
    let store2 = sample_store().await;
    let spans: Vec<SpanRecord> = store2
        .find_traces(&TraceQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("find")
        .iter()
        .flat_map(|t| t.spans.iter().map(|s| (**s).clone()))
        .collect();
    tiny.write_spans(spans).await.expect("write");
    assert_eq!(tiny.stats().bytes, 0);
    assert_eq!(tiny.stats().spans, 0);
    let state = tiny.shared.state.read();
    assert!(state.blocks.is_empty() && state.catalog.is_empty());
    assert_eq!(state.traces.len(), 0);
}

#[tokio::test]
async fn dependencies_count_cross_service_parent_child_pairs() {
    let store = big();
    store
        .write_spans(vec![
            span(1, 1, "front", "GET", 100, 50),
            child(span(1, 2, "front", "call", 101, 10), 1, SpanKind::Client),
            child(span(1, 3, "pay", "charge", 102, 8), 2, SpanKind::Server),
            child(span(1, 4, "pay", "publish", 103, 1), 3, SpanKind::Producer),
            child(span(1, 5, "ledger", "consume", 500, 5), 4, SpanKind::Consumer),
            child(span(2, 6, "pay", "charge", 200, 8), 99, SpanKind::Server),
            span(3, 7, "front", "GET", 300, 50),
            child(span(3, 8, "pay", "charge", 301, 8), 7, SpanKind::Server),
        ])
        .await
        .expect("write");
    let links = store.dependencies(0, 1_000).await.expect("deps");
    let got: Vec<(&str, &str, u64)> = links
        .iter()
        .map(|l| (l.parent.as_str(), l.child.as_str(), l.call_count))
        .collect();
    assert_eq!(got, vec![("front", "pay", 2), ("pay", "ledger", 1)]);
    let links = store.dependencies(0, 400).await.expect("deps");
    assert_eq!(links.len(), 1, "the consumer starts after the window");
    assert!(store.dependencies(10, 5).await.expect("deps").is_empty());
}

#[tokio::test]
async fn operations_per_kind() {
    let store = big();
    store
        .write_spans(vec![
            span(1, 1, "pay", "charge", 1, 1),
            child(span(1, 2, "pay", "charge", 2, 1), 1, SpanKind::Client),
            child(span(1, 3, "pay", "audit", 3, 1), 1, SpanKind::Internal),
        ])
        .await
        .expect("write");
    let op = |name: &str, span_kind| Operation {
        name: name.into(),
        span_kind,
    };
    let all = store
        .operations(&OperationQuery {
            service: "pay".into(),
            span_kind: None,
        })
        .await
        .expect("ops");
    assert_eq!(
        all,
        vec![
            op("audit", SpanKind::Internal),
            op("charge", SpanKind::Server),
            op("charge", SpanKind::Client)
        ]
    );
    let q = OperationQuery {
        service: "pay".into(),
        span_kind: Some(SpanKind::Client),
    };
    assert_eq!(
        store.operations(&q).await.expect("ops"),
        vec![op("charge", SpanKind::Client)]
    );
    let q = OperationQuery {
        service: "nope".into(),
        span_kind: None,
    };
    assert!(store.operations(&q).await.expect("ops").is_empty());
}

/// A deterministic pseudo-random workload large enough to exercise chunked walks and the
/// duration index, checked query by query against a brute-force model.
#[tokio::test]
async fn search_agrees_with_a_brute_force_model() {
    search_agrees_with_a_brute_force_model_in(big()).await;
}

/// The same workload spread over 16 sealed blocks of 750 spans (start times are random,
/// so every block overlaps every other in time): the walk must still find the newest
/// matches wherever they arrived.
#[tokio::test]
async fn search_agrees_with_a_brute_force_model_across_blocks() {
    let store = EmbeddedStore::new(EmbeddedConfig {
        max_spans: 12_000,
        ..Default::default()
    });
    search_agrees_with_a_brute_force_model_in(store.clone()).await;
    let state = store.shared.state.read();
    assert_eq!(state.blocks.len(), 16);
    assert_eq!(store.stats().evicted_spans, 0);
}

async fn search_agrees_with_a_brute_force_model_in(store: EmbeddedStore) {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let services = ["front", "pay", "cart", "ledger"];
    let mut spans = Vec::new();
    for i in 0..12_000u64 {
        let trace = u128::from(next(3_000) + 1);
        let service = services[next(4) as usize];
        let name = ["a", "b", "c"][next(3) as usize];
        let mut s = span(trace, i + 1, service, name, next(100_000), next(10_000));
        s.kind = [SpanKind::Server, SpanKind::Client, SpanKind::Internal][next(3) as usize];
        if next(10) == 0 {
            s.status_code = StatusCode::Error;
        }
        s = with_attr(s, "shard", AttrValue::Int(next(5) as i64));
        s = with_attr(s, "req", AttrValue::String(format!("r{}", next(10_000))));
        spans.push(s);
    }
    for batch in spans.chunks(1_000) {
        store.write_spans(batch.to_vec()).await.expect("write");
    }
    let queries = vec![
        TraceQuery {
            service: Some("pay".into()),
            limit: 50,
            ..Default::default()
        },
        TraceQuery {
            service: Some("pay".into()),
            operation: Some("b".into()),
            span_kind: Some(SpanKind::Client),
            limit: 40,
            ..Default::default()
        },
        TraceQuery {
            tags: vec![tag("error", "true"), tag("shard", "3")],
            limit: 30,
            ..Default::default()
        },
        TraceQuery {
            min_duration_ns: Some(9_950),
            limit: 1_000,
            ..Default::default()
        },
        TraceQuery {
            min_duration_ns: Some(9_000),
            max_duration_ns: Some(9_010),
            start_ns: Some(20_000),
            end_ns: Some(70_000),
            limit: 1_000,
            ..Default::default()
        },
        TraceQuery {
            service: Some("cart".into()),
            min_duration_ns: Some(5_000),
            start_ns: Some(10_000),
            end_ns: Some(20_000),
            limit: 25,
            ..Default::default()
        },
        TraceQuery {
            tags: vec![tag("req", "r42")],
            limit: 100,
            ..Default::default()
        },
        // A resource attribute: rows come from the block's per-resource lists.
        TraceQuery {
            tags: vec![tag("service.name", "ledger"), tag("shard", "1")],
            limit: 60,
            ..Default::default()
        },
        TraceQuery {
            tags: vec![tag("otel.status_code", "ERROR"), tag("span.kind", "server")],
            limit: 100,
            ..Default::default()
        },
        TraceQuery {
            start_ns: Some(99_000),
            limit: 10_000,
            ..Default::default()
        },
        // Walks the whole time index, across several lock chunks.
        TraceQuery {
            span_kind: Some(SpanKind::Internal),
            limit: 10_000,
            ..Default::default()
        },
    ];
    for query in queries {
        let mut newest: std::collections::HashMap<TraceId, (u64, TraceId, u64)> = Default::default();
        for s in spans.iter().filter(|s| span_matches(s, &query)) {
            // Ties on start time fall back to the trace id, as the index key does.
            let key = (s.start_time_unix_nano, s.trace_id, 0);
            let e = newest.entry(s.trace_id).or_insert(key);
            if key > *e {
                *e = key;
            }
        }
        let mut expected: Vec<_> = newest.into_values().collect();
        expected.sort_by(|a, b| b.cmp(a));
        expected.truncate(crate::matching::effective_limit(query.limit));
        let expected: Vec<u128> = expected.iter().map(|k| u128::from_be_bytes(k.1.0)).collect();
        assert!(!expected.is_empty(), "{query:?} matches something");
        assert_eq!(ids(&store, query.clone()).await, expected, "{query:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_and_readers() {
    let store = big();
    let mut tasks = Vec::new();
    for writer in 0..4u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for batch in 0..50u64 {
                let spans = (0..20u64)
                    .map(|i| {
                        let n = writer * 10_000 + batch * 100 + i;
                        span(
                            u128::from(writer * 1_000 + batch),
                            n + 1,
                            &format!("w{writer}"),
                            "op",
                            n,
                            i,
                        )
                    })
                    .collect();
                store.write_spans(spans).await.expect("write");
            }
        }));
    }
    for _ in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                let q = TraceQuery {
                    service: Some("w1".into()),
                    min_duration_ns: Some(10),
                    limit: 5,
                    ..Default::default()
                };
                for trace in store.find_traces(&q).await.expect("find") {
                    assert!(
                        trace
                            .spans
                            .iter()
                            .any(|s| s.service_name == "w1" && s.duration_nanos() >= 10)
                    );
                }
                store.services().await.expect("services");
                store.dependencies(0, u64::MAX).await.expect("deps");
                tokio::task::yield_now().await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let stats = store.stats();
    assert_eq!((stats.spans, stats.traces), (4 * 50 * 20, 4 * 50));
    assert_eq!(store.services().await.expect("services"), vec!["w0", "w1", "w2", "w3"]);
    let q = TraceQuery {
        service: Some("w2".into()),
        limit: 1_000,
        ..Default::default()
    };
    assert_eq!(ids(&store, q).await.len(), 50);
}

#[tokio::test]
async fn traces_read_back_exactly_from_sealed_blocks() {
    // Two spans per block: every span of the sample store ends up in a sealed block, its
    // cold bytes decoded from a packed dictionary.
    let store = EmbeddedStore::new(EmbeddedConfig {
        max_spans: 32,
        ..Default::default()
    });
    let sample = sample_store().await;
    let mut written = Vec::new();
    for id in [1u128, 2] {
        let trace = sample.trace(tid(id)).await.expect("trace").expect("stored");
        let spans: Vec<SpanRecord> = trace.spans.iter().map(|s| (**s).clone()).collect();
        written.push(spans.clone());
        store.write_spans(spans).await.expect("write");
    }
    for (id, spans) in [1u128, 2].into_iter().zip(written) {
        let trace = store.trace(tid(id)).await.expect("trace").expect("stored");
        let got: Vec<SpanRecord> = trace.spans.iter().map(|s| (**s).clone()).collect();
        assert_eq!(got, spans);
    }
    assert!(std::mem::size_of::<block::Row>() <= 72);
}

/// Writers fill a small store over and over while readers search: every trace read is
/// whole (each trace is written as one batch of 20 spans) and the bound always holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eviction_under_concurrent_reads_never_yields_partial_traces() {
    let store = EmbeddedStore::new(EmbeddedConfig {
        max_spans: 1_000,
        ..Default::default()
    });
    let mut tasks = Vec::new();
    for writer in 0..2u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for t in 0..300u64 {
                let trace = u128::from(writer * 100_000 + t + 1);
                let spans = (0..20u64)
                    .map(|i| {
                        let n = t * 20 + i;
                        span(trace, n + 1, &format!("w{writer}"), "op", n, i)
                    })
                    .collect();
                store.write_spans(spans).await.expect("write");
                assert!(store.stats().spans <= 1_000);
            }
        }));
    }
    for _ in 0..2 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..100 {
                let q = TraceQuery {
                    limit: 50,
                    ..Default::default()
                };
                for trace in store.find_traces(&q).await.expect("find") {
                    assert_eq!(trace.spans.len(), 20);
                    let again = store.trace(trace.trace_id).await.expect("trace");
                    assert!(again.is_none_or(|t| t.spans.len() == 20));
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let stats = store.stats();
    assert!(stats.spans <= 1_000 && stats.evicted_spans > 0);
    assert_eq!(stats.spans as u64 + stats.evicted_spans, 2 * 300 * 20);
    assert_eq!(stats.spans, stats.traces * 20);
}

/// A trace of 200 spans (past the size where its span ids get a map): duplicates are
/// still found and parents still resolved.
#[tokio::test]
async fn large_traces_dedupe_and_resolve_parents() {
    let store = big();
    let spans: Vec<SpanRecord> = (1..=200u64)
        .map(|i| {
            let s = span(1, i, if i % 2 == 0 { "even" } else { "odd" }, "op", i, 1);
            if i == 1 { s } else { child(s, i - 1, SpanKind::Server) }
        })
        .collect();
    store.write_spans(spans[..100].to_vec()).await.expect("write");
    store.write_spans(spans.clone()).await.expect("write");
    store.write_spans(spans[150..].to_vec()).await.expect("write");
    assert_eq!(store.stats().spans, 200);
    let trace = store.trace(tid(1)).await.expect("trace").expect("stored");
    assert_eq!(trace.spans.len(), 200);
    let links = store.dependencies(0, 1_000).await.expect("deps");
    let got: Vec<(&str, &str, u64)> = links
        .iter()
        .map(|l| (l.parent.as_str(), l.child.as_str(), l.call_count))
        .collect();
    assert_eq!(got, vec![("even", "odd", 99), ("odd", "even", 100)]);
}

/// Spans of random traces arrive interleaved, so traces straddle many small blocks; after
/// every batch the counts agree with the blocks, the trace map and the catalog, and once
/// everything is evicted nothing is left.
#[tokio::test]
async fn eviction_keeps_counts_consistent_across_straddling_traces() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let store = EmbeddedStore::new(EmbeddedConfig {
        max_spans: 800,
        ..Default::default()
    });
    let mut written = 0u64;
    for batch in 0..60u64 {
        let spans: Vec<SpanRecord> = (0..40u64)
            .map(|i| {
                let n = batch * 40 + i;
                let trace = u128::from(batch / 3 * 10 + next(10));
                let service = ["a", "b", "c"][next(3) as usize];
                with_attr(
                    span(trace, n + 1, service, "op", n, next(100)),
                    "k",
                    AttrValue::Int(next(4) as i64),
                )
            })
            .collect();
        written += spans.len() as u64;
        store.write_spans(spans).await.expect("write");
        let stats = store.stats();
        assert!(stats.spans <= 800);
        assert_eq!(stats.spans as u64 + stats.evicted_spans, written);
        let state = store.shared.state.read();
        let live: usize = state.blocks.iter().map(|b| b.live as usize).sum();
        assert_eq!(live, stats.spans);
        let mut in_map = 0;
        for block in &state.blocks {
            for row in block.rows.iter().filter(|r| !r.is_dead()) {
                let locs = state.trace_locs(&row.trace_id).expect("live row has its trace");
                assert!(locs.iter().all(|l| state.row(*l).is_some_and(|r| !r.is_dead())));
                in_map += 1;
            }
        }
        assert_eq!(in_map, stats.spans);
        let ops: u64 = ["a", "b", "c"]
            .iter()
            .flat_map(|s| state.catalog.operations(s))
            .map(|(_, kinds)| kinds.iter().sum::<u64>())
            .sum();
        assert_eq!(ops, stats.spans as u64);
    }
    let tiny = EmbeddedStore::new(EmbeddedConfig {
        max_spans: 0,
        ..Default::default()
    });
    let trace = store.find_traces(&TraceQuery::default()).await.expect("find");
    let spans: Vec<SpanRecord> = trace
        .iter()
        .flat_map(|t| t.spans.iter().map(|s| (**s).clone()))
        .collect();
    tiny.write_spans(spans).await.expect("write");
    assert_eq!((tiny.stats().spans, tiny.stats().bytes), (0, 0));
}

#[test]
fn config_defaults_and_rejects_unknown_fields() {
    let config: EmbeddedConfig = serde_json::from_str(r#"{"max_spans": 10}"#).expect("parse");
    assert_eq!(
        config,
        EmbeddedConfig {
            max_spans: 10,
            max_bytes: 1 << 30
        }
    );
    assert_eq!(EmbeddedConfig::default().max_spans, 2_000_000);
    assert!(serde_json::from_str::<EmbeddedConfig>(r#"{"max_span": 10}"#).is_err());
}

/// Encoded requests (`write_otlp`, walked in place) are stored exactly as their decoded
/// and mapped spans written with `write_spans` are: same traces, names and search
/// answers. A body the walk declines (an invalid span) is decoded instead; one that
/// does not decode is reported.
#[tokio::test]
async fn encoded_requests_are_stored_like_their_decoded_spans() {
    use hopscope_schemas::otlp::traces_data;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;

    let sample = sample_store().await;
    let mut spans: Vec<SpanRecord> = Vec::new();
    for id in [1u128, 2] {
        let trace = sample.trace(tid(id)).await.unwrap().unwrap();
        spans.extend(trace.spans.iter().map(|s| (**s).clone()));
    }
    let mut seed = 7u64;
    for i in 0..3_000u64 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let r = seed >> 33;
        let mut s = span(
            u128::from(r % 700) + 10,
            i + 100,
            ["front", "pay", "cart"][(r % 3) as usize],
            ["a", "b"][(r % 2) as usize],
            5_000 + r % 90_000,
            r % 7_000,
        );
        s.kind = SpanKind::Client;
        s = with_attr(s, "shard", AttrValue::Int((r % 5) as i64));
        s = with_attr(s, "db.system", AttrValue::String("redis".into()));
        s = with_attr(s, "server.address", AttrValue::String(format!("redis-{}", r % 3)));
        s = with_attr(s, "ratio", AttrValue::Double((r % 9) as f64 / 4.0));
        s = with_attr(
            s,
            "list",
            AttrValue::Array(vec![AttrValue::Int(1), AttrValue::String("x".into())]),
        );
        if r.is_multiple_of(11) {
            s.status_code = StatusCode::Error;
        }
        spans.push(s);
    }
    let mut bodies: Vec<Vec<u8>> = spans
        .chunks(500)
        .map(|chunk| {
            ExportTraceServiceRequest {
                resource_spans: traces_data(chunk).resource_spans,
            }
            .encode_to_vec()
        })
        .collect();
    // A body with an invalid span (the walk declines it; the mapping drops that span)
    // and one that does not decode at all.
    let mut bad = span(9_999, 1, "front", "bad", 1, 1);
    bad.start_time_unix_nano = 0;
    let good = span(9_999, 2, "front", "good", 1, 1);
    bodies.push(
        ExportTraceServiceRequest {
            resource_spans: traces_data(&[bad, good]).resource_spans,
        }
        .encode_to_vec(),
    );
    bodies.push(vec![0x08, 0x01]);
    let bodies: Arc<[Bytes]> = bodies.into_iter().map(Bytes::from).collect();
    let walkable = |b: &Bytes| WireRequest::parse(b).is_some_and(|r| r.views(&mut Vec::new()).is_some());
    assert!(bodies[..bodies.len() - 2].iter().all(walkable));
    assert!(!bodies[bodies.len() - 2..].iter().any(walkable));

    let walked = big();
    let written = walked.write_otlp(Arc::clone(&bodies)).await.unwrap();
    let decoded = big();
    let (records, undecodable) = crate::otlp_bodies::decode_all(&bodies);
    decoded.write_spans(records.clone()).await.unwrap();
    assert_eq!(written.spans, records.len() as u64);
    assert_eq!(written.undecodable.len(), 1);
    assert_eq!(written.undecodable, undecodable);
    assert!(walked.reads_otlp());

    assert_eq!(walked.stats(), decoded.stats());
    assert_eq!(walked.services().await.unwrap(), decoded.services().await.unwrap());
    let mut ids: Vec<TraceId> = records.iter().map(|s| s.trace_id).collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        let spans_of = |t: Option<Trace>| -> Vec<SpanRecord> {
            t.map(|t| t.spans.iter().map(|s| (**s).clone()).collect())
                .unwrap_or_default()
        };
        let a = spans_of(walked.trace(id).await.unwrap());
        assert!(!a.is_empty());
        assert_eq!(a, spans_of(decoded.trace(id).await.unwrap()));
    }
    let queries = [
        TraceQuery {
            service: Some("pay".into()),
            limit: 50,
            ..Default::default()
        },
        TraceQuery {
            tags: vec![tag("shard", "3")],
            limit: 50,
            ..Default::default()
        },
        TraceQuery {
            tags: vec![tag("error", "true")],
            limit: 50,
            ..Default::default()
        },
        TraceQuery {
            tags: vec![tag("ratio", "0.5")],
            limit: 50,
            ..Default::default()
        },
        TraceQuery {
            service: Some("cart".into()),
            operation: Some("b".into()),
            limit: 50,
            ..Default::default()
        },
    ];
    for query in queries {
        let (a, b) = (ids_of(&walked, &query).await, ids_of(&decoded, &query).await);
        assert!(!a.is_empty(), "{query:?} found nothing");
        assert_eq!(a, b, "{query:?}");
    }
    let deps = (
        walked.dependencies(0, u64::MAX).await.unwrap(),
        decoded.dependencies(0, u64::MAX).await.unwrap(),
    );
    assert_eq!(deps.0, deps.1);
}

async fn ids_of(store: &EmbeddedStore, query: &TraceQuery) -> Vec<TraceId> {
    let traces = store.find_traces(query).await.unwrap();
    traces.iter().map(|t| t.spans[0].trace_id).collect()
}
