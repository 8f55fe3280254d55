//! Stage 1 of the collector, gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/
//! Export` on tonic's HTTP/2 server, with the unary call's framing read here rather than
//! by tonic's codec, so that every failure is an [`IngestError`] mapped to its gRPC code
//! by type ([`IngestError::grpc_code`]), never by matching a library's message text.
//!
//! Per request (`read_message`): admission ([`Ingest::admit`]) before the body is read;
//! the 5-byte message prefix (compressed flag, length); a declared length over
//! `max_request_bytes` is `RESOURCE_EXHAUSTED` at once, before the message is buffered;
//! the message is gathered straight into a reusable body buffer; `grpc-encoding: gzip`
//! (the only compression accepted) is inflated by the ingest path with the same cap, so a
//! gzip bomb is `RESOURCE_EXHAUSTED` after at most `max_request_bytes` of output; a
//! truncated stream, a second message or a compressed flag without `grpc-encoding` is
//! `INVALID_ARGUMENT`; then [`Ingest::ingest`], whose answer (or error) is sent as the
//! gRPC response. Decoding and inflation of large messages run off the reactor there.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes};
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Service};
use tonic::server::NamedService;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Status};

use crate::config::DEFAULT_MAX_REQUEST_BYTES;
use crate::decode::ContentEncoding;
use crate::error::{BodyFormat, IngestError, Result};
use crate::ingest::{Ingest, RequestBody};

/// Builds an [`OtlpGrpcReceiver`].
#[derive(Debug)]
pub struct OtlpGrpcReceiverBuilder {
    ingest: Arc<Ingest>,
    max_request_bytes: usize,
}

impl OtlpGrpcReceiverBuilder {
    /// Largest accepted message, before and after decompression (default 16 MiB).
    pub fn max_request_bytes(mut self, max: usize) -> Self {
        self.max_request_bytes = max;
        self
    }

    /// The receiver.
    pub fn build(self) -> OtlpGrpcReceiver {
        OtlpGrpcReceiver {
            ingest: self.ingest,
            max_request_bytes: self.max_request_bytes,
        }
    }
}

/// The OTLP/gRPC trace receiver (`opentelemetry.proto.collector.trace.v1.TraceService`).
#[derive(Debug)]
pub struct OtlpGrpcReceiver {
    ingest: Arc<Ingest>,
    max_request_bytes: usize,
}

impl OtlpGrpcReceiver {
    /// Starts building a receiver that exports into `ingest`.
    pub fn builder(ingest: Arc<Ingest>) -> OtlpGrpcReceiverBuilder {
        OtlpGrpcReceiverBuilder {
            ingest,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        }
    }

    /// Serves on `listener` until `shutdown` completes, then finishes in-flight requests.
    /// Errors only when the server itself fails; bad requests never stop it.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let local = listener.local_addr()?;
        tracing::info!(%local, max_request_bytes = self.max_request_bytes, "otlp grpc receiver listening");
        let service = TraceService {
            ingest: Arc::clone(&self.ingest),
            max_request_bytes: self.max_request_bytes,
        };
        // HTTP/2 flow-control windows and frames sized for OTLP batches (hundreds of KiB):
        // with h2's 64 KiB defaults a 270 KiB request needs several window updates and
        // ~17 frames. Unread data stays within a connection's window; bodies being read
        // are bounded by the admission limit (`Ingest::admit`).
        Server::builder()
            .initial_stream_window_size(Some(STREAM_WINDOW))
            .initial_connection_window_size(Some(4 * STREAM_WINDOW))
            .max_frame_size(Some(MAX_FRAME))
            .add_service(service)
            .serve_with_incoming_shutdown(
                // TCP_NODELAY, which tonic's own default does not apply to a given
                // listener: with Nagle on, the response's frames waited for the client's
                // delayed ACK, ~40 ms per export.
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                shutdown,
            )
            .await
            .map_err(std::io::Error::other)
    }
}

/// HTTP/2 stream window the receiver grants (the connection's is four of these).
const STREAM_WINDOW: u32 = 1 << 20;
/// Largest HTTP/2 frame the receiver accepts.
const MAX_FRAME: u32 = 256 << 10;

/// The full gRPC method path of `TraceService/Export`.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Bytes before a gRPC message: compressed flag (1) and length (4, big-endian).
const PREFIX_LEN: usize = 5;

