//! [`AggregateReader`] for ClickHouse: every aggregate runs in the server.
//!
//! Each method is one query (the middleware comparison two: instance stats and the time
//! series) over the `spans` table filtered by `start_time` and the effective cloud kind,
//! deduplicated with `LIMIT 1 BY trace_id, span_id` (legacy servers keep re-inserted
//! spans until a merge; on modern servers the clause costs little). Percentiles are the
//! contract's nearest-rank expression over `arraySort(groupArray(duration_ns))`; the
//! peak rate groups by unix second first; parent/child pairs are a self-join on
//! `(trace_id, parent_span_id) = (trace_id, span_id)` with the parent side restricted to
//! the traces of the window. Only aggregated rows come back, except for mismatches,
//! which return the ids of each (client, server) pair found, at most `limit`, whose
//! spans are then read like a trace's. Every value is bound with `?` (see [`sql`]).

mod pairs;
pub(super) mod sql;

use async_trait::async_trait;
use clickhouse::Row;
use hopscope_schemas::{SpanId, TraceId};
use serde::Deserialize;

use super::ClickHouseStore;
use crate::aggregates::{
    AggregateReader, DependencyEdge, EntryTrace, EntryTraceQuery, ExceptionGroup, GroupBy, InterfaceStats,
    LatencyStats, MiddlewareInstance, MiddlewareKind, MiddlewareQuery, Mismatch, SeriesPoint, Window,
};
use crate::error::Result;
use sql::{Arg, Exprs, Sql, percentile};

/// Stats per `key` (a tuple of string columns named in `keys`) over `rows`, a subquery
/// producing `keys`, `system`, `t` (unix ns), `dur` and `err`: percentiles over all
/// durations, the peak count of one unix second, the smallest system.
fn stats_query(sql: &mut Sql, keys: &str, rows: impl FnOnce(&mut Sql)) {
    sql.push(&format!(
        "SELECT {keys}, system, count, errors, p50, p95, p99, p999, max_ns, max_qps FROM (\
         SELECT {keys}, min(sys1) AS system, toUInt64(sum(n)) AS count, toUInt64(sum(e)) AS errors, \
         arraySort(groupArrayArray(durs)) AS sorted, {p50} AS p50, {p95} AS p95, {p99} AS p99, \
         {p999} AS p999, toUInt64(max(m)) AS max_ns, toUInt64(max(n)) AS max_qps FROM (\
         SELECT {keys}, intDiv(t, 1000000000) AS second, min(system) AS sys1, count() AS n, \
         sum(err) AS e, groupArray(dur) AS durs, max(dur) AS m FROM (",
        p50 = percentile("sorted", 0.5),
        p95 = percentile("sorted", 0.95),
        p99 = percentile("sorted", 0.99),
        p999 = percentile("sorted", 0.999),
    ));
    rows(sql);
    sql.push(&format!(") GROUP BY {keys}, second) GROUP BY {keys}) ORDER BY {keys}"));
}

#[derive(Debug, Row, Deserialize)]
struct StatsRow {
    key: String,
    system: String,
    count: u64,
    errors: u64,
    p50: u64,
    p95: u64,
    p99: u64,
    p999: u64,
    max_ns: u64,
    max_qps: u64,
}

#[derive(Debug, Row, Deserialize)]
struct InterfaceRow {
    service: String,
    name: String,
    #[allow(dead_code)]
    system: String,
    count: u64,
    errors: u64,
    p50: u64,
    p95: u64,
    p99: u64,
    p999: u64,
    max_ns: u64,
    max_qps: u64,
}

#[derive(Debug, Row, Deserialize)]
struct SeriesRow {
    key: String,
    bucket: u64,
    count: u64,
    errors: u64,
    p50: u64,
    p99: u64,
    max_ns: u64,
}

#[derive(Debug, Row, Deserialize)]
struct EntryRow {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    start_ns: u64,
    duration_ns: u64,
}

#[allow(clippy::too_many_arguments)]
fn stats(count: u64, errors: u64, p50: u64, p95: u64, p99: u64, p999: u64, max_ns: u64, max_qps: u64) -> LatencyStats {
    LatencyStats {
        count,
        errors,
        p50_ns: p50,
        p95_ns: p95,
        p99_ns: p99,
        p999_ns: p999,
        max_ns,
        max_qps,
    }
}

