//! The ingest ceiling: how fast one core can only decode the load generator's OTLP
//! requests with prost, next to hopscope's per-request work on the same bodies.
//!
//! Run: `cargo bench --bench decode_ceiling` (see benches/README.md). Throughput is in
//! spans per second on one core (criterion's `elem/s`).
//!
//! - `prost_decode`: `ExportTraceServiceRequest::decode` only — the ceiling.
//! - `decode_map`: decode + `spans_from_request` (validate and map to `SpanRecord`s).
//! - `decode_map_reencode`: decode + map + re-encode the mapped spans as OTLP (the log
//!   payload of old), i.e. what a receiver did per request before raw pass-through.
//! - `scan_check`: `otlp_scan::valid_span_count`, the allocation-free check the
//!   receivers now run instead of a decode before logging a body as it arrived.
//! - `store_insert`: what the feeder then does with the logged bodies on the embedded
//!   path: `SpanWriter::write_otlp` into one long-lived `EmbeddedStore` (64 MiB, so
//!   blocks are sealed and evicted as in `hopscope --max-bytes 64MiB`). Each iteration
//!   writes fresh copies of the bodies (new trace ids, made untimed), so no span is a
//!   duplicate.

use std::sync::Arc;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use hopscope_loadgen::workload::{WorkloadConfig, generate};
use hopscope_schemas::otlp::{spans_from_request, traces_data};
use hopscope_schemas::otlp_scan::valid_span_count;
use hopscope_storage::{EmbeddedConfig, EmbeddedStore, SpanWriter};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// The allocator hopscope runs with (src/main.rs), so allocation costs as it does there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn bench(c: &mut Criterion) {
    for spans_per_request in [50, 500] {
        let pool = generate(&WorkloadConfig {
            seed: 42,
            pool: 16,
            spans_per_request,
        });
        let spans: u64 = pool.iter().map(|b| b.spans).sum();
        let bytes: Vec<_> = pool.iter().map(|b| b.bytes.clone()).collect();
        let mut group = c.benchmark_group(format!("otlp_{spans_per_request}_spans_per_request"));
        group.throughput(Throughput::Elements(spans));
        group.bench_function("prost_decode", |b| {
            b.iter(|| {
                for body in &bytes {
                    let request = ExportTraceServiceRequest::decode(body.as_ref()).expect("valid body");
                    std::hint::black_box(request);
                }
            })
        });
        group.bench_function("scan_check", |b| {
            b.iter(|| {
                for body in &bytes {
                    std::hint::black_box(valid_span_count(body).expect("valid body"));
                }
            })
        });
        group.bench_function("decode_map", |b| {
            b.iter(|| {
                for body in &bytes {
                    let request = ExportTraceServiceRequest::decode(body.as_ref()).expect("valid body");
                    std::hint::black_box(spans_from_request(request));
                }
            })
        });
        group.bench_function("decode_map_reencode", |b| {
            b.iter_batched(
                || (),
                |()| {
                    for body in &bytes {
                        let request = ExportTraceServiceRequest::decode(body.as_ref()).expect("valid body");
                        let batch = spans_from_request(request);
                        let resource_spans = traces_data(&batch.spans).resource_spans;
                        std::hint::black_box(ExportTraceServiceRequest { resource_spans }.encode_to_vec());
                    }
                },
                BatchSize::SmallInput,
            )
        });
        let store = EmbeddedStore::new(EmbeddedConfig {
            max_bytes: 64 << 20,
            ..EmbeddedConfig::default()
        });
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let mut seq = 0;
        group.bench_function("store_insert", |b| {
            b.iter_batched(
                || {
                    seq += 1;
                    let now = 1_700_000_000_000_000_000 + seq * 1_000_000_000;
                    pool.iter()
                        .map(|body| Bytes::from(body.instantiate(seq, now).to_vec()))
                        .collect::<Arc<[Bytes]>>()
                },
                |bodies| {
                    let written = rt.block_on(store.write_otlp(bodies)).expect("store write");
                    std::hint::black_box(written);
                },
                BatchSize::PerIteration,
            )
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
