//! Store work per span of the embedded store, with and without eviction, and bytes per
//! span (counted by the store and measured as RSS).
//!
//! `cargo bench -p hopscope-storage --bench embedded_ingest` (env `SPANS`, default
//! 1,000,000). Generating the spans is not timed; each batch of 512 spans (whole traces)
//! is written through `SpanWriter::write_spans` on a current-thread runtime; a last run
//! writes the same kind of batches as encoded OTLP requests through
//! `SpanWriter::write_otlp`, the collector's path (walked in place, no `SpanRecord`s;
//! encoding them is not timed). Store work is reported as CPU time of all threads
//! during the write calls (robust to other load on the machine) and as wall time.

#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "common/workload.rs"]
mod workload;

use std::time::{Duration, Instant};

use std::sync::Arc;

use hopscope_schemas::otlp::traces_data;
use hopscope_storage::{EmbeddedConfig, EmbeddedStore, SpanWriter};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use workload::{Workload, cpu_ns, rss};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 512;

/// How batches reach the store.
#[derive(Clone, Copy)]
enum Path {
    /// As `SpanRecord`s, through `write_spans`.
    Records,
    /// Each batch encoded as one OTLP request, through `write_otlp` (the collector's path).
    Encoded,
}

/// Loads `spans` spans along `path`; returns (wall time, CPU ns of all threads, spans
/// written) of the write calls alone (generating and encoding batches is not timed).
fn load(store: &EmbeddedStore, spans: usize, rt: &tokio::runtime::Runtime, path: Path) -> (Duration, u64, usize) {
    let mut work = Workload::new(7);
    let mut written = 0;
    let mut spent = Duration::ZERO;
    let mut cpu = 0;
    while written < spans {
        let batch = work.batch(BATCH);
        written += batch.len();
        let body = matches!(path, Path::Encoded).then(|| {
            let request = ExportTraceServiceRequest {
                resource_spans: traces_data(&batch).resource_spans,
            };
            Arc::<[bytes::Bytes]>::from(vec![request.encode_to_vec().into()])
        });
        let c = cpu_ns();
        let t = Instant::now();
        match body {
            Some(bodies) => drop(rt.block_on(store.write_otlp(bodies)).unwrap()),
            None => rt.block_on(store.write_spans(batch)).unwrap(),
        }
        spent += t.elapsed();
        cpu += cpu_ns().saturating_sub(c);
    }
    (spent, cpu, written)
}

fn main() {
    let spans: usize = std::env::var("SPANS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("embedded_ingest: {spans} spans, batches of {BATCH}");

    let (rss0, _) = rss();
    let store = EmbeddedStore::new(EmbeddedConfig {
        max_spans: usize::MAX,
        max_bytes: usize::MAX,
    });
    let (spent, cpu, written) = load(&store, spans, &rt, Path::Records);
    let (rss1, hwm1) = rss();
    let stats = store.stats();
    println!(
        "no eviction:   {:.0} ns/span CPU, {:.0} ns/span wall ({:.2} M spans/s), {} spans in {} traces",
        cpu as f64 / written as f64,
        spent.as_nanos() as f64 / written as f64,
        written as f64 / spent.as_secs_f64() / 1e6,
        stats.spans,
        stats.traces
    );
    println!(
        "  counted {:.0} B/span ({:.1} MiB); RSS growth {:.0} B/span ({:.1} MiB); peak RSS {:.1} MiB",
        stats.bytes as f64 / stats.spans as f64,
        stats.bytes as f64 / (1 << 20) as f64,
        rss1.saturating_sub(rss0) as f64 / stats.spans as f64,
        rss1.saturating_sub(rss0) as f64 / (1 << 20) as f64,
        hwm1 as f64 / (1 << 20) as f64
    );
    drop(store);

    let max_spans = (spans / 4).max(1);
    let store = EmbeddedStore::new(EmbeddedConfig {
        max_spans,
        max_bytes: usize::MAX,
    });
    let (spent, cpu, written) = load(&store, spans, &rt, Path::Records);
    let stats = store.stats();
    println!(
        "with eviction (max_spans {max_spans}): {:.0} ns/span CPU, {:.0} ns/span wall ({:.2} M spans/s); kept {} spans, evicted {} spans in {} traces",
        cpu as f64 / written as f64,
        spent.as_nanos() as f64 / written as f64,
        written as f64 / spent.as_secs_f64() / 1e6,
        stats.spans,
        stats.evicted_spans,
        stats.evicted_traces
    );
    println!(
        "  counted {:.0} B/span; peak RSS {:.1} MiB",
        stats.bytes as f64 / stats.spans.max(1) as f64,
        rss().1 as f64 / (1 << 20) as f64
    );

    drop(store);

    let store = EmbeddedStore::new(EmbeddedConfig {
        max_spans: usize::MAX,
        max_bytes: usize::MAX,
    });
    let (spent, cpu, written) = load(&store, spans, &rt, Path::Encoded);
    println!(
        "encoded requests (write_otlp): {:.0} ns/span CPU, {:.0} ns/span wall ({:.2} M spans/s), {} spans stored",
        cpu as f64 / written as f64,
        spent.as_nanos() as f64 / written as f64,
        written as f64 / spent.as_secs_f64() / 1e6,
        store.stats().spans
    );
}
