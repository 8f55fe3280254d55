//! OTLP/gRPC receiver: `TraceService/Export` served like tonic's generated
//! `TraceServiceServer` (gzip accepted, decoding limit `max_request_bytes`), with a codec
//! that also keeps the message bytes so the ingest path can log them unmapped.
//!
//! tonic enforces the limit itself, and bounds memory while doing so: a frame whose
//! declared length is over the limit is refused before its body is buffered, and gzip
//! inflation writes into a buffer capped at the limit. But tonic reports these and other
//! decoding failures with codes OTLP clients misread, so [`DecodeStatusFix`] rewrites
//! them on the way out:
//! - frame over the limit: tonic `OUT_OF_RANGE` → `RESOURCE_EXHAUSTED`
//!   (inflating past the limit is already `RESOURCE_EXHAUSTED` in tonic);
//! - malformed protobuf, corrupt gzip, truncated frame: tonic `INTERNAL` →
//!   `INVALID_ARGUMENT`, with a message naming the problem.
//!
//! Known limit: tonic inflates the message, and the codec checks it
//! ([`Ingest::receive_protobuf`]: an allocation-free scan when the body can be logged as
//! it is, else a prost decode), on the reactor thread before the handler runs; only the
//! mapping of large requests moves to the blocking pool.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::body::Body;
use tonic::codec::{BufferSettings, Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{BoxFuture, Service};
use tonic::server::NamedService;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Status};

use crate::config::DEFAULT_MAX_REQUEST_BYTES;
use crate::ingest::{Ingest, Received};

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
        let service = DecodeStatusFix {
            inner: self.trace_service(),
            ingest: Arc::clone(&self.ingest),
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

    fn trace_service(&self) -> TraceService {
        TraceService {
            ingest: Arc::clone(&self.ingest),
            max_request_bytes: self.max_request_bytes,
        }
    }
}

/// HTTP/2 stream window the receiver grants (the connection's is four of these).
const STREAM_WINDOW: u32 = 1 << 20;
/// Largest HTTP/2 frame the receiver accepts.
const MAX_FRAME: u32 = 256 << 10;

/// Initial capacity of the buffer a request's message is gathered in: a first frame of
/// up to [`MAX_FRAME`] plus the ~270 KiB of a 500-span export (tonic reserves the
/// message length on top of what it holds), so such requests need no reallocation.
const RECEIVE_BUFFER: usize = 1 << 20;

/// The full gRPC method path of `TraceService/Export`.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// `opentelemetry.proto.collector.trace.v1.TraceService`, as tonic's generated server
/// would serve it, except that the codec keeps the (uncompressed) message bytes next to
/// the decoded request, so that [`Ingest::export_body`] can log them as they are.
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

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path() != EXPORT_PATH {
            return Box::pin(async {
                let mut response = http::Response::new(Body::default());
                let headers = response.headers_mut();
                headers.insert(Status::GRPC_STATUS, (Code::Unimplemented as i32).into());
                headers.insert(http::header::CONTENT_TYPE, tonic::metadata::GRPC_CONTENT_TYPE);
                Ok(response)
            });
        }
        let method = ExportMethod(Arc::clone(&self.ingest));
        let max = self.max_request_bytes;
        Box::pin(async move {
            let codec = BodyKeepingCodec {
                ingest: Arc::clone(&method.0),
            };
            let mut grpc = tonic::server::Grpc::new(codec)
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(max);
            Ok(grpc.unary(method, request).await)
        })
    }
}

struct ExportMethod(Arc<Ingest>);

impl tonic::server::UnaryService<Received> for ExportMethod {
    type Response = ExportTraceServiceResponse;
    type Future = BoxFuture<tonic::Response<Self::Response>, Status>;

    fn call(&mut self, request: tonic::Request<Received>) -> Self::Future {
        let ingest = Arc::clone(&self.0);
        Box::pin(async move {
            let response = ingest.export_received(request.into_inner()).await?;
            Ok(tonic::Response::new(response))
        })
    }
}

/// Prost for the response; for the request, [`Ingest::receive_protobuf`] on the message
/// bytes (tonic has already inflated and length-checked them), which keeps the bytes.
#[derive(Clone)]
struct BodyKeepingCodec {
    ingest: Arc<Ingest>,
}

impl Codec for BodyKeepingCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = Received;
    type Encoder = BodyKeepingCodec;
    type Decoder = BodyKeepingCodec;

    fn encoder(&mut self) -> Self::Encoder {
        self.clone()
    }

    fn decoder(&mut self) -> Self::Decoder {
        self.clone()
    }
}

impl Encoder for BodyKeepingCodec {
    type Item = ExportTraceServiceResponse;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|err| Status::internal(format!("encoding the response: {err}")))
    }
}

