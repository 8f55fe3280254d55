//! `GET /api/v1/dependencies?start&end[&cloud_kind]`: service → service and service →
//! middleware edges ([`hopscope_storage::AggregateReader::dependency_edges`]) and the
//! configured layer rules' `violations` ([`hopscope_analysis::rules::LayersConfig`]).

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use hopscope_schemas::HopKind;
use hopscope_storage::aggregates::EdgeTarget;
use serde::Serialize;

use super::params::{aggregates, us, window};
use crate::AppState;
use crate::error::ApiResult;
use crate::params::QueryParams;
use hopscope_analysis::rules::Violation;

#[derive(Serialize)]
pub(super) struct Answer {
    edges: Vec<Edge>,
    violations: Vec<Violation>,
}

#[derive(Serialize)]
struct Edge {
    from: String,
    to: String,
    /// `service` or `middleware`.
    to_kind: &'static str,
    /// How the calls travel (`http`, `rpc`, `mq`, `db`, `cache`, ...), for both kinds.
    hop_kind: HopKind,
    call_count: u64,
    error_count: u64,
    p95_us: u64,
    p99_us: u64,
}

pub(super) async fn handler(State(state): State<AppState>, uri: Uri) -> ApiResult<Json<Answer>> {
    let params = QueryParams::from_uri(&uri)?;
    let window = window(&params)?;
    let edges = aggregates(&state)?.dependency_edges(&window).await?;
    let violations = state.analysis.layers.violations(&edges);
    Ok(Json(Answer {
        edges: edges
            .into_iter()
            .map(|e| {
                let (to, to_kind) = match e.to {
                    EdgeTarget::Service { name } => (name, "service"),
                    EdgeTarget::Middleware { peer, .. } => (peer, "middleware"),
                };
                Edge {
                    from: e.from,
                    to,
                    to_kind,
                    hop_kind: e.hop_kind,
                    call_count: e.call_count,
                    error_count: e.error_count,
                    p95_us: us(e.p95_ns),
                    p99_us: us(e.p99_ns),
                }
            })
            .collect(),
        violations,
    }))
}
