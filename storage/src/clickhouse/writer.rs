//! Inserting span batches: per batch one `INSERT` into `resources` (each distinct
//! resource and scope of the batch, per day) and then one into `spans_v2`, through the
//! `clickhouse` crate. One attempt per call, no batching and no retry here: the caller
//! (the collector's store feeder) cuts the batches from its log, retries them with
//! backoff, and commits its log position only after success, so this layer does exactly
//! one idempotent write per feeder batch. Resources go first, so a reader never sees a span whose resource is
//! missing; a batch that fails after its resources leaves only a harmless duplicate row
//! there (a `ReplacingMergeTree` keyed by hash). Each writer remembers the (resource,
//! day) rows it inserted and leaves them out of later batches, so in steady state a
//! batch is one `INSERT` (an operator who deletes `resources` rows by hand must restart
//! hopscope, or spans written meanwhile read back with an empty resource).
//!
//! Deduplication: every batch carries a token derived from its span ids and start
//! times (the resources insert the same token with an `-r` suffix), so the feeder's retry
//! of a batch (or its replay after a crash, cut the same way from the log's recorded
//! intent) is recognised.
//! - Modern servers: `insert_deduplication_token` (non-replicated tables are created with
//!   `non_replicated_deduplication_window`, replicated ones dedupe by default), and
//!   `deduplicate_blocks_in_dependent_materialized_views` keeps the rollups exact too.
//! - Legacy servers (18.x) have neither. There `spans_v2`, `trace_index` and `operations`
//!   are ReplacingMergeTree tables keyed on the full row identity, and every read dedupes
//!   spans with `LIMIT 1 BY` / `DISTINCT`, so a span inserted twice is read once. Only
//!   the per-minute rollups can count a retried batch twice there (documented).

use std::num::NonZeroUsize;
use std::sync::Arc;

use hopscope_schemas::SpanRecord;
use lru::LruCache;
use parking_lot::Mutex;
use tracing::warn;

use super::config::ClickHouseConfig;
use super::errors::classify;
use super::migrations::Target;
use super::rows::{ResourceRow, encode_batch};
use super::version::Generation;
use crate::error::Result;

/// Resource rows (hash, day) this process has inserted, remembered so that a batch
/// whose resources are all known sends only its spans.
const KNOWN_RESOURCES: usize = 65_536;

/// Sends batches to the `resources` and `spans_v2` tables. Clones share the memory of
/// inserted resources.
#[derive(Clone)]
pub(crate) struct BatchWriter {
    pub client: clickhouse::Client,
    pub target: Target,
    pub config: ClickHouseConfig,
    known: Arc<Mutex<LruCache<(u64, u16), ()>>>,
}

/// The batch's deduplication token: a 128-bit FNV-1a over ids and start times.
pub(crate) fn dedup_token(spans: &[SpanRecord]) -> String {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x8422_2325_cbf2_9ce4;
    let mut feed = |bytes: &[u8]| {
        for &byte in bytes {
            a = (a ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            b = (b ^ u64::from(byte.rotate_left(3))).wrapping_mul(0x0000_0100_0000_01b3 | 0x1_0000);
        }
    };
    for span in spans {
        feed(&span.trace_id.0);
        feed(&span.span_id.0);
        feed(&span.start_time_unix_nano.to_le_bytes());
    }
    feed(&(spans.len() as u64).to_le_bytes());
    format!("hs-{a:016x}{b:016x}")
}

impl BatchWriter {
    /// A writer that has inserted no resources yet.
    pub fn new(client: clickhouse::Client, target: Target, config: ClickHouseConfig) -> Self {
        Self {
            client,
            target,
            config,
            known: Arc::new(Mutex::new(LruCache::new(
                NonZeroUsize::new(KNOWN_RESOURCES).unwrap_or(NonZeroUsize::MIN),
            ))),
        }
    }

    /// Inserts one batch: its new resources, then its spans, each with the batch's
    /// deduplication token; one attempt (see the module doc), the error classified as
    /// retryable or permanent.
    pub async fn insert(&self, spans: &[SpanRecord]) -> Result<()> {
        if spans.is_empty() {
            return Ok(());
        }
        let (mut resources, rows) = encode_batch(spans);
        {
            let mut known = self.known.lock();
            resources.retain(|r| known.get(&(r.resource_hash, r.day)).is_none());
        }
        let token = dedup_token(spans);
        self.insert_resources(&resources, &token).await?;
        self.insert_once("spans_v2", &rows, &token).await.inspect_err(|err| {
            warn!(rows = rows.len(), error = %err, "clickhouse insert failed");
        })
    }

    /// Inserts the batch's new resources (none: no request) and remembers them.
    async fn insert_resources(&self, resources: &[ResourceRow], token: &str) -> Result<()> {
        if resources.is_empty() {
            return Ok(());
        }
        self.insert_once("resources", resources, &format!("{token}-r")).await?;
        let mut known = self.known.lock();
        for r in resources {
            known.put((r.resource_hash, r.day), ());
        }
        Ok(())
    }

    /// One `INSERT` of `rows` into `table` (`spans_v2` or `resources`).
    async fn insert_once<T>(&self, table: &str, rows: &[T], token: &str) -> Result<()>
    where
        T: clickhouse::RowOwned + clickhouse::RowWrite,
    {
        let table = self.target.table(table);
        let mut insert = self
            .client
            .insert_unescaped::<T>(&table)
            .await
            .map_err(|e| classify("insert", e))?
            .with_timeouts(Some(self.config.request_timeout), Some(self.config.request_timeout));
        if self.target.generation == Generation::Modern {
            insert = insert
                .with_setting("insert_deduplication_token", token)
                .with_setting("deduplicate_blocks_in_dependent_materialized_views", "1")
                .with_setting("insert_deduplicate", "1");
        }
        if self.target.cluster.is_some() {
            // Return only once the shards have the rows, so readers see them.
            insert = insert.with_setting("insert_distributed_sync", "1");
        }
        for row in rows {
            insert.write(row).await.map_err(|e| classify("insert", e))?;
        }
        insert.end().await.map_err(|e| classify("insert", e))
    }
}
