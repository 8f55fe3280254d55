//! [`Step::CopyJsonSpans`](super::migrations::Step::CopyJsonSpans): moves the rows of
//! the pre-0005 `spans` table (each span as JSON in `record`) into `spans_v2` and
//! `resources`.
//!
//! The old table is streamed (the HTTP response is read row by row, never held whole),
//! decoded and written through the normal batch writer in batches of
//! [`COPY_BATCH`] spans, so memory stays bounded whatever the table's size. A row that
//! does not decode stops the upgrade with a permanent error naming it: hopscope never
//! drops stored spans silently.

use hopscope_schemas::SpanRecord;
use tracing::info;

use super::errors::classify;
use super::rows::RecordRow;
use super::writer::BatchWriter;
use crate::error::{Result, StorageError};

/// Spans per insert while copying.
pub(crate) const COPY_BATCH: usize = 10_000;

#[derive(clickhouse::Row, serde::Deserialize)]
struct Count {
    n: u64,
}

/// Copies every old span; returns how many were copied (0 when there is no old table,
/// as on a fresh database).
pub(crate) async fn copy_json_spans(writer: &BatchWriter) -> Result<u64> {
    let target = &writer.target;
    let exists: Count = writer
        .client
        .query(
            "SELECT count() AS n FROM system.columns \
             WHERE database = ? AND table = 'spans' AND name = 'record'",
        )
        .bind(target.database.as_str())
        .fetch_one()
        .await
        .map_err(|e| classify("upgrade", e))?;
    if exists.n == 0 {
        return Ok(0);
    }
    let sql = format!("SELECT record FROM {}", target.table("spans"));
    let mut cursor = writer
        .client
        .query(&sql)
        .fetch::<RecordRow>()
        .map_err(|e| classify("upgrade", e))?;
    let mut batch: Vec<SpanRecord> = Vec::with_capacity(COPY_BATCH);
    let mut copied = 0u64;
    while let Some(row) = cursor.next().await.map_err(|e| classify("upgrade", e))? {
        let span: SpanRecord = serde_json::from_str(&row.record).map_err(|e| {
            StorageError::Permanent(format!(
                "upgrade: a stored span cannot be decoded ({e}): {:.200}",
                row.record
            ))
        })?;
        batch.push(span);
        if batch.len() == COPY_BATCH {
            writer.insert(&batch).await?;
            copied += batch.len() as u64;
            batch.clear();
        }
    }
    writer.insert(&batch).await?;
    copied += batch.len() as u64;
    info!(spans = copied, database = %target.database, "copied spans into spans_v2");
    Ok(copied)
}
