//! gRPC hops (feature `tonic`): tower layers for tonic servers
//! (`Server::builder().layer(GrpcServerLayer::new(tracer))`) and clients
//! (`ServiceBuilder::new().layer(GrpcClientLayer::new(tracer)).service(channel)`).
//!
//! Spans are named `{rpc.service}/{rpc.method}` (e.g. `shop.Inventory/Reserve`) with
//! `rpc.system = grpc`, `rpc.service`, `rpc.method` and `rpc.grpc.status_code`; client
//! spans add `server.address` and `server.port` when the request URI has them (or
//! [`GrpcClientLayer::with_server`] names them). The server layer extracts the caller's
//! context from the request metadata with the tracer's propagator (W3C, B3 or both) and
//! makes it current while the handler runs; the client layer injects the client span's
//! context into the metadata.
//!
//! The status code is read where gRPC puts it: the response headers of a trailers-only
//! response, else the trailers at the end of the body, so a span lasts until the response
//! body has been sent or received. Status error follows the OpenTelemetry conventions:
//! any non-OK code on the client; on the server only UNKNOWN, DEADLINE_EXCEEDED,
//! UNIMPLEMENTED, INTERNAL, UNAVAILABLE and DATA_LOSS (the others are the caller's fault).

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tower::{Layer, Service};

use crate::integrations::semconv::*;
use crate::span::{Span, SpanKind, Status};
use crate::tracer::Tracer;

/// `rpc.system`.
pub const RPC_SYSTEM: &str = "rpc.system";
/// `rpc.service` (fully qualified, e.g. `shop.Inventory`).
pub const RPC_SERVICE: &str = "rpc.service";
/// `rpc.method`.
pub const RPC_METHOD: &str = "rpc.method";
/// `rpc.grpc.status_code` (the numeric gRPC status).
pub const RPC_GRPC_STATUS_CODE: &str = "rpc.grpc.status_code";

/// Which end of the call a span is; decides which status codes are errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Server,
    Client,
}

/// Splits `/pkg.Service/Method` into service and method.
fn service_and_method(path: &str) -> (&str, &str) {
    let path = path.strip_prefix('/').unwrap_or(path);
    path.rsplit_once('/').unwrap_or((path, ""))
}

/// The span name and the `rpc.*` attributes of a call to `path`.
fn rpc_span<'t>(tracer: &'t Tracer, path: &str, kind: SpanKind) -> crate::tracer::SpanBuilder<'t> {
    let (service, method) = service_and_method(path);
    let name = if method.is_empty() {
        service.to_owned()
    } else {
        format!("{service}/{method}")
    };
    tracer
        .span(name)
        .kind(kind)
        .attribute(RPC_SYSTEM, "grpc")
        .attribute(RPC_SERVICE, service.to_owned())
        .attribute(RPC_METHOD, method.to_owned())
}

/// The `grpc-status` in a header or trailer map.
fn grpc_status(map: &HeaderMap) -> Option<i32> {
    map.get("grpc-status")?.to_str().ok()?.trim().parse().ok()
}

/// The status code's name, for `error.type` and the status message.
fn code_name(code: i32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("UNKNOWN")
}

/// `grpc-message` is percent-encoded (gRPC over HTTP/2); malformed escapes stay as they
/// are.
fn percent_decode(raw: &[u8]) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match (
            raw[i],
            raw.get(i + 1).copied().and_then(hex),
            raw.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Records the call's outcome on `span` and ends it.
fn finish(mut span: Span, side: Side, code: Option<i32>, message: Option<&HeaderMap>) {
    // A response without grpc-status is malformed: UNKNOWN, as gRPC clients report it.
    let code = code.unwrap_or(2);
    span.set_attribute(RPC_GRPC_STATUS_CODE, code);
    let error = match side {
        Side::Client => code != 0,
        Side::Server => matches!(code, 2 | 4 | 12 | 13 | 14 | 15),
    };
    if error {
        let detail = message
            .and_then(|m| m.get("grpc-message"))
            .map(|v| percent_decode(v.as_bytes()))
            .filter(|m| !m.is_empty());
        span.set_attribute(ERROR_TYPE, code_name(code));
        span.set_status(Status::error(match detail {
            Some(d) => Cow::Owned(format!("{}: {d}", code_name(code))),
            None => Cow::Borrowed(code_name(code)),
        }));
    }
    span.end();
}

/// Wraps tonic server services in [`GrpcServerService`].
#[derive(Clone, Debug)]
pub struct GrpcServerLayer {
    tracer: Tracer,
}

impl GrpcServerLayer {
    /// Server spans from `tracer`; context extraction with its propagator.
    pub fn new(tracer: Tracer) -> GrpcServerLayer {
        GrpcServerLayer { tracer }
    }
}

impl<S> Layer<S> for GrpcServerLayer {
    type Service = GrpcServerService<S>;

    fn layer(&self, inner: S) -> GrpcServerService<S> {
        GrpcServerService {
            inner,
            tracer: self.tracer.clone(),
        }
    }
}

/// Runs each call inside a server span whose parent is the caller's context from the
/// request metadata.
#[derive(Clone, Debug)]
pub struct GrpcServerService<S> {
    inner: S,
    tracer: Tracer,
}

impl<S, B, R> Service<Request<B>> for GrpcServerService<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Error: std::fmt::Display,
{
    type Response = Response<GrpcBody<R>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let parent = self.tracer.extract(req.headers());
        let span = rpc_span(&self.tracer, req.uri().path(), SpanKind::Server)
            .parent(parent.as_ref())
            .start();
        let cx = span.context().clone();
        let inner = {
            let _guard = crate::context::attach(cx.clone());
            self.inner.call(req)
        };
        ResponseFuture {
            inner,
            span: Some(span),
            side: Side::Server,
        }
    }
}

