//! The bounded queue between span end and the exporter, and the worker that drains it.
//!
//! Span end calls [`BatchProcessor::enqueue`], which is a non-blocking `try_send` into a
//! bounded channel: a full queue drops the span and counts it. One worker thread runs a
//! current-thread Tokio runtime (so the SDK works whatever runtime the application uses,
//! or none); it batches spans, exports them with retries and exponential backoff, and
//! flushes on request and at shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::warn;

use super::{BatchConfig, ExportStats, SpanExporter};
use crate::error::{Error, Result};
use crate::resource::Resource;
use crate::span::SpanData;

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

/// Handle on the queue and the worker. Dropping it closes the queue; the worker exports
/// what is left and exits.
pub(crate) struct BatchProcessor {
    spans: mpsc::Sender<Box<SpanData>>,
    control: mpsc::UnboundedSender<Control>,
    counters: Arc<Counters>,
}

impl BatchProcessor {
    pub(crate) fn start(exporter: Box<dyn SpanExporter>, config: BatchConfig, resource: Arc<Resource>) -> Result<Self> {
        config.validate()?;
        let (spans, span_rx) = mpsc::channel(config.max_queue_size);
        let (control, control_rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let worker = Worker { exporter, config, resource, counters: counters.clone(), buffer: Vec::new() };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        std::thread::Builder::new()
            .name("hopscope-sdk-export".into())
            .spawn(move || runtime.block_on(worker.run(span_rx, control_rx)))?;
        Ok(BatchProcessor { spans, control, counters })
    }

    /// Never blocks: a full (or closed) queue drops the span and counts it.
    pub(crate) fn enqueue(&self, span: Box<SpanData>) {
        match self.spans.try_send(span) {
            Ok(()) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
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
    buffer: Vec<SpanData>,
}

impl Worker {
    async fn run(mut self, mut spans: mpsc::Receiver<Box<SpanData>>, mut control: mpsc::UnboundedReceiver<Control>) {
        let max_batch = self.config.max_export_batch_size;
        let mut incoming: Vec<Box<SpanData>> = Vec::with_capacity(max_batch);
        let mut deadline: Option<Instant> = None;
        loop {
            let timer = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                msg = control.recv() => match msg {
                    Some(Control::Flush(done)) => {
                        self.drain(&mut spans, None).await;
                        deadline = None;
                        let _ = done.send(());
                    }
                    Some(Control::Shutdown(done)) => {
                        spans.close();
                        let until = Instant::now() + self.config.shutdown_timeout;
                        self.drain(&mut spans, Some(until)).await;
                        let _ = done.send(());
                        return;
                    }
                    // Every handle is gone: export what is left and stop.
                    None => {
                        let until = Instant::now() + self.config.shutdown_timeout;
                        self.drain(&mut spans, Some(until)).await;
                        return;
                    }
                },
                n = spans.recv_many(&mut incoming, max_batch) => {
                    if n == 0 {
                        let until = Instant::now() + self.config.shutdown_timeout;
                        self.export_buffer(Some(until)).await;
                        return;
                    }
                    self.buffer.extend(incoming.drain(..).map(|b| *b));
                    if self.buffer.len() >= max_batch {
                        self.export_buffer(None).await;
                        deadline = None;
                    } else if deadline.is_none() {
                        deadline = Some(Instant::now() + self.config.scheduled_delay);
                    }
                }
                () = timer => {
                    self.export_buffer(None).await;
                    deadline = None;
                }
            }
        }
    }

    /// Exports everything already queued.
    async fn drain(&mut self, spans: &mut mpsc::Receiver<Box<SpanData>>, until: Option<Instant>) {
        while let Ok(span) = spans.try_recv() {
            self.buffer.push(*span);
            if self.buffer.len() >= self.config.max_export_batch_size {
                self.export_buffer(until).await;
            }
        }
        self.export_buffer(until).await;
    }

    async fn export_buffer(&mut self, until: Option<Instant>) {
        if self.buffer.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.buffer);
        let n = batch.len() as u64;
        let mut backoff = self.config.initial_backoff;
        let mut attempt = 0u32;
        loop {
            let timeout = match until {
                Some(until) => self.config.export_timeout.min(until.saturating_duration_since(Instant::now())),
                None => self.config.export_timeout,
            };
            let outcome = match tokio::time::timeout(timeout, self.exporter.export(&batch, &self.resource)).await {
                Ok(result) => result,
                Err(_) => Err(Error::Export { retryable: true, message: format!("export timed out after {timeout:?}") }),
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
        // Reuse the allocation for the next batch.
        let mut batch = batch;
        batch.clear();
        self.buffer = batch;
    }
}

/// 50–100 % of `d`, so that many processes retrying do not do so in lockstep.
fn jitter(d: Duration) -> Duration {
    let r = crate::id::SpanId::random().0[0] as u32; // 0..=255
    d / 2 + d * r / 512
}