/// `opentelemetry.proto.collector.trace.v1.TraceService` with its one unary method; see
/// the module doc.
#[derive(Clone)]
struct TraceService {
    ingest: Arc<Ingest>,
    max_request_bytes: usize,
}

impl NamedService for TraceService {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

impl Service<http::Request<Body>> for TraceService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<std::result::Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path() != EXPORT_PATH {
            let status = Status::unimplemented(format!("no method {}", request.uri().path()));
            return Box::pin(std::future::ready(Ok(status.into_http())));
        }
        // Admitted before the body is read; the permit lives until the answer.
        let permit = match self.ingest.admit() {
            Ok(permit) => permit,
            Err(err) => return Box::pin(std::future::ready(Ok(Status::from(err).into_http()))),
        };
        let ingest = Arc::clone(&self.ingest);
        let max = self.max_request_bytes;
        Box::pin(async move {
            let answer = match read_message(&ingest, request, max).await {
                Ok(body) => ingest.ingest(body).await,
                Err(err) => {
                    ingest.record_invalid_request();
                    Err(err)
                }
            };
            drop(permit);
            Ok(match answer {
                Ok(response) => ok_response(&response),
                Err(err) => Status::from(err).into_http(),
            })
        })
    }
}

/// Reads the request's one gRPC message (see the module doc) into a buffer from the
/// ingest path's pool.
async fn read_message(ingest: &Ingest, request: http::Request<Body>, max: usize) -> Result<RequestBody> {
    let compression = match request.headers().get("grpc-encoding").map(|v| v.as_bytes()) {
        None | Some(b"identity") => None,
        Some(b"gzip") => Some(ContentEncoding::Gzip),
        Some(other) => {
            return Err(IngestError::UnsupportedContentEncoding(
                String::from_utf8_lossy(other).into_owned(),
            ));
        }
    };
    let mut body = request.into_body();
    let mut prefix = Vec::with_capacity(PREFIX_LEN);
    let mut message: Option<(bool, usize, Vec<u8>)> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| IngestError::BodyRead(err.to_string()))?;
        let Ok(mut data) = frame.into_data() else {
            continue;
        };
        while data.has_remaining() {
            let Some((_, len, buffer)) = message.as_mut() else {
                let take = (PREFIX_LEN - prefix.len()).min(data.remaining());
                prefix.extend_from_slice(&data.split_to(take));
                if prefix.len() == PREFIX_LEN {
                    let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
                    if len > max {
                        return Err(IngestError::BodyTooLarge { limit: max });
                    }
                    message = Some((prefix[0] != 0, len, ingest.body_pool().take(len)));
                }
                continue;
            };
            let missing = *len - buffer.len();
            if missing == 0 {
                return Err(IngestError::BodyRead(
                    "more than one message in a unary gRPC call".into(),
                ));
            }
            let take = missing.min(data.remaining());
            buffer.put(data.split_to(take));
        }
    }
    let Some((compressed, len, buffer)) = message else {
        return Err(IngestError::BodyRead(format!(
            "truncated gRPC message: {} of {PREFIX_LEN} prefix bytes",
            prefix.len()
        )));
    };
    if buffer.len() < len {
        return Err(IngestError::BodyRead(format!(
            "truncated gRPC message: {} of {len} bytes",
            buffer.len()
        )));
    }
    let encoding = match (compressed, compression) {
        (false, _) => ContentEncoding::Identity,
        (true, Some(encoding)) => encoding,
        (true, None) => {
            return Err(IngestError::BodyRead(
                "compressed gRPC message without a grpc-encoding header".into(),
            ));
        }
    };
    Ok(RequestBody {
        bytes: ingest.body_pool().share(buffer),
        format: BodyFormat::Protobuf,
        encoding,
        max_inflated: max,
    })
}

/// A successful unary answer: the framed response message, then `grpc-status: 0`.
fn ok_response(response: &ExportTraceServiceResponse) -> http::Response<Body> {
    let mut framed = Vec::with_capacity(PREFIX_LEN + response.encoded_len());
    framed.push(0);
    framed.extend_from_slice(&(response.encoded_len() as u32).to_be_bytes());
    response.encode(&mut framed).unwrap_or_default();
    let mut trailers = http::HeaderMap::new();
    trailers.insert(Status::GRPC_STATUS, (Code::Ok as i32).into());
    let body = Full::new(Bytes::from(framed)).with_trailers(async move { Some(Ok(trailers)) });
    let mut response = http::Response::new(Body::new(body));
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, tonic::metadata::GRPC_CONTENT_TYPE);
    response
}
