//! The span pipeline end to end with in-memory and failing exporters: parentage through
//! the current context, sampling, status/event rules, a full queue that drops and counts
//! without blocking, retries with backoff, flush and shutdown.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hopscope_sdk::export::BoxFuture;
use hopscope_sdk::{
    BatchConfig, Error, FutureExt, InMemoryExporter, Link, Resource, Sampler, SpanData, SpanExporter, SpanKind, Status,
    TracerProvider, Value,
};

fn provider(exporter: impl SpanExporter, sampler: Sampler) -> TracerProvider {
    TracerProvider::builder()
        .with_resource(Resource::builder().with_service_name("test").build())
        .with_sampler(sampler)
        .with_exporter(exporter)
        .with_batch_config(BatchConfig {
            scheduled_delay: Duration::from_millis(20),
            ..BatchConfig::default()
        })
        .build()
        .unwrap()
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name}"))
}

#[tokio::test]
async fn parentage_follows_the_current_context_across_awaits() {
    let exporter = InMemoryExporter::new();
    let provider = provider(exporter.clone(), Sampler::default());
    let tracer = provider.tracer("t");
    let root = tracer.span("root").kind(SpanKind::Server).start();
    let root_cx = root.context().clone();
    let t2 = tracer.clone();
    async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let mut child = t2.span("child").kind(SpanKind::Client).attribute("k", 1).start();
        child.set_attribute("k", 2);
        child.add_link(Link::new(root_cx.clone()));
        child.record_exception("Timeout", "took too long");
        child.set_status(Status::Ok);
        child.end();
        let inner = t2.start("inner");
        drop(inner);
    }
    .in_span(root)
    .await;
    tracer.span("other-root").root().start().end();
    provider.flush().await.unwrap();
    let spans = exporter.spans();
    assert_eq!(spans.len(), 4, "{spans:#?}");
    let (root, child) = (named(&spans, "root"), named(&spans, "child"));
    assert_eq!(child.context.trace_id, root.context.trace_id);
    assert_eq!(child.parent_span_id, Some(root.context.span_id));
    assert_eq!(named(&spans, "inner").parent_span_id, Some(root.context.span_id));
    assert_eq!(named(&spans, "other-root").parent_span_id, None);
    assert_ne!(named(&spans, "other-root").context.trace_id, root.context.trace_id);
    assert_eq!(child.attributes.len(), 1);
    assert_eq!(child.attributes[0].value, Value::I64(2));
    assert_eq!(child.events[0].name, "exception");
    assert_eq!(child.status, Status::Ok, "ok overrides error");
    assert_eq!(child.kind, SpanKind::Client);
    assert!(root.end_time >= child.end_time);
    assert_eq!(provider.stats().exported, 4);
}

#[tokio::test]
async fn unsampled_spans_propagate_but_record_nothing() {
    let exporter = InMemoryExporter::new();
    let provider = provider(exporter.clone(), Sampler::parent_based_ratio(0.0));
    let tracer = provider.tracer("t");
    let root = tracer.start("root");
    assert!(!root.is_recording());
    assert!(root.context().is_valid() && !root.context().is_sampled());
    let child = tracer.span("child").parent(Some(root.context())).start();
    assert_eq!(child.context().trace_id, root.context().trace_id);
    drop((root, child));
    provider.flush().await.unwrap();
    assert!(exporter.spans().is_empty());
}

/// An exporter that never finishes: the worker is stuck on the first batch.
struct Stuck;
impl SpanExporter for Stuck {
    fn export<'a>(&'a mut self, _: &'a [SpanData], _: &'a Resource) -> BoxFuture<'a, hopscope_sdk::Result<()>> {
        Box::pin(std::future::pending())
    }
}

#[test]
fn a_full_queue_drops_and_counts_without_blocking() {
    let provider = TracerProvider::builder()
        .with_exporter(Stuck)
        .with_batch_config(BatchConfig {
            max_queue_size: 16,
            max_export_batch_size: 4,
            ..BatchConfig::default()
        })
        .build()
        .unwrap();
    let tracer = provider.tracer("t");
    // No runtime on this thread, and the exporter never returns: span end must still
    // return at once.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let t = tracer.clone();
    std::thread::spawn(move || {
        let started = Instant::now();
        for i in 0..100_000u32 {
            let mut span = t.start("s");
            span.set_attribute("i", i);
            span.end();
        }
        let _ = done_tx.send(started.elapsed());
    });
    let elapsed = done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("ending spans blocked on a stuck exporter");
    let stats = provider.stats();
    assert_eq!(stats.queued + stats.dropped, 100_000, "{stats:?}");
    // At most one queue-full is held by the stuck worker and one more waits in the queue.
    assert!(stats.dropped >= 100_000 - 2 * 16, "{stats:?}");
    assert_eq!(provider.dropped_spans(), stats.dropped);
    eprintln!("100k spans against a stuck exporter took {elapsed:?}");
}

