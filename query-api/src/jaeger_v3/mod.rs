//! Jaeger's api_v3 over HTTP (`/api/v3/...`, Jaeger `cmd/query/app/apiv3/http_gateway.go`):
//! traces as OTLP JSON in `{"result": TracesData}`, errors as
//! `{"error": {"httpCode": 400, "message": "..."}}`. Parameter names are accepted in both
//! the current camelCase form (`query.serviceName`) and the older snake_case form
//! (`query.service_name`).

mod handlers;
pub mod search;

use axum::Json;
use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use crate::AppState;
use crate::error::ApiError;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v3/services", get(handlers::services))
        .route("/api/v3/operations", get(handlers::operations))
        .route("/api/v3/traces", get(handlers::find_traces))
        .route("/api/v3/traces/{trace_id}", get(handlers::trace))
}

/// An [`ApiError`] rendered in the gRPC-gateway error shape api_v3 clients expect.
#[derive(Debug)]
pub struct V3Error(pub ApiError);

impl From<ApiError> for V3Error {
    fn from(err: ApiError) -> Self {
        Self(err)
    }
}

impl From<hopscope_storage::StorageError> for V3Error {
    fn from(err: hopscope_storage::StorageError) -> Self {
        Self(err.into())
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetails<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorDetails<'a> {
    http_code: u16,
    message: &'a str,
}

impl IntoResponse for V3Error {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetails {
                http_code: self.0.status.as_u16(),
                message: &self.0.message,
            },
        };
        let response = (self.0.status, Json(body)).into_response();
        self.0.decorate(response)
    }
}
