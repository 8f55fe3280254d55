//! The bounded queue between span end and the exporter, and the worker that drains it.
//!
//! Span end calls [`BatchProcessor::enqueue`]: it moves the span's data out of its record
//! onto a bounded buffer under an uncontended lock (the worker holds it only to swap
//! buffers), never waiting for the worker; a full buffer drops the span and counts it.
//! Raw clock readings for the start and end times travel alongside and the worker
//! converts them (see `crate::clock`); so does a flag for spans whose attribute keys may
//! repeat, which the worker resolves (see `crate::value::dedupe`). After export the
//! worker hands the attribute vectors back for reuse (see `crate::record`). The worker is
//! woken only when a batch is full (or by its timer), not per span. One worker thread
//! runs a current-thread Tokio runtime (so the SDK works whatever runtime the application
//! uses, or none); it batches spans, exports them with retries and exponential backoff,
//! and flushes on request and at shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;
use tracing::warn;

use super::{BatchConfig, ExportStats, SpanExporter};
use crate::error::{Error, Result};
use crate::record::{self, Record};
use crate::resource::Resource;
use crate::span::{SpanData, Stamp, resolve_times};
use crate::value::{KeyValue, dedupe};

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    dropped: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
    failed_attempts: AtomicU64,
}

enum Control {
    Flush(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

/// Ended spans waiting for the worker, with their stamps (raw start and end clock
/// readings, whether to resolve repeated attribute keys).
#[derive(Default)]
struct Pending {
    spans: Vec<SpanData>,
    stamps: Vec<Stamp>,
}

/// The bounded buffer between span end and the worker.
struct Queue {
    pending: Mutex<Pending>,
    capacity: usize,
    batch: usize,
    /// Set at shutdown: later spans are dropped and counted.
    closed: AtomicBool,
    /// Wakes the worker when a batch is full.
    full: Notify,
}

impl Queue {
    /// Moves everything queued into `out` (which must be empty), keeping allocations.
    fn take_into(&self, out: &mut Pending) {
        std::mem::swap(&mut *self.pending.lock(), out);
    }
}

/// Handle on the queue and the worker. Dropping it closes the control channel; the
/// worker exports what is left and exits.
pub(crate) struct BatchProcessor {
    queue: Arc<Queue>,
    control: mpsc::UnboundedSender<Control>,
    counters: Arc<Counters>,
}

impl BatchProcessor {
    pub(crate) fn start(exporter: Box<dyn SpanExporter>, config: BatchConfig, resource: Arc<Resource>) -> Result<Self> {
        config.validate()?;
        record::raise_pool_limit(config.max_queue_size);
        let queue = Arc::new(Queue {
            pending: Mutex::new(Pending {
                spans: Vec::with_capacity(config.max_queue_size.min(1 << 16)),
                stamps: Vec::with_capacity(config.max_queue_size.min(1 << 16)),
            }),
            capacity: config.max_queue_size,
            batch: config.max_export_batch_size,
            closed: AtomicBool::new(false),
            full: Notify::new(),
        });
        let (control, control_rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let worker = Worker {
            exporter,
            config,
            resource,
            counters: counters.clone(),
            queue: queue.clone(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        std::thread::Builder::new()
            .name("hopscope-sdk-export".into())
            .spawn(move || runtime.block_on(worker.run(control_rx)))?;
        Ok(BatchProcessor {
            queue,
            control,
            counters,
        })
    }

    /// Moves the data out of `record` into the queue and keeps the emptied record for
    /// the next span on this thread. Never waits for the worker: a full (or closed) queue
    /// drops the span and counts it.
    #[inline(always)]
    pub(crate) fn enqueue(&self, mut record: Record, stamp: Stamp) {
        let q = &self.queue;
        let queued = if q.closed.load(Ordering::Relaxed) {
            None
        } else {
            let mut pending = q.pending.lock();
            if pending.spans.len() >= q.capacity {
                None
            } else if let Some(data) = record.take() {
                pending.spans.push(data);
                pending.stamps.push(stamp);
                Some(pending.spans.len())
            } else {
                Some(0)
            }
        };
        match queued {
            Some(len) => {
                record::keep(record);
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
                if len == q.batch {
                    q.full.notify_one();
                }
            }
            None => {
                record::recycle(record);
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn stats(&self) -> ExportStats {
        let c = &self.counters;
        ExportStats {
            queued: c.queued.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            exported: c.exported.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            failed_attempts: c.failed_attempts.load(Ordering::Relaxed),
        }
    }

    pub(crate) async fn flush(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.control.send(Control::Flush(tx)).map_err(|_| Error::Shutdown)?;
        rx.await.map_err(|_| Error::Shutdown)
    }

    pub(crate) async fn shutdown(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.control.send(Control::Shutdown(tx)).map_err(|_| Error::Shutdown)?;
        rx.await.map_err(|_| Error::Shutdown)
    }
}

struct Worker {
    exporter: Box<dyn SpanExporter>,
    config: BatchConfig,
    resource: Arc<Resource>,
    counters: Arc<Counters>,
    queue: Arc<Queue>,
}

impl Worker {
    async fn run(mut self, mut control: mpsc::UnboundedReceiver<Control>) {
        let mut taken = Pending::default();
        let mut spare: Vec<Vec<KeyValue>> = Vec::new();
        loop {
            let tick = tokio::time::sleep(self.config.scheduled_delay);
            tokio::select! {
                biased;
                msg = control.recv() => match msg {
                    Some(Control::Flush(done)) => {
                        self.drain(&mut taken, &mut spare, None).await;
                        let _ = done.send(());
                    }
                    Some(Control::Shutdown(done)) => {
                        self.queue.closed.store(true, Ordering::Relaxed);
                        let until = Instant::now() + self.config.shutdown_timeout;
                        self.drain(&mut taken, &mut spare, Some(until)).await;
                        let _ = done.send(());
                        return;
                    }
                    // Every handle is gone: export what is left and stop.
                    None => {
                        self.queue.closed.store(true, Ordering::Relaxed);
                        let until = Instant::now() + self.config.shutdown_timeout;
                        self.drain(&mut taken, &mut spare, Some(until)).await;
                        return;
                    }
                },
                () = self.queue.full.notified() => self.drain(&mut taken, &mut spare, None).await,
                () = tick => self.drain(&mut taken, &mut spare, None).await,
            }
        }
    }

    /// Exports everything queued so far, in batches of at most `max_export_batch_size`,
    /// then recycles the attribute vectors. `taken` and `spare` keep their allocations
    /// from call to call (the next swap hands `taken`'s buffers to the application side).
    async fn drain(&mut self, taken: &mut Pending, spare: &mut Vec<Vec<KeyValue>>, until: Option<Instant>) {
        self.queue.take_into(taken);
        let anchor = crate::clock::Anchor::now();
        for (span, stamp) in taken.spans.iter_mut().zip(&taken.stamps) {
            resolve_times(span, stamp.start_raw, stamp.end_raw, anchor);
            if stamp.maybe_repeated {
                dedupe(&mut span.attributes);
            }
        }
        let max = self.config.max_export_batch_size;
        for batch in taken.spans.chunks(max) {
            self.export_batch(batch, until).await;
        }
        record::harvest_attributes(taken.spans.iter_mut(), spare);
        taken.spans.clear();
        taken.stamps.clear();
    }

    async fn export_batch(&mut self, batch: &[SpanData], until: Option<Instant>) {
        let n = batch.len() as u64;
        let mut backoff = self.config.initial_backoff;
        let mut attempt = 0u32;
        loop {
            let timeout = match until {
                Some(until) => self
                    .config
                    .export_timeout
                    .min(until.saturating_duration_since(Instant::now())),
                None => self.config.export_timeout,
            };
            let outcome = match tokio::time::timeout(timeout, self.exporter.export(batch, &self.resource)).await {
                Ok(result) => result,
                Err(_) => Err(Error::Export {
                    retryable: true,
                    message: format!("export timed out after {timeout:?}"),
                }),
            };
            let error = match outcome {
                Ok(()) => {
                    self.counters.exported.fetch_add(n, Ordering::Relaxed);
                    break;
                }
                Err(error) => error,
            };
            self.counters.failed_attempts.fetch_add(1, Ordering::Relaxed);
            let delay = jitter(backoff);
            let out_of_time = until.is_some_and(|u| Instant::now() + delay >= u);
            if !error.is_retryable() || attempt >= self.config.max_retries || out_of_time {
                warn!(spans = n, attempt, error = %error, "span export failed; dropping the batch");
                self.counters.failed.fetch_add(n, Ordering::Relaxed);
                break;
            }
            warn!(spans = n, attempt, error = %error, retry_in_ms = delay.as_millis() as u64, "span export failed; retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
            backoff = (backoff * 2).min(self.config.max_backoff);
        }
    }
}

/// 50–100 % of `d`, so that many processes retrying do not do so in lockstep.
fn jitter(d: Duration) -> Duration {
    let r = crate::id::SpanId::random().0[0] as u32; // 0..=255
    d / 2 + d * r / 512
}
