//! Trace analysis: the blocking critical path, culprit, background work and root-cause
//! errors of one trace ([`analyze`]), blame over many traces ([`blame`]), trace
//! comparison ([`compare`]) and the configured SLA and layer rules ([`rules`]). Pure and
//! store-independent: the query API and the UI call it on the spans a
//! [`hopscope_storage::SpanReader`] returned, so both say the same.
//!
//! # Model: what blocked the response
//!
//! The question is why the root (the entry span) took as long as it did. Only work the
//! root waited for can explain that.
//!
//! - **Tree**: spans are linked by `parent_span_id` within the trace; a span whose parent
//!   is unknown but which links to a span of the same trace (OpenTelemetry messaging
//!   consumers often do) hangs off that span. The root is the requested span (blame
//!   analyses an entry operation's subtree), else the earliest span without a parent (the
//!   longest on ties), else the earliest span whose parent is missing. Spans not under the
//!   root take no part in the path but do count for `errors`.
//! - **Synchronous and asynchronous edges**: a child is asynchronous when it is a consumer,
//!   its parent is a producer, or it hangs off a link; every other child is synchronous:
//!   its parent waited for it.
//! - **Blocking chains**: an asynchronous span is *waited for* when, going up from it
//!   (at most [`MAX_CHAIN`] levels), a span of the same service started before it and
//!   ended after it (within `duration / `[`REPLY_TOLERANCE_DIVISOR`]` + 1 ms`): the
//!   reply of a request/reply over a queue, consumed in the chain of the span that
//!   published the request. Every edge from that waiter down to the reply is *blocking*,
//!   and counts only up to the waiter's end. Every other asynchronous edge is
//!   *background*: fire-and-forget work (an audit or notification consumer) that the
//!   response did not wait for.
//! - **Clock skew**: hosts' clocks disagree, so a synchronous child may appear outside its
//!   parent. Children are adjusted top-down, each subtree moving with its top span: a
//!   child starting before its parent or after its parent's end is *shifted* (with its
//!   subtree) to fit inside the parent when it is not longer than the parent, then
//!   *clamped* to the parent's interval; a child that starts inside a parent that did not
//!   fail and ends after it, while short enough to fit, has a clock ahead and is shifted
//!   back to end with the parent. A child that starts inside a failed parent (a timeout)
//!   and ends after it, or is longer than it, is *cut* at the parent's end: work after the
//!   caller gave up does not delay the caller. A child that began after its parent's cut
//!   end but within the parent's recorded time is such work too and gets no time. An
//!   asynchronous child keeps its own host's clock (a shift carries over only on the same
//!   host) and cannot start before its producer. Reported times are the adjusted ones;
//!   each span's shift and cut are in [`TraceAnalysis::timeline`].
//! - **Self time** of a span: its adjusted duration minus the union of the intervals of
//!   its synchronous children and of the blocking chains below it (from their start to
//!   the end of the work they waited for). Time a span spends waiting on a reply is not
//!   its own: it belongs to the queue waits and the work along the chain. A queue wait's
//!   self time is the whole wait, from the producer's end to the consumer's start.
//! - **Critical path**: walking back from the end of the root's work, at each span the
//!   synchronous child or blocking chain that finished last before the current point is on
//!   the path, then the one that finished last before that started, and so on; the span's
//!   own time fills the gaps. Crossing a blocking asynchronous edge whose consumer started
//!   after its producer ended adds a `queue wait` item (hop `mq`, peer = the queue, i.e.
//!   `messaging.destination.name`). Background edges are never crossed. Items are listed
//!   root first (by adjusted start, then depth), one per span (plus queue waits).
//! - **Culprit**: the node with the largest self time summed over the critical path: a
//!   peer instance for client and producer spans with a peer and for queue waits, else a
//!   service operation on one host (so three retries against one slow instance add up);
//!   the deepest on ties. `share` = that time / the root's response time.
//! - **Background**: each background edge is reported with its own critical path (the
//!   wait in its queue first) and culprit, so a slow audit job is visible without being
//!   blamed for the request.
//! - **Errors**: root causes: every ERROR span none of whose descendants is ERROR (the
//!   deepest failing span of each failing chain), by start time.
//!
//! Cost: O(n log n) in the number of spans plus O(n · [`MAX_CHAIN`]) for the waiter search,
//! iterative (no recursion, so deep traces cannot overflow the stack); 10,000 spans take
//! well under 10 ms (see `benches/README.md`).

