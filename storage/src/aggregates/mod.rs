//! The aggregates contract: the window aggregates a store computes ([`AggregateReader`])
//! for the analysis built on them (crate `hopscope-analysis`, the analysis API, the UI),
//! with query and result types whose meaning is fixed here so that every store gives the
//! same answers (the shared fixtures in `hopscope_schemas::fixtures` pin them).
//!
//! Words: *aggregates* are what a store computes over a window (this module);
//! *analysis* is what hopscope derives from them and from whole traces (critical path,
//! culprit, blame), in `hopscope-analysis`.
//!
//! # Shared definitions
//!
//! - **Window**: a span is in [`Window`] when its start time is in `[start_ns, end_ns]`
//!   (both inclusive, like [`crate::TraceQuery`]), and, when `cloud_kind` is set, when
//!   [`SpanRecord::cloud`] of the span that is aggregated has that kind (each method says
//!   which span that is).
//! - **Percentiles** are exact, nearest-rank over the durations in nanoseconds: the value
//!   at 1-based rank `max(1, ceil(p * n))` of the ascending sort, computed with `f64`
//!   (see [`percentile`]). In ClickHouse:
//!   `arrayElement(arraySort(groupArray(duration_ns)), toUInt64(greatest(1, ceil(p * count()))))`
//!   (works on 18.16 too; `quantileExact*` use other rank rules and must not be used).
//! - **max_qps**: the largest number of spans starting in one whole unix second
//!   (`floor(start_ns / 1e9)`), within the window.
//! - **Time series**: buckets of `step_ns` from the window start:
//!   `bucket = floor((start_ns - window.start_ns) / step_ns)`, only non-empty buckets,
//!   ascending.
//! - **Errors**: spans whose status is ERROR.
//!
//! # Pushing down (ClickHouse)
//!
//! Every method aggregates in the store: a ClickHouse implementation runs one `GROUP BY`
//! query per method over the spans table filtered by `start_time` (the primary-key prefix)
//! and the cloud kind column/attribute, and returns only the aggregated rows; it must
//! never fetch raw spans for [`AggregateReader::middleware`],
//! [`AggregateReader::interfaces`], [`AggregateReader::exceptions`] or
//! [`AggregateReader::dependency_edges`]. Parent/child pairs
//! ([`AggregateReader::dependency_edges`], [`AggregateReader::mismatches`]) are a self-join
//! on `(trace_id, parent_span_id) = (trace_id, span_id)` restricted to the window (the
//! child's window extended by nothing: a parent outside the store is no edge).
//! [`AggregateReader::entry_traces`] returns ids only; the per-trace analysis of blame
//! then reads those traces with [`crate::SpanReader::trace`].

use async_trait::async_trait;
use hopscope_schemas::{CloudKind, HopKind, SpanId, SpanRecord, TraceId};
use serde::Serialize;
use std::sync::Arc;

use crate::error::Result;

/// Most time-series points one instance may have; a smaller `step_ns` is refused.
pub const MAX_SERIES_POINTS: u64 = 2_000;

/// A time window and an optional cloud-kind filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First start time included, unix ns.
    pub start_ns: u64,
    /// Last start time included, unix ns.
    pub end_ns: u64,
    /// Only spans (see each method for which) of this cloud kind, when set.
    pub cloud_kind: Option<CloudKind>,
}

impl Window {
    /// True when `span` starts in the window and passes the cloud filter.
    pub fn contains(&self, span: &SpanRecord) -> bool {
        self.contains_time(span.start_time_unix_nano) && self.cloud_ok(span)
    }

    /// True when `start_ns` is in the window.
    pub fn contains_time(&self, start_ns: u64) -> bool {
        start_ns >= self.start_ns && start_ns <= self.end_ns
    }

    /// True when there is no cloud filter or `span`'s cloud kind matches it.
    pub fn cloud_ok(&self, span: &SpanRecord) -> bool {
        self.cloud_kind.is_none_or(|kind| span.cloud().kind == kind)
    }
}

/// Which spans [`AggregateReader::entry_traces`] looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryTraceQuery {
    /// Window; the cloud filter applies to the entry span.
    pub window: Window,
    /// Entry span's service.
    pub service: String,
    /// Entry span's name.
    pub operation: String,
    /// At most this many entries.
    pub limit: usize,
}

