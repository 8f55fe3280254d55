//! Blame over a window: which nodes account for the extra latency and the failures of
//! many traces of one entry operation. Pure: it takes per-trace analyses ([`super::analyze`]).
//!
//! # Nodes
//!
//! Each critical-path item is charged, with its self time, to one node:
//! - a queue wait → the queue (`peer` node, hop `mq`);
//! - a client or producer span with a peer → that middleware/peer instance (`peer` node:
//!   the time a caller waits on `redis-shard-2:6379` is that instance's);
//! - any other span → its service operation (`operation` node).
//!
//! Items that run on a host (every span item except client/producer waits) are also
//! charged to their `host` node, so a noisy VM whose extra time is spread over several
//! operations adds up. Host nodes overlap operation nodes; shares are all relative to
//! the total excess of peer and operation nodes, so host shares are not additive with
//! them. On equal excess, peer nodes rank before operation nodes, and those before hosts.
//!
//! # With a baseline
//!
//! A node's self time per trace in a window is its total self time over the window's
//! traces divided by the number of traces (traces without it count as zero). Its
//! `excess_us` is the window's minus the baseline's; nodes with positive excess are
//! ranked by it, `share` = excess / the sum of positive excess of peer and operation
//! nodes. Nodes without excess but with root-cause errors follow, by error count.
//!
//! A host's excess overlaps the excess of the operations that ran on it, so measurement
//! noise alone would decide between an operation and its host when their excess is
//! nearly equal. The ranking (not the reported numbers) settles that from the window's
//! hosts: an operation that ran on one host only ranks before that host unless the host's
//! excess is more than [`HOST_TOLERANCE`] above the operation's (the operation explains
//! the host); an operation that ran on several hosts but got at least
//! 1 − [`HOST_TOLERANCE`] of its excess from one of them ranks after that host when the
//! host's excess is at least that large (the operation is slow only there: a noisy host).
//!
//! # Without a baseline
//!
//! The slow tail is the traces whose duration is at least the window's nearest-rank p99;
//! nodes are ranked by their self time per tail trace (`excess_us` is that), with
//! `share` = it / the mean tail trace duration.

use std::collections::HashMap;

use hopscope_schemas::{HopKind, SpanKind, TraceId};
use hopscope_storage::aggregates::{EntryTraceQuery, Window};
use hopscope_storage::{AggregateReader, SpanReader, StorageError, Trace};
use serde::Serialize;

use super::{ItemKind, PathItem, TraceAnalysis, analyze};

/// A trace of the entry operation, with the span id of its entry span.
pub type EntryTrace = (Trace, hopscope_schemas::SpanId);

/// The traces of `service`'s `operation` in `window` (at most `limit`, sampled by the
/// store), each read whole: what blame analyses. Used by the API and the UI alike.
pub async fn entry_traces(
    aggregates: &dyn AggregateReader,
    reader: &dyn SpanReader,
    service: &str,
    operation: &str,
    window: Window,
    limit: usize,
) -> Result<Vec<EntryTrace>, StorageError> {
    let entries = aggregates
        .entry_traces(&EntryTraceQuery {
            window,
            service: service.to_owned(),
            operation: operation.to_owned(),
            limit,
        })
        .await?;
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        if let Some(trace) = reader.trace(entry.trace_id).await? {
            out.push((trace, entry.span_id));
        }
    }
    Ok(out)
}

/// Analyses each entry trace from its entry span (CPU-bound: call it off the reactor).
pub fn analyze_entries(traces: &[EntryTrace]) -> Vec<TraceAnalysis> {
    traces
        .iter()
        .filter_map(|(trace, root)| analyze(trace.trace_id, &trace.spans, Some(*root)))
        .collect()
}

/// Example trace ids per node.
pub const EXAMPLES: usize = 3;

/// Relative tolerance when an operation and a host node explain the same excess (see the
/// module doc).
pub const HOST_TOLERANCE: f64 = 0.1;

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeType {
    /// A middleware or peer instance (or a queue).
    Peer,
    /// A service operation.
    Operation,
    /// A VM/host.
    Host,
}

