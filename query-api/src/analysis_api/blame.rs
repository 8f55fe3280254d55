//! `GET /api/v1/blame?service&operation&start&end[&baseline_start&baseline_end][&cloud_kind][&limit]`:
//! ranks nodes by excess self time per trace of the entry operation `service`/`operation`
//! over the baseline window, or by contribution to the p99 tail without one
//! ([`hopscope_analysis::blame`]). At most `limit` traces per window (default
//! [`DEFAULT_TRACES`], at most [`MAX_TRACES`]) are analysed, evenly sampled by the store
//! ([`hopscope_storage::AggregateReader::entry_traces`]); `cloud_kind` filters the entry
//! spans. A baseline window without traces of the operation has nothing to compare
//! with: the answer then ranks the p99 tail instead and says so in `notice` (`null`
//! otherwise), see [`hopscope_analysis::blame::blame_report`].

use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use serde::Serialize;

use super::params::{aggregates, baseline_window, limit, window};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::params::QueryParams;
use crate::respond::json_blocking;
use hopscope_analysis::blame::{BlameReport, analyze_entries, blame_report, entry_traces};

/// Traces analysed per window unless `limit` says otherwise.
pub const DEFAULT_TRACES: usize = 500;
/// Most traces analysed per window.
pub const MAX_TRACES: usize = 5_000;

#[derive(Serialize)]
struct Answer {
    service: String,
    operation: String,
    /// Why the report is not what was asked for (a baseline without traces), else `null`.
    notice: Option<&'static str>,
    #[serde(flatten)]
    report: BlameReport,
}

pub(super) async fn handler(State(state): State<AppState>, uri: Uri) -> ApiResult<Response> {
    let params = QueryParams::from_uri(&uri)?;
    let service = params
        .get("service")
        .ok_or_else(|| ApiError::missing_param("service"))?
        .to_owned();
    let operation = params
        .get("operation")
        .ok_or_else(|| ApiError::missing_param("operation"))?
        .to_owned();
    let window = window(&params)?;
    let baseline = baseline_window(&params)?;
    let limit = limit(&params, "limit", DEFAULT_TRACES, MAX_TRACES)?;
    let aggregates = aggregates(&state)?;
    let now = entry_traces(&*aggregates, &*state.reader, &service, &operation, window, limit).await?;
    let before = match baseline {
        Some(b) => Some(entry_traces(&*aggregates, &*state.reader, &service, &operation, b, limit).await?),
        None => None,
    };
    json_blocking(move || {
        let now = analyze_entries(&now);
        let before = before.map(|b| analyze_entries(&b));
        let (report, notice) = blame_report(&now, before.as_deref());
        Answer {
            service,
            operation,
            notice,
            report,
        }
    })
    .await
}
