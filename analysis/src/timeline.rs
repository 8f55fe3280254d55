//! The timeline of one trace: its span tree, each span's skew-adjusted interval, which
//! edges block their parent and which run in the background, and self times. Built once
//! per analysis; the critical path ([`crate::walk`]), the comparison ([`crate::compare`])
//! and the UI's waterfall read it. The rules are the crate's model (see the crate doc).

use std::collections::HashMap;
use std::sync::Arc;

use hopscope_schemas::{SpanId, SpanKind, SpanRecord};
use serde::Serialize;

/// No index.
pub(crate) const NONE: usize = usize::MAX;

/// How a span hangs off its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Edge {
    /// The analysed root (no parent edge).
    Root,
    /// A synchronous child: the parent waits for it.
    Sync,
    /// An asynchronous child (consumer, or child of a producer, or linked) on a chain the
    /// parent's side waited for: a reply consumed by the waiting service.
    Blocking,
    /// An asynchronous child nobody on the request's side waited for (fire-and-forget).
    Background,
}

/// One span of the analysed subtree, with its adjusted interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpanTiming {
    /// Position of the span in the slice given to [`crate::analyze`].
    #[serde(skip)]
    pub index: usize,
    /// Span id.
    pub span_id: SpanId,
    /// Parent's position in [`crate::TraceAnalysis::timeline`], `None` for the root.
    #[serde(skip)]
    pub parent: Option<usize>,
    /// Depth below the analysed root (0 for it).
    pub depth: u32,
    /// How it hangs off its parent.
    pub edge: Edge,
    /// Whether it runs in the background (it or an ancestor hangs off a
    /// [`Edge::Background`] edge): not part of the request's response time.
    pub background: bool,
    /// Adjusted start, unix ns.
    pub start_ns: u64,
    /// Adjusted end, unix ns.
    pub end_ns: u64,
    /// Adjusted start minus recorded start, ns (clock-skew correction; 0 when none).
    pub shift_ns: i64,
    /// Recorded duration minus adjusted duration, ns (cut at the caller's end: the caller
    /// gave up, e.g. a timeout; 0 when none).
    pub clamped_ns: u64,
    /// Self time, ns: adjusted duration minus the union of the intervals of the children
    /// and blocking chains it waited for.
    pub self_ns: u64,
    /// When the work it waited for was done: its end, or later where a blocking chain
    /// below it ended later (within [`REPLY_TOLERANCE_DIVISOR`]).
    pub finish_ns: u64,
}

/// A waiting span counts a reply consumed up to `duration / REPLY_TOLERANCE_DIVISOR + 1 ms`
/// after its own end as one it waited for (reply consumers may run on another instance
/// of the service, whose clock differs a little).
pub const REPLY_TOLERANCE_DIVISOR: u64 = 20;

/// How far up from an asynchronous span the search for the span that waited for it goes.
pub const MAX_CHAIN: usize = 64;

/// The built timeline (internal form; [`crate::TraceAnalysis::timeline`] exposes the
/// spans in parents-first order).
pub(crate) struct Timeline<'a> {
    pub spans: &'a [Arc<SpanRecord>],
    /// Parent of each span (by slice position), or [`NONE`].
    pub parent: Vec<usize>,
    /// Children, in compressed form: `kids[offset[p]..offset[p + 1]]`.
    pub offset: Vec<usize>,
    pub kids: Vec<usize>,
    /// Whether the span's parent edge comes from a link rather than a parent id.
    pub linked: Vec<bool>,
    pub root: usize,
    /// Spans of the root's subtree, parents first.
    pub order: Vec<usize>,
    pub reached: Vec<bool>,
    pub depth: Vec<u32>,
    pub start: Vec<u64>,
    pub end: Vec<u64>,
    pub shift: Vec<i128>,
    pub clamped: Vec<u64>,
    pub edge: Vec<Edge>,
    pub background: Vec<bool>,
    pub finish: Vec<u64>,
    /// Latest finish a span on a blocking chain may have: its waiter's end.
    pub cap: Vec<u64>,
    pub self_ns: Vec<u64>,
}

