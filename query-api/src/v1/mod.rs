//! The hopscope analysis API under `/api/v1/`: per-trace analysis, and window aggregates
//! (blame, middleware comparison, SLA report, exceptions, dependencies, outcome
//! mismatches). Times in parameters and answers are unix microseconds; `start`/`end`
//! bound the window (span start times, inclusive); every endpoint takes `cloud_kind=`
//! (`private|hosted|public|unknown`). Bad parameters answer 400 naming the parameter.
//!
//! The window endpoints need an [`hopscope_storage::AnalyticsReader`]; a router built
//! without one answers them with 501 (the per-trace analysis needs only the
//! [`hopscope_storage::SpanReader`]).

mod blame;
mod dependencies;
mod exceptions;
mod middleware;
mod mismatches;
pub mod params;
mod sla;
mod trace_analysis;

use axum::Router;
use axum::routing::get;

use crate::AppState;

pub use blame::{EMPTY_BASELINE_NOTICE, blame_report};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/traces/{trace_id}/analysis", get(trace_analysis::handler))
        .route("/api/v1/blame", get(blame::handler))
        .route("/api/v1/middleware", get(middleware::handler))
        .route("/api/v1/sla", get(sla::handler))
        .route("/api/v1/exceptions", get(exceptions::handler))
        .route("/api/v1/dependencies", get(dependencies::handler))
        .route("/api/v1/mismatches", get(mismatches::handler))
}
