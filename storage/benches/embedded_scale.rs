//! The embedded store at scale: loads `SPANS` realistic spans (default 1,000,000; traces
//! of 5-50 spans over 12 services, 8-20 attributes) and reports RSS, load time and the
//! p50/p99 latency of trace by id, searches (limit 20) and the aggregate queries.
//!
//! `SPANS=10000000 cargo bench -p hopscope-storage --bench embedded_scale`

#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "common/workload.rs"]
mod workload;

use std::time::Instant;

use hopscope_storage::aggregates::{GroupBy, MiddlewareKind, MiddlewareQuery, Window};
use hopscope_storage::{
    AggregateReader, EmbeddedConfig, EmbeddedStore, OperationQuery, SpanReader, SpanWriter, TagFilter, TraceQuery,
};
use workload::{Rng, SERVICES, T0, TRACE_GAP_NS, Workload, percentiles, rss};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type MakeQuery = Box<dyn Fn(&mut Rng) -> TraceQuery>;

fn report(name: &str, samples: Vec<f64>) {
    let n = samples.len();
    let (p50, p99) = percentiles(samples);
    println!(
        "  {name:<34} p50 {:>9.3} ms   p99 {:>9.3} ms   ({n} runs)",
        p50 / 1e3,
        p99 / 1e3
    );
}

fn main() {
    let env = |k: &str, d: usize| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let spans = env("SPANS", 1_000_000);
    let runs = env("RUNS", 100);
    let slow_runs = env("SLOW_RUNS", 5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = EmbeddedStore::new(EmbeddedConfig {
        max_spans: spans * 2,
        max_bytes: usize::MAX,
    });
    let (rss0, _) = rss();
    let mut work = Workload::new(11);
    let mut written = 0;
    let t = Instant::now();
    while written < spans {
        let batch = work.batch(512);
        written += batch.len();
        rt.block_on(store.write_spans(batch)).unwrap();
    }
    let load = t.elapsed();
    let (rss1, hwm) = rss();
    let stats = store.stats();
    println!(
        "embedded_scale: {} spans, {} traces loaded in {:.1} s ({:.0} ns/span incl. generation)",
        stats.spans,
        stats.traces,
        load.as_secs_f64(),
        load.as_nanos() as f64 / stats.spans as f64
    );
    println!(
        "  RSS {:.1} MiB (growth {:.0} B/span), peak {:.1} MiB; counted {:.1} MiB ({:.0} B/span)",
        rss1 as f64 / (1 << 20) as f64,
        rss1.saturating_sub(rss0) as f64 / stats.spans as f64,
        hwm as f64 / (1 << 20) as f64,
        stats.bytes as f64 / (1 << 20) as f64,
        stats.bytes as f64 / stats.spans as f64
    );
    let traces = work.traces();
    let end = T0 + traces * TRACE_GAP_NS + 1_000_000_000;
    let mut rng = Rng::new(5);
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_nanos() as f64 / 1e3
    };
    let mut by_id = Vec::new();
    for _ in 0..runs * 5 {
        let id = Workload::trace_id(rng.below(traces));
        by_id.push(time(&mut || {
            assert!(rt.block_on(store.trace(id)).unwrap().is_some());
        }));
    }
    report("trace by id", by_id);
    let window = |mut q: TraceQuery| {
        q.start_ns = Some(T0);
        q.end_ns = Some(end);
        q.limit = 20;
        q
    };
    let searches: Vec<(&str, MakeQuery)> = vec![
        (
            "find_traces service",
            Box::new(|r: &mut Rng| TraceQuery {
                service: Some(SERVICES[r.below(12) as usize].into()),
                ..Default::default()
            }),
        ),
        (
            "find_traces service+operation",
            Box::new(|r: &mut Rng| TraceQuery {
                service: Some("orders".into()),
                operation: Some(format!("orders.Get{}", r.below(6))),
                ..Default::default()
            }),
        ),
        (
            "find_traces tag (status 500)",
            Box::new(|_: &mut Rng| TraceQuery {
                tags: vec![TagFilter {
                    key: "http.response.status_code".into(),
                    value: "500".into(),
                }],
                ..Default::default()
            }),
        ),
        (
            "find_traces rare tag (user.id)",
            Box::new(|r: &mut Rng| TraceQuery {
                tags: vec![TagFilter {
                    key: "user.id".into(),
                    value: format!("u{}", r.below(100_000)),
                }],
                ..Default::default()
            }),
        ),
        (
            "find_traces service+tag",
            Box::new(|_: &mut Rng| TraceQuery {
                service: Some("payments".into()),
                tags: vec![TagFilter {
                    key: "db.system".into(),
                    value: "postgresql".into(),
                }],
                ..Default::default()
            }),
        ),
        (
            "find_traces duration range",
            Box::new(|r: &mut Rng| {
                let min = 150_000_000 + r.below(40) * 1_000_000;
                TraceQuery {
                    min_duration_ns: Some(min),
                    max_duration_ns: Some(min + 1_000_000),
                    ..Default::default()
                }
            }),
        ),
        (
            "find_traces service+min duration",
            Box::new(|_: &mut Rng| TraceQuery {
                service: Some("web".into()),
                min_duration_ns: Some(200_000_000),
                ..Default::default()
            }),
        ),
    ];
    for (name, make) in &searches {
        let mut samples = Vec::new();
        let mut found = 0;
        for _ in 0..runs {
            let q = window(make(&mut rng));
            samples.push(time(&mut || {
                found += rt.block_on(store.find_traces(&q)).unwrap().len();
            }));
        }
        report(&format!("{name} ({:.1} found)", found as f64 / runs as f64), samples);
    }
    let mut samples = Vec::new();
    for i in 0..runs {
        let q = OperationQuery {
            service: SERVICES[i % 12].into(),
            span_kind: None,
        };
        samples.push(time(&mut || {
            rt.block_on(store.operations(&q)).unwrap();
        }));
    }
    report("operations", samples);
    let mut samples = Vec::new();
    for _ in 0..runs {
        samples.push(time(&mut || {
            rt.block_on(store.services()).unwrap();
        }));
    }
    report("services", samples);
    let last_15m = end.saturating_sub(15 * 60 * 1_000_000_000).max(T0);
    for (label, from) in [("whole range", T0), ("last 15 min", last_15m)] {
        let mut samples = Vec::new();
        for _ in 0..slow_runs {
            samples.push(time(&mut || {
                rt.block_on(store.dependencies(from, end)).unwrap();
            }));
        }
        report(&format!("dependencies ({label})"), samples);
        let window = Window {
            start_ns: from,
            end_ns: end,
            cloud_kind: None,
        };
        let mut samples = Vec::new();
        for _ in 0..slow_runs {
            samples.push(time(&mut || {
                rt.block_on(store.dependency_edges(&window)).unwrap();
            }));
        }
        report(&format!("dependency edges with latency ({label})"), samples);
        let mut samples = Vec::new();
        let q = MiddlewareQuery {
            window: Window {
                start_ns: from,
                end_ns: end,
                cloud_kind: None,
            },
            kind: MiddlewareKind::Cache,
            group_by: GroupBy::Peer,
            step_ns: 60_000_000_000,
        };
        for _ in 0..slow_runs {
            samples.push(time(&mut || {
                rt.block_on(store.middleware(&q)).unwrap();
            }));
        }
        report(&format!("middleware cache/peer ({label})"), samples);
    }
}
