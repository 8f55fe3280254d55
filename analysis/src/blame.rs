//! Blame over a window: which nodes account for the extra latency and the failures of
//! many traces of one entry operation. Pure: it takes per-trace analyses
//! ([`crate::analyze`]); only the blocking critical path counts (background work never
//! explains a response).
//!
//! # Nodes: each unit of excess goes to the most specific node that explains it
//!
//! Each critical-path item's self time is charged to exactly one node, so shares add up:
//! - a queue wait → the queue (`peer` node, hop `mq`);
//! - a client or producer span with a peer → that middleware/peer instance (`peer` node:
//!   the time a caller waits on `redis-shard-2:6379` is that instance's, not the caller
//!   operation's);
//! - any other span → its service operation on its host, then resolved per operation:
//!   when the operation ran on several hosts and its extra time per call concentrates on
//!   one of them (every other host's extra time per call is at most
//!   [`OTHER_HOSTS_MAX_RATIO`] of that host's), the time it spent on that host goes to the
//!   `host` node (a noisy VM: several operations slowed on it add up there); otherwise
//!   (spread over its hosts, or a single host) it goes to the `operation` node.
//!
//! Each node says why it was chosen (`reason`).
//!
//! # With a baseline
//!
//! A node's self time per trace in a window is its total self time over the window's
//! traces divided by the number of traces (traces without it count as zero). Its
//! `excess_us` is the window's minus the baseline's; nodes with positive excess are
//! ranked by it, `share` = excess / the sum of positive excess. Nodes without excess but
//! with root-cause errors follow, by error count.
//!
//! # Without a baseline
//!
//! The slow tail is the traces whose duration is at least the window's nearest-rank p99;
//! the rest of the window is the baseline it is compared with, as above (`excess_us` is
//! the extra self time per tail trace over the other traces'), so a node that is slow in
//! every trace is not blamed for the tail. With no other traces, the excess is the tail's
//! self time.

use std::collections::{BTreeMap, HashMap};

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

/// A host takes an operation's excess when every other host of the operation got at most
/// this fraction of that host's extra self time per call (see the module doc).
pub const OTHER_HOSTS_MAX_RATIO: f64 = 0.25;

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
}

/// One ranked node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlameNode {
    /// Which node.
    #[serde(flatten)]
    pub node: NodeKey,
    /// Self time per trace in the window (per tail trace without a baseline), µs.
    pub self_time_us: f64,
    /// Self time per trace in the baseline (the rest of the window without one), µs.
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
    /// Why this node carries the time (see the module doc).
    pub reason: String,
}

/// The blame report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlameReport {
    /// `baseline` or `p99`.
    pub mode: &'static str,
    /// Window traces analysed.
    pub traces: usize,
    /// Baseline traces analysed (in p99 mode, the window's traces outside the tail).
    pub baseline_traces: usize,
    /// Traces in the slow tail (p99 mode).
    pub tail_traces: usize,
    /// Sum of positive excess per trace, µs.
    pub total_excess_us: f64,
    /// Ranked nodes.
    pub nodes: Vec<BlameNode>,
}

/// What one path item is charged to before operations are resolved to hosts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Unit {
    Peer(HopKind, String),
    Operation {
        service: String,
        operation: String,
        host: Option<String>,
    },
}

impl Unit {
    fn of(
        item: ItemKind,
        span_kind: SpanKind,
        hop_kind: HopKind,
        peer: Option<&str>,
        service: &str,
        operation: &str,
        host: Option<&str>,
    ) -> Self {
        match (item, peer) {
            (ItemKind::QueueWait, Some(peer)) => Self::Peer(HopKind::Mq, peer.to_owned()),
            (ItemKind::Span, Some(peer)) if matches!(span_kind, SpanKind::Client | SpanKind::Producer) => {
                Self::Peer(hop_kind, peer.to_owned())
            }
            _ => Self::Operation {
                service: service.to_owned(),
                operation: operation.to_owned(),
                host: host.map(str::to_owned),
            },
        }
    }

