//! Self-observability on the query port: `/metrics` (Prometheus text format), `/health`
//! (the process answers) and `/ready` (the store holds everything acknowledged before the
//! start, so queries see the full picture).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use hopscope_collector::Ingest;
use hopscope_collector::durable::FeederStats;
use hopscope_collector::wal::Wal;

/// Everything `/metrics` reports on.
#[derive(Clone)]
pub struct Observed {
    /// The receivers' shared ingest path.
    pub ingest: Arc<Ingest>,
    /// The write-ahead log.
    pub wal: Arc<Wal>,
    /// The feeder into the store.
    pub feeder: Arc<FeederStats>,
}

/// The `/metrics`, `/health` and `/ready` routes.
pub fn router(observed: Observed) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .with_state(observed)
}

async fn ready(State(observed): State<Observed>) -> impl IntoResponse {
    if observed.feeder.caught_up.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "replaying the write-ahead log into the store\n",
        )
    }
}

async fn metrics(State(observed): State<Observed>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], render(&observed))
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
}

/// Renders every metric in the Prometheus text format.
pub fn render(observed: &Observed) -> String {
    let mut out = String::new();
    let ingest = observed.ingest.stats();
    let wal = observed.wal.stats();
    let feeder = &observed.feeder;
    let load = |v: &std::sync::atomic::AtomicU64| v.load(Ordering::Relaxed);
    metric(
        &mut out,
        "hopscope_requests_total",
        "counter",
        "OTLP export requests decoded",
        ingest.requests,
    );
    metric(
        &mut out,
        "hopscope_requests_invalid_total",
        "counter",
        "OTLP requests refused before decoding finished",
        ingest.invalid_requests,
    );
    metric(
        &mut out,
        "hopscope_requests_throttled_total",
        "counter",
        "OTLP requests refused because collector.max_inflight_requests were in flight",
        ingest.requests_throttled,
    );
    metric(
        &mut out,
        "hopscope_spans_received_total",
        "counter",
        "Spans in decoded export requests, valid or not",
        ingest.spans_received,
    );
    metric(
        &mut out,
        "hopscope_spans_accepted_total",
        "counter",
        "Spans acknowledged (in the write-ahead log)",
        ingest.spans_accepted,
    );
    metric(
        &mut out,
        "hopscope_spans_rejected_total",
        "counter",
        "Invalid spans reported as OTLP partial success",
        ingest.spans_rejected,
    );
    metric(
        &mut out,
        "hopscope_spans_refused_total",
        "counter",
        "Valid spans not acknowledged (back-pressure or log error; the client retries)",
        ingest.spans_failed,
    );
    metric(
        &mut out,
        "hopscope_wal_bytes",
        "gauge",
        "Bytes in write-ahead log segments",
        wal.bytes,
    );
    metric(
        &mut out,
        "hopscope_wal_segments",
        "gauge",
        "Write-ahead log segment files",
        wal.segments,
    );
    metric(
        &mut out,
        "hopscope_wal_backlog_bytes",
        "gauge",
        "Bytes of log segments holding records not yet in the store",
        wal.backlog_bytes,
    );
    metric(
        &mut out,
        "hopscope_wal_backlog_records",
        "gauge",
        "Log records not yet in the store (writer lag)",
        wal.backlog_records,
    );
    metric(
        &mut out,
        "hopscope_wal_memory_tail_bytes",
        "gauge",
        "Bytes of the newest log records also held in memory for the store writer",
        wal.memory_tail_bytes,
    );
    metric(
        &mut out,
        "hopscope_store_records_written_total",
        "counter",
        "Log records written to the store",
        load(&feeder.records_written),
    );
    metric(
        &mut out,
        "hopscope_store_spans_written_total",
        "counter",
        "Spans written to the store",
        load(&feeder.spans_written),
    );
    metric(
        &mut out,
        "hopscope_store_write_retries_total",
        "counter",
        "Store writes retried after a retryable error",
        load(&feeder.retries),
    );
    metric(
        &mut out,
        "hopscope_spans_dropped_total",
        "counter",
        "Acknowledged spans the store refused permanently (0 unless the store rejects data)",
        load(&feeder.spans_dropped),
    );
    metric(
        &mut out,
        "hopscope_wal_records_undecodable_total",
        "counter",
        "Log records whose payload did not decode",
        load(&feeder.records_undecodable),
    );
    let (buckets, count, sum) = feeder.insert_latency.snapshot();
    let name = "hopscope_store_write_seconds";
    let _ = writeln!(out, "# HELP {name} Store write latency\n# TYPE {name} histogram");
    for (bound, cumulative) in buckets {
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}"
    );
    out
}
