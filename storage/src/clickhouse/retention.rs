//! Retention (`ttl_days`) on both server generations.
//!
//! - Modern servers: tables carry a TTL. The migrations create it from the configured
//!   value; when the configuration changes later, [`sync_ttl`] (run by every
//!   [`super::migrate`], so at each start-up with `migrate_on_start` and by
//!   `hopscope migrate`) reads each table's TTL from `system.tables` and applies the new
//!   one with `ALTER TABLE … MODIFY TTL` (or `REMOVE TTL` for 0). The server then
//!   materializes it in the background.
//! - Legacy servers (18.x) have no TTL. The retention lives only in the configuration:
//!   [`drop_expired_partitions`] (run at every start-up) drops the daily partitions
//!   older than `ttl_days`, so a changed value takes effect at the next start-up.

use super::errors::classify;
use super::migrations::Target;
use super::version::Generation;
use crate::error::Result;

#[derive(clickhouse::Row, serde::Deserialize)]
struct EngineRow {
    engine_full: String,
}

#[derive(clickhouse::Row, serde::Deserialize)]
struct Part {
    table: String,
    partition_id: String,
}

/// The retention in days of a table's `engine_full` text: 0 without a TTL, `None` for a
/// TTL hopscope did not write (not a whole number of days).
pub(crate) fn ttl_days_of(engine_full: &str) -> Option<u32> {
    let Some((_, ttl)) = engine_full.split_once(" TTL ") else {
        return Some(0);
    };
    let days = ttl.split_once("toIntervalDay(")?.1.split_once(')')?.0;
    days.trim().parse().ok()
}

/// Modern servers: gives every hopscope table the configured TTL where it differs;
/// returns the tables altered. Legacy servers: nothing to do.
pub(crate) async fn sync_ttl(client: &clickhouse::Client, target: &Target) -> Result<Vec<String>> {
    let mut altered = Vec::new();
    if target.generation == Generation::Legacy {
        return Ok(altered);
    }
    for (table, expr) in target.ttl_tables() {
        let rows: Vec<EngineRow> = client
            .query("SELECT engine_full FROM system.tables WHERE database = ? AND name = ?")
            .bind(target.database.as_str())
            .bind(table.as_str())
            .fetch_all()
            .await
            .map_err(|e| classify("retention", e))?;
        let Some(row) = rows.first() else { continue };
        if ttl_days_of(&row.engine_full) == Some(target.ttl_days) {
            continue;
        }
        client
            .query_raw(&target.ttl_statement(&table, &expr, target.ttl_days))
            .execute()
            .await
            .map_err(|e| classify("retention", e))?;
        altered.push(table);
    }
    Ok(altered)
}

/// Legacy servers: drops the daily partitions of hopscope's tables older than
/// `ttl_days`; returns how many. Modern servers (table TTLs) and `ttl_days = 0`:
/// nothing to do.
pub(crate) async fn drop_expired_partitions(client: &clickhouse::Client, target: &Target) -> Result<usize> {
    if target.generation == Generation::Modern || target.ttl_days == 0 {
        return Ok(0);
    }
    let tables = target.ttl_tables();
    let list = vec!["?"; tables.len()].join(", ");
    let sql = format!(
        "SELECT DISTINCT table, partition_id FROM system.parts \
         WHERE database = ? AND active AND table IN ({list}) \
         AND partition_id < toString(toYYYYMMDD(today() - ?))"
    );
    let mut q = client.query(&sql).bind(target.database.as_str());
    for (table, _) in &tables {
        q = q.bind(table.as_str());
    }
    let parts: Vec<Part> = q
        .bind(target.ttl_days)
        .fetch_all()
        .await
        .map_err(|e| classify("retention", e))?;
    let on_cluster = target
        .cluster
        .as_ref()
        .map(|c| format!(" ON CLUSTER {c}"))
        .unwrap_or_default();
    for part in &parts {
        // Partition ids of `PARTITION BY toDate(..)` are YYYYMMDD digits (the
        // `partition` column shows `2026-11-12`, which is why the id is used); anything
        // else is not ours to drop.
        if part.partition_id.len() != 8 || !part.partition_id.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let sql = format!(
            "ALTER TABLE {}.{}{on_cluster} DROP PARTITION ID '{}'",
            target.database, part.table, part.partition_id
        );
        client
            .query_raw(&sql)
            .execute()
            .await
            .map_err(|e| classify("retention", e))?;
    }
    Ok(parts.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_days_are_read_from_engine_full() {
        let with = "ReplacingMergeTree PARTITION BY toDate(start_time) ORDER BY (service, name) \
                    TTL toDateTime(start_time) + toIntervalDay(7) SETTINGS index_granularity = 8192";
        assert_eq!(ttl_days_of(with), Some(7));
        assert_eq!(
            ttl_days_of("ReplacingMergeTree PARTITION BY day ORDER BY x SETTINGS a = 1"),
            Some(0)
        );
        assert_eq!(ttl_days_of("MergeTree ORDER BY x TTL d + toIntervalHour(5)"), None);
    }
}
