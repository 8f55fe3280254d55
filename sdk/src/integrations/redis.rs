//! Redis client spans: [`TracedConnection`] wraps any async Redis connection
//! (`MultiplexedConnection`, `ConnectionManager`, ...) and records one client span per
//! command (named after the command, e.g. `GET`) or per pipeline (`PIPELINE`), with
//! `db.system.name=redis`, `db.operation.name`, `db.namespace` (the database index),
//! `server.address` and `server.port`. Redis has no headers, so no context is injected;
//! the span is the caller's child.

use redis::aio::ConnectionLike;
use redis::{Cmd, RedisFuture, Value};

use super::semconv::*;
use crate::context::FutureExt;
use crate::span::{Span, SpanKind};
use crate::tracer::Tracer;

/// An async Redis connection that traces every command. Use it wherever the inner
/// connection is used (`redis::AsyncCommands` works on it).
#[derive(Clone)]
pub struct TracedConnection<C> {
    inner: C,
    tracer: Tracer,
    address: String,
    port: u16,
}

impl<C> std::fmt::Debug for TracedConnection<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedConnection")
            .field("address", &self.address)
            .field("port", &self.port)
            .finish()
    }
}

impl<C: ConnectionLike> TracedConnection<C> {
    /// Wraps `inner`, naming the server `address:port` in spans (e.g. the shard's host
    /// name, which is what hopscope shows as the peer node).
    pub fn new(inner: C, tracer: Tracer, address: impl Into<String>, port: u16) -> TracedConnection<C> {
        TracedConnection {
            inner,
            tracer,
            address: address.into(),
            port,
        }
    }

    /// The wrapped connection.
    pub fn inner(&mut self) -> &mut C {
        &mut self.inner
    }

    fn span(&self, operation: String) -> Span {
        self.tracer
            .span(operation.clone())
            .kind(SpanKind::Client)
            .attribute(DB_SYSTEM_NAME, "redis")
            .attribute(DB_OPERATION_NAME, operation)
            .attribute(DB_NAMESPACE, self.inner.get_db().to_string())
            .attribute(SERVER_ADDRESS, self.address.clone())
            .attribute(SERVER_PORT, self.port)
            .start()
    }
}

fn command_name(cmd: &Cmd) -> String {
    match cmd.args_iter().next() {
        Some(redis::Arg::Simple(name)) => String::from_utf8_lossy(name).to_ascii_uppercase(),
        _ => "UNKNOWN".to_owned(),
    }
}

impl<C: ConnectionLike + Send> ConnectionLike for TracedConnection<C> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let mut span = self.span(command_name(cmd));
        Box::pin(async move {
            let result = self
                .inner
                .req_packed_command(cmd)
                .with_context(span.context().clone())
                .await;
            if let Err(e) = &result {
                span.record_error(e);
            }
            span.end();
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let mut span = self.span("PIPELINE".to_owned());
        span.set_attribute("db.operation.batch.size", count as i64);
        Box::pin(async move {
            let result = self
                .inner
                .req_packed_commands(pipeline, offset, count)
                .with_context(span.context().clone())
                .await;
            if let Err(e) = &result {
                span.record_error(e);
            }
            span.end();
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}
