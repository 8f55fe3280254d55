//! Trace comparison: which nodes of one trace took more (or less) time than in another
//! trace, or than in the typical trace of the same entry operation.
//!
//! # Model
//!
//! - **Nodes** are matched by their path from the entry, not by span id: the chain of
//!   (service, operation, peer) from the analysed root down to the span. Spans of one trace
//!   with the same path (a loop, retries) are one node: their self times add up and
//!   `count` says how many. A blocking queue wait is a node of its own below its
//!   consumer's path (operation [`crate::QUEUE_WAIT`], peer = the queue). Only the
//!   request's own work counts: background spans ([`crate::Edge::Background`] and below)
//!   are left out, as they do not explain its response time.
//! - **Against another trace** (`with`): each side's value per node.
//! - **Against the typical trace** of a window: per node, the median of its self time,
//!   count, start offset and duration over the baseline traces that have it (so a trace
//!   that hit one of three shards is compared with that shard's typical time); a node this
//!   trace lacks is listed as `only_in: baseline` when at least half the baseline traces
//!   have it.
//! - `delta_us` = this trace's self time minus the baseline's; nodes are sorted by it,
//!   largest first; `only_in` says when a node is on one side only.
//! - **Verdict**: one line about the node with the largest positive delta, e.g.
//!   `+780 ms in GET on redis-shard-2:6379 vs the typical 3 ms`.

use std::collections::HashMap;
use std::sync::Arc;

use hopscope_schemas::{HopKind, SpanId, SpanRecord, TraceId};
use serde::Serialize;

use crate::blame::EntryTrace;
use crate::{Edge, QUEUE_WAIT, TraceAnalysis, analyze};

/// How the verdict names each baseline.
const TYPICAL: &str = "the typical";
const OTHER: &str = "the other trace's";

/// One step of a node's path from the entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Step {
    /// Service (the messaging system for a queue wait).
    pub service: String,
    /// Operation ([`QUEUE_WAIT`] for a queue wait).
    pub operation: String,
    /// Peer instance, if any.
    pub peer: Option<String>,
}

/// One node's values in one trace (or the typical trace).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct NodeTimes {
    /// Self time summed over the node's spans, µs.
    pub self_time_us: u64,
    /// Spans (or waits) with this path.
    pub count: u64,
    /// Adjusted start of its first span, from the entry's start, µs.
    pub start_offset_us: u64,
    /// From the first span's start to the last span's end, µs.
    pub duration_us: u64,
}

/// A node of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparedNode {
    /// Path from the entry, the node itself last.
    pub path: Vec<Step>,
    /// Depth below the entry (0 for the entry).
    pub depth: usize,
    /// The node's service.
    pub service: String,
    /// The node's operation.
    pub operation: String,
    /// The node's peer instance, if any.
    pub peer: Option<String>,
    /// The node's hop kind.
    pub hop_kind: HopKind,
    /// First span of the node in this trace (for a queue wait, its consumer).
    pub span_id: Option<SpanId>,
    /// This trace's values (zero when `only_in` is `baseline`).
    #[serde(flatten)]
    pub this: NodeTimes,
    /// Self time in the baseline (the other trace, or the typical median), µs.
    pub baseline_self_time_us: u64,
    /// The baseline's count.
    pub baseline_count: u64,
    /// The baseline's start offset from its entry, µs.
    pub baseline_start_offset_us: u64,
    /// The baseline's duration, µs.
    pub baseline_duration_us: u64,
    /// `self_time_us - baseline_self_time_us`.
    pub delta_us: i64,
    /// `trace` or `baseline` when the node is on one side only.
    pub only_in: Option<&'static str>,
}

/// What the trace was compared with.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Baseline {
    /// Another trace.
    Trace {
        /// Its id.
        trace_id: TraceId,
    },
    /// The typical trace of the entry operation in a window.
    Typical {
        /// Traces it is the median of.
        traces: usize,
    },
}

