//! Stage 1 of the collector: the OTLP receivers. Each reads a request's body (bounded by
//! `max_request_bytes`, into a reusable buffer) and hands it with its encoding to the
//! shared [`crate::Ingest::ingest`]; neither decodes. Each is built with a builder and
//! runs with `serve(listener, shutdown)` until `shutdown` completes.

pub mod grpc;
pub mod http;

pub use self::grpc::{OtlpGrpcReceiver, OtlpGrpcReceiverBuilder};
pub use self::http::{OtlpHttpReceiver, OtlpHttpReceiverBuilder, TRACES_PATH};
