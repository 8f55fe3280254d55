//! The Jaeger queries, pushed down to ClickHouse.
//!
//! Every user-supplied value reaches SQL through the `clickhouse` crate's `?` binding
//! (escaped client-side; server-side `{name:Type}` parameters do not exist on 18.x).
//! Filters, grouping, ordering and limits run in ClickHouse; Rust only receives the
//! matching trace ids and then the spans of those traces.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use clickhouse::Row;
use hopscope_schemas::{SpanKind, SpanRecord, TraceId};
use serde::Deserialize;

use super::errors::classify;
use super::migrations::Target;
use super::rows::{RecordRow, ns_to_i64};
use super::version::Generation;
use crate::error::{Result, StorageError};
use crate::matching::effective_limit;
use crate::query::{DependencyLink, Operation, OperationQuery, Trace, TraceQuery};

#[derive(Debug, Row, Deserialize)]
struct OperationRow {
    name: String,
    kind: u8,
}

#[derive(Debug, Row, Deserialize)]
struct TraceHit {
    trace_id: [u8; 16],
    #[allow(dead_code)]
    last_match: i64,
}

#[derive(Debug, Row, Deserialize)]
struct IndexRow {
    trace_id: [u8; 16],
    service: String,
    start_min: i64,
    start_max: i64,
}

#[derive(Debug, Row, Deserialize)]
struct DependencyRow {
    parent: String,
    child: String,
    calls: u64,
}

/// Runs reads for one target.
#[derive(Clone)]
pub(crate) struct Reader {
    pub client: clickhouse::Client,
    pub target: Target,
    pub timeout: std::time::Duration,
}

