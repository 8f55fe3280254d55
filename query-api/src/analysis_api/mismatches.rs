//! `GET /api/v1/mismatches?start&end[&cloud_kind][&limit]`: calls whose client span failed
//! or timed out while the server span succeeded
//! ([`hopscope_storage::AggregateReader::mismatches`]), newest first, at most `limit`
//! (default 100, at most 1000).

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use hopscope_schemas::{CloudKind, SpanId, SpanRecord, TraceId};
use hopscope_storage::aggregates::MismatchReason;
use serde::Serialize;

use super::params::{aggregates, limit, us, window};
use crate::AppState;
use crate::error::ApiResult;
use crate::params::QueryParams;

#[derive(Serialize)]
pub(super) struct Answer {
    mismatches: Vec<Item>,
}

#[derive(Serialize)]
struct Item {
    trace_id: TraceId,
    reason: MismatchReason,
    /// The operation called (the server span's name).
    operation: String,
    client: Side,
    server: Side,
}

#[derive(Serialize)]
struct Side {
    span_id: SpanId,
    service: String,
    operation: String,
    host: Option<String>,
    cloud_kind: CloudKind,
    start_us: u64,
    duration_us: u64,
    status_code: &'static str,
    status_message: String,
}

fn side(span: &SpanRecord) -> Side {
    Side {
        span_id: span.span_id,
        service: span.service_name.clone(),
        operation: span.name.clone(),
        host: span.host.clone(),
        cloud_kind: span.cloud().kind,
        start_us: us(span.start_time_unix_nano),
        duration_us: us(span.duration_nanos()),
        status_code: span.status_code.as_str(),
        status_message: span.status_message.clone(),
    }
}

pub(super) async fn handler(State(state): State<AppState>, uri: Uri) -> ApiResult<Json<Answer>> {
    let params = QueryParams::from_uri(&uri)?;
    let window = window(&params)?;
    let limit = limit(&params, "limit", 100, 1_000)?;
    let found = aggregates(&state)?.mismatches(&window, limit).await?;
    Ok(Json(Answer {
        mismatches: found
            .iter()
            .map(|m| Item {
                trace_id: m.client.trace_id,
                reason: m.reason,
                operation: m.server.name.clone(),
                client: side(&m.client),
                server: side(&m.server),
            })
            .collect(),
    }))
}
