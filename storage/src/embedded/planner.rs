//! Searches, trace assembly and the Jaeger aggregates, walking blocks in chunks and
//! taking the read lock once per chunk so writers are never held up for long.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use hopscope_schemas::{SpanId, SpanRecord, TraceId};
use parking_lot::RwLock;
use rustc_hash::FxHashMap;

use super::block::{Block, Row};
use super::intern::{Catalog, KINDS};
use super::postings::{op_key, service_key, term_is_complete, term_key};
use super::state::State;
use super::trace_map::Loc;
use crate::matching::{effective_limit, span_matches};
use crate::query::{DependencyLink, Operation, OperationQuery, Trace, TraceQuery};

/// Rows visited per read-lock acquisition.
pub(crate) const CHUNK: usize = 4096;
/// Traces assembled per read-lock acquisition.
const TRACE_CHUNK: usize = 16;

/// A query's filters resolved against the catalog.
struct Filter<'q> {
    query: &'q TraceQuery,
    low: u64,
    high: u64,
    min_duration: u64,
    max_duration: u64,
    service: Option<u32>,
    op: Option<u32>,
    /// An operation filter without a service: compared by name.
    op_name: Option<&'q str>,
    /// Lists that hold every matching row: service, operation (`false`) and complete tag
    /// terms (`true`, whose rows include those of resources with the term).
    keys: Vec<(u64, bool)>,
}

/// The rows of a block worth checking.
enum Candidates<'b> {
    All(usize),
    List(Cow<'b, [u16]>),
}

impl Candidates<'_> {
    fn len(&self) -> usize {
        match self {
            Candidates::All(n) => *n,
            Candidates::List(rows) => rows.len(),
        }
    }

    fn get(&self, i: usize) -> Option<usize> {
        match self {
            Candidates::All(_) => Some(i),
            Candidates::List(rows) => rows.get(i).map(|r| *r as usize),
        }
    }
}

impl<'q> Filter<'q> {
    /// `None` when nothing stored can match (unknown service or operation).
    fn resolve(catalog: &Catalog, query: &'q TraceQuery, low: u64, high: u64) -> Option<Self> {
        let mut filter = Filter {
            query,
            low,
            high,
            min_duration: query.min_duration_ns.unwrap_or(0),
            max_duration: query.max_duration_ns.unwrap_or(u64::MAX),
            service: None,
            op: None,
            op_name: None,
            keys: Vec::new(),
        };
        if let Some(service) = query.service.as_deref() {
            let sid = catalog.service_id(service)?;
            filter.service = Some(sid);
            filter.keys.push((service_key(sid), false));
            if let Some(name) = query.operation.as_deref() {
                let oid = catalog.op_id(sid, name)?;
                filter.op = Some(oid);
                filter.keys.push((op_key(oid), false));
            }
        } else {
            filter.op_name = query.operation.as_deref();
        }
        for tag in &query.tags {
            if term_is_complete(&tag.key, &tag.value) {
                filter.keys.push((term_key(&tag.key, &tag.value), true));
            }
        }
        Some(filter)
    }

    /// The shortest list of the block holding every matching row; `None` when a
    /// required list is missing, so no row of the block matches.
    fn candidates<'b>(&self, block: &'b Block) -> Option<Candidates<'b>> {
        let mut best: Option<(u64, bool, usize)> = None;
        for (key, is_term) in &self.keys {
            let len = if *is_term {
                block.term_rows_len(*key)?
            } else {
                block.postings.get(*key)?.len()
            };
            if best.is_none_or(|b| len < b.2) {
                best = Some((*key, *is_term, len));
            }
        }
        Some(match best {
            Some((key, true, _)) => Candidates::List(block.term_rows(key)?),
            Some((key, false, _)) => Candidates::List(Cow::Borrowed(block.postings.get(key)?)),
            None => Candidates::All(block.rows.len()),
        })
    }

    /// Every filter that the hot row answers.
    fn hot_ok(&self, row: &Row, catalog: &Catalog) -> bool {
        let duration = row.duration();
        !row.is_dead()
            && row.start_ns >= self.low
            && row.start_ns <= self.high
            && duration >= self.min_duration
            && duration <= self.max_duration
            && self.service.is_none_or(|s| row.service == s)
            && self.op.is_none_or(|o| row.op == o)
            && self.op_name.is_none_or(|n| catalog.op_name(row.op) == n)
            && self.query.span_kind.is_none_or(|k| row.kind == k)
    }
}

