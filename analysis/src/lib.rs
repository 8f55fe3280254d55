//! Per-trace analysis: critical path, culprit and root-cause errors of one trace. Pure and
//! store-independent, so the query API, the blame aggregation ([`blame`]) and the UI all
//! call [`analyze`] on the spans a [`hopscope_storage::SpanReader`] returned.
//!
//! # Model
//!
//! - **Tree**: spans are linked by `parent_span_id` within the trace. The root is the
//!   requested span (blame analyses an entry operation's subtree), else the earliest span
//!   without a parent id (the longest on ties), else the earliest span whose parent is
//!   missing. Spans not under the root (orphans of missing parents) take no part in the
//!   critical path but do count for `errors`.
//! - **Asynchronous hops**: a child is asynchronous when it is a consumer span or its
//!   parent is a producer span. It is not folded into its parent: it may run after the
//!   parent returned, and then the time between the producer's end and the consumer's
//!   start is a separate `queue wait` item attributed to the queue (hop kind `mq`, peer =
//!   the consumer's or producer's peer, i.e. `messaging.destination.name`).
//! - **Clock skew**: hosts' clocks disagree, so a synchronous child may appear outside its
//!   parent. Children are adjusted top-down, each subtree moving with its top span:
//!   a child starting before its parent or after its parent's end is *shifted* (with its
//!   whole subtree) to fit inside the parent when it is not longer than the parent, then
//!   *clamped* to the parent's interval. A child that starts inside its parent but ends
//!   after it (the caller gave up: a timeout) is clamped at the parent's end, since work
//!   after the caller returned does not delay the caller. A consumer starting before its
//!   producer is shifted to the producer's start. Reported times are the adjusted ones.
//! - **Self time** of a span: its (adjusted) duration minus the union of its synchronous
//!   children's intervals. A queue wait's self time is the whole wait.
//! - **Critical path**: walking back from the end of the trace (the root's end, or later
//!   when an asynchronous consumer finishes later), at each span the child that finished
//!   last before the current point is on the path, then the one that finished last before
//!   that child started, and so on; the span's own time fills the gaps. Items are listed
//!   root first (by adjusted start, then depth), one per span (plus queue waits).
//! - **Culprit**: the path item with the largest self time (the deepest on ties), with
//!   `share` = its self time / the trace duration.
//! - **Errors**: root causes: every ERROR span none of whose descendants is ERROR (the
//!   deepest failing span of each failing chain), by start time.
//!
//! Cost: O(n log n) in the number of spans, iterative (no recursion, so deep traces cannot
//! overflow the stack); 10,000 spans take well under 10 ms (see `benches/README.md`).

pub mod blame;
pub mod rules;

use std::collections::HashMap;
use std::sync::Arc;

use hopscope_schemas::{CloudKind, HopKind, SpanId, SpanKind, SpanRecord, TraceId};
use serde::Serialize;

/// Operation name of queue-wait items.
pub const QUEUE_WAIT: &str = "queue wait";

/// What a critical-path item stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// A span.
    Span,
    /// The wait between a producer's end and its consumer's start.
    QueueWait,
}

/// One node on the critical path.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathItem {
    /// The span's id; for a queue wait, the consumer's.
    pub span_id: SpanId,
    /// Service; for a queue wait, the messaging system (`queue` when unknown).
    pub service: String,
    /// Span name; [`QUEUE_WAIT`] for a queue wait.
    pub operation: String,
    /// Hop kind (`mq` for a queue wait).
    pub hop_kind: HopKind,
    /// Peer instance (the queue for a queue wait).
    pub peer: Option<String>,
    /// Host the span ran on (none for a queue wait).
    pub host: Option<String>,
    /// Cloud kind of the span's resource (`unknown` for a queue wait).
    pub cloud_kind: CloudKind,
    /// Adjusted start, unix µs.
    pub start_us: u64,
    /// Adjusted duration, µs.
    pub duration_us: u64,
    /// Self time, µs.
    pub self_time_us: u64,
    /// Span or queue wait (not serialised; the operation name says it).
    #[serde(skip)]
    pub item: ItemKind,
    /// The span's kind (`Consumer` for a queue wait; not serialised).
    #[serde(skip)]
    pub span_kind: SpanKind,
}

