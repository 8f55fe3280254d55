//! The aggregate queries over events and parent/child pairs: exceptions, dependency
//! edges and outcome mismatches.

use std::collections::HashMap;
use std::sync::Arc;

use clickhouse::Row;
use hopscope_schemas::{HopKind, TraceId};
use serde::Deserialize;

use super::sql::{self, Arg, Sql, percentile};
use crate::aggregates::{
    DependencyEdge, EdgeTarget, ExceptionGroup, Mismatch, MismatchReason, Window, mentions_timeout,
};
use crate::clickhouse::ClickHouseStore;
use crate::clickhouse::rows::ns_to_i64;
use crate::error::{Result, StorageError};

#[derive(Debug, Row, Deserialize)]
struct ExceptionRow {
    service: String,
    exception_type: String,
    count: u64,
    last_seen_ns: u64,
    examples: Vec<[u8; 16]>,
}

#[derive(Debug, Row, Deserialize)]
struct EdgeRow {
    /// 1: a service → service edge, 0: service → middleware.
    to_service: u8,
    from_service: String,
    hop: String,
    to_name: String,
    call_count: u64,
    error_count: u64,
    p95: u64,
    p99: u64,
}

/// A (client, server) pair found by the mismatch query.
#[derive(Debug, Row, Deserialize)]
struct PairRow {
    trace_id: [u8; 16],
    c_id: [u8; 8],
    c_start: u64,
    c_service: String,
    s_id: [u8; 8],
    s_start: u64,
    s_service: String,
}

pub(super) async fn exceptions(
    store: &ClickHouseStore,
    window: &Window,
    examples: usize,
) -> Result<Vec<ExceptionGroup>> {
    if window.start_ns > window.end_ns {
        return Ok(Vec::new());
    }
    let x = store.exprs();
    let [keys, types, values] = sql::EVENT_COLUMNS;
    let ty = sql::string_attr(keys, types, values, "exception.type");
    let mut q = Sql::default();
    q.bind(
        "SELECT service, exception_type, toUInt64(sum(c)) AS count, toUInt64(max(newest)) AS last_seen_ns, \
         arraySlice(arrayMap(x -> x.2, arrayReverseSort(groupArray((newest, trace_id)))), 1, toUInt64(?)) AS examples \
         FROM (SELECT service, exception_type, trace_id, count() AS c, max(time) AS newest FROM (",
        Arg::U64(examples as u64),
    )
    .push(&format!(
        "SELECT service, trace_id, toUInt64(toInt64(t) + ev_offset) AS time, {ty} AS ty, \
         if(ty = '', 'unknown', ty) AS exception_type \
         FROM (SELECT toString(service) AS service, trace_id, span_id, {start} AS t, events.offset_ns, \
         events.name, events.attr_keys, events.attr_types, events.attr_values FROM {spans} WHERE",
        start = x.start_ns(),
        spans = x.spans(),
    ));
    x.time_filter(&mut q, window);
    q.push(" AND has(events.name, 'exception')");
    x.cloud_filter(&mut q, window);
    q.push(&format!(
        " LIMIT 1 BY trace_id, span_id){} WHERE ev_name = 'exception') \
         GROUP BY service, exception_type, trace_id) \
         GROUP BY service, exception_type ORDER BY count DESC, service, exception_type",
        sql::EVENT_ARRAY_JOIN
    ));
    let rows: Vec<ExceptionRow> = store.reader.fetch("exceptions", q.query(&store.client)).await?;
    let mut out: Vec<ExceptionGroup> = rows
        .into_iter()
        .map(|r| ExceptionGroup {
            service: r.service,
            exception_type: r.exception_type,
            count: r.count,
            last_seen_ns: r.last_seen_ns,
            example_trace_ids: r.examples.into_iter().map(TraceId).collect(),
        })
        .collect();
    out.sort_by(|a, b| (b.count, &a.service, &a.exception_type).cmp(&(a.count, &b.service, &b.exception_type)));
    Ok(out)
}