impl<'a> Timeline<'a> {
    /// Builds the timeline of `root`'s subtree (`None`: the trace root). `None` when
    /// there are no spans or `root` is unknown.
    pub fn build(spans: &'a [Arc<SpanRecord>], root: Option<SpanId>) -> Option<Self> {
        let n = spans.len();
        if n == 0 {
            return None;
        }
        let mut by_id: HashMap<SpanId, usize> = HashMap::with_capacity(n);
        for (i, span) in spans.iter().enumerate() {
            by_id.entry(span.span_id).or_insert(i);
        }
        let (parent, linked) = parents(spans, &by_id);
        let root = match root {
            Some(id) => *by_id.get(&id)?,
            None => pick_root(spans, &parent),
        };
        let (offset, kids) = children(&parent);
        let mut t = Timeline {
            spans,
            parent,
            offset,
            kids,
            linked,
            root,
            order: Vec::with_capacity(n),
            reached: vec![false; n],
            depth: vec![0; n],
            start: vec![0; n],
            end: vec![0; n],
            shift: vec![0; n],
            clamped: vec![0; n],
            edge: vec![Edge::Sync; n],
            background: vec![false; n],
            finish: vec![0; n],
            cap: vec![u64::MAX; n],
            self_ns: vec![0; n],
        };
        t.adjust_times();
        t.classify_async_edges();
        t.finish_and_self_times();
        t.sort_children_by_finish();
        Some(t)
    }

    /// Children of each reached span by finish, latest first (then latest start): the
    /// order the backward walk tries them in.
    fn sort_children_by_finish(&mut self) {
        let (finish, start) = (&self.finish, &self.start);
        for x in 0..self.spans.len() {
            if self.reached[x] {
                self.kids[self.offset[x]..self.offset[x + 1]]
                    .sort_unstable_by(|&a, &b| finish[b].cmp(&finish[a]).then(start[b].cmp(&start[a])));
            }
        }
    }

    pub fn children(&self, x: usize) -> &[usize] {
        &self.kids[self.offset[x]..self.offset[x + 1]]
    }

    /// Whether `c` hangs off its parent asynchronously: a consumer, a child of a producer,
    /// or a span attached by a link.
    pub fn is_async(&self, c: usize) -> bool {
        let p = self.parent[c];
        p != NONE
            && (self.spans[c].kind == SpanKind::Consumer || self.spans[p].kind == SpanKind::Producer || self.linked[c])
    }

    /// Whether `c` is a child of `x` the walk may follow: in the tree below the root once,
    /// and not a background edge.
    pub fn follows(&self, x: usize, c: usize) -> bool {
        self.reached[c] && self.parent[c] == x && self.depth[c] == self.depth[x] + 1 && self.edge[c] != Edge::Background
    }