    fn of_item(i: &PathItem) -> Self {
        Self::of(
            i.item,
            i.span_kind,
            i.hop_kind,
            i.peer.as_deref(),
            &i.service,
            &i.operation,
            i.host.as_deref(),
        )
    }
}

/// Per unit in one trace: self time µs, items, root-cause errors.
#[derive(Default, Clone, Copy)]
struct Amount {
    self_us: u64,
    items: u64,
    errors: u64,
}

/// One trace's units.
struct TraceUnits {
    trace_id: TraceId,
    units: HashMap<Unit, Amount>,
}

fn units_of(a: &TraceAnalysis) -> TraceUnits {
    let mut units: HashMap<Unit, Amount> = HashMap::new();
    for item in &a.critical_path {
        let amount = units.entry(Unit::of_item(item)).or_default();
        amount.self_us += item.self_time_us;
        amount.items += 1;
    }
    for e in &a.errors {
        let unit = Unit::of(
            ItemKind::Span,
            e.span_kind,
            e.hop_kind,
            e.peer.as_deref(),
            &e.service,
            &e.operation,
            e.host.as_deref(),
        );
        units.entry(unit).or_default().errors += 1;
    }
    TraceUnits {
        trace_id: a.trace_id,
        units,
    }
}

/// Totals of a unit over a set of traces.
#[derive(Default, Clone, Copy)]
struct Totals {
    self_us: f64,
    items: f64,
}

fn totals(traces: &[TraceUnits]) -> HashMap<&Unit, Totals> {
    let mut out: HashMap<&Unit, Totals> = HashMap::new();
    for t in traces {
        for (unit, amount) in &t.units {
            let total = out.entry(unit).or_default();
            total.self_us += amount.self_us as f64;
            total.items += amount.items as f64;
        }
    }
    out
}

/// An operation's totals on one host: (host, window, baseline).
type HostTotals<'a> = (Option<&'a str>, Totals, Totals);

/// The node each unit is charged to, with the reason (see the module doc).
fn resolve(now: &[TraceUnits], before: &[TraceUnits]) -> HashMap<Unit, (NodeKey, String)> {
    let (w, b) = (totals(now), totals(before));
    let mut units: Vec<&Unit> = w.keys().chain(b.keys()).copied().collect();
    units.sort();
    units.dedup();
    // Operations with their hosts' per-call self time, window and baseline.
    let mut operations: BTreeMap<(&str, &str), Vec<HostTotals<'_>>> = BTreeMap::new();
    let mut out = HashMap::new();
    for unit in units {
        match unit {
            Unit::Peer(hop, peer) => {
                let reason = if *hop == HopKind::Mq {
                    format!("time messages waited in queue {peer} before a consumer took them, and the publishes to it")
                } else {
                    format!(
                        "time callers spent waiting on {peer} ({}): the instance, not the callers' code",
                        hop.as_str()
                    )
                };
                out.insert(unit.clone(), (NodeKey::peer(*hop, peer), reason));
            }
            Unit::Operation {
                service,
                operation,
                host,
            } => operations
                .entry((service.as_str(), operation.as_str()))
                .or_default()
                .push((
                    host.as_deref(),
                    w.get(unit).copied().unwrap_or_default(),
                    b.get(unit).copied().unwrap_or_default(),
                )),
        }
    }
    for ((service, operation), hosts) in operations {
        let all_b = hosts.iter().fold(Totals::default(), |acc, h| Totals {
            self_us: acc.self_us + h.2.self_us,
            items: acc.items + h.2.items,
        });
        let per_call = |t: Totals| if t.items > 0.0 { t.self_us / t.items } else { 0.0 };
        let op_baseline = per_call(all_b);
        let extra: Vec<f64> = hosts
            .iter()
            .map(|(_, now, base)| {
                if now.items == 0.0 {
                    0.0
                } else {
                    per_call(*now) - if base.items > 0.0 { per_call(*base) } else { op_baseline }
                }
            })
            .collect();
        let named = hosts.iter().filter(|h| h.0.is_some()).count();
        let slow = extra
            .iter()
            .enumerate()
            .filter(|(i, _)| hosts[*i].0.is_some() && hosts[*i].1.items > 0.0)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, e)| (i, *e));
        let concentrated = slow.filter(|&(i, e)| {
            named >= 2
                && e > 0.0
                && extra
                    .iter()
                    .enumerate()
                    .all(|(j, &x)| j == i || x <= e * OTHER_HOSTS_MAX_RATIO)
        });
        for (i, (host, _, _)) in hosts.iter().enumerate() {
            let unit = Unit::Operation {
                service: service.to_owned(),
                operation: operation.to_owned(),
                host: host.map(str::to_owned),
            };
            let target = match (concentrated, host) {
                (Some((s, e)), Some(h)) if s == i => (
                    NodeKey::host(h),
                    format!(
                        "{service} {operation} ran on {named} hosts and got slower on {h} only (+{:.0} µs per call; the others at most {:.0}): the host, not the operation",
                        e,
                        extra
                            .iter()
                            .enumerate()
                            .filter(|(j, _)| *j != s)
                            .map(|(_, x)| x.max(0.0))
                            .fold(0.0, f64::max),
                    ),
                ),
                _ if named >= 2 => (
                    NodeKey::operation(service, operation),
                    format!("{service} {operation}'s own time, spread over its {named} hosts"),
                ),
                _ => (
                    NodeKey::operation(service, operation),
                    format!(
                        "{service} {operation}'s own time{}",
                        host.map(|h| format!(" (it runs on one host, {h})")).unwrap_or_default()
                    ),
                ),
            };
            out.insert(unit, target);
        }
    }
    out
}