/// A node's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct NodeKey {
    /// What it is.
    pub node_type: NodeType,
    /// Service (operation nodes).
    pub service: Option<String>,
    /// Operation (operation nodes).
    pub operation: Option<String>,
    /// Hop kind (peer nodes).
    pub hop_kind: Option<HopKind>,
    /// Peer instance (peer nodes).
    pub peer: Option<String>,
    /// Host (host nodes).
    pub host: Option<String>,
}

impl NodeKey {
    fn operation(service: &str, operation: &str) -> Self {
        Self {
            node_type: NodeType::Operation,
            service: Some(service.to_owned()),
            operation: Some(operation.to_owned()),
            hop_kind: None,
            peer: None,
            host: None,
        }
    }

    fn peer(hop_kind: HopKind, peer: &str) -> Self {
        Self {
            node_type: NodeType::Peer,
            service: None,
            operation: None,
            hop_kind: Some(hop_kind),
            peer: Some(peer.to_owned()),
            host: None,
        }
    }

    fn host(host: &str) -> Self {
        Self {
            node_type: NodeType::Host,
            service: None,
            operation: None,
            hop_kind: None,
            peer: None,
            host: Some(host.to_owned()),
        }
    }

    /// The primary node of a span or queue wait.
    pub fn primary(
        item: ItemKind,
        span_kind: SpanKind,
        hop_kind: HopKind,
        peer: Option<&str>,
        service: &str,
        operation: &str,
    ) -> Self {
        match (item, peer) {
            (ItemKind::QueueWait, Some(peer)) => Self::peer(HopKind::Mq, peer),
            (ItemKind::Span, Some(peer)) if matches!(span_kind, SpanKind::Client | SpanKind::Producer) => {
                Self::peer(hop_kind, peer)
            }
            _ => Self::operation(service, operation),
        }
    }

    fn of_item(item: &PathItem) -> Self {
        Self::primary(
            item.item,
            item.span_kind,
            item.hop_kind,
            item.peer.as_deref(),
            &item.service,
            &item.operation,
        )
    }
}

/// One ranked node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlameNode {
    /// Which node.
    #[serde(flatten)]
    pub node: NodeKey,
    /// Self time per trace in the window (per tail trace without a baseline), µs.
    pub self_time_us: f64,
    /// Self time per trace in the baseline, µs (none without a baseline).
    pub baseline_self_time_us: Option<f64>,
    /// Extra self time per trace (see the module doc), µs.
    pub excess_us: f64,
    /// Share of the total excess, 0..1.
    pub share: f64,
    /// Traces of the window where this node is a root-cause failing span.
    pub error_root_causes: u64,
    /// The same in the baseline.
    pub baseline_error_root_causes: u64,
    /// Window traces where this node had the most self time (errors first).
    pub example_trace_ids: Vec<TraceId>,
}

/// The blame report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlameReport {
    /// `baseline` or `p99`.
    pub mode: &'static str,
    /// Window traces analysed.
    pub traces: usize,
    /// Baseline traces analysed.
    pub baseline_traces: usize,
    /// Traces in the slow tail (p99 mode).
    pub tail_traces: usize,
    /// Sum of positive excess of peer and operation nodes per trace, µs (mean tail
    /// duration in p99 mode).
    pub total_excess_us: f64,
    /// Ranked nodes.
    pub nodes: Vec<BlameNode>,
}

#[derive(Default)]
struct Acc {
    self_us: f64,
    errors: u64,
    /// (self time in one trace, errors in it, trace)
    per_trace: Vec<(u64, u64, TraceId)>,
    /// Operation nodes: self time by host.
    by_host: HashMap<String, f64>,
}

fn accumulate(analyses: &[&TraceAnalysis]) -> HashMap<NodeKey, Acc> {
    let mut acc: HashMap<NodeKey, Acc> = HashMap::new();
    for a in analyses {
        let mut this: HashMap<NodeKey, (u64, u64)> = HashMap::new();
        for item in &a.critical_path {
            let key = NodeKey::of_item(item);
            if item.item == ItemKind::Span
                && !matches!(item.span_kind, SpanKind::Client | SpanKind::Producer)
                && let Some(host) = &item.host
            {
                this.entry(NodeKey::host(host)).or_default().0 += item.self_time_us;
                if key.node_type == NodeType::Operation {
                    *acc.entry(key.clone())
                        .or_default()
                        .by_host
                        .entry(host.clone())
                        .or_default() += item.self_time_us as f64;
                }
            }
            this.entry(key).or_default().0 += item.self_time_us;
        }
        for e in &a.errors {
            let key = NodeKey::primary(
                ItemKind::Span,
                e.span_kind,
                e.hop_kind,
                e.peer.as_deref(),
                &e.service,
                &e.operation,
            );
            this.entry(key).or_default().1 += 1;
        }
        for (key, (self_us, errors)) in this {
            let node = acc.entry(key).or_default();
            node.self_us += self_us as f64;
            node.errors += errors.min(1);
            node.per_trace.push((self_us, errors, a.trace_id));
        }
    }
    acc
}