/// The comparison of one trace with a baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The trace compared.
    pub trace_id: TraceId,
    /// What it was compared with.
    pub baseline: Baseline,
    /// This trace's response time, µs.
    pub duration_us: u64,
    /// The baseline's response time (the median for the typical trace), µs.
    pub baseline_duration_us: u64,
    /// `duration_us - baseline_duration_us`.
    pub delta_us: i64,
    /// One line on the node that changed most.
    pub verdict: String,
    /// Nodes by `delta_us`, largest first.
    pub nodes: Vec<ComparedNode>,
}

/// A node's identity and what describes it.
#[derive(Clone)]
struct NodeInfo {
    path: Vec<Step>,
    hop_kind: HopKind,
    span_id: SpanId,
    /// Order of first appearance (parents first).
    order: usize,
}

/// The nodes of one analysed trace, by path.
fn nodes_of(analysis: &TraceAnalysis, spans: &[Arc<SpanRecord>]) -> HashMap<Vec<Step>, (NodeInfo, NodeTimes)> {
    let timeline = &analysis.timeline;
    let Some(entry_start) = timeline.first().map(|t| t.start_ns) else {
        return HashMap::new();
    };
    let mut paths: Vec<Vec<Step>> = Vec::with_capacity(timeline.len());
    let mut out: HashMap<Vec<Step>, (NodeInfo, NodeTimes, u64)> = HashMap::new();
    let mut add = |path: Vec<Step>, hop_kind, span_id, self_ns: u64, start_ns: u64, end_ns: u64, order| {
        let entry = out.entry(path.clone()).or_insert_with(|| {
            (
                NodeInfo {
                    path,
                    hop_kind,
                    span_id,
                    order,
                },
                NodeTimes {
                    start_offset_us: start_ns.saturating_sub(entry_start) / 1_000,
                    ..NodeTimes::default()
                },
                end_ns,
            )
        });
        entry.1.self_time_us += self_ns / 1_000;
        entry.1.count += 1;
        entry.2 = entry.2.max(end_ns);
        entry.1.duration_us = (entry.2.saturating_sub(entry_start) / 1_000).saturating_sub(entry.1.start_offset_us);
    };
    for (i, timing) in timeline.iter().enumerate() {
        let span = &spans[timing.index];
        let mut path = timing.parent.map(|p| paths[p].clone()).unwrap_or_default();
        path.push(Step {
            service: span.service_name.clone(),
            operation: span.name.clone(),
            peer: span.peer.clone(),
        });
        paths.push(path.clone());
        if timing.background {
            continue;
        }
        if timing.edge == Edge::Blocking
            && let Some(parent) = timing.parent.map(|p| &timeline[p])
            && timing.start_ns > parent.end_ns
        {
            let producer = &spans[parent.index];
            let system = hopscope_schemas::find_str(&span.attributes, "messaging.system")
                .or_else(|| hopscope_schemas::find_str(&producer.attributes, "messaging.system"))
                .unwrap_or("queue");
            let mut wait_path = paths[timing.parent.unwrap_or(i)].clone();
            wait_path.push(Step {
                service: system.to_owned(),
                operation: QUEUE_WAIT.to_owned(),
                peer: span.peer.clone().or_else(|| producer.peer.clone()),
            });
            let wait = timing.start_ns - parent.end_ns;
            add(
                wait_path,
                HopKind::Mq,
                span.span_id,
                wait,
                parent.end_ns,
                timing.start_ns,
                2 * i,
            );
        }
        add(
            path,
            span.hop_kind,
            span.span_id,
            timing.self_ns,
            timing.start_ns,
            timing.end_ns,
            2 * i + 1,
        );
    }
    out.into_iter()
        .map(|(k, (info, times, _))| (k, (info, times)))
        .collect()
}

/// An analysed trace with its spans.
pub type Analysed = (TraceAnalysis, Vec<Arc<SpanRecord>>);

/// The entry (service, operation) of a trace: its root's, as [`analyze`] picks it.
pub fn entry(spans: &[Arc<SpanRecord>]) -> Option<(String, String)> {
    let root = &spans[crate::timeline::root_of(spans)?];
    Some((root.service_name.clone(), root.name.clone()))
}