/// Ranks the nodes of `now` against `before` (see the module doc).
fn report(now: &[TraceUnits], before: &[TraceUnits]) -> (Vec<BlameNode>, f64) {
    let nodes_of = resolve(now, before);
    let (wn, bn) = (now.len().max(1) as f64, before.len().max(1) as f64);
    #[derive(Default)]
    struct Acc {
        self_us: f64,
        base_us: f64,
        errors: u64,
        base_errors: u64,
        /// (self time in one trace, errors in it, trace)
        per_trace: Vec<(u64, u64, TraceId)>,
        reason: String,
    }
    let mut acc: HashMap<NodeKey, Acc> = HashMap::new();
    for (traces, baseline) in [(now, false), (before, true)] {
        for t in traces {
            let mut this: HashMap<&NodeKey, (u64, u64)> = HashMap::new();
            for (unit, amount) in &t.units {
                let Some((node, _)) = nodes_of.get(unit) else { continue };
                let entry = this.entry(node).or_default();
                entry.0 += amount.self_us;
                entry.1 += amount.errors;
            }
            for (node, (self_us, errors)) in this {
                let a = acc.entry(node.clone()).or_default();
                if baseline {
                    a.base_us += self_us as f64;
                    a.base_errors += errors.min(1);
                } else {
                    a.self_us += self_us as f64;
                    a.errors += errors.min(1);
                    a.per_trace.push((self_us, errors, t.trace_id));
                }
            }
        }
    }
    for (node, reason) in nodes_of.values() {
        if let Some(a) = acc.get_mut(node)
            && a.reason.is_empty()
        {
            a.reason = reason.clone();
        }
    }
    let mut nodes: Vec<BlameNode> = acc
        .into_iter()
        .map(|(node, mut a)| {
            let (self_us, base_us) = (a.self_us / wn, if before.is_empty() { 0.0 } else { a.base_us / bn });
            BlameNode {
                node,
                self_time_us: self_us,
                baseline_self_time_us: Some(base_us),
                excess_us: self_us - base_us,
                share: 0.0,
                error_root_causes: a.errors,
                baseline_error_root_causes: a.base_errors,
                example_trace_ids: examples(&mut a.per_trace),
                reason: a.reason,
            }
        })
        .filter(|n| n.excess_us > 0.0 || n.error_root_causes > 0)
        .collect();
    let total: f64 = nodes.iter().map(|n| n.excess_us.max(0.0)).sum();
    for n in &mut nodes {
        n.excess_us = n.excess_us.max(0.0);
        n.share = if total > 0.0 {
            (n.excess_us / total).min(1.0)
        } else {
            0.0
        };
        if n.excess_us == 0.0 {
            n.reason = format!("root-cause errors in {} traces", n.error_root_causes);
        }
    }
    nodes.sort_by(|a, b| {
        b.excess_us
            .total_cmp(&a.excess_us)
            .then(b.error_root_causes.cmp(&a.error_root_causes))
            .then(a.node.cmp(&b.node))
    });
    (nodes, total)
}

