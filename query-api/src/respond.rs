//! JSON responses built off the async reactor.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{ApiError, ApiResult};

/// Builds a value with `build` and serialises it on the blocking pool: converting and
/// encoding a search result of many traces takes far longer than the ~500 µs a task
/// may hold a reactor thread.
pub(crate) async fn json_blocking<T, F>(build: F) -> ApiResult<Response>
where
    F: FnOnce() -> T + Send + 'static,
    T: Serialize,
{
    let body = tokio::task::spawn_blocking(move || serde_json::to_vec(&build()))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(json_bytes(StatusCode::OK, body))
}

/// A response with an already-encoded JSON body.
pub(crate) fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
