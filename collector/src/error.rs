//! Why an export request failed, and how each failure is told to an OTLP client.
//!
//! One enum serves both receivers; it is converted at the edge: into a [`tonic::Status`]
//! for gRPC and into an HTTP response (status code plus a `google.rpc.Status`-shaped body
//! in the request's encoding) for HTTP. Client mistakes carry the detail the client needs
//! to fix them; storage failures are logged in detail and told to the client briefly.

use axum::response::{IntoResponse, Response};
use hopscope_storage::StorageError;
use http::{HeaderValue, StatusCode, header};
use prost::Message;

/// Seconds an HTTP client is asked to wait (`Retry-After`) when storage is unavailable.
pub const RETRY_AFTER_SECS: u32 = 5;

/// Result alias for the ingest path.
pub type Result<T, E = IngestError> = std::result::Result<T, E>;

/// What went wrong with one export request.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The HTTP `Content-Type` is neither OTLP protobuf nor OTLP JSON.
    #[error("unsupported content type {0:?}; send application/x-protobuf, application/protobuf or application/json")]
    UnsupportedContentType(String),
    /// The HTTP `Content-Encoding` is not one the receiver decodes.
    #[error("unsupported content encoding {0:?}; send gzip or identity")]
    UnsupportedContentEncoding(String),
    /// The body as received is over the configured limit.
    #[error("request body is larger than the limit of {limit} bytes")]
    BodyTooLarge {
        /// The configured `max_request_bytes`.
        limit: usize,
    },
    /// The body inflates past the configured limit.
    #[error("decompressed request body is larger than the limit of {limit} bytes")]
    DecompressedTooLarge {
        /// The configured `max_request_bytes`.
        limit: usize,
    },
    /// The body says gzip but is not valid gzip.
    #[error("invalid gzip body: {0}")]
    InvalidGzip(String),
    /// The body is not a valid `ExportTraceServiceRequest` protobuf.
    #[error("invalid OTLP protobuf: {0}")]
    InvalidProtobuf(String),
    /// The body is not valid OTLP JSON.
    #[error("invalid OTLP JSON: {0}")]
    InvalidJson(String),
    /// The body could not be read from the connection.
    #[error("failed to read request body: {0}")]
    BodyRead(String),
    /// An HTTP method other than `POST` (or the CORS preflight `OPTIONS`).
    #[error("method {0} is not allowed; use POST")]
    MethodNotAllowed(String),
    /// Too many export requests are in flight ([`crate::Ingest::admit`]).
    #[error("{limit} export requests are in flight, the collector's limit; retry later")]
    Overloaded {
        /// The configured `max_inflight_requests`.
        limit: usize,
    },
    /// The store refused or failed the write.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A bug or a panic inside the receiver.
    #[error("internal error: {0}")]
    Internal(String),
}

/// How an HTTP error body is encoded: like the request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`.
    Json,
}

/// The `google.rpc.Status` message OTLP/HTTP uses for error bodies (without `details`).
#[derive(Clone, PartialEq, Message)]
pub struct RpcStatus {
    /// A `google.rpc.Code` value.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// A developer-facing message.
    #[prost(string, tag = "2")]
    pub message: String,
}

