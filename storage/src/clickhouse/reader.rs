//! The Jaeger queries, pushed down to ClickHouse.
//!
//! Every user-supplied value reaches SQL through the `clickhouse` crate's `?` binding
//! (escaped client-side; server-side `{name:Type}` parameters do not exist on 18.x).
//! Filters, grouping, ordering and limits run in ClickHouse; Rust only receives the
//! matching trace ids and then the spans of those traces, in typed columns, plus each
//! distinct resource once (cached: a resource hash names immutable content).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::Arc;

use clickhouse::Row;
use hopscope_schemas::{SpanKind, SpanRecord, TraceId};
use parking_lot::Mutex;
use serde::Deserialize;
use tracing::warn;

use super::analytics::sql::{Arg, Sql};
use super::attrs;
use super::errors::classify;
use super::migrations::Target;
use super::rows::{ResourceRow, SharedResource, SpanRow, decode_resource, decode_span, ns_to_i64};
use super::slices::{self, Slice};
use super::version::Generation;
use crate::error::{Result, StorageError};
use crate::matching::effective_limit;
use crate::query::{DependencyLink, Operation, OperationQuery, TagFilter, Trace, TraceQuery};

/// Resources kept decoded in memory by each reader.
const RESOURCE_CACHE: usize = 4096;

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

#[derive(Debug, Row, Deserialize)]
struct HashRow {
    resource_hash: u64,
}

/// Runs reads for one target.
#[derive(Clone)]
pub(crate) struct Reader {
    client: clickhouse::Client,
    target: Target,
    timeout: std::time::Duration,
    resources: Arc<Mutex<lru::LruCache<u64, SharedResource>>>,
}