/// One span of the entry operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryTrace {
    /// Its trace.
    pub trace_id: TraceId,
    /// The entry span.
    pub span_id: SpanId,
    /// Its start, unix ns.
    pub start_ns: u64,
    /// Its duration, ns.
    pub duration_ns: u64,
}

/// What [`AggregateReader::middleware`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MiddlewareKind {
    /// Client spans with hop kind `cache`.
    Cache,
    /// Client spans with hop kind `db`.
    Db,
    /// Producer and consumer spans with hop kind `mq`.
    Mq,
    /// Client spans with hop kind `http`.
    Http,
    /// Client spans with hop kind `rpc`.
    Rpc,
    /// VMs/hosts: server and consumer spans (the work a host serves), by `host`.
    Host,
}

impl MiddlewareKind {
    /// Parses `cache|db|mq|http|rpc|host`.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "cache" => Self::Cache,
            "db" => Self::Db,
            "mq" => Self::Mq,
            "http" => Self::Http,
            "rpc" => Self::Rpc,
            "host" => Self::Host,
            _ => return None,
        })
    }

    /// The hop kind of the spans compared, `None` for [`MiddlewareKind::Host`].
    pub fn hop_kind(self) -> Option<HopKind> {
        Some(match self {
            Self::Cache => HopKind::Cache,
            Self::Db => HopKind::Db,
            Self::Mq => HopKind::Mq,
            Self::Http => HopKind::Http,
            Self::Rpc => HopKind::Rpc,
            Self::Host => return None,
        })
    }
}

/// How [`AggregateReader::middleware`] groups spans into instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// By the peer instance (`redis-shard-2:6379`, a queue); for `host`, by host.
    #[default]
    Peer,
    /// By the host the span ran on.
    Host,
    /// By the cloud kind of the span's resource.
    CloudKind,
}

impl GroupBy {
    /// Parses `peer|host|cloud_kind`.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "peer" => Self::Peer,
            "host" => Self::Host,
            "cloud_kind" => Self::CloudKind,
            _ => return None,
        })
    }
}

/// A middleware comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiddlewareQuery {
    /// Window; the cloud filter applies to the compared span.
    pub window: Window,
    /// What to compare.
    pub kind: MiddlewareKind,
    /// How to group.
    pub group_by: GroupBy,
    /// Time-series bucket width, ns (at least `1`, at most [`MAX_SERIES_POINTS`] buckets
    /// over the window; the API checks both).
    pub step_ns: u64,
}

/// Latency and volume of a set of spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct LatencyStats {
    /// Spans.
    pub count: u64,
    /// Spans with ERROR status.
    pub errors: u64,
    /// Nearest-rank percentiles and maximum of the durations, ns.
    pub p50_ns: u64,
    /// 95th percentile, ns.
    pub p95_ns: u64,
    /// 99th percentile, ns.
    pub p99_ns: u64,
    /// 99.9th percentile, ns.
    pub p999_ns: u64,
    /// Longest, ns.
    pub max_ns: u64,
    /// Peak spans starting in one unix second.
    pub max_qps: u64,
}

impl LatencyStats {
    /// Stats of `(start_ns, duration_ns, is_error)` samples, in any order.
    pub fn from_samples(samples: &[(u64, u64, bool)]) -> Self {
        let mut durations: Vec<u64> = samples.iter().map(|s| s.1).collect();
        durations.sort_unstable();
        let mut seconds: Vec<u64> = samples.iter().map(|s| s.0 / 1_000_000_000).collect();
        seconds.sort_unstable();
        let mut max_qps = 0u64;
        let mut run = 0u64;
        for (i, second) in seconds.iter().enumerate() {
            run = if i > 0 && seconds[i - 1] == *second { run + 1 } else { 1 };
            max_qps = max_qps.max(run);
        }
        Self {
            count: samples.len() as u64,
            errors: samples.iter().filter(|s| s.2).count() as u64,
            p50_ns: percentile(&durations, 0.5),
            p95_ns: percentile(&durations, 0.95),
            p99_ns: percentile(&durations, 0.99),
            p999_ns: percentile(&durations, 0.999),
            max_ns: durations.last().copied().unwrap_or(0),
            max_qps,
        }
    }
}