/// The culprit: a path item and its share of the trace duration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Culprit {
    /// The item.
    #[serde(flatten)]
    pub item: PathItem,
    /// Self time / trace duration, 0..1.
    pub share: f64,
}

/// A root-cause failing span.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorSpan {
    /// Span id.
    pub span_id: SpanId,
    /// Service.
    pub service: String,
    /// Span name.
    pub operation: String,
    /// Hop kind.
    pub hop_kind: HopKind,
    /// Peer instance.
    pub peer: Option<String>,
    /// Host.
    pub host: Option<String>,
    /// Cloud kind.
    pub cloud_kind: CloudKind,
    /// Start, unix µs (as recorded).
    pub start_us: u64,
    /// Duration, µs.
    pub duration_us: u64,
    /// Status message.
    pub status_message: String,
    /// `exception.type` of its first exception event, if any.
    pub exception_type: Option<String>,
    /// The span's kind (not serialised).
    #[serde(skip)]
    pub span_kind: SpanKind,
}

/// The analysis of one trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceAnalysis {
    /// Trace id.
    pub trace_id: TraceId,
    /// From the root's start to the end of the critical path, µs.
    pub duration_us: u64,
    /// Root first.
    pub critical_path: Vec<PathItem>,
    /// The path item with the largest self time.
    pub culprit: Option<Culprit>,
    /// Root-cause failing spans.
    pub errors: Vec<ErrorSpan>,
}

const NONE: usize = usize::MAX;