/// ` trace_id IN (traces with a span in the window)`.
fn traces_in_window(store: &ClickHouseStore, q: &mut Sql, window: &Window, extra: &str) {
    let x = store.exprs();
    q.push(&format!(" trace_id IN (SELECT trace_id FROM {} WHERE", x.spans()));
    x.time_filter(q, window);
    q.push(extra).push(")");
}

pub(super) async fn dependency_edges(store: &ClickHouseStore, window: &Window) -> Result<Vec<DependencyEdge>> {
    if window.start_ns > window.end_ns {
        return Ok(Vec::new());
    }
    let x = store.exprs();
    let spans = x.spans();
    let p95 = percentile("sorted", 0.95);
    let p99 = percentile("sorted", 0.99);
    let tail = format!(
        "toUInt64(count()) AS call_count, toUInt64(sum(err)) AS error_count, \
         arraySort(groupArray(dur)) AS sorted, {p95} AS p95, {p99} AS p99"
    );
    // Service → service: children of the window joined to their parents in the same
    // traces; the caller's view (duration, error, hop kind) when the parent is a client or
    // producer span. Grouped by hop kind first, so the edge can take the kind of most calls
    // (ties: the name that sorts last, like the embedded store).
    let mut services = Sql::default();
    services.push(&format!(
        "SELECT toUInt8(1) AS to_service, from_service, hop, to_name, call_count, error_count, p95, p99 FROM (\
         SELECT parent_service AS from_service, argMax(call_hop, (calls, call_hop)) AS hop, \
         child_service AS to_name, toUInt64(sum(calls)) AS call_count, toUInt64(sum(errs)) AS error_count, \
         arraySort(groupArrayArray(durs)) AS sorted, {p95} AS p95, {p99} AS p99 FROM (\
         SELECT parent_service, child_service, call_hop, count() AS calls, sum(err) AS errs, \
         groupArray(dur) AS durs FROM (\
         SELECT parent_service, child_service, \
         if(parent_kind IN (3, 4), parent_hop, child_hop) AS call_hop, \
         if(parent_kind IN (3, 4), parent_dur, child_dur) AS dur, \
         if(parent_kind IN (3, 4), parent_err, child_err) AS err FROM (\
         SELECT trace_id, parent_span_id AS link, span_id, toString(service) AS child_service, \
         toString(hop_kind) AS child_hop, duration_ns AS child_dur, toUInt8(status_code = 2) AS child_err \
         FROM {spans} WHERE"
    ));
    x.time_filter(&mut services, window);
    x.cloud_filter(&mut services, window);
    services.push(&format!(
        " LIMIT 1 BY trace_id, span_id) AS c ALL INNER JOIN (\
         SELECT trace_id, span_id AS link, toString(service) AS parent_service, kind AS parent_kind, \
         toString(hop_kind) AS parent_hop, duration_ns AS parent_dur, toUInt8(status_code = 2) AS parent_err \
         FROM {spans} WHERE"
    ));
    traces_in_window(store, &mut services, window, "");
    services.push(
        " LIMIT 1 BY trace_id, link) AS p USING (trace_id, link) \
         WHERE parent_service != child_service) GROUP BY parent_service, child_service, call_hop) \
         GROUP BY parent_service, child_service)",
    );
    // Service → middleware: client and producer spans to a db, cache or mq peer.
    let mut middleware = Sql::default();
    middleware.push(&format!(
        "SELECT toUInt8(0) AS to_service, from_service, hop, to_name, call_count, error_count, p95, p99 FROM (\
         SELECT from_service, hop, to_name, {tail} FROM (\
         SELECT toString(service) AS from_service, toString(hop_kind) AS hop, toString(peer) AS to_name, \
         duration_ns AS dur, toUInt8(status_code = 2) AS err, trace_id, span_id FROM {spans} WHERE"
    ));
    x.time_filter(&mut middleware, window);
    middleware.push(" AND kind IN (3, 4) AND hop_kind IN ('db', 'cache', 'mq') AND peer != ''");
    x.cloud_filter(&mut middleware, window);
    middleware.push(" LIMIT 1 BY trace_id, span_id) GROUP BY from_service, hop, to_name)");
    let (a, b) = tokio::try_join!(
        store
            .reader
            .fetch::<EdgeRow>("dependency edges", services.query(&store.client)),
        store
            .reader
            .fetch::<EdgeRow>("middleware edges", middleware.query(&store.client)),
    )?;
    let mut out = Vec::with_capacity(a.len() + b.len());
    for row in a.into_iter().chain(b) {
        let hop_kind = HopKind::parse(&row.hop)
            .ok_or_else(|| StorageError::Permanent(format!("stored hop kind {:?} is unknown", row.hop)))?;
        let to = if row.to_service == 1 {
            EdgeTarget::Service { name: row.to_name }
        } else {
            EdgeTarget::Middleware {
                hop_kind,
                peer: row.to_name,
            }
        };
        out.push(DependencyEdge {
            from: row.from_service,
            to,
            hop_kind,
            call_count: row.call_count,
            error_count: row.error_count,
            p95_ns: row.p95,
            p99_ns: row.p99,
        });
    }
    out.sort_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
    Ok(out)
}

