//! `GET /api/v1/exceptions?start&end[&cloud_kind][&examples]`: exception events per
//! service and `exception.type` ([`hopscope_storage::AggregateReader::exceptions`]).

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use hopscope_schemas::TraceId;
use serde::Serialize;

use super::params::{aggregates, limit, us, window};
use crate::AppState;
use crate::error::ApiResult;
use crate::params::QueryParams;

#[derive(Serialize)]
pub(super) struct Answer {
    exceptions: Vec<Group>,
}

#[derive(Serialize)]
struct Group {
    service: String,
    exception_type: String,
    count: u64,
    last_seen: u64,
    example_trace_ids: Vec<TraceId>,
}

pub(super) async fn handler(State(state): State<AppState>, uri: Uri) -> ApiResult<Json<Answer>> {
    let params = QueryParams::from_uri(&uri)?;
    let window = window(&params)?;
    let examples = limit(&params, "examples", 5, 100)?;
    let groups = aggregates(&state)?.exceptions(&window, examples).await?;
    Ok(Json(Answer {
        exceptions: groups
            .into_iter()
            .map(|g| Group {
                service: g.service,
                exception_type: g.exception_type,
                count: g.count,
                last_seen: us(g.last_seen_ns),
                example_trace_ids: g.example_trace_ids,
            })
            .collect(),
    }))
}
