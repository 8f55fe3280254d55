//! Stage 2 of the collector: the one ingest entry point, [`Ingest::ingest`], shared by
//! the gRPC and HTTP receivers.
//!
//! A receiver hands over a request body and its encoding ([`RequestBody`]); `ingest`
//! turns it into one record — an encoded OTLP `ExportTraceServiceRequest` holding exactly
//! the request's valid spans (`prepare` says how: a valid protobuf body
//! is the record as it is) — appends that record to the [`RecordSink`] (the write-ahead
//! log in the binary, [`crate::durable::WalWriter`]) and answers with OTLP partial
//! success naming the spans it dropped. Nothing is mapped to `SpanRecord` here; the store
//! feeder does that when it moves records into the store.
//!
//! Where the work runs: the in-place check of a protobuf body runs on the reactor up to
//! [`SCAN_BLOCKING_THRESHOLD`] bytes (about half a microsecond per KiB); decoding runs
//! there up to [`DECODE_BLOCKING_THRESHOLD`] bytes of input (or a sixteenth of it for
//! gzip, which inflates first); larger bodies go to the blocking pool, so no request holds a reactor
//! thread for much more than half a millisecond. The append itself is the sink's business
//! (the log appends inline when it can, see [`crate::durable::WalWriter`]).
//!
//! Admission ([`Ingest::admit`]) bounds the bodies held at once over all receivers.

mod prepare;
mod stats;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use hopscope_schemas::otlp_scan::valid_span_count;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::body_pool::BodyPool;
use crate::cloud::CloudRules;
use crate::config::DEFAULT_MAX_INFLIGHT_REQUESTS;
use crate::decode::ContentEncoding;
use crate::error::{BodyFormat, IngestError, Result};
pub use prepare::RequestBody;
use prepare::{Prepared, prepare};
pub use stats::IngestStats;
use stats::{Counters, add};

/// Protobuf bodies up to this size are checked in place on the reactor: the check runs
/// at about 4M spans/s on one core (benches/README.md, `scan_check`), ~2,000 spans per MiB,
/// so a MiB takes about half a millisecond.
pub const SCAN_BLOCKING_THRESHOLD: usize = 1 << 20;

/// Bodies that must be decoded are decoded on the blocking pool above this size (gzip
/// bodies above a sixteenth of it); prost decodes a 256 KiB request in about half a
/// millisecond.
pub const DECODE_BLOCKING_THRESHOLD: usize = 256 * 1024;

/// Idle body buffers kept for reuse ([`BodyPool`]). A store write releases up to ~20
/// bodies at once (a feeder batch of 10,000 spans); keeping 24 of them cost 7-16 MiB of
/// peak RSS for the same CPU as keeping 8 (2026-12-02, `benches/README.md`).
const SPARE_BODY_BUFFERS: usize = 8;

/// Where [`Ingest`] puts accepted requests, one record each.
///
/// Contract: `append` returns `Ok` only once the record is kept as durably as the sink
/// promises (the log: written, and flushed as its durability says); then the request is
/// acknowledged. [`StorageError::Full`](hopscope_storage::StorageError::Full) means "no
/// room now, retry later" (back-pressure), `Retryable` a failure a retry may fix,
/// `Permanent` one it cannot; on any error nothing of the record may be acknowledged.
/// Called concurrently from the receivers' tasks; should not block the reactor.
#[async_trait]
pub trait RecordSink: Send + Sync {
    /// Appends one record: an encoded OTLP `ExportTraceServiceRequest` whose spans are
    /// all valid.
    async fn append(&self, record: Bytes) -> hopscope_storage::Result<()>;
}