pub mod blame;
pub mod compare;
pub mod rules;
mod timeline;
mod walk;

use std::collections::HashMap;
use std::sync::Arc;

use hopscope_schemas::{CloudKind, HopKind, SpanId, SpanKind, SpanRecord, TraceId};
use serde::Serialize;
pub use timeline::{Edge, MAX_CHAIN, REPLY_TOLERANCE_DIVISOR, SpanTiming};
use timeline::{NONE, Timeline};

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

/// The culprit: the node with the largest self time on a critical path (see
/// [`culprit_of`]), represented by its largest path item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Culprit {
    /// The node's largest item.
    #[serde(flatten)]
    pub item: PathItem,
    /// The node's self time on the path / the duration the path explains, 0..1.
    pub share: f64,
    /// The node's self time summed over its items on the path (retries, loops), µs.
    pub node_self_time_us: u64,
    /// How many path items the node has.
    pub node_items: usize,
}

/// Work that hangs off a fire-and-forget edge (a consumer of a message nobody on the
/// request's side waited for) and everything below it: not part of the response time,
/// reported with its own critical path and culprit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackgroundWork {
    /// The span that hangs off the edge (typically a consumer).
    pub span_id: SpanId,
    /// Its parent: the producer (or the span it links to).
    pub trigger_span_id: SpanId,
    /// The consumer's service.
    pub service: String,
    /// The consumer's operation.
    pub operation: String,
    /// The queue (the consumer's or the producer's peer), if known.
    pub queue: Option<String>,
    /// From the producer's end (or the consumer's start when earlier), unix µs.
    pub start_us: u64,
    /// From `start_us` until the background work finished, µs.
    pub duration_us: u64,
    /// Its critical path, the queue wait first when there was one.
    pub critical_path: Vec<PathItem>,
    /// Its culprit.
    pub culprit: Option<Culprit>,
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
    /// The root's response time: from its start to the end of the work it waited for, µs.
    pub duration_us: u64,
    /// The blocking critical path, root first.
    pub critical_path: Vec<PathItem>,
    /// The node with the largest self time on the critical path.
    pub culprit: Option<Culprit>,
    /// Fire-and-forget work below the root, by start; never on the critical path.
    pub background: Vec<BackgroundWork>,
    /// Root-cause failing spans.
    pub errors: Vec<ErrorSpan>,
    /// Every span of the analysed subtree with its adjusted times, parents first (not
    /// serialised; the UI's waterfall and the comparison read it).
    #[serde(skip)]
    pub timeline: Vec<SpanTiming>,
}

/// Analyses one trace (see the crate doc). `root` picks the span to analyse from (its
/// subtree); `None` picks the trace root. Returns `None` for no spans or an unknown
/// `root`.
pub fn analyze(trace_id: TraceId, spans: &[Arc<SpanRecord>], root: Option<SpanId>) -> Option<TraceAnalysis> {
    let t = Timeline::build(spans, root)?;
    let duration_ns = t.finish[t.root] - t.start[t.root];
    let critical_path = path_items(&t, t.root, None);
    let culprit = culprit_of(critical_path.iter(), duration_ns / 1_000);
    let background = background_work(&t);
    let timeline = t
        .order
        .iter()
        .map(|&x| SpanTiming {
            index: x,
            span_id: spans[x].span_id,
            parent: (x != t.root).then_some(t.parent[x]),
            depth: t.depth[x],
            edge: t.edge[x],
            background: t.background[x],
            start_ns: t.start[x],
            end_ns: t.end[x],
            shift_ns: i64::try_from(t.shift[x]).unwrap_or(if t.shift[x] < 0 { i64::MIN } else { i64::MAX }),
            clamped_ns: t.clamped[x],
            self_ns: t.self_ns[x],
            finish_ns: t.finish[x],
        })
        .collect::<Vec<_>>();
    // Parents by their position in `timeline`, not in `spans`.
    let mut at = vec![usize::MAX; spans.len()];
    for (i, timing) in timeline.iter().enumerate() {
        at[timing.index] = i;
    }
    let timeline = timeline
        .into_iter()
        .map(|mut timing| {
            timing.parent = timing.parent.map(|p| at[p]);
            timing
        })
        .collect();
    Some(TraceAnalysis {
        trace_id,
        duration_us: duration_ns / 1_000,
        critical_path,
        culprit,
        background,
        errors: root_causes(spans, &t.parent),
        timeline,
    })
}