/// Nearest-rank percentile of ascending `sorted` values: rank `max(1, ceil(p * n))`;
/// 0 for no values.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len();
    let rank = (p * n as f64).ceil().max(1.0) as usize;
    sorted[rank.min(n) - 1]
}

/// One time-series bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SeriesPoint {
    /// Bucket start, unix ns (`window.start_ns + bucket * step_ns`).
    pub start_ns: u64,
    /// Spans starting in the bucket.
    pub count: u64,
    /// Of which ERROR.
    pub errors: u64,
    /// Nearest-rank median, ns.
    pub p50_ns: u64,
    /// 99th percentile, ns.
    pub p99_ns: u64,
    /// Longest, ns.
    pub max_ns: u64,
}

/// One compared instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MiddlewareInstance {
    /// The system: `db.system.name`/`db.system`, `messaging.system`, `rpc.system`,
    /// `http` for HTTP; for hosts the cloud kind name. When one instance has several,
    /// the smallest.
    pub system: String,
    /// The group key: peer instance (`unknown` when a span has none), host (`unknown`
    /// when none) or cloud kind name.
    pub peer: String,
    /// Overall stats.
    pub stats: LatencyStats,
    /// Per-bucket stats.
    pub series: Vec<SeriesPoint>,
}

/// Stats of one interface: the server and consumer spans of one service and name, and
/// root spans of any kind (an entry without a remote parent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterfaceStats {
    /// Service.
    pub service: String,
    /// Span name.
    pub operation: String,
    /// Stats.
    pub stats: LatencyStats,
}

/// Exceptions of one type in one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExceptionGroup {
    /// Service.
    pub service: String,
    /// `exception.type` of the event (`unknown` when the event has none).
    pub exception_type: String,
    /// Exception events.
    pub count: u64,
    /// Time of the newest event, unix ns.
    pub last_seen_ns: u64,
    /// Traces of the newest events, newest first, distinct, at most the asked number.
    pub example_trace_ids: Vec<TraceId>,
}

/// What a dependency edge points to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EdgeTarget {
    /// Another service.
    Service {
        /// Its name.
        name: String,
    },
    /// A middleware instance.
    Middleware {
        /// Hop kind (`db`, `cache`, `mq`).
        hop_kind: HopKind,
        /// The peer instance.
        peer: String,
    },
}

/// Calls along one edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DependencyEdge {
    /// Calling service.
    pub from: String,
    /// Called service or middleware instance.
    pub to: EdgeTarget,
    /// How the calls travel: for a middleware target its hop kind; for a service target
    /// the hop kind of the calling span (the parent when it is a client or producer span,
    /// else the child's own: `http`, `rpc`, `mq`, ...), and when calls differ, the kind of
    /// most of them (ties: the kind whose name sorts last).
    pub hop_kind: HopKind,
    /// Calls.
    pub call_count: u64,
    /// Calls that failed.
    pub error_count: u64,
    /// 95th percentile call latency, ns.
    pub p95_ns: u64,
    /// 99th percentile call latency, ns.
    pub p99_ns: u64,
}

/// Why a call counts as a mismatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MismatchReason {
    /// The client span says timeout (status message, `error.type` or `exception.type`
    /// mentions "timeout", "timed out" or "deadline").
    ClientTimeout,
    /// The client span has ERROR status for another reason.
    ClientError,
}

/// A call the caller believes failed while the callee succeeded.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// Why.
    pub reason: MismatchReason,
    /// The client span.
    pub client: Arc<SpanRecord>,
    /// The server span of the same call (a child of the client span).
    pub server: Arc<SpanRecord>,
}