/// The ingest path; shared by all receivers as `Arc<Ingest>`. See the module doc.
pub struct Ingest {
    sink: Arc<dyn RecordSink>,
    /// Permits for requests in flight ([`Ingest::admit`]).
    admission: Arc<Semaphore>,
    max_inflight_requests: usize,
    counters: Counters,
    cloud: Arc<CloudRules>,
    /// Buffers the receivers gather request bodies in.
    bodies: Arc<BodyPool>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Ingest {
    /// An ingest path appending to `sink`.
    pub fn new(sink: Arc<dyn RecordSink>) -> Self {
        Self {
            sink,
            admission: Arc::new(Semaphore::new(DEFAULT_MAX_INFLIGHT_REQUESTS)),
            max_inflight_requests: DEFAULT_MAX_INFLIGHT_REQUESTS,
            counters: Counters::default(),
            cloud: Arc::new(CloudRules::default()),
            bodies: BodyPool::new(SPARE_BODY_BUFFERS),
        }
    }

    /// The pool the receivers gather request bodies in ([`crate::body_pool`]).
    pub fn body_pool(&self) -> &Arc<BodyPool> {
        &self.bodies
    }

    /// Admits at most `limit` export requests at once ([`Ingest::admit`]; at least 1).
    pub fn with_max_inflight_requests(mut self, limit: usize) -> Self {
        let limit = limit.max(1);
        self.admission = Arc::new(Semaphore::new(limit));
        self.max_inflight_requests = limit;
        self
    }

    /// Tags resources with these hybrid-cloud rules before logging ([`crate::cloud`]);
    /// without it no resource is changed.
    pub fn with_cloud_rules(mut self, rules: CloudRules) -> Self {
        self.cloud = Arc::new(rules);
        self
    }

    /// Ingests one export request: turns `body` into a record of its valid spans, appends
    /// it to the sink, and returns the OTLP answer (partial success naming the invalid
    /// spans, if any).
    ///
    /// Contract: `Ok` means every valid span is in the sink (acknowledged); a request
    /// without valid spans succeeds without an append. A body that does not decode is
    /// [`IngestError::InvalidProtobuf`] / [`IngestError::InvalidJson`] /
    /// [`IngestError::InvalidGzip`] / [`IngestError::DecompressedTooLarge`] and counted
    /// as an invalid request; a failed append is [`IngestError::Storage`] and nothing is
    /// acknowledged. Large bodies are worked on off the reactor (module doc). May be
    /// called concurrently.
    pub async fn ingest(&self, body: RequestBody) -> Result<ExportTraceServiceResponse> {
        let prepared = match self.prepare(body).await {
            Ok(prepared) => prepared,
            Err(err) => {
                self.record_invalid_request();
                return Err(err);
            }
        };
        let Prepared {
            record,
            accepted,
            rejected,
            error_message,
        } = prepared;
        let c = &self.counters;
        add(&c.requests, 1);
        add(&c.spans_received, accepted + rejected);
        add(&c.spans_rejected, rejected);
        if rejected > 0 {
            tracing::info!(rejected, accepted, error_message, "export request has invalid spans");
        }
        if let Some(record) = record {
            if let Err(err) = self.sink.append(record).await {
                add(&c.spans_failed, accepted);
                add(&c.write_errors, 1);
                return Err(IngestError::Storage(err));
            }
            add(&c.spans_accepted, accepted);
        }
        tracing::debug!(accepted, rejected, "export request logged");
        let partial_success = (rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: i64::try_from(rejected).unwrap_or(i64::MAX),
            error_message,
        });
        Ok(ExportTraceServiceResponse { partial_success })
    }

    /// [`prepare`], on the reactor or the blocking pool as the module doc says.
    async fn prepare(&self, body: RequestBody) -> Result<Prepared> {
        let len = body.bytes.len();
        let mut scanned = false;
        let inline = match (body.encoding, body.format) {
            (ContentEncoding::Gzip, _) => len <= DECODE_BLOCKING_THRESHOLD / 16,
            (ContentEncoding::Identity, BodyFormat::Protobuf) if self.cloud.is_empty() => {
                if len <= SCAN_BLOCKING_THRESHOLD {
                    if let Some(spans) = valid_span_count(&body.bytes) {
                        return Ok(Prepared::as_is(body.bytes, spans));
                    }
                    scanned = true;
                }
                len <= DECODE_BLOCKING_THRESHOLD
            }
            (ContentEncoding::Identity, _) => len <= DECODE_BLOCKING_THRESHOLD,
        };
        if inline {
            return prepare(body, &self.cloud, scanned);
        }
        let rules = Arc::clone(&self.cloud);
        tokio::task::spawn_blocking(move || prepare(body, &rules, scanned))
            .await
            .map_err(|err| IngestError::Internal(format!("decode task failed: {err}")))?
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> IngestStats {
        self.counters.snapshot()
    }

    /// Admits one export request, to be called before its body is read: the request
    /// holds the permit until it is answered, so at most `max_inflight_requests` bodies
    /// (each at most `max_request_bytes`) are held at once over all receivers, however
    /// many clients send and however slowly the log takes them. Past the limit it
    /// refuses at once with [`IngestError::Overloaded`] (gRPC `RESOURCE_EXHAUSTED` with
    /// a retry delay, HTTP 429 with `Retry-After`).
    pub fn admit(&self) -> Result<OwnedSemaphorePermit> {
        Arc::clone(&self.admission).try_acquire_owned().map_err(|_| {
            add(&self.counters.requests_throttled, 1);
            IngestError::Overloaded {
                limit: self.max_inflight_requests,
            }
        })
    }

    /// Counts a request refused before it reached [`Ingest::ingest`] (or by it).
    pub(crate) fn record_invalid_request(&self) {
        add(&self.counters.invalid_requests, 1);
    }
}
