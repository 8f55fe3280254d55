//! `GET /api` (and `/api/`): an index of the HTTP API served on the query port, so a
//! person who opens `/api` in a browser (the UI footer links it) finds every endpoint, its
//! parameters and what it answers. [`ENDPOINTS`] is the list; a test requests each one.

use axum::Json;
use serde::Serialize;

/// One documented endpoint.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Endpoint {
    /// Path, with `{placeholders}`.
    pub path: &'static str,
    /// Query parameters (`?` marks optional ones).
    pub params: &'static str,
    /// What it answers.
    pub about: &'static str,
}

const fn ep(path: &'static str, params: &'static str, about: &'static str) -> Endpoint {
    Endpoint { path, params, about }
}

/// Every GET endpoint on the query port. Times are unix microseconds, like the Jaeger API.
pub const ENDPOINTS: &[Endpoint] = &[
    ep("/api/services", "", "Jaeger: service names"),
    ep(
        "/api/services/{service}/operations",
        "",
        "Jaeger: a service's operation names",
    ),
    ep(
        "/api/operations",
        "service, spanKind?",
        "Jaeger: operations with span kinds",
    ),
    ep(
        "/api/traces",
        "service, operation?, tags?, minDuration?, maxDuration?, start?, end?, limit?",
        "Jaeger: trace search",
    ),
    ep("/api/traces/{traceID}", "", "Jaeger: one trace"),
    ep(
        "/api/dependencies",
        "endTs? (unix ms), lookback? (ms), service?",
        "Jaeger: service call counts",
    ),
    ep("/api/v3/services", "", "api_v3: service names"),
    ep("/api/v3/operations", "service, span_kind?", "api_v3: operations"),
    ep(
        "/api/v3/traces",
        "query.service_name, query.start_time_min, query.start_time_max, ...",
        "api_v3: trace search (OTLP JSON)",
    ),
    ep("/api/v3/traces/{traceID}", "", "api_v3: one trace (OTLP JSON)"),
    ep(
        "/api/v1/traces/{traceID}/analysis",
        "",
        "culprit, critical path, self times and root-cause errors of one trace",
    ),
    ep(
        "/api/v1/blame",
        "service, operation, start, end, baseline_start?, baseline_end?, cloud_kind?, limit?",
        "nodes ranked by extra latency over a baseline (or the p99 tail), with example traces",
    ),
    ep(
        "/api/v1/middleware",
        "kind (cache|db|mq|http|rpc|host), start, end, step?, group_by?, cloud_kind?",
        "middleware instances side by side: latency percentiles, throughput, errors, time series",
    ),
    ep(
        "/api/v1/sla",
        "start, end, cloud_kind?",
        "SLA health per service and interface",
    ),
    ep(
        "/api/v1/exceptions",
        "start, end, cloud_kind?, examples?",
        "exception events by service and type",
    ),
    ep(
        "/api/v1/dependencies",
        "start, end, cloud_kind?",
        "service → service and service → middleware edges with hop kinds, layering violations",
    ),
    ep(
        "/api/v1/mismatches",
        "start, end, cloud_kind?, limit?",
        "calls the caller saw fail while the callee succeeded",
    ),
    ep("/metrics", "", "Prometheus metrics of hopscope itself"),
    ep("/health", "", "the process answers"),
    ep("/ready", "", "the store holds everything acknowledged before the start"),
];

#[derive(Serialize)]
pub(crate) struct Index {
    about: &'static str,
    endpoints: &'static [Endpoint],
}

pub(crate) async fn handler() -> Json<Index> {
    Json(Index {
        about: "hopscope HTTP API. Times are unix microseconds; bad parameters answer 400 naming the \
                parameter. See README.md, \"Querying\".",
        endpoints: ENDPOINTS,
    })
}
