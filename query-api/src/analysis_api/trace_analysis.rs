//! `GET /api/v1/traces/{traceID}/analysis[?cloud_kind=]`: critical path, culprit and
//! background work and root-cause errors of one trace ([`hopscope_analysis::analyze`]).
//! With `cloud_kind`, the culprit is the node with the largest self time among path items
//! of that kind and `errors` keeps that kind only; the critical path is always complete.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;

use super::params::{cloud_kind, path_trace_id};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::params::QueryParams;
use crate::respond::json_blocking;
use hopscope_analysis::{analyze, culprit_of};

pub(super) async fn handler(
    State(state): State<AppState>,
    trace_id: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> ApiResult<Response> {
    let id = path_trace_id(trace_id)?;
    let params = QueryParams::from_uri(&uri)?;
    let cloud = cloud_kind(&params)?;
    let trace = state
        .reader
        .trace(id)
        .await?
        .ok_or_else(|| ApiError::not_found("trace not found"))?;
    json_blocking(move || {
        let mut analysis = analyze(id, &trace.spans, None);
        if let (Some(a), Some(kind)) = (analysis.as_mut(), cloud) {
            a.culprit = culprit_of(a.critical_path.iter().filter(|i| i.cloud_kind == kind), a.duration_us);
            a.errors.retain(|e| e.cloud_kind == kind);
        }
        analysis
    })
    .await
}
