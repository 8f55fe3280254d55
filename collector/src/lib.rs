//! The hopscope collector: OTLP/gRPC and OTLP/HTTP receivers in front of one shared ingest
//! path.
//!
//! ```text
//! OtlpGrpcReceiver ─┐
//!                   ├─ ExportTraceServiceRequest → Ingest::export → SpanWriter
//! OtlpHttpReceiver ─┘   (validate + map, write valid spans, OTLP partial success)
//! ```
//!
//! In the binary the ingest path writes into the write-ahead log ([`wal`]) through
//! [`durable::WalWriter`], and [`durable::StoreFeeder`] moves the log into the store.
//!
//! Both receivers cap every request at [`CollectorConfig::max_request_bytes`], before and
//! after decompression, and keep serving after any bad request.

pub mod body_pool;
pub mod cloud;
pub mod config;
pub mod decode;
pub mod durable;
pub mod error;
pub mod ingest;
mod json;
pub mod receivers;
pub mod wal;

pub use cloud::{CloudConfig, CloudRules};
pub use config::CollectorConfig;
pub use error::{BodyFormat, IngestError, RpcStatus};
pub use ingest::{Ingest, IngestStats, RecordSink, RequestBody};
pub use receivers::{OtlpGrpcReceiver, OtlpHttpReceiver};