impl ClickHouseStore {
    fn exprs(&self) -> Exprs {
        Exprs {
            target: self.target.clone(),
        }
    }

    /// The compared spans of a middleware query as rows `key, system, t, dur, err`.
    fn middleware_rows(&self, sql: &mut Sql, query: &MiddlewareQuery) {
        let x = self.exprs();
        let cloud = sql::cloud_kind();
        let key = match (query.group_by, query.kind) {
            (GroupBy::Peer, MiddlewareKind::Host) | (GroupBy::Host, _) => "if(host = '', 'unknown', host)".to_owned(),
            (GroupBy::Peer, _) => "if(peer = '', 'unknown', peer)".to_owned(),
            (GroupBy::CloudKind, _) => cloud.clone(),
        };
        let system = match query.kind {
            MiddlewareKind::Host => cloud,
            _ => sql::system(),
        };
        sql.push(&format!(
            "SELECT toString({key}) AS key, toString({system}) AS system, {} AS t, duration_ns AS dur, \
             toUInt8(status_code = 2) AS err, trace_id, span_id FROM {} WHERE",
            x.start_ns(),
            x.spans()
        ));
        x.time_filter(sql, &query.window);
        match query.kind.hop_kind() {
            None => sql.push(" AND kind IN (2, 5)"),
            Some(hopscope_schemas::HopKind::Mq) => sql.push(" AND hop_kind = 'mq' AND kind IN (3, 4, 5)"),
            Some(hop) => sql.bind(" AND hop_kind = ? AND kind = 3", Arg::Str(hop.as_str().to_owned())),
        };
        x.cloud_filter(sql, &query.window);
        sql.push(" LIMIT 1 BY trace_id, span_id");
    }
}

#[async_trait]
impl AggregateReader for ClickHouseStore {
    async fn entry_traces(&self, query: &EntryTraceQuery) -> Result<Vec<EntryTrace>> {
        let window = &query.window;
        if window.start_ns > window.end_ns || query.limit == 0 {
            return Ok(Vec::new());
        }
        let x = self.exprs();
        let mut sql = Sql::default();
        // Every entry sorted in one array, then the evenly spaced indexes of the contract.
        sql.push(
            "SELECT e.2 AS trace_id, e.3 AS span_id, e.1 AS start_ns, e.4 AS duration_ns FROM (\
             SELECT arraySort(groupArray((t, trace_id, span_id, dur))) AS entries, length(entries) AS n \
             FROM (SELECT ",
        )
        .push(&format!(
            "{} AS t, trace_id, span_id, duration_ns AS dur FROM {} WHERE",
            x.start_ns(),
            x.spans()
        ));
        x.time_filter(&mut sql, window);
        sql.bind(" AND service = ?", Arg::Str(query.service.clone()))
            .bind(" AND name = ?", Arg::Str(query.operation.clone()));
        x.cloud_filter(&mut sql, window);
        let limit = query.limit as u64;
        sql.push(" LIMIT 1 BY trace_id, span_id)) ARRAY JOIN ")
            .bind("if(n <= toUInt64(?), entries, ", Arg::U64(limit))
            .bind(
                "arrayMap(k -> entries[intDiv(k * n, toUInt64(?)) + 1], ",
                Arg::U64(limit),
            )
            .bind("range(toUInt64(?)))) AS e", Arg::U64(limit));
        let rows: Vec<EntryRow> = self.reader.fetch("entry traces", sql.query(&self.client)).await?;
        let mut out: Vec<EntryTrace> = rows
            .into_iter()
            .map(|r| EntryTrace {
                trace_id: TraceId(r.trace_id),
                span_id: SpanId(r.span_id),
                start_ns: r.start_ns,
                duration_ns: r.duration_ns,
            })
            .collect();
        out.sort_by_key(|e| (e.start_ns, e.trace_id, e.span_id));
        Ok(out)
    }