pub(super) async fn mismatches(store: &ClickHouseStore, window: &Window, limit: usize) -> Result<Vec<Mismatch>> {
    if window.start_ns > window.end_ns || limit == 0 {
        return Ok(Vec::new());
    }
    let x = store.exprs();
    let spans = x.spans();
    let start = x.start_ns();
    let mut q = Sql::default();
    q.push(&format!(
        "SELECT trace_id, c_id, c_start, c_service, s_id, s_start, s_service FROM (\
         SELECT trace_id, span_id AS link, span_id AS c_id, {start} AS c_start, \
         toString(service) AS c_service FROM {spans} WHERE"
    ));
    x.time_filter(&mut q, window);
    q.push(&format!(
        " AND kind = 3 AND (status_code = 2 OR {})",
        sql::span_mentions_timeout()
    ));
    x.cloud_filter(&mut q, window);
    q.push(&format!(
        " LIMIT 1 BY trace_id, span_id) AS c ALL INNER JOIN (\
         SELECT trace_id, parent_span_id AS link, span_id AS s_id, {start} AS s_start, \
         toString(service) AS s_service FROM {spans} WHERE kind = 2 AND status_code != 2 AND"
    ));
    traces_in_window(store, &mut q, window, " AND kind = 3");
    q.push(
        " LIMIT 1 BY trace_id, s_id) AS s USING (trace_id, link) ORDER BY c_start DESC, trace_id DESC, c_id DESC, s_id",
    )
    .bind(" LIMIT ?", Arg::U64(limit as u64));
    let rows: Vec<PairRow> = store.reader.fetch("mismatches", q.query(&store.client)).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    // The pairs' spans in one read, restricted to their services and times.
    let mut services: Vec<&str> = rows
        .iter()
        .flat_map(|r| [r.c_service.as_str(), r.s_service.as_str()])
        .collect();
    services.sort_unstable();
    services.dedup();
    let mut ids: Vec<[u8; 16]> = rows.iter().map(|r| r.trace_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let times = rows.iter().flat_map(|r| [r.c_start, r.s_start]);
    let low = ns_to_i64(times.clone().min().unwrap_or(0));
    let high = ns_to_i64(times.max().unwrap_or(u64::MAX));
    let spans: HashMap<_, _> = store
        .reader
        .read_spans(&services, low, high, &ids)
        .await?
        .into_iter()
        .map(|s| ((s.trace_id.0, s.span_id.0), Arc::new(s)))
        .collect();
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        // A pair whose spans expired between the two reads is left out.
        let (Some(client), Some(server)) = (
            spans.get(&(row.trace_id, row.c_id)),
            spans.get(&(row.trace_id, row.s_id)),
        ) else {
            continue;
        };
        let reason = if mentions_timeout(client) {
            MismatchReason::ClientTimeout
        } else if client.is_error() {
            MismatchReason::ClientError
        } else {
            continue;
        };
        out.push(Mismatch {
            reason,
            client: client.clone(),
            server: server.clone(),
        });
    }
    Ok(out)
}
