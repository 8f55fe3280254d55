//! Coalesces the collector's request-sized `write_spans` calls into bigger inserts.
//!
//! Callers hand their spans to one background task and wait for the outcome of the
//! insert that carried them, so `write_spans` still returns only once its spans are in
//! ClickHouse (or with that insert's error). A batch is sent when it reaches
//! `batch_max_rows` spans or `batch_max_bytes`, or `batch_max_delay` after its first
//! span arrived. At most `max_concurrent_inserts` inserts run at once; beyond that the
//! task stops taking new spans and the bounded queue pushes back on callers.
//! A call of at least half of `batch_max_rows` is already a good batch: it is inserted
//! on its own, in one piece, at once — waiting `batch_max_delay` for company would only
//! add latency (the collector's log feeder, which writes batches of up to its
//! `max_batch_spans`, is such a caller).

use std::sync::Arc;

use hopscope_schemas::SpanRecord;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use super::writer::BatchWriter;
use crate::error::{Result, StorageError};

struct Job {
    spans: Vec<SpanRecord>,
    bytes: usize,
    done: oneshot::Sender<Result<()>>,
}

/// Handle to the batching task; cloning shares the task.
#[derive(Clone)]
pub(crate) struct Batcher {
    jobs: mpsc::Sender<Job>,
    writer: BatchWriter,
    permits: Arc<Semaphore>,
}

impl Batcher {
    /// Starts the task on the current runtime.
    pub fn start(writer: BatchWriter) -> Self {
        let (tx, rx) = mpsc::channel(writer.config.max_concurrent_inserts.max(1) * 64);
        let permits = Arc::new(Semaphore::new(writer.config.max_concurrent_inserts.max(1)));
        tokio::spawn(run(rx, writer.clone(), permits.clone()));
        Self {
            jobs: tx,
            writer,
            permits,
        }
    }

    /// Writes spans through a batch; returns once they are inserted.
    pub async fn write(&self, spans: Vec<SpanRecord>) -> Result<()> {
        if spans.is_empty() {
            return Ok(());
        }
        if spans.len().saturating_mul(2) >= self.writer.config.batch_max_rows {
            let _permit = self
                .permits
                .acquire()
                .await
                .map_err(|_| StorageError::Retryable("clickhouse writer stopped".into()))?;
            return self.writer.insert(&spans).await;
        }
        let bytes = spans.iter().map(SpanRecord::heap_size).sum();
        let (done, wait) = oneshot::channel();
        self.jobs
            .send(Job { spans, bytes, done })
            .await
            .map_err(|_| StorageError::Retryable("clickhouse writer stopped".into()))?;
        wait.await
            .map_err(|_| StorageError::Retryable("clickhouse writer stopped".into()))?
    }
}

async fn run(mut rx: mpsc::Receiver<Job>, writer: BatchWriter, permits: Arc<Semaphore>) {
    let max_rows = writer.config.batch_max_rows;
    let max_bytes = writer.config.batch_max_bytes;
    let max_delay = writer.config.batch_max_delay;
    while let Some(first) = rx.recv().await {
        let deadline = Instant::now() + max_delay;
        let mut rows = first.spans.len();
        let mut bytes = first.bytes;
        let mut jobs = vec![first];
        while rows < max_rows && bytes < max_bytes {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(job)) => {
                    rows += job.spans.len();
                    bytes += job.bytes;
                    jobs.push(job);
                }
                Ok(None) | Err(_) => break,
            }
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let writer = writer.clone();
        tokio::spawn(async move {
            let mut spans = Vec::with_capacity(rows);
            let mut waiters = Vec::with_capacity(jobs.len());
            for job in jobs {
                spans.extend(job.spans);
                waiters.push(job.done);
            }
            let result = writer.insert(&spans).await;
            drop(permit);
            for waiter in waiters {
                let copy = match &result {
                    Ok(()) => Ok(()),
                    Err(StorageError::Retryable(m)) => Err(StorageError::Retryable(m.clone())),
                    Err(StorageError::Permanent(m)) => Err(StorageError::Permanent(m.clone())),
                    Err(other) => Err(StorageError::Permanent(other.to_string())),
                };
                // The caller may have gone away; its spans are inserted regardless.
                let _ = waiter.send(copy);
            }
        });
    }
}