/// True when the span's status message, `error.type` or an exception event's
/// `exception.type` or `exception.message` mentions a timeout.
pub fn mentions_timeout(span: &SpanRecord) -> bool {
    let timeout = |text: &str| {
        let lower = text.to_ascii_lowercase();
        lower.contains("timeout") || lower.contains("timed out") || lower.contains("deadline")
    };
    timeout(&span.status_message)
        || hopscope_schemas::find_str(&span.attributes, "error.type").is_some_and(timeout)
        || span.events.iter().filter(|e| e.name == "exception").any(|e| {
            ["exception.type", "exception.message"]
                .iter()
                .any(|k| hopscope_schemas::find_str(&e.attributes, k).is_some_and(timeout))
        })
}

/// The "system" of a span: `db.system.name`/`db.system`, `messaging.system`,
/// `rpc.system`, or `http` for HTTP hops; empty when none.
pub fn span_system(span: &SpanRecord) -> String {
    hopscope_schemas::derive::system(&span.attributes, span.hop_kind).to_owned()
}

/// Aggregates over a time window, for the analysis API.
///
/// Contract: every method may be called concurrently with writes and other reads, sees
/// every batch whose `write_spans` has returned, and never blocks the async reactor for
/// long (the embedded store computes on the blocking pool). Results are complete for the
/// window: a store that cannot aggregate a window fully returns
/// [`crate::StorageError::InvalidQuery`] naming the limit rather than a partial answer.
/// Errors follow [`crate::StorageError`]; nothing here retries.
#[async_trait]
pub trait AggregateReader: Send + Sync {
    /// Spans named `operation` of `service` starting in the window (the cloud filter on
    /// that span). When there are more than `limit`, a deterministic, evenly spaced
    /// sample: sort ascending by `(start_ns, trace_id, span_id)` and keep the entries at
    /// indexes `floor(k * n / limit)` for `k` in `0..limit`. Returned in that order.
    async fn entry_traces(&self, query: &EntryTraceQuery) -> Result<Vec<EntryTrace>>;

    /// Middleware (or host) instances with stats and time series, sorted by group key
    /// (`peer`). Compared spans: see [`MiddlewareKind`]; the cloud filter applies to
    /// them.
    async fn middleware(&self, query: &MiddlewareQuery) -> Result<Vec<MiddlewareInstance>>;

    /// Interfaces (see [`InterfaceStats`]) in the window, sorted by service then
    /// operation; the cloud filter applies to the interface span.
    async fn interfaces(&self, window: &Window) -> Result<Vec<InterfaceStats>>;

    /// `exception` events of spans in the window, grouped by service and
    /// `exception.type`, sorted by count descending then service then type; up to
    /// `examples` example trace ids each. The cloud filter applies to the span.
    async fn exceptions(&self, window: &Window, examples: usize) -> Result<Vec<ExceptionGroup>>;

    /// Dependency edges of the window, sorted by `from` then `to`:
    /// - service → service: every span whose parent is stored in the same trace under
    ///   another service; the caller's view: when the parent is a client or producer
    ///   span, latency, error and hop kind are the parent's, else the child's. The span that
    ///   starts in the window and passes the cloud filter is the child.
    /// - service → middleware: client and producer spans with hop kind `db`, `cache` or
    ///   `mq` and a peer, with their own latency and error.
    async fn dependency_edges(&self, window: &Window) -> Result<Vec<DependencyEdge>>;

    /// Client spans starting in the window (cloud filter on the client) with ERROR
    /// status or a timeout mention ([`mentions_timeout`]), paired with each server
    /// child span in the same trace that does not have ERROR status. Newest client first, at
    /// most `limit`.
    async fn mismatches(&self, window: &Window, limit: usize) -> Result<Vec<Mismatch>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&values, 0.5), 500);
        assert_eq!(percentile(&values, 0.99), 990);
        assert_eq!(percentile(&values, 0.999), 999);
        assert_eq!(percentile(&[7], 0.999), 7);
        assert_eq!(percentile(&[], 0.5), 0);
        assert_eq!(percentile(&[1, 2], 0.5), 1);
    }

    #[test]
    fn stats_count_peak_second() {
        let s = LatencyStats::from_samples(&[
            (1_000_000_000, 5, false),
            (1_500_000_000, 7, true),
            (2_100_000_000, 9, false),
        ]);
        assert_eq!((s.count, s.errors, s.max_qps, s.max_ns, s.p50_ns), (3, 1, 2, 9, 7));
    }
}