impl Decoder for BodyKeepingCodec {
    type Item = Received;
    type Error = Status;

    /// tonic gathers each message in a buffer of this initial capacity: it appends the
    /// first DATA frame, then reserves the message's length on top of it. With tonic's
    /// 8 KiB default, a ~270 KiB export grew by reallocation twice, copying its first
    /// frame into fresh pages each time. The capacity is address space until written.
    fn buffer_settings(&self) -> BufferSettings {
        // The yield threshold is tonic's default; it only batches streamed responses.
        BufferSettings::new(RECEIVE_BUFFER, 32 << 10)
    }

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Received>, Status> {
        // Copied out of tonic's buffer, which is freed when the call ends, into one that
        // is reused once the log's tail and the store writer are done with it.
        let mut buffer = self.ingest.body_pool().take(src.remaining());
        buffer.put(&mut *src);
        let body = self.ingest.body_pool().share(buffer);
        // Same message text as tonic's prost codec, which `fix_decode_status` relies on.
        let received = self
            .ingest
            .receive_protobuf(body)
            .map_err(|err| Status::internal(err.to_string()))?;
        Ok(Some(received))
    }
}

/// Rewrites tonic's decoding-failure statuses into the codes OTLP specifies (see the
/// module doc). Only statuses with tonic's own message prefixes are touched, so errors
/// from [`Ingest`] pass through unchanged.
#[derive(Clone)]
struct DecodeStatusFix<S> {
    inner: S,
    ingest: Arc<Ingest>,
}

impl<S: NamedService> NamedService for DecodeStatusFix<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for DecodeStatusFix<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // Admitted before tonic reads the body; the permit lives until the answer.
        let permit = match self.ingest.admit() {
            Ok(permit) => permit,
            Err(err) => {
                let response = tonic::Status::from(err).into_http();
                return Box::pin(std::future::ready(Ok(response)));
            }
        };
        let future = self.inner.call(request);
        let ingest = Arc::clone(&self.ingest);
        Box::pin(async move {
            let mut response = future.await?;
            drop(permit);
            // A failure before the handler ran is a trailers-only response: the status is in
            // the headers. Successful responses carry it in trailers and are left alone.
            let fixed = Status::from_header_map(response.headers()).and_then(|s| fix_decode_status(&s));
            if let Some(fixed) = fixed {
                ingest.record_invalid_request();
                tracing::warn!(code = ?fixed.code(), message = fixed.message(), "otlp grpc request refused");
                if let Err(err) = fixed.add_header(response.headers_mut()) {
                    tracing::error!(%err, "could not rewrite grpc status");
                }
            }
            Ok(response)
        })
    }
}

/// The OTLP status for one of tonic's decoding failures; `None` for any other status.
fn fix_decode_status(status: &Status) -> Option<Status> {
    let message = status.message();
    match status.code() {
        Code::OutOfRange if message.starts_with("Error, decoded message length too large") => {
            Some(Status::resource_exhausted(format!("request too large: {message}")))
        }
        Code::ResourceExhausted if message.starts_with("Error decompressing: size limit") => Some(
            Status::resource_exhausted(format!("decompressed request too large: {message}")),
        ),
        Code::Internal if message.starts_with("failed to decode Protobuf message") => {
            Some(Status::invalid_argument(format!("invalid OTLP protobuf: {message}")))
        }
        Code::Internal if message.starts_with("Error decompressing") => {
            Some(Status::invalid_argument(format!("invalid gzip message: {message}")))
        }
        Code::Internal if message.starts_with("Unexpected EOF decoding stream") => {
            Some(Status::invalid_argument(format!("truncated grpc message: {message}")))
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tonic_decoding_failures_get_otlp_codes() {
        let cases = [
            (
                Code::OutOfRange,
                "Error, decoded message length too large: found 9 bytes, the limit is: 4 bytes",
                Code::ResourceExhausted,
            ),
            (
                Code::ResourceExhausted,
                "Error decompressing: size limit, of 4 bytes, exceeded while decompressing message",
                Code::ResourceExhausted,
            ),
            (
                Code::Internal,
                "failed to decode Protobuf message: buffer underflow",
                Code::InvalidArgument,
            ),
            (
                Code::Internal,
                "Error decompressing: invalid gzip header, while sending request",
                Code::InvalidArgument,
            ),
            (Code::Internal, "Unexpected EOF decoding stream.", Code::InvalidArgument),
        ];
        for (code, message, want) in cases {
            let fixed = fix_decode_status(&Status::new(code, message)).unwrap();
            assert_eq!(fixed.code(), want, "{message}");
            assert!(fixed.message().contains(message));
        }
        assert!(fix_decode_status(&Status::internal("storage failed to write the spans")).is_none());
        assert!(fix_decode_status(&Status::unavailable("storage is temporarily unavailable")).is_none());
    }
}