fn examples(per_trace: &mut [(u64, u64, TraceId)]) -> Vec<TraceId> {
    per_trace.sort_by_key(|t| std::cmp::Reverse((t.1 > 0, t.0, t.2)));
    per_trace.iter().take(EXAMPLES).map(|t| t.2).collect()
}

fn rank(nodes: &mut [BlameNode]) {
    nodes.sort_by(|a, b| {
        b.excess_us
            .total_cmp(&a.excess_us)
            .then(b.error_root_causes.cmp(&a.error_root_causes))
            .then(a.node.cmp(&b.node))
    });
}

/// Ranking scores that settle operation-versus-host overlaps (see the module doc):
/// `(excess to rank by, yields on equal excess)` per node, by position in `nodes`.
fn host_scores(
    nodes: &[BlameNode],
    now: &HashMap<NodeKey, Acc>,
    before: &HashMap<NodeKey, Acc>,
    wn: f64,
    bn: f64,
) -> Vec<(f64, bool)> {
    let mut scores: Vec<(f64, bool)> = nodes.iter().map(|n| (n.excess_us, false)).collect();
    let host_at: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.node.node_type == NodeType::Host)
        .filter_map(|(i, n)| n.node.host.as_deref().map(|h| (h, i)))
        .collect();
    for (o, op) in nodes.iter().enumerate() {
        let Some(acc) = now
            .get(&op.node)
            .filter(|_| op.node.node_type == NodeType::Operation && op.excess_us > 0.0)
        else {
            continue;
        };
        let base = before.get(&op.node).map(|b| &b.by_host);
        let excess_on = |host: &str| {
            acc.by_host.get(host).copied().unwrap_or(0.0) / wn
                - base.and_then(|b| b.get(host)).copied().unwrap_or(0.0) / bn
        };
        let Some((host, on_host)) = acc
            .by_host
            .keys()
            .map(|h| (h.as_str(), excess_on(h)))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(a.0)))
        else {
            continue;
        };
        let Some(&h) = host_at.get(host) else { continue };
        let host_excess = nodes[h].excess_us;
        if acc.by_host.len() == 1 {
            if host_excess <= op.excess_us * (1.0 + HOST_TOLERANCE) {
                // The operation explains its only host: the host goes after it.
                scores[h] = (scores[h].0.min(op.excess_us), true);
            }
        } else if on_host >= op.excess_us * (1.0 - HOST_TOLERANCE)
            && host_excess >= op.excess_us * (1.0 - HOST_TOLERANCE)
        {
            // Slow on one of its hosts only: that host goes first.
            scores[o] = (scores[o].0.min(host_excess), true);
        }
    }
    scores
}