fn examples(per_trace: &mut [(u64, u64, TraceId)]) -> Vec<TraceId> {
    per_trace.sort_by_key(|t| std::cmp::Reverse((t.1 > 0, t.0, t.2)));
    per_trace.iter().take(EXAMPLES).map(|t| t.2).collect()
}

/// Said when a baseline was asked for but has no traces; see [`blame_report`].
pub const EMPTY_BASELINE_NOTICE: &str = "The baseline window has no traces of this operation, so there is \
     nothing to compare with: ranked the window's slow tail (traces at or above its p99) instead.";

/// The blame report over the analysed window traces `now`: against `baseline` when one is
/// given and holds traces, else the p99 tail of `now`. An empty baseline would make every
/// node's whole self time look like excess over 0 µs, so it falls back to the tail and
/// returns [`EMPTY_BASELINE_NOTICE`] with the report (`None` otherwise). Shared by
/// `/api/v1/blame` and the UI's blame page.
pub fn blame_report(now: &[TraceAnalysis], baseline: Option<&[TraceAnalysis]>) -> (BlameReport, Option<&'static str>) {
    match baseline {
        Some(before) if !before.is_empty() => (blame_with_baseline(now, before), None),
        Some(_) => (blame_p99(now), Some(EMPTY_BASELINE_NOTICE)),
        None => (blame_p99(now), None),
    }
}

/// Blame of `window` against `baseline` (see the module doc).
pub fn blame_with_baseline(window: &[TraceAnalysis], baseline: &[TraceAnalysis]) -> BlameReport {
    let now: Vec<TraceUnits> = window.iter().map(units_of).collect();
    let before: Vec<TraceUnits> = baseline.iter().map(units_of).collect();
    let (nodes, total) = report(&now, &before);
    BlameReport {
        mode: "baseline",
        traces: now.len(),
        baseline_traces: before.len(),
        tail_traces: 0,
        total_excess_us: total,
        nodes,
    }
}

