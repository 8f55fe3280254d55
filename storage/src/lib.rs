//! Span storage for hopscope: the contract every store fulfils ([`SpanWriter`],
//! [`SpanReader`]), the query types, and the embedded store ([`embedded::EmbeddedStore`])
//! that runs with no external service.
//!
//! The collector writes through [`SpanWriter`]; the query API reads through
//! [`SpanReader`]. Both are object-safe and used as `Arc<dyn ...>`, so the binary picks the
//! store at start-up.

pub mod aggregates;
pub mod clickhouse;
pub mod deferred;
pub mod embedded;
pub mod error;
pub mod matching;
pub mod otlp_bodies;
pub mod query;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use hopscope_schemas::{SpanRecord, TraceId};

pub use aggregates::AggregateReader;
pub use embedded::{EmbeddedConfig, EmbeddedStats, EmbeddedStore};
pub use error::{Result, StorageError};
pub use otlp_bodies::OtlpWrite;
pub use query::{DependencyLink, Operation, OperationQuery, TagFilter, Trace, TraceQuery};

/// Writes spans into a store.
///
/// Contract:
/// - One call is one write of one batch: `write_spans` returns `Ok` only once every span
///   of the batch is stored and visible to [`SpanReader`]s of the same store. A store
///   does not batch calls together, split them up or hold them back.
/// - Who retries: the caller. A store makes one attempt per call and does not retry; on
///   [`StorageError::Retryable`] the caller decides whether and when to retry the same
///   batch, [`StorageError::Permanent`] means retrying cannot help. In hopscope the
///   caller is the collector's store feeder, the only place that batches (records cut
///   from the write-ahead log), retries (with backoff, for as long as it takes) and
///   commits the log after success.
/// - Idempotent: writing a span whose `(trace_id, span_id)` is already stored does not
///   create a second copy, so a retried or replayed batch is harmless. ClickHouse does it
///   per batch with a deduplication token derived from the batch's spans (the feeder
///   replays a batch cut exactly as before), the embedded store per span.
/// - Concurrency: it may be called concurrently from many tasks (the feeder calls it for
///   one batch at a time).
/// - Blocking: it may keep the calling task waiting for as long as the backend takes
///   (ClickHouse: up to its `request_timeout` per insert); it never blocks the async
///   runtime's threads for long (CPU-heavy work runs on the blocking pool).
#[async_trait]
pub trait SpanWriter: Send + Sync {
    /// Stores a batch of validated spans.
    async fn write_spans(&self, spans: Vec<SpanRecord>) -> Result<()>;

    /// Stores the spans of encoded OTLP `ExportTraceServiceRequest` bodies, exactly as
    /// decoding each with prost, mapping it with
    /// [`hopscope_schemas::otlp::spans_from_request`] and writing the valid spans with
    /// [`SpanWriter::write_spans`] would (that method's contract holds). Bodies that do
    /// not decode are skipped and named in the result. The default does just that; a
    /// store that reads bodies in place overrides it and [`SpanWriter::reads_otlp`].
    async fn write_otlp(&self, bodies: Arc<[Bytes]>) -> Result<OtlpWrite> {
        let (spans, undecodable) = otlp_bodies::decode_all(&bodies);
        let count = spans.len() as u64;
        if count > 0 {
            self.write_spans(spans).await?;
        }
        Ok(OtlpWrite {
            spans: count,
            undecodable,
        })
    }

    /// True when [`SpanWriter::write_otlp`] is cheaper than decoding and
    /// [`SpanWriter::write_spans`], so a caller holding encoded requests should hand
    /// them over encoded.
    fn reads_otlp(&self) -> bool {
        false
    }
}

/// Reads spans back.
///
/// Contract: every method may be called concurrently with writes and other reads, and
/// sees every batch whose `write_spans` has returned. Times are unix nanoseconds.
#[async_trait]
pub trait SpanReader: Send + Sync {
    /// Service names that have spans, sorted.
    async fn services(&self) -> Result<Vec<String>>;

    /// Operations of one service (optionally of one span kind), sorted by name then kind.
    async fn operations(&self, query: &OperationQuery) -> Result<Vec<Operation>>;

    /// All stored spans of one trace, or `None` when no span of it is stored.
    async fn trace(&self, trace_id: TraceId) -> Result<Option<Trace>>;

    /// Traces with at least one span matching every filter of the query together, most
    /// recent match first, at most `query.limit` traces, each with all its spans.
    async fn find_traces(&self, query: &TraceQuery) -> Result<Vec<Trace>>;

    /// Service-to-service call counts from parent/child spans whose child starts in
    /// `[start_ns, end_ns]`, sorted by parent then child.
    async fn dependencies(&self, start_ns: u64, end_ns: u64) -> Result<Vec<DependencyLink>>;
}

/// A store that can both write and read; what the all-in-one binary runs on.
pub trait SpanStore: SpanWriter + SpanReader {}

impl<T: SpanWriter + SpanReader> SpanStore for T {}

/// A store that also answers the analysis aggregates (both built-in stores do).
pub trait AggregateStore: SpanStore + AggregateReader {}

impl<T: SpanStore + AggregateReader> AggregateStore for T {}

/// A shared handle to a store.
pub type SharedStore = Arc<dyn SpanStore>;