/// Fails `failures` times with a retryable error, then succeeds.
struct Flaky {
    failures: u32,
    calls: Arc<AtomicU32>,
    permanent: bool,
}
impl SpanExporter for Flaky {
    fn export<'a>(&'a mut self, _: &'a [SpanData], _: &'a Resource) -> BoxFuture<'a, hopscope_sdk::Result<()>> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let (failures, permanent) = (self.failures, self.permanent);
        Box::pin(async move {
            if n < failures {
                Err(Error::Export {
                    retryable: !permanent,
                    message: "down".into(),
                })
            } else {
                Ok(())
            }
        })
    }
}

#[tokio::test]
async fn retries_with_backoff_then_succeeds_or_gives_up() {
    let calls = Arc::new(AtomicU32::new(0));
    let p = TracerProvider::builder()
        .with_exporter(Flaky {
            failures: 3,
            calls: calls.clone(),
            permanent: false,
        })
        .with_batch_config(BatchConfig {
            initial_backoff: Duration::from_millis(10),
            ..BatchConfig::default()
        })
        .build()
        .unwrap();
    p.tracer("t").start("a").end();
    let started = Instant::now();
    p.shutdown().await.unwrap();
    let stats = p.stats();
    assert_eq!(
        (stats.exported, stats.failed, stats.failed_attempts),
        (1, 0, 3),
        "{stats:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    // 10 + 20 + 40 ms of backoff, at least half of each with jitter.
    assert!(started.elapsed() >= Duration::from_millis(35));

    let calls = Arc::new(AtomicU32::new(0));
    let p = TracerProvider::builder()
        .with_exporter(Flaky {
            failures: 1,
            calls: calls.clone(),
            permanent: true,
        })
        .build()
        .unwrap();
    p.tracer("t").start("a").end();
    p.shutdown().await.unwrap();
    assert_eq!(p.stats().failed, 1, "permanent errors are not retried");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // After shutdown, spans are dropped and counted, never blocking.
    p.tracer("t").start("late").end();
    assert_eq!(p.dropped_spans(), 1);
    assert!(matches!(p.flush().await, Err(Error::Shutdown)));
}

#[tokio::test]
async fn recycled_records_carry_nothing_over_and_times_are_wall_clock() {
    let exporter = InMemoryExporter::new();
    let provider = provider(exporter.clone(), Sampler::default());
    let tracer = provider.tracer("t");
    // Span times come from the TSC converted against the wall clock: allow 1 ms of drift.
    let before = std::time::SystemTime::now() - Duration::from_millis(1);
    // Enough rounds that later spans reuse records of earlier, fuller ones.
    for round in 0..3 {
        for i in 0..200u32 {
            let mut full = tracer.span("full").attribute("a", 1).start();
            full.set_attribute("i", i);
            full.record_exception("E", "boom");
            full.add_link(Link::new(full.context().clone()));
            full.end();
            tracer.start("plain").end();
        }
        provider.flush().await.unwrap();
        assert_eq!(exporter.spans().len(), 400 * (round + 1));
    }
    let at = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000);
    tracer
        .span("explicit")
        .start_time(at)
        .start()
        .end_at(at - Duration::from_secs(1));
    provider.flush().await.unwrap();
    let after = std::time::SystemTime::now() + Duration::from_millis(1);
    let spans = exporter.spans();
    for s in spans.iter().filter(|s| s.name == "plain") {
        assert!(
            s.attributes.is_empty() && s.events.is_empty() && s.links.is_empty(),
            "{s:#?}"
        );
        assert_eq!(
            (s.status.clone(), s.dropped_attributes, s.kind),
            (Status::Unset, 0, SpanKind::Internal)
        );
        assert!(
            before <= s.start_time && s.start_time <= s.end_time && s.end_time <= after,
            "{s:#?}"
        );
    }
    for s in spans.iter().filter(|s| s.name == "full") {
        assert_eq!((s.attributes.len(), s.events.len(), s.links.len()), (2, 1, 1), "{s:#?}");
        assert!(matches!(s.status, Status::Error { .. }));
    }
    let explicit = named(&spans, "explicit");
    assert_eq!(
        (explicit.start_time, explicit.end_time),
        (at, at),
        "an end before the start is clamped"
    );
}
