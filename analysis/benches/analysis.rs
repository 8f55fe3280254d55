//! Per-trace analysis of large traces: `cargo bench -p hopscope-analysis --bench analysis`.
//! Results are written down in `benches/README.md` ("Analysis").

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hopscope_analysis::analyze;
use hopscope_schemas::fixtures::{resource, span, trace_id};
use hopscope_schemas::{SpanKind, SpanRecord};

/// A trace of `n` spans: a binary tree of client/server hops whose children start at
/// scattered offsets (so skew adjustment and clamping run), every 16th hop a consumer of
/// a producer (so queue waits appear), shuffled the way stores return spans by start time.
fn trace(n: u64) -> Vec<Arc<SpanRecord>> {
    let r = resource("svc", "vm-1", Some("public"));
    let mut out = vec![
        span(&r, 1, 1, None, "root", SpanKind::Server, 0, 10_000_000)
            .http("svc")
            .build(),
    ];
    for i in 2..=n {
        let kind = match i % 16 {
            0 => SpanKind::Consumer,
            1 => SpanKind::Producer,
            k if k % 2 == 0 => SpanKind::Client,
            _ => SpanKind::Server,
        };
        let start = (i * 7_919) % 9_000_000;
        let dur = 1_000 + (i * 104_729) % 900_000;
        out.push(span(&r, 1, i, Some(i / 2), "op", kind, start, dur).redis("r1").build());
    }
    out.sort_by_key(|s| s.start_time_unix_nano);
    out.into_iter().map(Arc::new).collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("analyze");
    for n in [100u64, 1_000, 10_000] {
        let spans = trace(n);
        group.throughput(Throughput::Elements(n));
        group.bench_with_input(BenchmarkId::from_parameter(n), &spans, |b, spans| {
            b.iter(|| black_box(analyze(trace_id(1), black_box(spans), None)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
