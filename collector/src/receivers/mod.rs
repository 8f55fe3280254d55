//! The OTLP receivers. Both decode into an `ExportTraceServiceRequest` and hand it to the
//! shared [`crate::Ingest`]; each is built with a builder and runs with
//! `serve(listener, shutdown)` until `shutdown` completes.

pub mod grpc;
pub mod http;

pub use self::grpc::{OtlpGrpcReceiver, OtlpGrpcReceiverBuilder};
pub use self::http::{OtlpHttpReceiver, OtlpHttpReceiverBuilder, TRACES_PATH};
