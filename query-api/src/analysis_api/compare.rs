//! `GET /api/v1/traces/{traceID}/compare?with={otherID}` and
//! `GET /api/v1/traces/{traceID}/compare?baseline_start&baseline_end[&limit]`: the trace's
//! nodes against another trace's, or against the typical trace of its entry operation in
//! the baseline window (per-node medians over at most `limit` traces, default
//! [`DEFAULT_TRACES`], evenly sampled), sorted by the change in self time, with a one-line
//! verdict ([`hopscope_analysis::compare`]).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use hopscope_analysis::analyze;
use hopscope_analysis::blame::entry_traces;
use hopscope_analysis::compare::{analyze_baseline, compare_with_trace, compare_with_typical, entry};
use hopscope_schemas::TraceId;
use hopscope_storage::Trace;
use hopscope_storage::aggregates::Window;

use super::params::{aggregates, baseline_window, limit, path_trace_id};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::params::QueryParams;
use crate::respond::json_blocking;

/// Baseline traces analysed unless `limit` says otherwise.
pub const DEFAULT_TRACES: usize = 200;
/// Most baseline traces analysed.
pub const MAX_TRACES: usize = 2_000;

pub(super) async fn handler(
    State(state): State<AppState>,
    trace_id: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> ApiResult<Response> {
    let id = path_trace_id(trace_id)?;
    let params = QueryParams::from_uri(&uri)?;
    let with = params
        .get("with")
        .map(|w| w.parse::<TraceId>().map_err(|err| ApiError::bad_param("with", err)))
        .transpose()?;
    let window = baseline_window(&params)?;
    let limit = limit(&params, "limit", DEFAULT_TRACES, MAX_TRACES)?;
    match (with, window) {
        (Some(other), None) => with_trace(&state, id, other).await,
        (None, Some(window)) => with_typical(&state, id, window, limit).await,
        _ => Err(ApiError::bad_request(
            "give either 'with' (another trace id) or 'baseline_start' and 'baseline_end' (a window whose typical trace to compare with)",
        )),
    }
}

async fn read(state: &AppState, id: TraceId, what: &str) -> ApiResult<Trace> {
    state
        .reader
        .trace(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{what} not found")))
}

async fn with_trace(state: &AppState, id: TraceId, other_id: TraceId) -> ApiResult<Response> {
    let trace = read(state, id, "trace").await?;
    let other = read(state, other_id, "trace 'with'").await?;
    json_blocking(move || {
        let a = analyze(id, &trace.spans, None)?;
        let b = analyze(other_id, &other.spans, None)?;
        Some(compare_with_trace(&a, &trace.spans, &b, &other.spans))
    })
    .await
}

async fn with_typical(state: &AppState, id: TraceId, window: Window, limit: usize) -> ApiResult<Response> {
    let trace = read(state, id, "trace").await?;
    let (service, operation) = entry(&trace.spans).ok_or_else(|| ApiError::not_found("trace not found"))?;
    let aggregates = aggregates(state)?;
    let baseline = entry_traces(&*aggregates, &*state.reader, &service, &operation, window, limit).await?;
    let comparison = tokio::task::spawn_blocking(move || {
        let analysis = analyze(id, &trace.spans, None)?;
        compare_with_typical(&analysis, &trace.spans, &analyze_baseline(baseline, id))
    })
    .await
    .map_err(ApiError::internal)?
    .ok_or_else(|| {
        ApiError::not_found(format!(
            "no other trace of {service} {operation} in the baseline window: widen it or compare 'with' one trace"
        ))
    })?;
    json_blocking(move || comparison).await
}
