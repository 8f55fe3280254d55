//! Errors at the HTTP edge.
//!
//! An [`ApiError`] carries the HTTP status and a message that is safe to show the client;
//! storage failures are logged with their detail and answered with a generic message.
//! It renders as Jaeger's v1 error envelope; the api_v3 routes wrap it in
//! [`crate::jaeger_v3::V3Error`] for Jaeger's gRPC-gateway error shape.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hopscope_storage::StorageError;

use crate::jaeger_v1::model::Envelope;

/// An error answered to an API client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    /// HTTP status sent.
    pub status: StatusCode,
    /// Message sent to the client.
    pub message: String,
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// 400 naming the malformed parameter and why.
    pub fn bad_param(name: &str, why: impl std::fmt::Display) -> Self {
        Self::bad_request(format!("unable to parse param '{name}': {why}"))
    }

    /// 400 for a missing required parameter, worded as Jaeger does.
    pub fn missing_param(name: &str) -> Self {
        Self::bad_request(format!("parameter '{name}' is required"))
    }

    /// 404 with `message`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    /// 500 for a failure inside hopscope; the detail is logged, not sent.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "query api internal error");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "internal error".to_owned(),
        }
    }

    /// Headers that go with the status (`Retry-After` on 503).
    pub(crate) fn decorate(&self, mut response: Response) -> Response {
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        match err {
            // The store names what is wrong with the query; that is the client's to fix.
            StorageError::InvalidQuery(message) => Self::bad_request(message),
            StorageError::Retryable(detail) | StorageError::Full(detail) => {
                tracing::warn!(%detail, "storage unavailable for a query");
                Self {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    message: "storage temporarily unavailable, retry later".to_owned(),
                }
            }
            StorageError::Permanent(detail) => {
                tracing::error!(%detail, "storage failed a query");
                Self {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    message: "storage failed to answer the query".to_owned(),
                }
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Envelope::<()>::error(self.status.as_u16(), &self.message);
        let response = (self.status, axum::Json(body)).into_response();
        self.decorate(response)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn storage_errors_map_to_statuses_without_leaking_detail() {
        let e = ApiError::from(StorageError::InvalidQuery("bad tag".into()));
        assert_eq!((e.status, e.message.as_str()), (StatusCode::BAD_REQUEST, "bad tag"));
        let e = ApiError::from(StorageError::Retryable("conn refused 10.0.0.1".into()));
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!e.message.contains("10.0.0.1"));
        let e = ApiError::from(StorageError::Permanent("schema v3 mismatch".into()));
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message.contains("schema"));
    }
}
