//! The hopscope collector: OTLP/gRPC and OTLP/HTTP receivers, one ingest path, a
//! write-ahead log, and the feeder that moves the log into a store.
//!
//! # A request's way from the receiver to the store
//!
//! ```text
//!  OtlpGrpcReceiver ─┐ body + encoding  ┌────────────── Ingest::ingest ───────────────┐
//!  OtlpHttpReceiver ─┴─────────────────▶│ check in place / decode, enrich, drop invalid│
//!                                       └──────────────┬───────────────────────────────┘
//!                                         one record: encoded OTLP of the valid spans
//!                                                      ▼
//!                          WalWriter (RecordSink) ─▶ Wal::append ─▶ ack to the client
//!                                                      │
//!                  StoreFeeder: read a batch, decode, write, retry, commit the log
//!                                                      ▼
//!                            SpanWriter: EmbeddedStore or ClickHouseStore
//! ```
//!
//! Read one module doc per stage, in this order:
//! 1. **Receive** — [`receivers`]: [`receivers::grpc`] reads the gRPC unary framing,
//!    [`receivers::http`] the HTTP body; both cap the body at `max_request_bytes`, gather
//!    it into a reusable buffer ([`body_pool`]) after admission ([`Ingest::admit`]), and
//!    hand it with its encoding to the ingest path. Neither decodes.
//! 2. **Ingest** — [`ingest`]: the one entry point. The body becomes one record, an
//!    encoded OTLP `ExportTraceServiceRequest` holding exactly the request's valid spans
//!    (a valid protobuf body is the record as it is; see `ingest::prepare`, which uses
//!    [`decode`] and [`cloud`]); invalid spans are named in the
//!    OTLP partial success. Errors become gRPC or HTTP answers in [`error`].
//! 3. **Log** — [`durable::WalWriter`] appends the record to the write-ahead log
//!    ([`wal`]: format, guarantees, recovery); only then is the client answered. A full
//!    log is back-pressure, a failed append an error to the client, never an ack.
//! 4. **Feed** — [`durable::StoreFeeder`] reads the log in order, batches records, decodes
//!    them into spans, writes each batch once through [`hopscope_storage::SpanWriter`],
//!    retries until the store takes it, and commits the log position. It is the only
//!    place that batches or retries; the stores make one idempotent write per batch
//!    (the trait's doc says so).
//! 5. **Store** — `hopscope_storage`: the embedded store or ClickHouse.
//!
//! [`config`] holds the collector's settings; the binary (`src/all_in_one.rs`,
//! `src/pipeline.rs`) wires the stages together.

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
