//! Parameters shared by the analysis endpoints.

use std::sync::Arc;

use axum::http::StatusCode;
use hopscope_schemas::CloudKind;
use hopscope_storage::AggregateReader;
use hopscope_storage::aggregates::Window;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::params::{QueryParams, parse_u64, parse_unix_time};

/// Parses `cloud_kind=`.
pub fn cloud_kind(params: &QueryParams) -> ApiResult<Option<CloudKind>> {
    params
        .get("cloud_kind")
        .map(|text| {
            CloudKind::parse(text).ok_or_else(|| {
                ApiError::bad_param(
                    "cloud_kind",
                    format!("unknown cloud kind {text:?}; expected private, hosted, public or unknown"),
                )
            })
        })
        .transpose()
}

/// Parses a required window from `start_name`/`end_name` (unix µs) and `cloud_kind`.
pub fn window_named(params: &QueryParams, start_name: &str, end_name: &str) -> ApiResult<Window> {
    let start = params
        .get(start_name)
        .ok_or_else(|| ApiError::missing_param(start_name))?;
    let end = params.get(end_name).ok_or_else(|| ApiError::missing_param(end_name))?;
    let start_ns = parse_unix_time(start_name, start, 1_000)?;
    let end_ns = parse_unix_time(end_name, end, 1_000)?;
    if end_ns < start_ns {
        return Err(ApiError::bad_request(format!(
            "parameter '{end_name}' ({end}) is before '{start_name}' ({start})"
        )));
    }
    Ok(Window {
        start_ns,
        end_ns,
        cloud_kind: cloud_kind(params)?,
    })
}

/// The `start`/`end` window.
/// The optional baseline window (`baseline_start` and `baseline_end`, both or neither).
pub fn baseline_window(params: &QueryParams) -> ApiResult<Option<Window>> {
    match (params.get("baseline_start"), params.get("baseline_end")) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(ApiError::missing_param("baseline_end")),
        (None, Some(_)) => Err(ApiError::missing_param("baseline_start")),
        (Some(_), Some(_)) => window_named(params, "baseline_start", "baseline_end").map(Some),
    }
}

/// The trace id of a `/api/v1/traces/{traceID}/...` path.
pub fn path_trace_id(
    path: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
) -> ApiResult<hopscope_schemas::TraceId> {
    let axum::extract::Path(text) = path.map_err(|err| ApiError::bad_param("traceID", err))?;
    text.parse().map_err(|err| ApiError::bad_param("traceID", err))
}

pub fn window(params: &QueryParams) -> ApiResult<Window> {
    window_named(params, "start", "end")
}

/// An optional positive count parameter, capped at `max`.
pub fn limit(params: &QueryParams, name: &str, default: usize, max: usize) -> ApiResult<usize> {
    match params.get(name) {
        None => Ok(default),
        Some(text) => {
            let n = parse_u64(name, text)?;
            if n == 0 {
                return Err(ApiError::bad_param(name, "must be at least 1"));
            }
            Ok(usize::try_from(n).unwrap_or(max).min(max))
        }
    }
}

/// The store's aggregates, or 501 naming the gap.
pub(crate) fn aggregates(state: &AppState) -> ApiResult<Arc<dyn AggregateReader>> {
    state.aggregates.clone().ok_or_else(|| ApiError {
        status: StatusCode::NOT_IMPLEMENTED,
        message: "the configured store does not implement the analysis aggregates yet".to_owned(),
    })
}

/// Nanoseconds → microseconds.
pub fn us(ns: u64) -> u64 {
    ns / 1_000
}