    /// Top-down: adjusted intervals, depth and a parents-first order of the root's
    /// subtree (see the crate doc, "Clock skew").
    fn adjust_times(&mut self) {
        let spans = self.spans;
        let root = self.root;
        self.start[root] = spans[root].start_time_unix_nano;
        self.end[root] = spans[root].end_time_unix_nano.max(self.start[root]);
        self.reached[root] = true;
        self.edge[root] = Edge::Root;
        self.order.push(root);
        let mut next = 0;
        while next < self.order.len() {
            let x = self.order[next];
            next += 1;
            for k in self.offset[x]..self.offset[x + 1] {
                let c = self.kids[k];
                if self.reached[c] {
                    continue;
                }
                self.reached[c] = true;
                self.depth[c] = self.depth[x] + 1;
                let dur = spans[c].duration_nanos() as i128;
                let (xs, xe) = (self.start[x] as i128, self.end[x] as i128);
                if self.is_async(c) {
                    // Another host's clock says nothing about this one's: only a shift of the
                    // same host carries over. A consumer cannot start before its producer.
                    let inherited = if spans[c].host == spans[x].host {
                        self.shift[x]
                    } else {
                        0
                    };
                    let raw_start = spans[c].start_time_unix_nano as i128;
                    let s = (raw_start + inherited).max(xs);
                    self.shift[c] = s - raw_start;
                    self.start[c] = to_u64(s);
                    self.end[c] = to_u64(s + dur);
                } else {
                    let raw_start = spans[c].start_time_unix_nano as i128 + self.shift[x];
                    let mut s = raw_start;
                    let cut = self.clamped[x] as i128;
                    if cut > 0 && s >= xe && s <= xe + cut {
                        // Begun after the caller gave up, within the parent's recorded time:
                        // real work nobody waited for, not a skewed clock. It takes none of
                        // the caller's time.
                        s = xe;
                    } else if s < xs || s > xe {
                        if dur <= xe - xs {
                            s = if s < xs { xs } else { xe - dur };
                        } else {
                            s = s.clamp(xs, xe);
                        }
                    } else if s + dur > xe && dur <= xe - xs && !spans[x].is_error() {
                        // Starts inside, ends after a parent that did not fail (no timeout)
                        // and is long enough to hold it: the child's clock is ahead.
                        s = xe - dur;
                    }
                    self.shift[c] = self.shift[x] + (s - raw_start);
                    self.start[c] = to_u64(s.clamp(xs, xe));
                    self.end[c] = to_u64((s + dur).clamp(xs, xe));
                    self.clamped[c] = (dur.max(0) as u64).saturating_sub(self.end[c] - self.start[c]);
                }
                self.order.push(c);
            }
        }
    }

    /// Marks each asynchronous edge blocking or background. An asynchronous span `c` is a
    /// reply someone waited for when an ancestor `w` (at most [`MAX_CHAIN`] levels up)
    /// runs in the same service, started before `c` and ended no earlier than `c` (within
    /// the tolerance): then every edge on the chain from `w` down to `c` blocks, and the
    /// chain's work counts only up to `w`'s end. Every other asynchronous edge is
    /// background.
    fn classify_async_edges(&mut self) {
        let n = self.spans.len();
        let mut blocking = vec![false; n];
        for i in 0..self.order.len() {
            let c = self.order[i];
            if !self.is_async(c) {
                continue;
            }
            if let Some(waiter) = self.waiter_of(c) {
                let mut x = c;
                while x != waiter && x != NONE {
                    blocking[x] = true;
                    self.cap[x] = self.cap[x].min(self.end[waiter]);
                    x = self.parent[x];
                }
            }
        }
        for &c in &self.order[1..] {
            if self.is_async(c) {
                self.edge[c] = if blocking[c] { Edge::Blocking } else { Edge::Background };
            }
        }
        for i in 1..self.order.len() {
            let c = self.order[i];
            self.background[c] = self.edge[c] == Edge::Background || self.background[self.parent[c]];
        }
    }

    /// The span that waited for the asynchronous span `c` (see
    /// [`Self::classify_async_edges`]), if any.
    fn waiter_of(&self, c: usize) -> Option<usize> {
        let service = &self.spans[c].service_name;
        let mut x = self.parent[c];
        for _ in 0..MAX_CHAIN {
            if x == NONE || !self.reached[x] {
                return None;
            }
            if self.spans[x].service_name == *service {
                let tolerance = (self.end[x] - self.start[x]) / REPLY_TOLERANCE_DIVISOR + 1_000_000;
                if self.start[x] <= self.start[c] && self.end[c] <= self.end[x] + tolerance {
                    return Some(x);
                }
            }
            if x == self.root {
                return None;
            }
            x = self.parent[x];
        }
        None
    }