/// The culprit among `items`: the node with the largest summed self time (the deepest
/// on ties, then the earliest), represented by its largest item; `share` is the node's
/// self time over `duration_us`. A node is a peer instance for client and producer spans
/// with a peer and for queue waits, else a service operation on one host.
pub fn culprit_of<'a>(items: impl Iterator<Item = &'a PathItem>, duration_us: u64) -> Option<Culprit> {
    // Per node: summed self time, items, its largest item, its last position.
    let mut nodes: HashMap<CulpritNode<'a>, (u64, usize, &'a PathItem, usize)> = HashMap::new();
    for (position, item) in items.enumerate() {
        let node = nodes.entry(CulpritNode::of(item)).or_insert((0, 0, item, position));
        node.0 += item.self_time_us;
        node.1 += 1;
        if item.self_time_us > node.2.self_time_us {
            node.2 = item;
        }
        node.3 = position;
    }
    let (total, count, item, _) = nodes.into_values().max_by(|a, b| a.0.cmp(&b.0).then(a.3.cmp(&b.3)))?;
    Some(Culprit {
        item: item.clone(),
        share: if duration_us == 0 {
            0.0
        } else {
            (total as f64 / duration_us as f64).min(1.0)
        },
        node_self_time_us: total,
        node_items: count,
    })
}

/// What the culprit groups path items by.
#[derive(PartialEq, Eq, Hash)]
enum CulpritNode<'a> {
    Peer(HopKind, &'a str),
    Operation(&'a str, &'a str, Option<&'a str>),
}

impl<'a> CulpritNode<'a> {
    fn of(item: &'a PathItem) -> Self {
        match (&item.peer, item.item, item.span_kind) {
            (Some(peer), ItemKind::QueueWait, _) => Self::Peer(HopKind::Mq, peer),
            (Some(peer), ItemKind::Span, SpanKind::Client | SpanKind::Producer) => Self::Peer(item.hop_kind, peer),
            _ => Self::Operation(&item.service, &item.operation, item.host.as_deref()),
        }
    }
}

/// The items of the critical path from `from` (root first, by adjusted start then
/// depth), with a leading queue wait from `producer`'s end when given.
fn path_items(t: &Timeline<'_>, from: usize, producer: Option<usize>) -> Vec<PathItem> {
    let (spans_on_path, waits) = walk::critical_path(t, from);
    let mut path: Vec<(u64, u32, PathItem)> = Vec::with_capacity(spans_on_path.len() + waits.len() + 1);
    for x in spans_on_path {
        path.push((
            t.start[x],
            t.depth[x],
            item(&t.spans[x], t.start[x], t.end[x], t.self_ns[x]),
        ));
    }
    let leading = producer.filter(|&p| t.start[from] > t.end[p]).map(|p| (p, from));
    for (p, c) in waits.into_iter().chain(leading) {
        path.push((
            t.end[p],
            t.depth[c],
            queue_item(&t.spans[p], &t.spans[c], t.end[p], t.start[c]),
        ));
    }
    path.sort_by_key(|item| (item.0, item.1));
    path.into_iter().map(|(_, _, item)| item).collect()
}

/// One entry per background edge: the span that hangs off it, its critical path
/// (starting with the wait in the queue when it started after its producer ended) and
/// culprit. By start.
fn background_work(t: &Timeline<'_>) -> Vec<BackgroundWork> {
    let mut out: Vec<BackgroundWork> = t
        .order
        .iter()
        .filter(|&&c| t.edge[c] == Edge::Background)
        .map(|&c| {
            let p = t.parent[c];
            let critical_path = path_items(t, c, Some(p));
            let from = t.end[p].min(t.start[c]);
            let duration_us = (t.finish[c] - from) / 1_000;
            BackgroundWork {
                span_id: t.spans[c].span_id,
                trigger_span_id: t.spans[p].span_id,
                service: t.spans[c].service_name.clone(),
                operation: t.spans[c].name.clone(),
                queue: t.spans[c].peer.clone().or_else(|| t.spans[p].peer.clone()),
                start_us: from / 1_000,
                duration_us,
                culprit: culprit_of(critical_path.iter(), duration_us),
                critical_path,
            }
        })
        .collect();
    out.sort_by_key(|b| (b.start_us, b.span_id));
    out
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