/// Blame of the slow tail of `window` against the rest of it (no baseline; see the module
/// doc).
pub fn blame_p99(window: &[TraceAnalysis]) -> BlameReport {
    let mut durations: Vec<u64> = window.iter().map(|a| a.duration_us).collect();
    durations.sort_unstable();
    let p99 = hopscope_storage::aggregates::percentile(&durations, 0.99);
    let (tail, rest): (Vec<&TraceAnalysis>, Vec<&TraceAnalysis>) = window.iter().partition(|a| a.duration_us >= p99);
    let now: Vec<TraceUnits> = tail.into_iter().map(units_of).collect();
    let before: Vec<TraceUnits> = rest.into_iter().map(units_of).collect();
    let (nodes, total) = report(&now, &before);
    BlameReport {
        mode: "p99",
        traces: window.len(),
        baseline_traces: before.len(),
        tail_traces: now.len(),
        total_excess_us: total,
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
            background: Vec::new(),
            errors: Vec::new(),
            timeline: Vec::new(),
        }
    }

    #[test]
    fn noisy_host_takes_the_excess_of_the_operation_it_slows_on_that_host_only() {
        // One operation on two hosts; only host b got slower per call (a little noise on a).
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
        let top = &report.nodes[0];
        assert_eq!(top.node.node_type, NodeType::Host, "{:?}", report.nodes);
        assert_eq!(top.node.host.as_deref(), Some("b"));
        // b's time only: (10 * 51,000 - 10 * 1,000) / 20 per trace; a's noise stays with the
        // operation, and the shares add up.
        assert!((top.excess_us - 25_000.0).abs() < 1e-6, "{}", top.excess_us);
        assert!(top.reason.contains("slower on b only"), "{}", top.reason);
        let op = &report.nodes[1];
        assert_eq!(op.node.operation.as_deref(), Some("transfer"));
        assert!((op.excess_us - 100.0).abs() < 1e-6, "{}", op.excess_us);
        assert!((report.nodes.iter().map(|n| n.share).sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn slowdown_spread_over_all_hosts_stays_with_the_operation() {
        let host = |n: u64| ["a", "b", "c"][(n % 3) as usize];
        let base: Vec<_> = (0..30)
            .map(|n| synthetic(n, &[("acct", "transfer", host(n), 1_000)]))
            .collect();
        let window: Vec<_> = (30..60)
            .map(|n| synthetic(n, &[("acct", "transfer", host(n), 20_000 + n)]))
            .collect();
        let report = blame_with_baseline(&window, &base);
        assert_eq!(report.nodes.len(), 1, "{:?}", report.nodes);
        assert_eq!(report.nodes[0].node.node_type, NodeType::Operation);
        assert!(
            report.nodes[0].reason.contains("spread over its 3 hosts"),
            "{}",
            report.nodes[0].reason
        );
    }

    #[test]
    fn operation_on_a_single_host_is_the_operation() {
        // fraud-check runs on host p only and got slower: the operation, never the host.
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
        assert!(report.nodes.iter().all(|n| n.node.node_type != NodeType::Host));
        assert!(
            report.nodes[0].reason.contains("runs on one host"),
            "{}",
            report.nodes[0].reason
        );
    }

    #[test]
    fn a_node_slow_all_the_time_is_not_blamed() {
        // The cache is slow in both windows (a decoy); the DB got slower in the window.
        let trace = |n: u64, db: u64| TraceAnalysis {
            duration_us: 60_000 + db,
            critical_path: vec![
                peer_item(n, HopKind::Cache, "cache-1:6379", 60_000),
                peer_item(n, HopKind::Db, "db-1:5432", db),
            ],
            ..synthetic(n, &[])
        };
        let base: Vec<_> = (0..10).map(|n| trace(n, 2_000)).collect();
        let window: Vec<_> = (10..20).map(|n| trace(n, 30_000)).collect();
        let report = blame_with_baseline(&window, &base);
        assert_eq!(report.nodes.len(), 1, "{:?}", report.nodes);
        assert_eq!(report.nodes[0].node.peer.as_deref(), Some("db-1:5432"));
        // Without a baseline the tail is compared with the rest of the window likewise.
        let mixed: Vec<_> = (0..100)
            .map(|n| trace(n, if n % 50 == 7 { 30_000 } else { 2_000 }))
            .collect();
        let report = blame_p99(&mixed);
        assert_eq!(report.tail_traces, 2, "{:?}", report);
        assert_eq!(
            report.nodes[0].node.peer.as_deref(),
            Some("db-1:5432"),
            "{:?}",
            report.nodes
        );
        assert!(
            report
                .nodes
                .iter()
                .all(|n| n.node.peer.as_deref() != Some("cache-1:6379"))
        );
    }

    fn peer_item(n: u64, hop_kind: HopKind, peer: &str, self_us: u64) -> PathItem {
        PathItem {
            span_id: hopscope_schemas::SpanId([n as u8; 8]),
            service: "svc".into(),
            operation: "call".into(),
            hop_kind,
            peer: Some(peer.into()),
            host: Some("h".into()),
            cloud_kind: hopscope_schemas::CloudKind::Unknown,
            start_us: 0,
            duration_us: self_us,
            self_time_us: self_us,
            item: ItemKind::Span,
            span_kind: SpanKind::Client,
        }
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
