//! The [`RecordSink`] the ingest path appends to: the write-ahead log.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use hopscope_storage::{Result, StorageError};
use tokio::sync::Notify;

use crate::ingest::RecordSink;
use crate::wal::{Durability, Wal, WalError};

/// Appends each accepted request to the log as one record and wakes the feeder.
///
/// Contract ([`RecordSink`]): `append` returns `Ok` once the record is in the log (as
/// durable as the log's [`Durability`] says); [`StorageError::Full`] when the log's
/// backlog is at its limit (nothing was written; retry later);
/// [`StorageError::Retryable`] on an I/O failure (nothing was written either: the log
/// cuts a failed append back, see [`crate::wal`]).
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
impl RecordSink for WalWriter {
    /// Under [`Durability::Process`] the record is appended right here when the log is
    /// free (one `write(2)` into the page cache, no flush; a new segment file now and
    /// then): without the hand-over to a blocking thread, measured to cost less CPU and
    /// ack latency (benches/README.md, fourth 2026-12-02 round). Under the fsync
    /// durabilities, or with the log in use, the append goes to the blocking pool.
    async fn append(&self, record: Bytes) -> Result<()> {
        if self.wal.config().durability == Durability::Process
            && let Some(appended) = self.wal.try_append_shared(record.clone())
        {
            return self.finish(Ok(appended));
        }
        let wal = Arc::clone(&self.wal);
        self.finish(tokio::task::spawn_blocking(move || wal.append_shared(record)).await)
    }
}