/// Wraps tonic client channels in [`GrpcClientService`].
#[derive(Clone, Debug)]
pub struct GrpcClientLayer {
    tracer: Tracer,
    server: Option<(Cow<'static, str>, u16)>,
}

impl GrpcClientLayer {
    /// Client spans from `tracer` (children of the current context); injection with its
    /// propagator.
    pub fn new(tracer: Tracer) -> GrpcClientLayer {
        GrpcClientLayer { tracer, server: None }
    }

    /// The `server.address` and `server.port` to record when the request URI has no
    /// authority (tonic's generated clients send only the path unless given an origin).
    pub fn with_server(mut self, address: impl Into<Cow<'static, str>>, port: u16) -> GrpcClientLayer {
        self.server = Some((address.into(), port));
        self
    }
}

impl<S> Layer<S> for GrpcClientLayer {
    type Service = GrpcClientService<S>;

    fn layer(&self, inner: S) -> GrpcClientService<S> {
        GrpcClientService {
            inner,
            layer: self.clone(),
        }
    }
}

/// Makes a client span per call and injects its context into the request metadata.
#[derive(Clone, Debug)]
pub struct GrpcClientService<S> {
    inner: S,
    layer: GrpcClientLayer,
}

impl<S, B, R> Service<Request<B>> for GrpcClientService<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Error: std::fmt::Display,
{
    type Response = Response<GrpcBody<R>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let tracer = &self.layer.tracer;
        let mut builder = rpc_span(tracer, req.uri().path(), SpanKind::Client);
        let uri = req.uri();
        match (uri.host(), &self.layer.server) {
            (Some(host), _) => {
                builder = builder.attribute(SERVER_ADDRESS, host.to_owned());
                let port = uri.port_u16().or(match uri.scheme_str() {
                    Some("https") => Some(443),
                    Some("http") => Some(80),
                    _ => None,
                });
                if let Some(port) = port {
                    builder = builder.attribute(SERVER_PORT, port);
                }
            }
            (None, Some((address, port))) => {
                builder = builder
                    .attribute(SERVER_ADDRESS, address.clone())
                    .attribute(SERVER_PORT, *port);
            }
            (None, None) => {}
        }
        let span = builder.start();
        tracer.inject(span.context(), req.headers_mut());
        ResponseFuture {
            inner: self.inner.call(req),
            span: Some(span),
            side: Side::Client,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`GrpcServerService`] and [`GrpcClientService`]: hands the
    /// span to the response body, or ends it on a trailers-only response or an error.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        span: Option<Span>,
        side: Side,
    }
}

impl<F, R, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
    E: std::fmt::Display,
{
    type Output = Result<Response<GrpcBody<R>>, E>;

    fn poll(self: Pin<&mut Self>, task: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _guard = this.span.as_ref().map(|s| crate::context::attach(s.context().clone()));
            match this.inner.poll(task) {
                Poll::Ready(result) => result,
                Poll::Pending => return Poll::Pending,
            }
        };
        let side = *this.side;
        let mut span = this.span.take();
        Poll::Ready(match result {
            Ok(response) => {
                // A trailers-only response (an immediate error, usually) has its status in
                // the headers; otherwise it comes in the trailers.
                if let Some(code) = grpc_status(response.headers())
                    && let Some(span) = span.take()
                {
                    finish(span, side, Some(code), Some(response.headers()));
                }
                Ok(response.map(|inner| GrpcBody { inner, span, side }))
            }
            Err(e) => {
                if let Some(mut span) = span {
                    span.set_attribute(ERROR_TYPE, "transport");
                    span.record_exception("GrpcTransportError", e.to_string());
                    span.end();
                }
                Err(e)
            }
        })
    }
}

pin_project_lite::pin_project! {
    /// A gRPC response body that ends the call's span when the trailers (with
    /// `grpc-status`) pass, or when the body ends or is dropped without them.
    pub struct GrpcBody<B> {
        #[pin]
        inner: B,
        span: Option<Span>,
        side: Side,
    }
}

impl<B: Body> Body for GrpcBody<B>
where
    B::Error: std::fmt::Display,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let poll = this.inner.poll_frame(cx);
        match &poll {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(span) = this.span.take()
                {
                    finish(span, *this.side, grpc_status(trailers), Some(trailers));
                }
            }
            Poll::Ready(Some(Err(e))) => {
                if let Some(mut span) = this.span.take() {
                    span.set_attribute(ERROR_TYPE, "body");
                    span.record_exception("GrpcBodyError", e.to_string());
                    span.end();
                }
            }
            Poll::Ready(None) => {
                if let Some(span) = this.span.take() {
                    finish(span, *this.side, None, None);
                }
            }
            Poll::Pending => {}
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(
            service_and_method("/shop.v1.Inventory/Reserve"),
            ("shop.v1.Inventory", "Reserve")
        );
        assert_eq!(service_and_method("/bare"), ("bare", ""));
        assert_eq!(code_name(14), "UNAVAILABLE");
        assert_eq!(code_name(99), "UNKNOWN");
        assert_eq!(percent_decode(b"store%20down %2"), "store down %2");
        assert_eq!(percent_decode("caf%C3%A9".as_bytes()), "café");
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", http::HeaderValue::from_static("5"));
        assert_eq!(grpc_status(&headers), Some(5));
    }
}
