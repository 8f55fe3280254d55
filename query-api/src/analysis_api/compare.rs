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
use hopscope_analysis::compare::{analyze_baseline, compare_with_trace, compare_with_typical, entry_of};
use hopscope_schemas::TraceId;

use super::params::{aggregates, limit, window_named};
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
    let Path(text) = trace_id.map_err(|err| ApiError::bad_param("traceID", err))?;
    let id: TraceId = text.parse().map_err(|err| ApiError::bad_param("traceID", err))?;
    let params = QueryParams::from_uri(&uri)?;
    let with = params
        .get("with")
        .map(|w| w.parse::<TraceId>().map_err(|err| ApiError::bad_param("with", err)))
        .transpose()?;
    let window = match (params.get("baseline_start"), params.get("baseline_end")) {
        (None, None) => None,
        (Some(_), None) => return Err(ApiError::missing_param("baseline_end")),
        (None, Some(_)) => return Err(ApiError::missing_param("baseline_start")),
        (Some(_), Some(_)) => Some(window_named(&params, "baseline_start", "baseline_end")?),
    };
    if with.is_some() == window.is_some() {
        return Err(ApiError::bad_request(
            "give either 'with' (another trace id) or 'baseline_start' and 'baseline_end' (a window whose typical trace to compare with)",
        ));
    }
    let limit = limit(&params, "limit", DEFAULT_TRACES, MAX_TRACES)?;
    let trace = state
        .reader
        .trace(id)
        .await?
        .ok_or_else(|| ApiError::not_found("trace not found"))?;
    if let Some(other_id) = with {
        let other = state
            .reader
            .trace(other_id)
            .await?
            .ok_or_else(|| ApiError::not_found("trace 'with' not found"))?;
        return json_blocking(move || {
            let a = analyze(id, &trace.spans, None)?;
            let b = analyze(other_id, &other.spans, None)?;
            Some(compare_with_trace(&a, &trace.spans, &b, &other.spans))
        })
        .await;
    }
    let window = window.ok_or_else(|| ApiError::internal("compare: no baseline"))?;
    let analysis = tokio::task::spawn_blocking({
        let spans = trace.spans.clone();
        move || analyze(id, &spans, None)
    })
    .await
    .map_err(ApiError::internal)?
    .ok_or_else(|| ApiError::not_found("trace not found"))?;
    let (service, operation) =
        entry_of(&analysis, &trace.spans).ok_or_else(|| ApiError::not_found("trace not found"))?;
    let aggregates = aggregates(&state)?;
    let baseline = entry_traces(&*aggregates, &*state.reader, &service, &operation, window, limit).await?;
    let comparison = tokio::task::spawn_blocking(move || {
        let baseline = analyze_baseline(baseline, id);
        compare_with_typical(&analysis, &trace.spans, &baseline)
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
