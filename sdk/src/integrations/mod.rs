//! Hop integrations: spans with OpenTelemetry semantic-convention attributes around HTTP,
//! message-queue, cache and database calls, with context carried in headers where the
//! protocol has them. Each sits behind a cargo feature.

pub mod semconv;
pub mod sql;

#[cfg(feature = "lapin")]
pub mod amqp;
#[cfg(feature = "tonic")]
pub mod grpc;
#[cfg(any(feature = "axum", feature = "reqwest"))]
pub mod http;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "tracing")]
pub mod tracing_layer;
