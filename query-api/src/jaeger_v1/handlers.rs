//! Handlers of the Jaeger v1 routes. Errors answer with Jaeger's envelope and the same
//! HTTP status (see [`crate::error::ApiError`]).

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use hopscope_schemas::{SpanKind, TraceId};
use hopscope_storage::{DependencyLink, OperationQuery, Trace as StoredTrace};

use super::convert;
use super::model::{Envelope, Operation, StructuredError};
use super::search::{self, Search};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::params::{QueryParams, now_ns, parse_u64, parse_unix_time};
use crate::respond::json_blocking;

/// Dependencies look this far back unless `lookback` says otherwise (Jaeger's default).
const DEFAULT_DEPENDENCY_LOOKBACK_MS: u64 = 24 * 3_600 * 1_000;

/// `GET /api/services`
pub async fn services(State(state): State<AppState>) -> ApiResult<Json<Envelope<Vec<String>>>> {
    let services = state.reader.services().await?;
    let total = services.len();
    Ok(Json(Envelope::ok(services, total)))
}

/// `GET /api/services/{service}/operations` — distinct operation names of any kind.
pub async fn service_operations(
    State(state): State<AppState>,
    service: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Envelope<Vec<String>>>> {
    let Path(service) = service.map_err(|err| ApiError::bad_param("service", err))?;
    let operations = state
        .reader
        .operations(&OperationQuery {
            service,
            span_kind: None,
        })
        .await?;
    let mut names: Vec<String> = operations.into_iter().map(|op| op.name).collect();
    names.sort();
    names.dedup();
    let total = names.len();
    Ok(Json(Envelope::ok(names, total)))
}

/// `GET /api/operations?service=X[&spanKind=server]`
pub async fn operations(State(state): State<AppState>, uri: Uri) -> ApiResult<Json<Envelope<Vec<Operation>>>> {
    let params = QueryParams::from_uri(&uri)?;
    let service = params
        .get("service")
        .ok_or_else(|| ApiError::missing_param("service"))?;
    let span_kind = params
        .get("spanKind")
        .map(|text| {
            SpanKind::parse(text).ok_or_else(|| ApiError::bad_param("spanKind", format!("unknown span kind {text:?}")))
        })
        .transpose()?;
    let query = OperationQuery {
        service: service.to_owned(),
        span_kind,
    };
    let operations: Vec<Operation> = state
        .reader
        .operations(&query)
        .await?
        .iter()
        .map(Operation::from)
        .collect();
    let total = operations.len();
    Ok(Json(Envelope::ok(operations, total)))
}

/// `GET /api/traces` — a search, or `traceID=` lookups (missing ids are reported in
/// `errors` with the trace id, the found traces in `data`, as Jaeger does).
pub async fn search(State(state): State<AppState>, uri: Uri) -> ApiResult<Response> {
    let params = QueryParams::from_uri(&uri)?;
    let (traces, errors) = match search::parse(&params, &state.config, now_ns())? {
        Search::Query(query) => (state.reader.find_traces(&query).await?, Vec::new()),
        Search::ByIds(ids) => {
            let mut traces = Vec::with_capacity(ids.len());
            let mut errors = Vec::new();
            for id in ids {
                match state.reader.trace(id).await? {
                    Some(trace) => traces.push(trace),
                    None => errors.push(StructuredError {
                        code: None,
                        msg: "trace not found".to_owned(),
                        trace_id: Some(id.to_hex()),
                    }),
                }
            }
            (traces, errors)
        }
    };
    traces_response(traces, errors).await
}

/// `GET /api/traces/{traceID}`
pub async fn trace(
    State(state): State<AppState>,
    trace_id: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let Path(text) = trace_id.map_err(|err| ApiError::bad_param("traceID", err))?;
    let id: TraceId = text.parse().map_err(|err| ApiError::bad_param("traceID", err))?;
    let trace = state
        .reader
        .trace(id)
        .await?
        .ok_or_else(|| ApiError::not_found("trace not found"))?;
    traces_response(vec![trace], Vec::new()).await
}

async fn traces_response(traces: Vec<StoredTrace>, errors: Vec<StructuredError>) -> ApiResult<Response> {
    json_blocking(move || {
        let data: Vec<_> = traces.iter().map(convert::trace).collect();
        let total = data.len();
        let mut envelope = Envelope::ok(data, total);
        envelope.errors = (!errors.is_empty()).then_some(errors);
        envelope
    })
    .await
}

/// `GET /api/dependencies?endTs=<unix ms>&lookback=<ms>[&service=X]`
pub async fn dependencies(State(state): State<AppState>, uri: Uri) -> ApiResult<Json<Envelope<Vec<DependencyLink>>>> {
    let params = QueryParams::from_uri(&uri)?;
    let end_ns = match params.get("endTs") {
        Some(text) => parse_unix_time("endTs", text, 1_000_000)?,
        None => now_ns(),
    };
    let lookback_ms = match params.get("lookback") {
        Some(text) => parse_u64("lookback", text)?,
        None => DEFAULT_DEPENDENCY_LOOKBACK_MS,
    };
    let lookback_ns = lookback_ms.saturating_mul(1_000_000);
    let mut links = state
        .reader
        .dependencies(end_ns.saturating_sub(lookback_ns), end_ns)
        .await?;
    if let Some(service) = params.get("service") {
        links.retain(|link| link.parent == service || link.child == service);
    }
    let total = links.len();
    Ok(Json(Envelope::ok(links, total)))
}