impl IngestError {
    /// The gRPC code for this error; also the `code` of an HTTP error body.
    pub fn grpc_code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            Self::UnsupportedContentType(_)
            | Self::UnsupportedContentEncoding(_)
            | Self::InvalidGzip(_)
            | Self::InvalidProtobuf(_)
            | Self::InvalidJson(_)
            | Self::BodyRead(_) => Code::InvalidArgument,
            Self::BodyTooLarge { .. }
            | Self::DecompressedTooLarge { .. }
            | Self::Overloaded { .. }
            | Self::Storage(StorageError::Full(_)) => Code::ResourceExhausted,
            Self::MethodNotAllowed(_) => Code::Unimplemented,
            Self::Storage(StorageError::Retryable(_)) => Code::Unavailable,
            Self::Storage(_) | Self::Internal(_) => Code::Internal,
        }
    }

    /// The HTTP status for this error.
    pub fn http_status(&self) -> StatusCode {
        match self {
            Self::UnsupportedContentType(_) | Self::UnsupportedContentEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::InvalidGzip(_) | Self::InvalidProtobuf(_) | Self::InvalidJson(_) | Self::BodyRead(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::BodyTooLarge { .. } | Self::DecompressedTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Overloaded { .. } | Self::Storage(StorageError::Full(_)) => StatusCode::TOO_MANY_REQUESTS,
            Self::Storage(StorageError::Retryable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Storage(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message the client sees: the full detail for its own mistakes, a short safe
    /// text for server-side failures (whose detail goes to the log).
    pub fn client_message(&self) -> String {
        match self {
            Self::Storage(StorageError::Retryable(_)) => "storage is temporarily unavailable; retry later".to_owned(),
            Self::Storage(StorageError::Full(_)) => "the collector's write-ahead log is full; retry later".to_owned(),
            Self::Storage(_) => "storage failed to write the spans".to_owned(),
            Self::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        }
    }

    fn log(&self) {
        let code = self.grpc_code();
        match self {
            Self::Storage(StorageError::Retryable(_) | StorageError::Full(_)) => {
                tracing::warn!(error = %self, ?code, "export failed, storage unavailable")
            }
            Self::Overloaded { .. } => tracing::debug!(error = %self, ?code, "export throttled"),
            Self::Storage(_) | Self::Internal(_) => {
                tracing::error!(error = %self, ?code, "export failed")
            }
            _ => tracing::warn!(error = %self, ?code, "export request refused"),
        }
    }

    /// The HTTP response for this error, its body encoded as `format`.
    pub fn into_http_response(self, format: BodyFormat) -> Response {
        self.log();
        let status = self.http_status();
        let rpc = RpcStatus {
            code: self.grpc_code() as i32,
            message: self.client_message(),
        };
        let (content_type, body) = match format {
            BodyFormat::Protobuf => ("application/x-protobuf", rpc.encode_to_vec()),
            BodyFormat::Json => (
                "application/json",
                serde_json::json!({ "code": rpc.code, "message": rpc.message })
                    .to_string()
                    .into_bytes(),
            ),
        };
        let mut response = (status, [(header::CONTENT_TYPE, content_type)], body).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        if status == StatusCode::METHOD_NOT_ALLOWED {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST, OPTIONS"));
        }
        response
    }
}

/// A JSON `google.rpc.Status` body; receivers use [`IngestError::into_http_response`]
/// to answer protobuf requests in protobuf.
impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        self.into_http_response(BodyFormat::Json)
    }
}

impl From<IngestError> for tonic::Status {
    fn from(error: IngestError) -> Self {
        error.log();
        let code = error.grpc_code();
        let message = error.client_message();
        if matches!(
            error,
            IngestError::Overloaded { .. } | IngestError::Storage(StorageError::Full(_))
        ) {
            // OTLP clients retry RESOURCE_EXHAUSTED only when the server says recovery is
            // possible, with a google.rpc.RetryInfo detail.
            let details = retry_info_status(code as i32, &message).encode_to_vec();
            return tonic::Status::with_details(code, message, details.into());
        }
        tonic::Status::new(code, message)
    }
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
struct ProtoAny {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// `google.rpc.Status` with details, as carried in `grpc-status-details-bin`.
#[derive(Clone, PartialEq, Message)]
struct RpcStatusWithDetails {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<ProtoAny>,
}

fn retry_info_status(code: i32, message: &str) -> RpcStatusWithDetails {
    let retry = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: i64::from(RETRY_AFTER_SECS),
            nanos: 0,
        }),
    };
    RpcStatusWithDetails {
        code,
        message: message.to_owned(),
        details: vec![ProtoAny {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".to_owned(),
            value: retry.encode_to_vec(),
        }],
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn storage_errors_map_to_retry_or_internal() {
        let retry = IngestError::from(StorageError::Retryable("clickhouse down".into()));
        assert_eq!(retry.http_status(), StatusCode::SERVICE_UNAVAILABLE);
        let status = tonic::Status::from(retry);
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(!status.message().contains("clickhouse"), "detail stays in the log");
        let permanent = IngestError::from(StorageError::Permanent("schema".into()));
        assert_eq!(permanent.http_status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(tonic::Status::from(permanent).code(), tonic::Code::Internal);
    }

    #[test]
    fn http_error_bodies_follow_the_request_encoding() {
        let response = IngestError::InvalidJson("eof".into()).into_http_response(BodyFormat::Protobuf);
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/x-protobuf");
        let response = IngestError::from(StorageError::Retryable("x".into())).into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn client_mistakes_name_the_problem() {
        let text = IngestError::UnsupportedContentType("text/plain".into()).client_message();
        assert!(
            text.contains("application/x-protobuf") && text.contains("application/json"),
            "{text}"
        );
        assert_eq!(
            IngestError::BodyTooLarge { limit: 1 }.grpc_code(),
            tonic::Code::ResourceExhausted
        );
    }
}