/// Runs a trace search (see [`crate::SpanReader::find_traces`]).
///
/// Blocks are walked by descending largest start time, each newest row first, keeping
/// each trace's newest matching start. Once `limit` traces are known, rows and blocks
/// older than the `limit`-th best start cannot change the answer and are skipped.
pub(crate) fn find_traces(lock: &RwLock<State>, query: &TraceQuery) -> Vec<Trace> {
    let low = query.start_ns.unwrap_or(0);
    let high = query.end_ns.unwrap_or(u64::MAX);
    if low > high || query.min_duration_ns.unwrap_or(0) > query.max_duration_ns.unwrap_or(u64::MAX) {
        return Vec::new();
    }
    let limit = effective_limit(query.limit);
    let mut order: Vec<(u64, u64)> = {
        let state = lock.read();
        state
            .blocks
            .iter()
            .filter(|b| b.live > 0 && b.max_start >= low && b.min_start <= high)
            .map(|b| (b.max_start, b.seq))
            .collect()
    };
    order.sort_unstable_by(|a, b| b.cmp(a));
    let mut best: FxHashMap<TraceId, u64> = FxHashMap::default();
    let mut floor = 0u64;
    for (max_start, seq) in order {
        if best.len() >= limit && max_start < floor {
            break;
        }
        let mut end: Option<usize> = None;
        loop {
            let state = lock.read();
            let Some(block) = state.block(seq) else {
                break;
            };
            let Some(filter) = Filter::resolve(&state.catalog, query, low.max(floor), high) else {
                return Vec::new();
            };
            let Some(candidates) = filter.candidates(block) else {
                break;
            };
            let stop = end.unwrap_or(candidates.len()).min(candidates.len());
            let start = stop.saturating_sub(CHUNK);
            for i in (start..stop).rev() {
                let Some(r) = candidates.get(i) else { continue };
                let Some(row) = block.rows.get(r) else {
                    continue;
                };
                if row.start_ns < floor || !filter.hot_ok(row, &state.catalog) {
                    continue;
                }
                if best.get(&row.trace_id).is_some_and(|b| *b >= row.start_ns) {
                    continue;
                }
                if !query.tags.is_empty()
                    && !block
                        .decode(r, &state.catalog)
                        .is_some_and(|span| span_matches(&span, query))
                {
                    continue;
                }
                best.insert(row.trace_id, row.start_ns);
            }
            drop(state);
            if best.len() >= limit {
                floor = kth_largest(&mut best, limit);
            }
            if start == 0 {
                break;
            }
            end = Some(start);
        }
    }
    let mut found: Vec<(u64, TraceId)> = best.into_iter().map(|(t, s)| (s, t)).collect();
    found.sort_unstable_by(|a, b| b.cmp(a));
    found.truncate(limit);
    let ids: Vec<TraceId> = found.into_iter().map(|f| f.1).collect();
    traces(lock, &ids)
}

/// The `k`-th largest start among the traces found; drops the traces below it.
fn kth_largest(best: &mut FxHashMap<TraceId, u64>, k: usize) -> u64 {
    let mut starts: Vec<u64> = best.values().copied().collect();
    let Some(i) = k.checked_sub(1) else { return 0 };
    if i >= starts.len() {
        return 0;
    }
    let (_, kth, _) = starts.select_nth_unstable_by(i, |a, b| b.cmp(a));
    let kth = *kth;
    best.retain(|_, s| *s >= kth);
    kth
}

/// Assembles whole traces (skipping any evicted meanwhile), in the order given.
pub(crate) fn traces(lock: &RwLock<State>, ids: &[TraceId]) -> Vec<Trace> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(TRACE_CHUNK) {
        let state = lock.read();
        for id in chunk {
            if let Some(trace) = trace(&state, *id) {
                out.push(trace);
            }
        }
    }
    out
}

/// One whole trace, spans sorted by start.
pub(crate) fn trace(state: &State, trace_id: TraceId) -> Option<Trace> {
    let locs = state.trace_locs(&trace_id)?;
    let mut spans: Vec<Arc<SpanRecord>> = locs.iter().filter_map(|loc| state.decode(*loc).map(Arc::new)).collect();
    sort_spans(&mut spans);
    Some(Trace { trace_id, spans })
}

