//! Export: the [`SpanExporter`] contract, the bounded batch queue in front of it, and the
//! OTLP/gRPC, OTLP/HTTP and in-memory exporters.

mod batch;
mod memory;
mod otlp;
mod otlp_http;
#[cfg(feature = "tls")]
mod tls;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub(crate) use batch::BatchProcessor;
pub use memory::InMemoryExporter;
pub use otlp::{OtlpConfig, OtlpGrpcExporter, to_otlp_request};
pub use otlp_http::{OtlpExporter, OtlpHttpExporter};

use crate::error::{Error, Result};
use crate::resource::Resource;
use crate::span::SpanData;

/// A boxed, sendable future, as returned by [`SpanExporter::export`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Sends batches of finished spans somewhere.
///
/// Contract:
/// - Called from the SDK's single export worker thread (a current-thread Tokio runtime),
///   never concurrently: one `export` at a time, in order.
/// - The worker, not the exporter, retries: return [`Error::Export`] with
///   `retryable: true` when sending the same batch again may succeed (endpoint down,
///   overloaded, timed out) and `retryable: false` when it will not (rejected data).
/// - The worker bounds every call by [`BatchConfig::export_timeout`]; an exporter may
///   block that long but no longer is useful.
/// - Never called from application threads, so exporters may do I/O freely.
pub trait SpanExporter: Send + 'static {
    /// Sends one batch. All spans share `resource`.
    fn export<'a>(&'a mut self, batch: &'a [SpanData], resource: &'a Resource) -> BoxFuture<'a, Result<()>>;
}

/// Queue and batching settings. Defaults follow the OpenTelemetry batch span processor
/// (`OTEL_BSP_*`).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchConfig {
    /// Most spans waiting for export; beyond it new spans are dropped and counted
    /// (`OTEL_BSP_MAX_QUEUE_SIZE`, default 2048).
    pub max_queue_size: usize,
    /// Most spans per export call (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, default 512).
    pub max_export_batch_size: usize,
    /// Longest a span waits before its batch is sent (`OTEL_BSP_SCHEDULE_DELAY`, ms,
    /// default 5000).
    pub scheduled_delay: Duration,
    /// Bound on one export call (`OTEL_BSP_EXPORT_TIMEOUT`, ms, default 30000).
    pub export_timeout: Duration,
    /// Retries of a batch after a retryable failure (default 5).
    pub max_retries: u32,
    /// First retry delay; doubles up to `max_backoff`, with jitter (default 100 ms).
    pub initial_backoff: Duration,
    /// Longest retry delay (default 5 s).
    pub max_backoff: Duration,
    /// Bound on flushing at shutdown, retries included (default 10 s).
    pub shutdown_timeout: Duration,
}

impl Default for BatchConfig {
    fn default() -> BatchConfig {
        BatchConfig {
            max_queue_size: 2048,
            max_export_batch_size: 512,
            scheduled_delay: Duration::from_millis(5000),
            export_timeout: Duration::from_millis(30_000),
            max_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl BatchConfig {
    /// Defaults overridden by the `OTEL_BSP_*` process environment.
    pub fn from_env() -> Result<BatchConfig> {
        BatchConfig::from_env_vars(|k| std::env::var(k).ok())
    }

    /// [`BatchConfig::from_env`] over any variable source.
    pub fn from_env_vars(get: impl Fn(&str) -> Option<String>) -> Result<BatchConfig> {
        let mut c = BatchConfig::default();
        let num = |key: &str| -> Result<Option<u64>> {
            get(key)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .map_err(|_| Error::Config(format!("{key}={v:?} is not a whole number")))
                })
                .transpose()
        };
        if let Some(v) = num("OTEL_BSP_MAX_QUEUE_SIZE")? {
            c.max_queue_size = v as usize;
        }
        if let Some(v) = num("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")? {
            c.max_export_batch_size = v as usize;
        }
        if let Some(v) = num("OTEL_BSP_SCHEDULE_DELAY")? {
            c.scheduled_delay = Duration::from_millis(v);
        }
        if let Some(v) = num("OTEL_BSP_EXPORT_TIMEOUT")? {
            c.export_timeout = Duration::from_millis(v);
        }
        c.validate()?;
        Ok(c)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.max_queue_size == 0 || self.max_export_batch_size == 0 {
            return Err(Error::Config("queue and batch sizes must be at least 1".into()));
        }
        Ok(())
    }
}

/// Export counters, since the provider was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportStats {
    /// Spans accepted into the queue.
    pub queued: u64,
    /// Spans dropped because the queue was full (or the pipeline shut down).
    pub dropped: u64,
    /// Spans the exporter accepted.
    pub exported: u64,
    /// Spans given up on after a permanent error or the last retry.
    pub failed: u64,
    /// Export attempts that failed (each retry counts).
    pub failed_attempts: u64,
}