/// Analyses the baseline traces of a typical-trace comparison (CPU-bound: call it off the
/// reactor), leaving out the trace being compared.
pub fn analyze_baseline(traces: Vec<EntryTrace>, except: TraceId) -> Vec<Analysed> {
    traces
        .into_iter()
        .filter(|(trace, _)| trace.trace_id != except)
        .filter_map(|(trace, root)| Some((analyze(trace.trace_id, &trace.spans, Some(root))?, trace.spans)))
        .collect()
}

/// Compares `analysis` (of `spans`) with another analysed trace.
pub fn compare_with_trace(
    analysis: &TraceAnalysis,
    spans: &[Arc<SpanRecord>],
    other: &TraceAnalysis,
    other_spans: &[Arc<SpanRecord>],
) -> Comparison {
    let base: HashMap<Vec<Step>, (NodeInfo, NodeTimes)> = nodes_of(other, other_spans);
    build(
        analysis,
        nodes_of(analysis, spans),
        base,
        other.duration_us,
        Baseline::Trace {
            trace_id: other.trace_id,
        },
        OTHER,
    )
}

/// Compares `analysis` (of `spans`) with the typical trace of `baseline` (analyses with
/// their spans; see the module doc). `None` when `baseline` is empty.
pub fn compare_with_typical(
    analysis: &TraceAnalysis,
    spans: &[Arc<SpanRecord>],
    baseline: &[Analysed],
) -> Option<Comparison> {
    if baseline.is_empty() {
        return None;
    }
    let n = baseline.len();
    let mut all: HashMap<Vec<Step>, (NodeInfo, Vec<NodeTimes>)> = HashMap::new();
    for (a, s) in baseline {
        for (path, (info, times)) in nodes_of(a, s) {
            let entry = all.entry(path).or_insert_with(|| (info.clone(), Vec::new()));
            entry.0.order = entry.0.order.min(info.order);
            entry.1.push(times);
        }
    }
    let median = |mut v: Vec<u64>| {
        v.sort_unstable();
        v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0)
    };
    let this = nodes_of(analysis, spans);
    let typical = all
        .into_iter()
        .filter(|(path, (_, seen))| this.contains_key(path) || 2 * seen.len() >= n)
        .map(|(path, (info, seen))| {
            let times = NodeTimes {
                self_time_us: median(seen.iter().map(|t| t.self_time_us).collect()),
                count: median(seen.iter().map(|t| t.count).collect()),
                start_offset_us: median(seen.iter().map(|t| t.start_offset_us).collect()),
                duration_us: median(seen.iter().map(|t| t.duration_us).collect()),
            };
            (path, (info, times))
        })
        .collect();
    let durations: Vec<u64> = baseline.iter().map(|(a, _)| a.duration_us).collect();
    Some(build(
        analysis,
        this,
        typical,
        median(durations),
        Baseline::Typical { traces: n },
        TYPICAL,
    ))
}

fn build(
    analysis: &TraceAnalysis,
    this: HashMap<Vec<Step>, (NodeInfo, NodeTimes)>,
    mut base: HashMap<Vec<Step>, (NodeInfo, NodeTimes)>,
    baseline_duration_us: u64,
    baseline: Baseline,
    words: &str,
) -> Comparison {
    let mut nodes: Vec<(usize, ComparedNode)> = Vec::with_capacity(this.len() + base.len());
    for (path, (info, times)) in this {
        let other = base.remove(&path).map(|(_, t)| t);
        nodes.push((info.order, node(info, times, other, true)));
    }
    for (_, (info, times)) in base {
        let order = usize::MAX / 2 + info.order;
        let mut n = node(info, NodeTimes::default(), Some(times), false);
        n.only_in = Some("baseline");
        n.delta_us = -(times.self_time_us as i64);
        nodes.push((order, n));
    }
    nodes.sort_by(|a, b| b.1.delta_us.cmp(&a.1.delta_us).then(a.0.cmp(&b.0)));
    let nodes: Vec<ComparedNode> = nodes.into_iter().map(|(_, n)| n).collect();
    Comparison {
        trace_id: analysis.trace_id,
        baseline,
        duration_us: analysis.duration_us,
        baseline_duration_us,
        delta_us: analysis.duration_us as i64 - baseline_duration_us as i64,
        verdict: verdict(&nodes, words),
        nodes,
    }
}