/// Analyses one trace (see the module doc). `root` picks the span to analyse from (its
/// subtree); `None` picks the trace root. Returns `None` for no spans or an unknown
/// `root`.
pub fn analyze(trace_id: TraceId, spans: &[Arc<SpanRecord>], root: Option<SpanId>) -> Option<TraceAnalysis> {
    let n = spans.len();
    if n == 0 {
        return None;
    }
    let mut by_id: HashMap<SpanId, usize> = HashMap::with_capacity(n);
    for (i, span) in spans.iter().enumerate() {
        by_id.entry(span.span_id).or_insert(i);
    }
    let parent: Vec<usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| match s.parent_span_id.and_then(|p| by_id.get(&p)) {
            Some(&p) if p != i && by_id.get(&s.span_id) == Some(&i) => p,
            _ => NONE,
        })
        .collect();
    // Children in compressed form: kids[offset[p]..offset[p + 1]].
    let mut offset = vec![0usize; n + 1];
    for &p in &parent {
        if p != NONE {
            offset[p + 1] += 1;
        }
    }
    for i in 0..n {
        offset[i + 1] += offset[i];
    }
    let mut fill = offset.clone();
    let mut kids = vec![0usize; offset[n]];
    for (i, &p) in parent.iter().enumerate() {
        if p != NONE {
            kids[fill[p]] = i;
            fill[p] += 1;
        }
    }

    let root = match root {
        Some(id) => *by_id.get(&id)?,
        None => pick_root(spans, &parent),
    };
    let is_async = |c: usize, p: usize| spans[c].kind == SpanKind::Consumer || spans[p].kind == SpanKind::Producer;

    // Top-down: adjusted intervals, depth and a parents-first order of the root's subtree.
    let mut start = vec![0u64; n];
    let mut end = vec![0u64; n];
    let mut shift = vec![0i128; n];
    let mut depth = vec![0u32; n];
    let mut reached = vec![false; n];
    let mut order = Vec::with_capacity(n);
    start[root] = spans[root].start_time_unix_nano;
    end[root] = spans[root].end_time_unix_nano.max(start[root]);
    reached[root] = true;
    order.push(root);
    let mut next = 0;
    while next < order.len() {
        let x = order[next];
        next += 1;
        for &c in &kids[offset[x]..offset[x + 1]] {
            if reached[c] {
                continue;
            }
            reached[c] = true;
            depth[c] = depth[x] + 1;
            let raw_start = spans[c].start_time_unix_nano as i128 + shift[x];
            let dur = spans[c].duration_nanos() as i128;
            let (xs, xe) = (start[x] as i128, end[x] as i128);
            let mut s = raw_start;
            if is_async(c, x) {
                if s < xs {
                    s = xs;
                }
                shift[c] = shift[x] + (s - raw_start);
                start[c] = to_u64(s);
                end[c] = to_u64(s + dur);
            } else {
                if s < xs || s > xe {
                    if dur <= xe - xs {
                        s = if s < xs { xs } else { xe - dur };
                    } else {
                        s = s.clamp(xs, xe);
                    }
                }
                shift[c] = shift[x] + (s - raw_start);
                start[c] = to_u64(s.clamp(xs, xe));
                end[c] = to_u64((s + dur).clamp(xs, xe));
            }
            order.push(c);
        }
    }

    // Bottom-up: finish time (latest end in the subtree) and self time.
    let mut finish = end.clone();
    for &x in order.iter().rev() {
        let p = parent[x];
        if x != root && p != NONE && reached[p] {
            finish[p] = finish[p].max(finish[x]);
        }
    }
    let mut self_ns = vec![0u64; n];
    let mut intervals: Vec<(u64, u64)> = Vec::new();
    for &x in &order {
        intervals.clear();
        intervals.extend(
            kids[offset[x]..offset[x + 1]]
                .iter()
                .filter(|&&c| reached[c] && depth[c] == depth[x] + 1 && !is_async(c, x))
                .map(|&c| (start[c], end[c])),
        );
        intervals.sort_unstable();
        let mut covered = 0u64;
        let mut cur: Option<(u64, u64)> = None;
        for &(s, e) in &intervals {
            match cur {
                Some((cs, ce)) if s <= ce => cur = Some((cs, ce.max(e))),
                Some((cs, ce)) => {
                    covered += ce - cs;
                    cur = Some((s, e));
                }
                None => cur = Some((s, e)),
            }
        }
        if let Some((cs, ce)) = cur {
            covered += ce - cs;
        }
        self_ns[x] = (end[x] - start[x]).saturating_sub(covered);
    }

    // Children of each reached span by finish time, latest first, for the walk.
    for x in 0..n {
        if reached[x] {
            kids[offset[x]..offset[x + 1]]
                .sort_unstable_by(|&a, &b| finish[b].cmp(&finish[a]).then(start[b].cmp(&start[a])));
        }
    }

    // The backward walk, iterative.
    struct Frame {
        x: usize,
        t: u64,
        cursor: usize,
        after: usize,
    }
    let mut on_path = vec![false; n];
    let mut waits: Vec<(usize, usize)> = Vec::new();
    let mut stack = vec![Frame {
        x: root,
        t: finish[root],
        cursor: offset[root],
        after: NONE,
    }];
    while let Some(frame) = stack.last_mut() {
        let x = frame.x;
        on_path[x] = true;
        if frame.after != NONE {
            let c = frame.after;
            frame.after = NONE;
            if is_async(c, x) && start[c] > end[x] {
                waits.push((x, c));
                frame.t = frame.t.min(end[x]);
            } else {
                frame.t = frame.t.min(start[c]);
            }
        }
        let mut chosen = NONE;
        if frame.t > start[x] {
            while frame.cursor < offset[x + 1] {
                let c = kids[frame.cursor];
                frame.cursor += 1;
                if reached[c] && depth[c] == depth[x] + 1 && finish[c] <= frame.t && start[c] >= start[x] {
                    chosen = c;
                    break;
                }
            }
        }
        if chosen == NONE {
            stack.pop();
            continue;
        }
        frame.after = chosen;
        let t = frame.t.min(finish[chosen]);
        stack.push(Frame {
            x: chosen,
            t,
            cursor: offset[chosen],
            after: NONE,
        });
    }

    let mut path: Vec<(u64, u32, PathItem)> = Vec::new();
    for x in (0..n).filter(|&x| on_path[x]) {
        path.push((start[x], depth[x], item(&spans[x], start[x], end[x], self_ns[x])));
    }
    for &(p, c) in &waits {
        path.push((end[p], depth[c], queue_item(&spans[p], &spans[c], end[p], start[c])));
    }
    path.sort_by_key(|item| (item.0, item.1));
    let duration_ns = finish[root] - start[root];
    let culprit = path
        .iter()
        .max_by(|a, b| (a.2.self_time_us, a.1).cmp(&(b.2.self_time_us, b.1)))
        .map(|(_, _, item)| Culprit {
            item: item.clone(),
            share: if duration_ns == 0 {
                0.0
            } else {
                (item.self_time_us as f64 * 1_000.0 / duration_ns as f64).min(1.0)
            },
        });

    Some(TraceAnalysis {
        trace_id,
        duration_us: duration_ns / 1_000,
        critical_path: path.into_iter().map(|(_, _, item)| item).collect(),
        culprit,
        errors: root_causes(spans, &parent),
    })
}

