//! Stage 1 of the collector, HTTP: `POST /v1/traces` with protobuf or JSON bodies, optionally gzip.
//!
//! Contract per request:
//! - `Content-Type` `application/x-protobuf`, `application/protobuf` or `application/json`
//!   (parameters allowed), else 415; `Content-Encoding` `gzip` or `identity`, else 415.
//! - A body over `max_request_bytes` (as sent, or after inflating) is 413; inflation stops
//!   at the limit, so memory stays bounded whatever the compression ratio.
//! - A malformed body is 400 naming the problem.
//! - Success is 200 with an `ExportTraceServiceResponse` (OTLP partial success when some
//!   spans were invalid) in the request's encoding; errors carry a `google.rpc.Status`
//!   body in the request's encoding (JSON when the content type itself is refused).
//! - Storage unavailable is 503 with `Retry-After`; other storage failures are 500.
//! - Other methods are 405; `OPTIONS` answers CORS preflight, and every response allows
//!   any origin, so browser exporters can send spans.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;

use crate::config::DEFAULT_MAX_REQUEST_BYTES;
use crate::decode;
use crate::error::{BodyFormat, IngestError, Result};
use crate::ingest::{Ingest, RequestBody};

/// The OTLP/HTTP traces path.
pub const TRACES_PATH: &str = "/v1/traces";

/// Builds an [`OtlpHttpReceiver`].
#[derive(Debug)]
pub struct OtlpHttpReceiverBuilder {
    ingest: Arc<Ingest>,
    max_request_bytes: usize,
}

impl OtlpHttpReceiverBuilder {
    /// Largest accepted body, before and after decompression (default 16 MiB).
    pub fn max_request_bytes(mut self, max: usize) -> Self {
        self.max_request_bytes = max;
        self
    }

    /// The receiver.
    pub fn build(self) -> OtlpHttpReceiver {
        OtlpHttpReceiver {
            state: Arc::new(HttpState {
                ingest: self.ingest,
                max_request_bytes: self.max_request_bytes,
            }),
        }
    }
}

/// The OTLP/HTTP trace receiver.
#[derive(Debug)]
pub struct OtlpHttpReceiver {
    state: Arc<HttpState>,
}

#[derive(Debug)]
struct HttpState {
    ingest: Arc<Ingest>,
    max_request_bytes: usize,
}

impl OtlpHttpReceiver {
    /// Starts building a receiver that exports into `ingest`.
    pub fn builder(ingest: Arc<Ingest>) -> OtlpHttpReceiverBuilder {
        OtlpHttpReceiverBuilder {
            ingest,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        }
    }

    /// The routes (`/v1/traces` only), for serving or for tests with `oneshot`.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                TRACES_PATH,
                post(export).options(preflight).fallback(method_not_allowed),
            )
            .layer(axum::middleware::map_response(allow_any_origin))
            .with_state(Arc::clone(&self.state))
    }

    /// Serves on `listener` until `shutdown` completes, then finishes in-flight requests.
    /// Errors only when the server itself fails; bad requests never stop it.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let local = listener.local_addr()?;
        tracing::info!(%local, max_request_bytes = self.state.max_request_bytes, "otlp http receiver listening");
        // TCP_NODELAY, so a response written in parts never waits for a delayed ACK.
        let listener = listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(error = %err, "cannot set TCP_NODELAY");
            }
        });
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }
}

async fn export(State(state): State<Arc<HttpState>>, headers: HeaderMap, body: Body) -> Response {
    let format = match decode::body_format(&headers) {
        Ok(format) => format,
        Err(err) => {
            state.ingest.record_invalid_request();
            return err.into_http_response(BodyFormat::Json);
        }
    };
    // Admitted before the body is read; the permit lives until the answer.
    let _permit = match state.ingest.admit() {
        Ok(permit) => permit,
        Err(err) => return err.into_http_response(format),
    };
    let result = match read_request(&state, &headers, body, format).await {
        Ok(body) => state.ingest.ingest(body).await,
        Err(err) => {
            state.ingest.record_invalid_request();
            Err(err)
        }
    };
    match result.and_then(|response| encode_response(&response, format)) {
        Ok(response) => response,
        Err(err) => err.into_http_response(format),
    }
}

/// Reads the body (bounded by `max_request_bytes`) into a buffer from the ingest path's
/// pool, as the ingest path takes it; inflating and decoding are the ingest path's.
async fn read_request(state: &HttpState, headers: &HeaderMap, body: Body, format: BodyFormat) -> Result<RequestBody> {
    let max = state.max_request_bytes;
    let encoding = decode::content_encoding(headers)?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        if declared.is_some_and(|len| len <= drain_limit(max) as u64) {
            discard_body(body, drain_limit(max)).await;
        }
        return Err(IngestError::BodyTooLarge { limit: max });
    }
    let buffer = state.ingest.body_pool().take(declared.map_or(0, |len| len as usize));
    let bytes = state.ingest.body_pool().share(read_body(body, buffer, max).await?);
    Ok(RequestBody {
        bytes,
        format,
        encoding,
        max_inflated: max,
    })
}

/// How much of an oversized body is read and thrown away so that the client, still
/// sending, reads the 413 instead of a reset connection. Past this the connection is
/// closed without reading on.
fn drain_limit(max: usize) -> usize {
    max.saturating_mul(4).max(64 * 1024 * 1024)
}

/// Reads and discards up to `limit` bytes of `body`, holding one frame at a time.
async fn discard_body(mut body: Body, limit: usize) {
    let mut seen = 0usize;
    while seen <= limit {
        match body.frame().await {
            Some(Ok(frame)) => seen += frame.data_ref().map_or(0, |data| data.len()),
            _ => return,
        }
    }
}

/// Reads the whole body into `collected` (empty; give it the declared length as capacity,
/// so that gathering needs no reallocation), refusing it as soon as it passes `max` bytes
/// (and then discarding a bounded rest of it; see [`drain_limit`]).
async fn read_body(mut body: Body, mut collected: Vec<u8>, max: usize) -> Result<Vec<u8>> {
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| IngestError::BodyRead(err.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if collected.len() + data.len() > max {
            discard_body(body, drain_limit(max)).await;
            return Err(IngestError::BodyTooLarge { limit: max });
        }
        collected.extend_from_slice(&data);
    }
    Ok(collected)
}

fn encode_response(response: &ExportTraceServiceResponse, format: BodyFormat) -> Result<Response> {
    let (content_type, body) = match format {
        BodyFormat::Protobuf => ("application/x-protobuf", response.encode_to_vec()),
        // An absent partial success is written as `{}` rather than `{"partialSuccess":null}`.
        BodyFormat::Json if response.partial_success.is_none() => ("application/json", b"{}".to_vec()),
        BodyFormat::Json => (
            "application/json",
            serde_json::to_vec(response)
                .map_err(|err| IngestError::Internal(format!("encoding the response: {err}")))?,
        ),
    };
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response())
}

async fn method_not_allowed(method: Method) -> Response {
    IngestError::MethodNotAllowed(method.to_string()).into_response()
}

/// CORS preflight: allows `POST` with the headers the browser asks for.
async fn preflight(headers: HeaderMap) -> Response {
    let requested = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("content-type, content-encoding"));
    (
        StatusCode::NO_CONTENT,
        [
            (
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("POST, OPTIONS"),
            ),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, requested),
            (header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400")),
        ],
    )
        .into_response()
}

async fn allow_any_origin(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}
