//! HTTP hops: a tower layer that makes server spans for axum (or any `http` service), and
//! a reqwest wrapper that makes client spans and injects the context.
//!
//! Server spans are named `{method} {route}` with `http.request.method`, `http.route`,
//! `url.path`, `url.scheme` and `http.response.status_code`; 5xx responses set the status
//! to error. The route comes from axum's `MatchedPath`, which exists only for layers added
//! with `Router::route_layer` (with `Router::layer`, spans are named `{method}` alone).
//!
//! Client spans are named `{method}` (or `{method} {template}`) with
//! `http.request.method`, `url.full`, `server.address`, `server.port` and
//! `http.response.status_code`; 4xx and 5xx set the status to error.

#[cfg(feature = "axum")]
pub use server::{HttpServerLayer, HttpServerService};

#[cfg(feature = "reqwest")]
pub use client::TracedClient;

#[cfg(feature = "axum")]
mod server {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use http::{Request, Response};
    use tower::{Layer, Service};

    use crate::integrations::semconv::*;
    use crate::span::{Span, SpanKind, Status};
    use crate::tracer::Tracer;

    /// Wraps services in [`HttpServerService`].
    #[derive(Clone, Debug)]
    pub struct HttpServerLayer {
        tracer: Tracer,
    }

    impl HttpServerLayer {
        /// A layer whose spans come from `tracer` and whose context extraction uses the
        /// tracer's propagator.
        pub fn new(tracer: Tracer) -> HttpServerLayer {
            HttpServerLayer { tracer }
        }
    }

    impl<S> Layer<S> for HttpServerLayer {
        type Service = HttpServerService<S>;

        fn layer(&self, inner: S) -> HttpServerService<S> {
            HttpServerService {
                inner,
                tracer: self.tracer.clone(),
            }
        }
    }

    /// A service that runs each request inside a server span whose parent is the
    /// caller's context from the request headers.
    #[derive(Clone, Debug)]
    pub struct HttpServerService<S> {
        inner: S,
        tracer: Tracer,
    }

    impl<S, B, R> Service<Request<B>> for HttpServerService<S>
    where
        S: Service<Request<B>, Response = Response<R>>,
        S::Error: std::fmt::Display,
    {
        type Response = Response<R>;
        type Error = S::Error;
        type Future = ResponseFuture<S::Future>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
            self.inner.poll_ready(cx)
        }

        fn call(&mut self, req: Request<B>) -> Self::Future {
            let parent = self.tracer.extract(req.headers());
            let method = req.method().as_str().to_owned();
            let route = req
                .extensions()
                .get::<axum::extract::MatchedPath>()
                .map(|p| p.as_str().to_owned());
            let name = match &route {
                Some(r) => format!("{method} {r}"),
                None => method.clone(),
            };
            let mut builder = self
                .tracer
                .span(name)
                .kind(SpanKind::Server)
                .parent(parent.as_ref())
                .attribute(HTTP_REQUEST_METHOD, method)
                .attribute(URL_PATH, req.uri().path().to_owned())
                .attribute(URL_SCHEME, req.uri().scheme_str().unwrap_or("http").to_owned());
            if let Some(r) = route {
                builder = builder.attribute(HTTP_ROUTE, r);
            }
            let span = builder.start();
            let cx = span.context().clone();
            let inner = {
                let _guard = crate::context::attach(cx.clone());
                self.inner.call(req)
            };
            ResponseFuture {
                inner,
                span: Some(span),
                cx,
            }
        }
    }

    pin_project_lite::pin_project! {
        /// The response future of [`HttpServerService`].
        pub struct ResponseFuture<F> {
            #[pin]
            inner: F,
            span: Option<Span>,
            cx: crate::SpanContext,
        }
    }

    impl<F, R, E> Future for ResponseFuture<F>
    where
        F: Future<Output = Result<Response<R>, E>>,
        E: std::fmt::Display,
    {
        type Output = F::Output;

        fn poll(self: Pin<&mut Self>, task: &mut Context<'_>) -> Poll<Self::Output> {
            let this = self.project();
            let poll = {
                let _guard = crate::context::attach(this.cx.clone());
                this.inner.poll(task)
            };
            if let Poll::Ready(result) = &poll
                && let Some(mut span) = this.span.take()
            {
                match result {
                    Ok(response) => {
                        let code = response.status().as_u16();
                        span.set_attribute(HTTP_RESPONSE_STATUS_CODE, code);
                        if code >= 500 {
                            span.set_attribute(ERROR_TYPE, code.to_string());
                            span.set_status(Status::error(format!("HTTP {code}")));
                        }
                    }
                    Err(e) => span.record_exception("HttpServiceError", e.to_string()),
                }
                span.end();
            }
            poll
        }
    }
}

