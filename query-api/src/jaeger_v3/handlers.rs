//! Handlers of the api_v3 routes.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use hopscope_schemas::{SpanKind, TraceId, otlp};
use hopscope_storage::{OperationQuery, Trace};
use opentelemetry_proto::tonic::trace::v1::TracesData;
use serde::Serialize;

use super::{V3Error, search};
use crate::AppState;
use crate::error::ApiError;
use crate::params::QueryParams;
use crate::respond::json_blocking;

type V3Result<T> = Result<T, V3Error>;

/// `{"services": [...]}`
#[derive(Debug, Serialize)]
pub struct ServicesResponse {
    /// Service names, sorted.
    pub services: Vec<String>,
}

/// `{"operations": [{"name", "spanKind"}]}`
#[derive(Debug, Serialize)]
pub struct OperationsResponse {
    /// Operations, sorted by name then kind.
    pub operations: Vec<crate::jaeger_v1::model::Operation>,
}

/// `{"result": <OTLP TracesData>}`
#[derive(Debug, Serialize)]
pub struct TracesResponse {
    /// The spans of every trace, grouped by resource and scope.
    pub result: TracesData,
}

/// `GET /api/v3/services`
pub async fn services(State(state): State<AppState>) -> V3Result<Json<ServicesResponse>> {
    Ok(Json(ServicesResponse {
        services: state.reader.services().await?,
    }))
}

/// `GET /api/v3/operations?service=X[&spanKind=server]` (`span_kind` also accepted)
pub async fn operations(State(state): State<AppState>, uri: Uri) -> V3Result<Json<OperationsResponse>> {
    let params = QueryParams::from_uri(&uri)?;
    let service = params
        .get("service")
        .ok_or_else(|| ApiError::missing_param("service"))?;
    let span_kind = params
        .first_of(&["spanKind", "span_kind"])
        .map(|(name, text)| {
            SpanKind::parse(text).ok_or_else(|| ApiError::bad_param(name, format!("unknown span kind {text:?}")))
        })
        .transpose()?;
    let query = OperationQuery {
        service: service.to_owned(),
        span_kind,
    };
    let operations = state.reader.operations(&query).await?.iter().map(Into::into).collect();
    Ok(Json(OperationsResponse { operations }))
}

/// `GET /api/v3/traces` — an empty result is `{"result": {"resourceSpans": []}}`.
pub async fn find_traces(State(state): State<AppState>, uri: Uri) -> V3Result<Response> {
    let params = QueryParams::from_uri(&uri)?;
    let query = search::parse(&params, &state.config)?;
    let traces = state.reader.find_traces(&query).await?;
    Ok(traces_response(traces).await?)
}

/// `GET /api/v3/traces/{trace_id}`
pub async fn trace(State(state): State<AppState>, trace_id: Result<Path<String>, PathRejection>) -> V3Result<Response> {
    let malformed = |why: String| ApiError::bad_request(format!("malformed parameter trace_id: {why}"));
    let Path(text) = trace_id.map_err(|err| malformed(err.to_string()))?;
    let id: TraceId = text
        .parse()
        .map_err(|err: hopscope_schemas::IdParseError| malformed(err.to_string()))?;
    let trace = state
        .reader
        .trace(id)
        .await?
        .ok_or_else(|| ApiError::not_found("trace not found"))?;
    Ok(traces_response(vec![trace]).await?)
}

async fn traces_response(traces: Vec<Trace>) -> Result<Response, ApiError> {
    json_blocking(move || TracesResponse {
        result: otlp::traces_data(traces.iter().flat_map(|t| t.spans.iter().map(|s| &**s))),
    })
    .await
}