/// A compared node; `in_this` says whether this trace has it (then its first span id is
/// kept).
fn node(info: NodeInfo, this: NodeTimes, other: Option<NodeTimes>, in_this: bool) -> ComparedNode {
    let last = info.path.last().cloned().unwrap_or(Step {
        service: String::new(),
        operation: String::new(),
        peer: None,
    });
    let other_times = other.unwrap_or_default();
    ComparedNode {
        depth: info.path.len().saturating_sub(1),
        service: last.service,
        operation: last.operation,
        peer: last.peer,
        hop_kind: info.hop_kind,
        span_id: in_this.then_some(info.span_id),
        path: info.path,
        this,
        baseline_self_time_us: other_times.self_time_us,
        baseline_count: other_times.count,
        baseline_start_offset_us: other_times.start_offset_us,
        baseline_duration_us: other_times.duration_us,
        delta_us: this.self_time_us as i64 - other_times.self_time_us as i64,
        only_in: if other.is_none() { Some("trace") } else { None },
    }
}

/// The one-line verdict (see the module doc).
fn verdict(nodes: &[ComparedNode], words: &str) -> String {
    let noun = if words == TYPICAL {
        "the typical trace"
    } else {
        "the other trace"
    };
    let Some(top) = nodes.first().filter(|n| n.delta_us > 0) else {
        return format!("no node took longer than in {noun}");
    };
    let name = node_name(top);
    let delta = duration_words(top.delta_us.unsigned_abs());
    match top.only_in {
        Some(_) => format!("+{delta} in {name}, which {noun} does not have"),
        None => format!(
            "+{delta} in {name} vs {words} {}",
            duration_words(top.baseline_self_time_us)
        ),
    }
}

/// `GET on redis-shard-2:6379`, `the queue payments`, `payment: POST /charge`.
fn node_name(n: &ComparedNode) -> String {
    match &n.peer {
        Some(peer) if n.operation == QUEUE_WAIT => format!("the wait in queue {peer}"),
        Some(peer) => format!("{} on {peer}", n.operation),
        _ => format!("{}: {}", n.service, n.operation),
    }
}