#[cfg(feature = "reqwest")]
mod client {
    use std::borrow::Cow;

    use crate::integrations::semconv::*;
    use crate::span::{SpanKind, Status};
    use crate::tracer::Tracer;

    /// A reqwest client that makes a client span per request (child of the current
    /// context) and injects that span's context into the request headers.
    #[derive(Clone, Debug)]
    pub struct TracedClient {
        client: reqwest::Client,
        tracer: Tracer,
    }

    impl TracedClient {
        /// Wraps `client`.
        pub fn new(client: reqwest::Client, tracer: Tracer) -> TracedClient {
            TracedClient { client, tracer }
        }

        /// The wrapped client, to build requests.
        pub fn client(&self) -> &reqwest::Client {
            &self.client
        }

        /// Sends a request built with [`TracedClient::client`]; the span is named
        /// `{method}`.
        pub async fn execute(&self, request: reqwest::Request) -> reqwest::Result<reqwest::Response> {
            self.execute_named(request, None).await
        }

        /// Like [`TracedClient::execute`], naming the span `{method} {template}` (e.g.
        /// `POST /charge/{id}`), which groups calls better than raw URLs.
        pub async fn execute_named(
            &self,
            mut request: reqwest::Request,
            template: Option<&str>,
        ) -> reqwest::Result<reqwest::Response> {
            let method = request.method().as_str().to_owned();
            let name: Cow<'static, str> = match template {
                Some(t) => format!("{method} {t}").into(),
                None => method.clone().into(),
            };
            let url = request.url();
            let mut builder = self
                .tracer
                .span(name)
                .kind(SpanKind::Client)
                .attribute(HTTP_REQUEST_METHOD, method)
                .attribute(URL_FULL, url.as_str().to_owned());
            if let Some(host) = url.host_str() {
                builder = builder.attribute(SERVER_ADDRESS, host.to_owned());
            }
            if let Some(port) = url.port_or_known_default() {
                builder = builder.attribute(SERVER_PORT, port);
            }
            let mut span = builder.start();
            self.tracer.inject(span.context(), request.headers_mut());
            let result = self.client.execute(request).await;
            match &result {
                Ok(response) => {
                    let code = response.status().as_u16();
                    span.set_attribute(HTTP_RESPONSE_STATUS_CODE, code);
                    if code >= 400 {
                        span.set_attribute(ERROR_TYPE, code.to_string());
                        span.set_status(Status::error(format!("HTTP {code}")));
                    }
                }
                Err(e) => {
                    let kind = if e.is_timeout() {
                        "timeout"
                    } else if e.is_connect() {
                        "connect"
                    } else {
                        "request"
                    };
                    span.set_attribute(ERROR_TYPE, kind);
                    if e.is_timeout() {
                        // reqwest's message ("error sending request for url ...") does not
                        // say why; the root-cause line a reader sees should.
                        span.record_exception(std::any::type_name::<reqwest::Error>(), format!("timeout: {e}"));
                    } else {
                        span.record_error(e);
                    }
                }
            }
            span.end();
            result
        }
    }
}
