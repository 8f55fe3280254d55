//! The ingest path's counters (`/metrics`).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Counters since start-up. Every field only grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IngestStats {
    /// Export requests whose body decoded (or passed the in-place check).
    pub requests: u64,
    /// Requests refused before their spans were looked at (bad body, too large, wrong
    /// type, malformed protobuf or JSON).
    pub invalid_requests: u64,
    /// Spans in decoded requests, valid or not.
    pub spans_received: u64,
    /// Valid spans the log (or sink) acknowledged.
    pub spans_accepted: u64,
    /// Invalid spans reported back as OTLP partial success.
    pub spans_rejected: u64,
    /// Valid spans whose append failed (the client was told to retry or that it failed).
    pub spans_failed: u64,
    /// Failed appends.
    pub write_errors: u64,
    /// Requests refused because [`crate::Ingest::admit`] found the in-flight limit reached.
    pub requests_throttled: u64,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub requests: AtomicU64,
    pub invalid_requests: AtomicU64,
    pub spans_received: AtomicU64,
    pub spans_accepted: AtomicU64,
    pub spans_rejected: AtomicU64,
    pub spans_failed: AtomicU64,
    pub write_errors: AtomicU64,
    pub requests_throttled: AtomicU64,
}

pub(super) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub fn snapshot(&self) -> IngestStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        IngestStats {
            requests: get(&self.requests),
            invalid_requests: get(&self.invalid_requests),
            spans_received: get(&self.spans_received),
            spans_accepted: get(&self.spans_accepted),
            spans_rejected: get(&self.spans_rejected),
            spans_failed: get(&self.spans_failed),
            write_errors: get(&self.write_errors),
            requests_throttled: get(&self.requests_throttled),
        }
    }
}
