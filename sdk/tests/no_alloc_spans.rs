//! Once the pipeline is warm, recording spans with a few attributes does not touch the
//! heap: records and attribute vectors come back from the export worker for reuse. A
//! counting global allocator sees zero allocations over a few hundred spans ended while
//! the worker sleeps. Only the application (test) thread is counted (`allocation_counter`
//! counts per thread), which is the contract: the worker may allocate when it exports.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use hopscope_sdk::{BatchConfig, InMemoryExporter, SpanKind, TracerProvider};

#[test]
fn warm_spans_do_not_allocate() {
    let exporter = InMemoryExporter::new();
    let provider = TracerProvider::builder()
        .with_exporter(exporter.clone())
        // The worker wakes only when asked to flush, never during the counted spans.
        .with_batch_config(BatchConfig {
            max_export_batch_size: 2048,
            scheduled_delay: Duration::from_secs(600),
            ..BatchConfig::default()
        })
        .build()
        .unwrap();
    let tracer = provider.tracer("t");
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let spans = |n: u32| {
        for i in 0..n {
            let mut span = tracer.span("GET").kind(SpanKind::Client).start();
            span.set_attribute("db.system.name", "redis");
            span.set_attribute("server.address", "redis-shard-2");
            span.set_attribute("server.port", 6379);
            span.set_attribute("i", i);
            span.end();
        }
    };
    // Warm up: caches, clock calibration, queue buffers on both sides of the swap.
    for _ in 0..3 {
        spans(400);
        runtime.block_on(provider.flush()).unwrap();
    }
    let boxed = allocation_counter::measure(|| drop(std::hint::black_box(Box::new(1u64))));
    assert_eq!(boxed.count_total, 1, "the counting allocator is not installed");
    let stats = allocation_counter::measure(|| spans(300));
    assert_eq!(stats.count_total, 0, "{stats:?}");
    runtime.block_on(provider.flush()).unwrap();
    let exported = exporter.spans();
    assert_eq!(exported.len(), 1500);
    assert!(exported.iter().all(|s| s.attributes.len() == 4));
}