    async fn middleware(&self, query: &MiddlewareQuery) -> Result<Vec<MiddlewareInstance>> {
        if query.window.start_ns > query.window.end_ns {
            return Ok(Vec::new());
        }
        let step = query.step_ns.max(1);
        let mut totals = Sql::default();
        stats_query(&mut totals, "key", |sql| self.middleware_rows(sql, query));
        let mut series = Sql::default();
        series
            .push("SELECT key, bucket, count, errors, p50, p99, max_ns FROM (SELECT key, ")
            .bind("intDiv(t - toUInt64(?), ", Arg::U64(query.window.start_ns))
            .bind("toUInt64(?)) AS bucket, ", Arg::U64(step))
            .push(&format!(
                "arraySort(groupArray(dur)) AS sorted, toUInt64(count()) AS count, \
                 toUInt64(sum(err)) AS errors, toUInt64(max(dur)) AS max_ns, {} AS p50, {} AS p99 FROM (",
                percentile("sorted", 0.5),
                percentile("sorted", 0.99)
            ));
        self.middleware_rows(&mut series, query);
        series.push(") GROUP BY key, bucket) ORDER BY key, bucket");
        let (totals, points) = tokio::try_join!(
            self.reader.fetch::<StatsRow>("middleware", totals.query(&self.client)),
            self.reader
                .fetch::<SeriesRow>("middleware series", series.query(&self.client)),
        )?;
        let mut out: Vec<MiddlewareInstance> = totals
            .into_iter()
            .map(|r| MiddlewareInstance {
                system: r.system,
                peer: r.key,
                stats: stats(r.count, r.errors, r.p50, r.p95, r.p99, r.p999, r.max_ns, r.max_qps),
                series: Vec::new(),
            })
            .collect();
        out.sort_by(|a, b| a.peer.cmp(&b.peer));
        for point in points {
            if let Ok(i) = out.binary_search_by(|m| m.peer.as_str().cmp(point.key.as_str())) {
                out[i].series.push(SeriesPoint {
                    start_ns: query.window.start_ns + point.bucket * step,
                    count: point.count,
                    errors: point.errors,
                    p50_ns: point.p50,
                    p99_ns: point.p99,
                    max_ns: point.max_ns,
                });
            }
        }
        for instance in &mut out {
            instance.series.sort_by_key(|p| p.start_ns);
        }
        Ok(out)
    }

    async fn interfaces(&self, window: &Window) -> Result<Vec<InterfaceStats>> {
        if window.start_ns > window.end_ns {
            return Ok(Vec::new());
        }
        let x = self.exprs();
        let mut sql = Sql::default();
        stats_query(&mut sql, "service, name", |sql| {
            sql.push(&format!(
                "SELECT toString(service) AS service, toString(name) AS name, '' AS system, {} AS t, \
                 duration_ns AS dur, toUInt8(status_code = 2) AS err, trace_id, span_id FROM {} WHERE",
                x.start_ns(),
                x.spans()
            ));
            x.time_filter(sql, window);
            sql.push(" AND (kind IN (2, 5) OR hex(parent_span_id) = '0000000000000000')");
            x.cloud_filter(sql, window);
            sql.push(" LIMIT 1 BY trace_id, span_id");
        });
        let rows: Vec<InterfaceRow> = self.reader.fetch("interfaces", sql.query(&self.client)).await?;
        let mut out: Vec<InterfaceStats> = rows
            .into_iter()
            .map(|r| InterfaceStats {
                service: r.service,
                operation: r.name,
                stats: stats(r.count, r.errors, r.p50, r.p95, r.p99, r.p999, r.max_ns, r.max_qps),
            })
            .collect();
        out.sort_by(|a, b| (&a.service, &a.operation).cmp(&(&b.service, &b.operation)));
        Ok(out)
    }

    async fn exceptions(&self, window: &Window, examples: usize) -> Result<Vec<ExceptionGroup>> {
        pairs::exceptions(self, window, examples).await
    }

    async fn dependency_edges(&self, window: &Window) -> Result<Vec<DependencyEdge>> {
        pairs::dependency_edges(self, window).await
    }

    async fn mismatches(&self, window: &Window, limit: usize) -> Result<Vec<Mismatch>> {
        pairs::mismatches(self, window, limit).await
    }
}