fn to_u64(v: i128) -> u64 {
    u64::try_from(v.max(0)).unwrap_or(u64::MAX)
}

fn pick_root(spans: &[Arc<SpanRecord>], parent: &[usize]) -> usize {
    let key = |i: usize| {
        (
            spans[i].start_time_unix_nano,
            std::cmp::Reverse(spans[i].duration_nanos()),
        )
    };
    let true_roots = (0..spans.len()).filter(|&i| spans[i].parent_span_id.is_none());
    if let Some(root) = true_roots.min_by_key(|&i| key(i)) {
        return root;
    }
    (0..spans.len())
        .filter(|&i| parent[i] == NONE)
        .min_by_key(|&i| key(i))
        .unwrap_or(0)
}

fn item(span: &SpanRecord, start_ns: u64, end_ns: u64, self_ns: u64) -> PathItem {
    PathItem {
        span_id: span.span_id,
        service: span.service_name.clone(),
        operation: span.name.clone(),
        hop_kind: span.hop_kind,
        peer: span.peer.clone(),
        host: span.host.clone(),
        cloud_kind: span.cloud().kind,
        start_us: start_ns / 1_000,
        duration_us: (end_ns - start_ns) / 1_000,
        self_time_us: self_ns / 1_000,
        item: ItemKind::Span,
        span_kind: span.kind,
    }
}

fn queue_item(producer: &SpanRecord, consumer: &SpanRecord, from_ns: u64, to_ns: u64) -> PathItem {
    let system = hopscope_schemas::find_str(&consumer.attributes, "messaging.system")
        .or_else(|| hopscope_schemas::find_str(&producer.attributes, "messaging.system"))
        .unwrap_or("queue");
    let wait = (to_ns - from_ns) / 1_000;
    PathItem {
        span_id: consumer.span_id,
        service: system.to_owned(),
        operation: QUEUE_WAIT.to_owned(),
        hop_kind: HopKind::Mq,
        peer: consumer.peer.clone().or_else(|| producer.peer.clone()),
        host: None,
        cloud_kind: CloudKind::Unknown,
        start_us: from_ns / 1_000,
        duration_us: wait,
        self_time_us: wait,
        item: ItemKind::QueueWait,
        span_kind: SpanKind::Consumer,
    }
}

/// ERROR spans with no ERROR descendant, by start time.
fn root_causes(spans: &[Arc<SpanRecord>], parent: &[usize]) -> Vec<ErrorSpan> {
    let n = spans.len();
    let mut has_error_below = vec![false; n];
    for i in (0..n).filter(|&i| spans[i].is_error()) {
        let mut p = parent[i];
        let mut steps = 0;
        while p != NONE && p != i && !has_error_below[p] && steps < n {
            has_error_below[p] = true;
            p = parent[p];
            steps += 1;
        }
    }
    let mut out: Vec<&Arc<SpanRecord>> = (0..n)
        .filter(|&i| spans[i].is_error() && !has_error_below[i])
        .map(|i| &spans[i])
        .collect();
    out.sort_by_key(|s| (s.start_time_unix_nano, s.span_id));
    out.into_iter()
        .map(|s| ErrorSpan {
            span_id: s.span_id,
            service: s.service_name.clone(),
            operation: s.name.clone(),
            hop_kind: s.hop_kind,
            peer: s.peer.clone(),
            host: s.host.clone(),
            cloud_kind: s.cloud().kind,
            start_us: s.start_time_unix_nano / 1_000,
            duration_us: s.duration_nanos() / 1_000,
            status_message: s.status_message.clone(),
            exception_type: s
                .events
                .iter()
                .filter(|e| e.name == "exception")
                .find_map(|e| hopscope_schemas::find_str(&e.attributes, "exception.type"))
                .map(str::to_owned),
            span_kind: s.kind,
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
