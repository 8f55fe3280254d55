//! Stages 3 and 4 of the collector: accepted requests go to the write-ahead log, and a
//! feeder moves them from the log into the store.
//!
//! ```text
//! Ingest::ingest ─▶ WalWriter (RecordSink) ─▶ Wal::append ─▶ OK to the client
//!                                               │
//!                          StoreFeeder ◀────────┘ reads in order, writes the store,
//!                               │                  commits the log position after success
//!                               ▼
//!                          SpanWriter (embedded store or ClickHouse)
//! ```
//!
//! A span is acknowledged once it is in the log; it reaches readers when the feeder has
//! written it (normally within milliseconds). If the store is down the feeder retries with
//! backoff and the log absorbs the backlog; when the backlog reaches its limit the
//! [`WalWriter`] answers [`hopscope_storage::StorageError::Full`], which the receivers
//! turn into back-pressure. After a crash the feeder starts again from the last committed
//! position (ClickHouse) or from the start of the retained log (the embedded store, which
//! lives in memory and rebuilds itself); the stores ignore spans they already hold, so a
//! replay never duplicates.

mod feeder;
mod wal_writer;

pub use feeder::{FeederConfig, FeederStats, LatencyHistogram, StoreFeeder};
pub use wal_writer::WalWriter;
