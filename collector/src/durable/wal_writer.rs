//! The [`SpanWriter`] the receivers write through: it appends to the write-ahead log.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use hopscope_schemas::SpanRecord;
use hopscope_schemas::otlp::traces_data;
use hopscope_storage::{Result, SpanWriter, StorageError};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tokio::sync::Notify;

use crate::wal::{Durability, Wal, WalError};

/// Encodes validated spans as the log's record payload: an OTLP
/// `ExportTraceServiceRequest` in protobuf, so a record can be replayed through the same
/// mapping as a fresh request.
pub fn encode_spans(spans: &[SpanRecord]) -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: traces_data(spans).resource_spans,
    }
    .encode_to_vec()
}

/// A whole export request, every span of it valid, ready to be logged as it is.
#[derive(Debug)]
pub enum LogPayload {
    /// The request body exactly as received (uncompressed protobuf). Logging it needs no
    /// encoding at all.
    Encoded(Bytes),
    /// A decoded request (from JSON, or changed by enrichment); encoded with prost.
    Request(ExportTraceServiceRequest),
}

/// Appends each batch to the log as one record and wakes the feeder.
///
/// Contract: `write_spans` returns `Ok` once the record is in the log (as durable as the
/// log's `Durability` says); [`StorageError::Full`] when the log's backlog is at its limit
/// (nothing was written; retry later); [`StorageError::Retryable`] on an I/O failure.
#[derive(Debug, Clone)]
pub struct WalWriter {
    wal: Arc<Wal>,
    appended: Arc<Notify>,
}

impl WalWriter {
    /// A writer into `wal` that signals `appended` after every append.
    pub fn new(wal: Arc<Wal>, appended: Arc<Notify>) -> Self {
        Self { wal, appended }
    }

    /// Appends a whole, fully valid export request as one record, with the same contract
    /// as [`SpanWriter::write_spans`]. The record is an `ExportTraceServiceRequest`, as
    /// [`encode_spans`] writes, so the feeder and replay read both alike; the caller must
    /// have checked that every span maps ([`hopscope_schemas::otlp::request_is_valid`]),
    /// so that the log holds exactly the spans that were acknowledged.
    ///
    /// A body logged as it arrived, under [`Durability::Process`], is appended right here
    /// when the log is free (one `write(2)` into the page cache, no flush; a new segment
    /// file now and then): without the hand-over to a blocking thread, measured to cost
    /// less CPU and ack latency (benches/README.md, fourth 2026-12-02 round). Anything
    /// else, or a log in use, goes to the blocking pool.
    pub async fn append_request(&self, payload: LogPayload) -> Result<()> {
        if self.wal.config().durability == Durability::Process
            && let LogPayload::Encoded(bytes) = &payload
            && let Some(appended) = self.wal.try_append_shared(bytes.clone())
        {
            return self.finish(Ok(appended));
        }
        let wal = Arc::clone(&self.wal);
        self.finish(
            tokio::task::spawn_blocking(move || match payload {
                LogPayload::Encoded(bytes) => wal.append_shared(bytes),
                LogPayload::Request(request) => wal.append_shared(request.encode_to_vec().into()),
            })
            .await,
        )
    }

    fn finish(
        &self,
        appended: std::result::Result<std::result::Result<u64, WalError>, tokio::task::JoinError>,
    ) -> Result<()> {
        let appended =
            appended.map_err(|err| StorageError::Retryable(format!("write-ahead log task failed: {err}")))?;
        match appended {
            Ok(_) => {
                self.appended.notify_one();
                Ok(())
            }
            Err(err @ WalError::Full { .. }) => Err(StorageError::Full(err.to_string())),
            Err(err) => Err(StorageError::Retryable(err.to_string())),
        }
    }
}

#[async_trait]
impl SpanWriter for WalWriter {
    async fn write_spans(&self, spans: Vec<SpanRecord>) -> Result<()> {
        if spans.is_empty() {
            return Ok(());
        }
        let wal = Arc::clone(&self.wal);
        // Encoding and the write system call (or fsync) stay off the async reactor.
        self.finish(tokio::task::spawn_blocking(move || wal.append_shared(encode_spans(&spans).into())).await)
    }
}