    /// Bottom-up: when the work each span waited for was done (capped at its waiter's end
    /// on a blocking chain), and self times.
    fn finish_and_self_times(&mut self) {
        self.finish.clone_from(&self.end);
        for &x in self.order.iter().rev() {
            self.finish[x] = self.finish[x].min(self.cap[x]).max(self.start[x]);
            let p = self.parent[x];
            if x != self.root && self.edge[x] != Edge::Background {
                self.finish[p] = self.finish[p].max(self.finish[x]);
            }
        }
        let mut intervals: Vec<(u64, u64)> = Vec::new();
        for i in 0..self.order.len() {
            let x = self.order[i];
            let (xs, xe) = (self.start[x], self.end[x]);
            intervals.clear();
            for &c in self.children(x) {
                if self.follows(x, c) {
                    let (s, e) = (self.start[c].max(xs), self.finish[c].min(xe));
                    if s < e {
                        intervals.push((s, e));
                    }
                }
            }
            self.self_ns[x] = (xe - xs).saturating_sub(union_length(&mut intervals));
        }
    }
}

/// Position of the trace root [`Timeline::build`] picks with no root given; `None` for
/// no spans.
pub(crate) fn root_of(spans: &[Arc<SpanRecord>]) -> Option<usize> {
    if spans.is_empty() {
        return None;
    }
    let mut by_id: HashMap<SpanId, usize> = HashMap::with_capacity(spans.len());
    for (i, span) in spans.iter().enumerate() {
        by_id.entry(span.span_id).or_insert(i);
    }
    Some(pick_root(spans, &parents(spans, &by_id).0))
}

/// Parent of each span by position, from its parent id, or for a span without a known
/// parent, from a link to a span of the same trace (`linked`).
fn parents(spans: &[Arc<SpanRecord>], by_id: &HashMap<SpanId, usize>) -> (Vec<usize>, Vec<bool>) {
    let n = spans.len();
    let mut linked = vec![false; n];
    let parent = spans
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if by_id.get(&s.span_id) != Some(&i) {
                return NONE;
            }
            if let Some(&p) = s.parent_span_id.and_then(|p| by_id.get(&p))
                && p != i
            {
                return p;
            }
            let link = s
                .links
                .iter()
                .filter(|l| l.trace_id == s.trace_id)
                .find_map(|l| by_id.get(&l.span_id).copied().filter(|&p| p != i));
            match link {
                Some(p) => {
                    linked[i] = true;
                    p
                }
                None => NONE,
            }
        })
        .collect();
    (parent, linked)
}

fn children(parent: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let n = parent.len();
    let mut offset = vec![0usize; n + 1];
    for &p in parent {
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
    (offset, kids)
}

/// The trace root: the earliest span without a parent (the longest on ties), else the
/// earliest span whose parent is missing.
fn pick_root(spans: &[Arc<SpanRecord>], parent: &[usize]) -> usize {
    let key = |i: usize| {
        (
            spans[i].start_time_unix_nano,
            std::cmp::Reverse(spans[i].duration_nanos()),
        )
    };
    let true_roots = (0..spans.len()).filter(|&i| spans[i].parent_span_id.is_none() && parent[i] == NONE);
    if let Some(root) = true_roots.min_by_key(|&i| key(i)) {
        return root;
    }
    (0..spans.len())
        .filter(|&i| parent[i] == NONE)
        .min_by_key(|&i| key(i))
        .unwrap_or(0)
}

/// Total length of the union of `intervals` (sorted in place).
fn union_length(intervals: &mut [(u64, u64)]) -> u64 {
    intervals.sort_unstable();
    let mut covered = 0u64;
    let mut cur: Option<(u64, u64)> = None;
    for &(s, e) in intervals.iter() {
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
    covered
}

pub(crate) fn to_u64(v: i128) -> u64 {
    u64::try_from(v.max(0)).unwrap_or(u64::MAX)
}