/// Blame of `window` against `baseline` (see the module doc).
pub fn blame_with_baseline(window: &[TraceAnalysis], baseline: &[TraceAnalysis]) -> BlameReport {
    let w: Vec<&TraceAnalysis> = window.iter().collect();
    let b: Vec<&TraceAnalysis> = baseline.iter().collect();
    let wn = w.len().max(1) as f64;
    let bn = b.len().max(1) as f64;
    let mut now = accumulate(&w);
    let before = accumulate(&b);
    let mut keys: Vec<NodeKey> = now.keys().chain(before.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    let mut nodes: Vec<BlameNode> = keys
        .into_iter()
        .map(|key| {
            let (self_us, errors, examples) = match now.get_mut(&key) {
                Some(acc) => (acc.self_us / wn, acc.errors, examples(&mut acc.per_trace)),
                None => (0.0, 0, Vec::new()),
            };
            let (base_us, base_errors) = before.get(&key).map_or((0.0, 0), |acc| (acc.self_us / bn, acc.errors));
            BlameNode {
                node: key,
                self_time_us: self_us,
                baseline_self_time_us: Some(base_us),
                excess_us: self_us - base_us,
                share: 0.0,
                error_root_causes: errors,
                baseline_error_root_causes: base_errors,
                example_trace_ids: examples,
            }
        })
        .filter(|n| n.excess_us > 0.0 || n.error_root_causes > 0)
        .collect();
    let total: f64 = nodes
        .iter()
        .filter(|n| n.node.node_type != NodeType::Host && n.excess_us > 0.0)
        .map(|n| n.excess_us)
        .sum();
    for n in &mut nodes {
        n.excess_us = n.excess_us.max(0.0);
        n.share = if total > 0.0 {
            (n.excess_us / total).min(1.0)
        } else {
            0.0
        };
    }
    let scores = host_scores(&nodes, &now, &before, wn, bn);
    let mut scored: Vec<(BlameNode, (f64, bool))> = nodes.into_iter().zip(scores).collect();
    scored.sort_by(|(a, sa), (b, sb)| {
        sb.0.total_cmp(&sa.0)
            .then(sa.1.cmp(&sb.1))
            .then(b.error_root_causes.cmp(&a.error_root_causes))
            .then(a.node.cmp(&b.node))
    });
    let nodes: Vec<BlameNode> = scored.into_iter().map(|(n, _)| n).collect();
    BlameReport {
        mode: "baseline",
        traces: w.len(),
        baseline_traces: b.len(),
        tail_traces: 0,
        total_excess_us: total,
        nodes,
    }
}

/// Blame of the slow tail of `window` (no baseline; see the module doc).
pub fn blame_p99(window: &[TraceAnalysis]) -> BlameReport {
    let mut durations: Vec<u64> = window.iter().map(|a| a.duration_us).collect();
    durations.sort_unstable();
    let p99 = hopscope_storage::aggregates::percentile(&durations, 0.99);
    let tail: Vec<&TraceAnalysis> = window.iter().filter(|a| a.duration_us >= p99).collect();
    let tn = tail.len().max(1) as f64;
    let mean_duration = tail.iter().map(|a| a.duration_us as f64).sum::<f64>() / tn;
    let mut nodes: Vec<BlameNode> = accumulate(&tail)
        .into_iter()
        .map(|(key, mut acc)| {
            let per_trace = acc.self_us / tn;
            BlameNode {
                node: key,
                self_time_us: per_trace,
                baseline_self_time_us: None,
                excess_us: per_trace,
                share: if mean_duration > 0.0 {
                    (per_trace / mean_duration).min(1.0)
                } else {
                    0.0
                },
                error_root_causes: acc.errors,
                baseline_error_root_causes: 0,
                example_trace_ids: examples(&mut acc.per_trace),
            }
        })
        .collect();
    rank(&mut nodes);
    BlameReport {
        mode: "p99",
        traces: window.len(),
        baseline_traces: 0,
        tail_traces: tail.len(),
        total_excess_us: mean_duration,
        nodes,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use hopscope_schemas::fixtures::{self, T0, US, trace_id};

    use super::*;
    use crate::analyze;

    fn analyses(from_us: u64, to_us: u64) -> Vec<TraceAnalysis> {
        let spans = fixtures::slow_redis_shard();
        let mut out = Vec::new();
        for n in 0..60 {
            let id = trace_id(fixtures::REDIS_TRACES + n);
            let trace: Vec<_> = spans
                .iter()
                .filter(|s| s.trace_id == id)
                .cloned()
                .map(Arc::new)
                .collect();
            let start = trace[0].start_time_unix_nano;
            if start >= T0 + from_us * US && start <= T0 + to_us * US {
                out.push(analyze(id, &trace, None).unwrap());
            }
        }
        out
    }

    #[test]
    fn slow_shard_gets_the_blame() {
        let (a, b) = fixtures::REDIS_INCIDENT_US;
        let (c, d) = fixtures::REDIS_BASELINE_US;
        let report = blame_with_baseline(&analyses(a, b), &analyses(c, d));
        assert_eq!(report.traces, 30);
        let top = &report.nodes[0];
        assert_eq!(top.node.peer.as_deref(), Some("redis-shard-2:6379"));
        assert_eq!(top.node.node_type, NodeType::Peer);
        // 10 of 30 traces hit shard 2: (10 * 40 ms + 0) / 30 - 10 * 1 ms / 30.
        assert!((top.excess_us - 13_000.0).abs() < 1e-6, "{}", top.excess_us);
        assert!((top.share - 1.0).abs() < 1e-9);
        assert_eq!(top.example_trace_ids.len(), EXAMPLES);
    }

    /// One trace of server spans: (service, operation, host, self time µs).
    fn synthetic(n: u64, items: &[(&str, &str, &str, u64)]) -> TraceAnalysis {
        let critical_path = items
            .iter()
            .map(|&(service, operation, host, self_us)| PathItem {
                span_id: hopscope_schemas::SpanId([n as u8; 8]),
                service: service.into(),
                operation: operation.into(),
                hop_kind: HopKind::Http,
                peer: None,
                host: Some(host.into()),
                cloud_kind: hopscope_schemas::CloudKind::Unknown,
                start_us: 0,
                duration_us: self_us,
                self_time_us: self_us,
                item: ItemKind::Span,
                span_kind: SpanKind::Server,
            })
            .collect();
        TraceAnalysis {
            trace_id: trace_id(n),
            duration_us: 0,
            critical_path,
            culprit: None,
            errors: Vec::new(),
        }
    }

    #[test]
    fn noisy_host_outranks_the_operation_it_slows_on_that_host_only() {
        // One operation on two hosts; only host b got slower. Noise on host a makes the
        // operation's excess (25,100 µs) a little larger than host b's (25,000 µs).
        let base: Vec<_> = (0..20)
            .map(|n| synthetic(n, &[("acct", "transfer", if n % 2 == 0 { "a" } else { "b" }, 1_000)]))
            .collect();
        let window: Vec<_> = (20..40)
            .map(|n| {
                if n % 2 == 0 {
                    synthetic(n, &[("acct", "transfer", "a", 1_200)])
                } else {
                    synthetic(n, &[("acct", "transfer", "b", 51_000)])
                }
            })
            .collect();
        let report = blame_with_baseline(&window, &base);
        assert_eq!(report.nodes[0].node.node_type, NodeType::Host, "{:?}", report.nodes);
        assert_eq!(report.nodes[0].node.host.as_deref(), Some("b"));
        assert_eq!(report.nodes[1].node.operation.as_deref(), Some("transfer"));
        assert!(
            report.nodes[1].excess_us > report.nodes[0].excess_us,
            "numbers are reported as measured"
        );
    }

    #[test]
    fn operation_on_a_single_host_outranks_that_host() {
        // fraud-check runs on host p only and got slower; the host's excess is the
        // operation's plus a little noise from another operation on it.
        let base: Vec<_> = (0..10)
            .map(|n| synthetic(n, &[("pay", "charge", "p", 2_000), ("pay", "fraud-check", "p", 5_000)]))
            .collect();
        let window: Vec<_> = (10..20)
            .map(|n| {
                synthetic(
                    n,
                    &[("pay", "charge", "p", 2_500), ("pay", "fraud-check", "p", 100_000)],
                )
            })
            .collect();
        let report = blame_with_baseline(&window, &base);
        assert_eq!(
            report.nodes[0].node.operation.as_deref(),
            Some("fraud-check"),
            "{:?}",
            report.nodes
        );
        assert_eq!(report.nodes[1].node.host.as_deref(), Some("p"));
        // A host far above its operations still leads: several operations slowed on it.
        let window: Vec<_> = (10..20)
            .map(|n| {
                synthetic(
                    n,
                    &[("pay", "charge", "p", 60_000), ("pay", "fraud-check", "p", 100_000)],
                )
            })
            .collect();
        let report = blame_with_baseline(&window, &base);
        assert_eq!(report.nodes[0].node.host.as_deref(), Some("p"), "{:?}", report.nodes);
    }

    #[test]
    fn tail_without_baseline() {
        let (a, b) = fixtures::REDIS_INCIDENT_US;
        let report = blame_p99(&analyses(a, b));
        assert_eq!(report.mode, "p99");
        assert_eq!(report.tail_traces, 10);
        assert_eq!(report.nodes[0].node.peer.as_deref(), Some("redis-shard-2:6379"));
    }
}