/// `780 ms`, `3 ms`, `1.25 s`, `850 µs`.
pub fn duration_words(us: u64) -> String {
    if us >= 10_000_000 {
        format!("{:.1} s", us as f64 / 1e6)
    } else if us >= 1_000_000 {
        format!("{:.2} s", us as f64 / 1e6)
    } else if us >= 10_000 {
        format!("{} ms", (us + 500) / 1_000)
    } else if us >= 1_000 {
        format!("{:.1} ms", us as f64 / 1e3)
    } else {
        format!("{us} µs")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use hopscope_schemas::fixtures::{self, REDIS_TRACES, trace_id};

    use super::*;

    fn redis_trace(n: u64) -> Analysed {
        let id = trace_id(REDIS_TRACES + n);
        let spans: Vec<Arc<SpanRecord>> = fixtures::slow_redis_shard()
            .into_iter()
            .filter(|s| s.trace_id == id)
            .map(Arc::new)
            .collect();
        (analyze(id, &spans, None).unwrap(), spans)
    }

    #[test]
    fn against_another_trace_nodes_match_by_path() {
        // Trace 31 hit shard 2 in the incident; trace 1 hit it in the baseline.
        let (a, sa) = redis_trace(31);
        let (b, sb) = redis_trace(1);
        let c = compare_with_trace(&a, &sa, &b, &sb);
        assert_eq!(c.baseline, Baseline::Trace { trace_id: b.trace_id });
        assert_eq!(
            (c.duration_us, c.baseline_duration_us, c.delta_us),
            (42_000, 3_000, 39_000)
        );
        let top = &c.nodes[0];
        assert_eq!(
            (top.operation.as_str(), top.peer.as_deref()),
            ("GET", Some("redis-shard-2:6379"))
        );
        assert_eq!(
            (top.this.self_time_us, top.baseline_self_time_us, top.delta_us),
            (40_000, 1_000, 39_000)
        );
        assert_eq!(top.depth, 1);
        assert_eq!(top.path[0].operation, "GET /cart");
        assert_eq!(
            c.verdict,
            "+39 ms in GET on redis-shard-2:6379 vs the other trace's 1.0 ms"
        );
        // The entry's own time did not change.
        assert_eq!(c.nodes[1].delta_us, 0);
        assert!(c.nodes.iter().all(|n| n.only_in.is_none()));
    }

    #[test]
    fn against_the_typical_trace_of_a_window() {
        let (a, sa) = redis_trace(31);
        let baseline: Vec<Analysed> = (0..30).map(redis_trace).collect();
        let c = compare_with_typical(&a, &sa, &baseline).unwrap();
        assert_eq!(c.baseline, Baseline::Typical { traces: 30 });
        // Shard 2 was hit by a third of the baseline traces: its typical time is theirs.
        assert_eq!(c.nodes[0].baseline_self_time_us, 1_000);
        assert_eq!(c.verdict, "+39 ms in GET on redis-shard-2:6379 vs the typical 1.0 ms");
        // Shards this trace did not hit are in fewer than half the baseline traces.
        assert_eq!(c.nodes.len(), 2);
        assert!(compare_with_typical(&a, &sa, &[]).is_none());
    }

    #[test]
    fn nodes_on_one_side_only_and_queue_waits() {
        let spans: Vec<Arc<SpanRecord>> = fixtures::request_reply().into_iter().map(Arc::new).collect();
        let id = trace_id(fixtures::REPLY_TRACE);
        let a = analyze(id, &spans, None).unwrap();
        let c = compare_with_trace(&a, &spans, &a, &spans);
        assert!(c.nodes.iter().all(|n| n.delta_us == 0), "{:?}", c.nodes);
        assert_eq!(c.verdict, "no node took longer than in the other trace");
        let wait = c
            .nodes
            .iter()
            .find(|n| n.peer.as_deref() == Some("payments") && n.operation == QUEUE_WAIT)
            .unwrap();
        assert_eq!(wait.this.self_time_us, 100_000);
        assert_eq!(wait.hop_kind, HopKind::Mq);
        // Background work is not a node: the audit consumer is absent.
        assert!(c.nodes.iter().all(|n| n.operation != "audit process"));
        // Without the reply leg, the other side has nodes this one lacks.
        let fewer: Vec<Arc<SpanRecord>> = spans.iter().filter(|s| s.name != "INSERT invoices").cloned().collect();
        let b = analyze(id, &fewer, None).unwrap();
        let c = compare_with_trace(&b, &fewer, &a, &spans);
        let insert = c.nodes.iter().find(|n| n.operation == "INSERT invoices").unwrap();
        assert_eq!(insert.only_in, Some("baseline"));
        assert_eq!(insert.span_id, None);
        assert_eq!(c.nodes.last().unwrap().operation, "INSERT invoices");
        let c = compare_with_trace(&a, &spans, &b, &fewer);
        assert_eq!(
            c.nodes
                .iter()
                .find(|n| n.operation == "INSERT invoices")
                .unwrap()
                .only_in,
            Some("trace")
        );
    }

    #[test]
    fn durations_in_words() {
        assert_eq!(duration_words(850), "850 µs");
        assert_eq!(duration_words(3_000), "3.0 ms");
        assert_eq!(duration_words(780_400), "780 ms");
        assert_eq!(duration_words(1_250_000), "1.25 s");
        assert_eq!(duration_words(12_000_000), "12.0 s");
    }
}