impl Reader {
    /// A time literal for a bound unix-ns value, typed like `start_time`.
    fn ts(&self) -> &'static str {
        match self.target.generation {
            Generation::Modern => "fromUnixTimestamp64Nano(toInt64(?))",
            Generation::Legacy => "toInt64(?)",
        }
    }

    pub(crate) async fn fetch<T>(&self, what: &str, query: clickhouse::query::Query) -> Result<Vec<T>>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        match tokio::time::timeout(self.timeout, query.fetch_all::<T>()).await {
            Ok(result) => result.map_err(|e| classify(what, e)),
            Err(_) => Err(StorageError::Retryable(format!(
                "clickhouse {what}: no answer within {:?}",
                self.timeout
            ))),
        }
    }

    pub async fn services(&self) -> Result<Vec<String>> {
        let sql = format!(
            "SELECT DISTINCT service FROM {} ORDER BY service",
            self.target.table("operations")
        );
        self.fetch("services", self.client.query(&sql)).await
    }

    pub async fn operations(&self, query: &OperationQuery) -> Result<Vec<Operation>> {
        let mut sql = format!(
            "SELECT name, kind FROM {} WHERE service = ?",
            self.target.table("operations")
        );
        if query.span_kind.is_some() {
            sql.push_str(" AND kind = ?");
        }
        sql.push_str(" GROUP BY name, kind ORDER BY name, kind");
        let mut q = self.client.query(&sql).bind(query.service.as_str());
        if let Some(kind) = query.span_kind {
            q = q.bind(kind.to_otlp());
        }
        let rows: Vec<OperationRow> = self.fetch("operations", q).await?;
        Ok(rows
            .into_iter()
            .map(|r| Operation {
                name: r.name,
                span_kind: SpanKind::from_otlp(i32::from(r.kind)),
            })
            .collect())
    }

    pub async fn trace(&self, trace_id: TraceId) -> Result<Option<Trace>> {
        let mut traces = self.load_traces(&[trace_id.0]).await?;
        Ok(traces.remove(&trace_id.0).map(|spans| Trace { trace_id, spans }))
    }

    /// The spans of the given traces: the trace index gives each trace's services and
    /// time range, then one read of `spans` restricted to those services and times.
    async fn load_traces(
        &self,
        ids: &[[u8; 16]],
    ) -> Result<HashMap<[u8; 16], Vec<Arc<SpanRecord>>>> {
        let mut out = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let id_list = placeholders("unhex(?)", ids.len());
        let sql = format!(
            "SELECT trace_id, service, min(start_min) AS start_min, max(start_max) AS start_max \
             FROM {} WHERE trace_id IN ({id_list}) GROUP BY trace_id, service",
            self.target.table("trace_index")
        );
        let mut q = self.client.query(&sql);
        for id in ids {
            q = q.bind(hex(id));
        }
        let index: Vec<IndexRow> = self.fetch("trace lookup", q).await?;
        if index.is_empty() {
            return Ok(out);
        }
        let mut services: Vec<&str> = index.iter().map(|r| r.service.as_str()).collect();
        services.sort_unstable();
        services.dedup();
        let found: Vec<[u8; 16]> = {
            let mut f: Vec<[u8; 16]> = index.iter().map(|r| r.trace_id).collect();
            f.sort_unstable();
            f.dedup();
            f
        };
        let low = index.iter().map(|r| r.start_min).min().unwrap_or(0);
        let high = index.iter().map(|r| r.start_max).max().unwrap_or(i64::MAX);
        let ts = self.ts();
        let sql = format!(
            "SELECT record FROM {} WHERE service IN ({}) AND start_time >= {ts} \
             AND start_time <= {ts} AND trace_id IN ({}) LIMIT 1 BY trace_id, span_id",
            self.target.table("spans"),
            placeholders("?", services.len()),
            placeholders("unhex(?)", found.len()),
        );
        let mut q = self.client.query(&sql);
        for service in &services {
            q = q.bind(*service);
        }
        q = q.bind(low).bind(high);
        for id in &found {
            q = q.bind(hex(id));
        }
        let rows: Vec<RecordRow> = self.fetch("trace read", q).await?;
        let decoded = tokio::task::spawn_blocking(move || decode(rows))
            .await
            .map_err(|e| StorageError::Permanent(format!("span decoding panicked: {e}")))??;
        for span in decoded {
            out.entry(span.trace_id.0).or_insert_with(Vec::new).push(Arc::new(span));
        }
        for spans in out.values_mut() {
            spans.sort_by(|a, b| {
                (a.start_time_unix_nano, a.span_id).cmp(&(b.start_time_unix_nano, b.span_id))
            });
        }
        Ok(out)
    }

    pub async fn find_traces(&self, query: &TraceQuery) -> Result<Vec<Trace>> {
        let low = query.start_ns.unwrap_or(0);
        let high = query.end_ns.unwrap_or(u64::MAX);
        if low > high || query.min_duration_ns.unwrap_or(0) > query.max_duration_ns.unwrap_or(u64::MAX)
        {
            return Ok(Vec::new());
        }
        let ts = self.ts();
        let mut conditions = Vec::new();
        if query.service.is_some() {
            conditions.push("service = ?".to_string());
        }
        if query.operation.is_some() {
            conditions.push("name = ?".to_string());
        }
        if query.span_kind.is_some() {
            conditions.push("kind = ?".to_string());
        }
        if query.start_ns.is_some() {
            conditions.push(format!("start_time >= {ts}"));
        }
        if query.end_ns.is_some() {
            conditions.push(format!("start_time <= {ts}"));
        }
        if query.min_duration_ns.is_some() {
            conditions.push("duration_ns >= ?".to_string());
        }
        if query.max_duration_ns.is_some() {
            conditions.push("duration_ns <= ?".to_string());
        }
        for _ in &query.tags {
            conditions.push("has(tags, concat(?, unhex('00'), ?))".to_string());
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT trace_id, max(start_time) AS last_match FROM {} {filter} \
             GROUP BY trace_id ORDER BY last_match DESC, trace_id DESC LIMIT ?",
            self.target.table("spans")
        );
        let mut q = self.client.query(&sql);
        if let Some(service) = &query.service {
            q = q.bind(service.as_str());
        }
        if let Some(operation) = &query.operation {
            q = q.bind(operation.as_str());
        }
        if let Some(kind) = query.span_kind {
            q = q.bind(kind.to_otlp());
        }
        if let Some(start) = query.start_ns {
            q = q.bind(ns_to_i64(start));
        }
        if let Some(end) = query.end_ns {
            q = q.bind(ns_to_i64(end));
        }
        if let Some(min) = query.min_duration_ns {
            q = q.bind(min);
        }
        if let Some(max) = query.max_duration_ns {
            q = q.bind(max);
        }
        for tag in &query.tags {
            q = q.bind(tag.key.as_str()).bind(tag.value.as_str());
        }
        q = q.bind(effective_limit(query.limit) as u64);
        let hits: Vec<TraceHit> = self.fetch("trace search", q).await?;
        let ids: Vec<[u8; 16]> = hits.iter().map(|h| h.trace_id).collect();
        let mut loaded = self.load_traces(&ids).await?;
        Ok(ids
            .iter()
            .filter_map(|id| {
                loaded.remove(id).map(|spans| Trace {
                    trace_id: TraceId(*id),
                    spans,
                })
            })
            .collect())
    }

    pub async fn dependencies(&self, start_ns: u64, end_ns: u64) -> Result<Vec<DependencyLink>> {
        if start_ns > end_ns {
            return Ok(Vec::new());
        }
        let ts = self.ts();
        let spans = self.target.table("spans");
        // Children starting in the window joined to their parents (wherever those start)
        // within the same traces; DISTINCT drops not-yet-merged duplicate rows.
        let sql = format!(
            "SELECT parent_service AS parent, child_service AS child, count() AS calls FROM \
             (SELECT DISTINCT trace_id, span_id AS child_id, parent_span_id AS span_id, \
                     service AS child_service \
              FROM {spans} WHERE start_time >= {ts} AND start_time <= {ts}) AS c \
             ALL INNER JOIN \
             (SELECT DISTINCT trace_id, span_id, service AS parent_service FROM {spans} \
              WHERE trace_id IN (SELECT trace_id FROM {spans} \
                                 WHERE start_time >= {ts} AND start_time <= {ts})) AS p \
             USING (trace_id, span_id) \
             WHERE parent_service != child_service \
             GROUP BY parent_service, child_service ORDER BY parent_service, child_service"
        );
        let (low, high) = (ns_to_i64(start_ns), ns_to_i64(end_ns));
        let q = self.client.query(&sql).bind(low).bind(high).bind(low).bind(high);
        let rows: Vec<DependencyRow> = self.fetch("dependencies", q).await?;
        let mut links: BTreeMap<(String, String), u64> = BTreeMap::new();
        for row in rows {
            *links.entry((row.parent, row.child)).or_default() += row.calls;
        }
        Ok(links
            .into_iter()
            .map(|((parent, child), call_count)| DependencyLink {
                parent,
                child,
                call_count,
            })
            .collect())
    }
}

fn decode(rows: Vec<RecordRow>) -> Result<Vec<SpanRecord>> {
    rows.into_iter()
        .map(|row| {
            serde_json::from_str::<SpanRecord>(&row.record).map_err(|e| {
                StorageError::Permanent(format!("stored span cannot be decoded: {e}"))
            })
        })
        .collect()
}

fn placeholders(one: &str, n: usize) -> String {
    vec![one; n].join(", ")
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(placeholders("?", 3), "?, ?, ?");
    }
}