/// Sorts a trace's spans by start time (span id breaks ties, for stable output).
pub(crate) fn sort_spans(spans: &mut [Arc<SpanRecord>]) {
    spans.sort_by_key(|a| (a.start_time_unix_nano, a.span_id));
}

/// Operations of a service (see [`crate::SpanReader::operations`]).
pub(crate) fn operations(state: &State, query: &OperationQuery) -> Vec<Operation> {
    let mut out = Vec::new();
    for (name, kinds) in state.catalog.operations(&query.service) {
        for (slot, kind) in KINDS.iter().enumerate() {
            if kinds[slot] > 0 && query.span_kind.is_none_or(|k| k == *kind) {
                out.push(Operation {
                    name: name.clone(),
                    span_kind: *kind,
                });
            }
        }
    }
    out
}

/// The stored span of a trace with this id.
pub(crate) fn find_span<'s>(state: &'s State, trace_id: &TraceId, span_id: SpanId) -> Option<(Loc, &'s Row)> {
    let entry = state.traces.get(trace_id)?;
    if let Some(ids) = entry.ids() {
        let loc = *ids.get(&span_id)?;
        return Some((loc, state.row(loc)?));
    }
    entry.locs.iter().find_map(|loc| {
        let row = state.row(*loc)?;
        (row.span_id == span_id).then_some((*loc, row))
    })
}

/// Calls `f(state, block, row index)` for every live row starting in
/// `[start_ns, end_ns]`, block by block, taking the read lock once per [`CHUNK`] rows;
/// `flush` runs at the end of each chunk, still under the lock.
pub(crate) fn scan_rows(
    lock: &RwLock<State>,
    start_ns: u64,
    end_ns: u64,
    mut f: impl FnMut(&State, &Block, usize),
    mut flush: impl FnMut(&State),
) {
    if start_ns > end_ns {
        return;
    }
    let seqs: Vec<u64> = lock
        .read()
        .blocks
        .iter()
        .filter(|b| b.live > 0 && b.max_start >= start_ns && b.min_start <= end_ns)
        .map(|b| b.seq)
        .collect();
    for seq in seqs {
        let mut from = 0;
        loop {
            let state = lock.read();
            let Some(block) = state.block(seq) else {
                break;
            };
            let to = (from + CHUNK).min(block.rows.len());
            for i in from..to {
                if let Some(row) = block.rows.get(i)
                    && !row.is_dead()
                    && row.start_ns >= start_ns
                    && row.start_ns <= end_ns
                {
                    f(&state, block, i);
                }
            }
            flush(&state);
            if to >= block.rows.len() {
                break;
            }
            from = to;
        }
    }
}

/// Service dependencies (see [`crate::SpanReader::dependencies`]): one call per span
/// starting in the window whose parent is stored in the same trace under another service.
pub(crate) fn dependencies(lock: &RwLock<State>, start_ns: u64, end_ns: u64) -> Vec<DependencyLink> {
    let mut counts: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    // Service ids may be reused once a chunk's lock is released: names are taken per chunk.
    let pending: RefCell<FxHashMap<(u32, u32), u64>> = RefCell::default();
    scan_rows(
        lock,
        start_ns,
        end_ns,
        |state, block, i| {
            let Some(row) = block.rows.get(i) else { return };
            let Some(parent_id) = row.parent() else {
                return;
            };
            let parent = find_span(state, &row.trace_id, parent_id).map(|(_, p)| (p.trace_id, p.service));
            if let Some((_, service)) = parent
                && service != row.service
            {
                *pending.borrow_mut().entry((service, row.service)).or_default() += 1;
            }
        },
        |state| {
            for ((parent, child), n) in pending.borrow_mut().drain() {
                let parent = state.catalog.service_name(parent).to_owned();
                let child = state.catalog.service_name(child).to_owned();
                *counts.entry(parent).or_default().entry(child).or_default() += n;
            }
        },
    );
    counts
        .into_iter()
        .flat_map(|(parent, children)| {
            children.into_iter().map(move |(child, call_count)| DependencyLink {
                parent: parent.clone(),
                child,
                call_count,
            })
        })
        .collect()
}