impl Reader {
    /// A reader with an empty resource cache.
    pub fn new(client: clickhouse::Client, target: Target, timeout: std::time::Duration) -> Self {
        Self {
            client,
            target,
            timeout,
            resources: Arc::new(Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(RESOURCE_CACHE).unwrap_or(NonZeroUsize::MIN),
            ))),
        }
    }

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
    async fn load_traces(&self, ids: &[[u8; 16]]) -> Result<HashMap<[u8; 16], Vec<Arc<SpanRecord>>>> {
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
        for span in self.read_spans(&services, low, high, &found).await? {
            out.entry(span.trace_id.0).or_insert_with(Vec::new).push(Arc::new(span));
        }
        for spans in out.values_mut() {
            spans.sort_by_key(|a| (a.start_time_unix_nano, a.span_id));
        }
        Ok(out)
    }

    /// Every span of the given traces among `services` starting in `low..=high` (unix
    /// ns), each once, decoded with its resource. The service and time restriction lets
    /// the `spans_v2` primary key prune; callers know them from the trace index or from
    /// an earlier query.
    pub(crate) async fn read_spans(
        &self,
        services: &[&str],
        low: i64,
        high: i64,
        trace_ids: &[[u8; 16]],
    ) -> Result<Vec<SpanRecord>> {
        if services.is_empty() || trace_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ts = self.ts();
        let sql = format!(
            "SELECT ?fields FROM {} WHERE service IN ({}) AND start_time >= {ts} \
             AND start_time <= {ts} AND trace_id IN ({}) LIMIT 1 BY trace_id, span_id",
            self.target.table("spans_v2"),
            placeholders("?", services.len()),
            placeholders("unhex(?)", trace_ids.len()),
        );
        let mut q = self.client.query(&sql);
        for service in services {
            q = q.bind(*service);
        }
        q = q.bind(low).bind(high);
        for id in trace_ids {
            q = q.bind(hex(id));
        }
        let rows: Vec<SpanRow> = self.fetch("trace read", q).await?;
        let resources = self.resources_of(&rows).await?;
        tokio::task::spawn_blocking(move || decode(rows, &resources))
            .await
            .map_err(|e| StorageError::Permanent(format!("span decoding panicked: {e}")))?
    }

    /// The resources the rows reference, from the cache or else from `resources`.
    async fn resources_of(&self, rows: &[SpanRow]) -> Result<HashMap<u64, SharedResource>> {
        let mut out = HashMap::new();
        let mut missing = BTreeSet::new();
        {
            let mut cache = self.resources.lock();
            for row in rows {
                if out.contains_key(&row.resource_hash) || missing.contains(&row.resource_hash) {
                    continue;
                }
                match cache.get(&row.resource_hash) {
                    Some(shared) => {
                        out.insert(row.resource_hash, shared.clone());
                    }
                    None => {
                        missing.insert(row.resource_hash);
                    }
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let sql = format!(
            "SELECT ?fields FROM {} WHERE resource_hash IN ({}) LIMIT 1 BY resource_hash",
            self.target.table("resources"),
            placeholders("?", missing.len())
        );
        let mut q = self.client.query(&sql);
        for hash in &missing {
            q = q.bind(*hash);
        }
        let found: Vec<ResourceRow> = self.fetch("resource read", q).await?;
        let mut cache = self.resources.lock();
        for row in found {
            let hash = row.resource_hash;
            let shared = decode_resource(row)
                .map_err(|e| StorageError::Permanent(format!("stored resource cannot be decoded: {e}")))?;
            cache.put(hash, shared.clone());
            out.insert(hash, shared);
        }
        Ok(out)
    }

    /// The hashes of the resources (and scopes) a tag filter matches.
    async fn resources_matching(&self, tag: &TagFilter) -> Result<Vec<u64>> {
        let sql = format!(
            "SELECT DISTINCT resource_hash FROM {} WHERE has(tags, concat(?, unhex('00'), ?))",
            self.target.table("resources")
        );
        let q = self.client.query(&sql).bind(tag.key.as_str()).bind(tag.value.as_str());
        let rows: Vec<HashRow> = self.fetch("resource search", q).await?;
        Ok(rows.into_iter().map(|r| r.resource_hash).collect())
    }

    /// The condition for one tag filter ([`crate::matching`]): a scalar span attribute
    /// (`has(attributes.value, ?)` first, which the bloom filter index answers), an
    /// event or non-scalar span attribute in `tags`, a matching resource or scope, or
    /// a synthetic tag's field. Branches that cannot match are left out, so the common
    /// attribute filter stays index-backed.
    async fn tag_condition(&self, sql: &mut Sql, tag: &TagFilter) -> Result<()> {
        let (key, value) = (Arg::Str(tag.key.clone()), Arg::Str(tag.value.clone()));
        sql.bind(" AND ((has(attributes.value, ?)", value.clone())
            .bind(" AND arrayExists((a_k, a_t, a_v) -> a_k = ?", key.clone())
            .push(&format!(" AND a_t < {}", attrs::FIRST_NON_TEXT))
            .bind(
                " AND a_v = ?, attributes.key, attributes.type, attributes.value))",
                value.clone(),
            )
            .bind(" OR has(tags, concat(?, ", key)
            .bind("unhex('00'), ?))", value);
        let hashes = self.resources_matching(tag).await?;
        if !hashes.is_empty() {
            sql.push(" OR resource_hash IN (");
            for (i, hash) in hashes.iter().enumerate() {
                sql.bind(if i == 0 { "?" } else { ", ?" }, Arg::U64(*hash));
            }
            sql.push(")");
        }
        let value = tag.value.as_str();
        match tag.key.as_str() {
            "error" if value == "true" => {
                sql.push(" OR status_code = 2");
            }
            "span.kind" if !value.is_empty() => {
                if let Some(kind) = SpanKind::parse(value).filter(|k| k.as_str() == value) {
                    sql.push(&format!(" OR kind = {}", kind.to_otlp()));
                }
            }
            "otel.status_code" if value == "OK" => {
                sql.push(" OR status_code = 1");
            }
            "otel.status_code" if value == "ERROR" => {
                sql.push(" OR status_code = 2");
            }
            "otel.status_description" if !value.is_empty() => {
                sql.bind(" OR status_message = ?", Arg::Str(tag.value.clone()));
            }
            _ => {}
        }
        sql.push(")");
        Ok(())
    }

    /// The `limit` traces whose latest matching span is newest, read slice by slice
    /// from the end of the window ([`slices`]); one query when the window has no end.
    pub async fn find_traces(&self, query: &TraceQuery) -> Result<Vec<Trace>> {
        let low = query.start_ns.unwrap_or(0);
        let high = query.end_ns.unwrap_or(u64::MAX);
        if low > high || query.min_duration_ns.unwrap_or(0) > query.max_duration_ns.unwrap_or(u64::MAX) {
            return Ok(Vec::new());
        }
        let limit = effective_limit(query.limit);
        let filter = self.search_filter(query).await?;
        let slices = match query.end_ns {
            Some(end) => slices::newest_first(query.start_ns, end),
            None => vec![Slice {
                start: query.start_ns,
                end: u64::MAX,
            }],
        };
        let mut ids: Vec<[u8; 16]> = Vec::with_capacity(limit);
        let mut seen: HashSet<[u8; 16]> = HashSet::with_capacity(limit);
        let ts = self.ts();
        for slice in slices {
            let mut sql = filter.clone();
            if let Some(start) = slice.start {
                sql.bind(&format!(" AND start_time >= {ts}"), Arg::I64(ns_to_i64(start)));
            }
            if slice.end != u64::MAX {
                sql.bind(&format!(" AND start_time <= {ts}"), Arg::I64(ns_to_i64(slice.end)));
            }
            // Traces already found may match here too: ask for that many more, so that
            // `limit` new ones still fit.
            sql.bind(
                " GROUP BY trace_id ORDER BY last_match DESC, trace_id DESC LIMIT ?",
                Arg::U64((limit + ids.len()) as u64),
            );
            let hits: Vec<TraceHit> = self.fetch("trace search", sql.query(&self.client)).await?;
            for hit in hits {
                if ids.len() < limit && seen.insert(hit.trace_id) {
                    ids.push(hit.trace_id);
                }
            }
            if ids.len() >= limit {
                break;
            }
        }
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

    /// A search's `SELECT … WHERE` with every condition but the time window.
    async fn search_filter(&self, query: &TraceQuery) -> Result<Sql> {
        let mut sql = Sql::default();
        sql.push(&format!(
            "SELECT trace_id, max(start_time) AS last_match FROM {} WHERE 1",
            self.target.table("spans_v2")
        ));
        if let Some(service) = &query.service {
            sql.bind(" AND service = ?", Arg::Str(service.clone()));
        }
        if let Some(operation) = &query.operation {
            sql.bind(" AND name = ?", Arg::Str(operation.clone()));
        }
        if let Some(kind) = query.span_kind {
            sql.bind(" AND kind = ?", Arg::I64(i64::from(kind.to_otlp())));
        }
        if let Some(min) = query.min_duration_ns {
            sql.bind(" AND duration_ns >= ?", Arg::U64(min));
        }
        if let Some(max) = query.max_duration_ns {
            sql.bind(" AND duration_ns <= ?", Arg::U64(max));
        }
        for tag in &query.tags {
            self.tag_condition(&mut sql, tag).await?;
        }
        Ok(sql)
    }

    pub async fn dependencies(&self, start_ns: u64, end_ns: u64) -> Result<Vec<DependencyLink>> {
        if start_ns > end_ns {
            return Ok(Vec::new());
        }
        let ts = self.ts();
        let spans = self.target.table("spans_v2");
        // Children starting in the window joined to their parents (wherever those start)
        // within the same traces; DISTINCT drops not-yet-merged duplicate rows. No alias
        // reuses a column name: ClickHouse resolves an alias before a column, so
        // `parent_span_id AS span_id` would also turn `span_id AS child_id` into the
        // parent id and merge sibling calls into one.
        let sql = format!(
            "SELECT parent_service AS parent, child_service AS child, count() AS calls FROM \
             (SELECT DISTINCT trace_id, span_id AS child_id, parent_span_id AS parent_id, \
                     service AS child_service \
              FROM {spans} WHERE start_time >= {ts} AND start_time <= {ts}) AS c \
             ALL INNER JOIN \
             (SELECT DISTINCT trace_id, span_id AS parent_id, service AS parent_service FROM {spans} \
              WHERE trace_id IN (SELECT trace_id FROM {spans} \
                                 WHERE start_time >= {ts} AND start_time <= {ts})) AS p \
             USING (trace_id, parent_id) \
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

/// Decodes rows; a row whose resource is missing (not expected: resources are written
/// first and expire with their spans) gets an empty resource and a warning.
fn decode(rows: Vec<SpanRow>, resources: &HashMap<u64, SharedResource>) -> Result<Vec<SpanRecord>> {
    let empty: SharedResource = Default::default();
    rows.into_iter()
        .map(|row| {
            let resource = resources.get(&row.resource_hash).unwrap_or_else(|| {
                warn!(resource_hash = row.resource_hash, "span references a missing resource");
                &empty
            });
            decode_span(row, resource)
                .map_err(|e| StorageError::Permanent(format!("stored span cannot be decoded: {e}")))
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
