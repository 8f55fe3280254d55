//! Searches: picking the candidate index for a query and walking it in chunks, taking the
//! read lock once per chunk so writers are never held up for long.

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;

use hopscope_schemas::{SpanRecord, TraceId};
use parking_lot::RwLock;

use super::index::{KINDS, State, term_is_complete};
use super::postings::{DurationKey, Postings, SpanKey};
use crate::matching::{effective_limit, span_matches};
use crate::query::{DependencyLink, Operation, OperationQuery, Trace, TraceQuery};

/// Index entries visited per read-lock acquisition.
const CHUNK: usize = 4096;
/// The duration index is only probed when the best time-ordered candidate list is longer.
const DURATION_PROBE_MIN: usize = CHUNK;

/// A time-ordered candidate list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source<'q> {
    /// Every span.
    Time,
    /// Spans of one service.
    Service(&'q str),
    /// Spans of one operation of one service.
    Operation(&'q str, &'q str),
    /// Spans under one attribute term.
    Attribute(&'q str, &'q str),
}

impl Source<'_> {
    fn postings<'s>(&self, state: &'s State) -> Option<&'s Postings<SpanKey>> {
        match *self {
            Source::Time => Some(&state.index.time),
            Source::Service(service) => state.index.services.get(service).map(|s| &s.spans),
            Source::Operation(service, name) => state
                .index
                .services
                .get(service)
                .and_then(|s| s.operations.get(name))
                .map(|o| &o.spans),
            Source::Attribute(key, value) => state
                .index
                .attributes
                .get(key)
                .and_then(|values| values.get(value)),
        }
    }
}

/// The smallest candidate list holding every span that can match, with its length;
/// `None` when some required list is empty, so nothing can match.
fn choose<'q>(state: &State, query: &'q TraceQuery) -> Option<(Source<'q>, usize)> {
    let mut sources = vec![Source::Time];
    if let Some(service) = query.service.as_deref() {
        sources.push(Source::Service(service));
        if let Some(name) = query.operation.as_deref() {
            sources.push(Source::Operation(service, name));
        }
    }
    for tag in &query.tags {
        if term_is_complete(&tag.key, &tag.value) {
            sources.push(Source::Attribute(&tag.key, &tag.value));
        }
    }
    let mut best: Option<(Source<'q>, usize)> = None;
    for source in sources {
        let len = source.postings(state).map_or(0, Postings::len);
        if len == 0 {
            return None;
        }
        if best.is_none_or(|(_, best_len)| len < best_len) {
            best = Some((source, len));
        }
    }
    best
}

/// One search in progress.
struct Search<'q> {
    query: &'q TraceQuery,
    limit: usize,
    found: HashSet<TraceId>,
    traces: Vec<Trace>,
}

impl Search<'_> {
    /// Checks one candidate; true once the limit is reached.
    fn visit(&mut self, state: &State, key: SpanKey) -> bool {
        if self.found.contains(&key.trace_id) {
            return false;
        }
        let Some(entry) = state.traces.peek(&key.trace_id) else {
            return false;
        };
        let Some(span) = entry.spans.get(key.index as usize) else {
            return false;
        };
        if !span_matches(span, self.query) {
            return false;
        }
        self.found.insert(key.trace_id);
        self.traces.push(Trace {
            trace_id: key.trace_id,
            spans: entry.spans.clone(),
        });
        self.traces.len() >= self.limit
    }

    /// Walks a time-ordered list newest first within the query's window.
    fn walk(&mut self, lock: &RwLock<State>, source: Source<'_>, low: u64, high: u64) {
        let low = Bound::Included(SpanKey::first_at(low));
        let mut high = Bound::Included(SpanKey::last_at(high));
        loop {
            let state = lock.read();
            let Some(postings) = source.postings(&state) else {
                return;
            };
            let mut seen = 0;
            let mut last = None;
            for key in postings.range_rev(low, high) {
                if self.visit(&state, key) {
                    return;
                }
                seen += 1;
                last = Some(key);
                if seen == CHUNK {
                    break;
                }
            }
            drop(state);
            match last {
                Some(key) if seen == CHUNK => high = Bound::Excluded(key),
                _ => return,
            }
        }
    }

    /// Checks candidates already in newest-first order.
    fn visit_all(&mut self, lock: &RwLock<State>, keys: &[SpanKey]) {
        for chunk in keys.chunks(CHUNK) {
            let state = lock.read();
            for key in chunk {
                if self.visit(&state, *key) {
                    return;
                }
            }
        }
    }
}

/// Spans whose duration is within the query's bounds and start within its window,
/// newest first; `None` when more than `cap` index entries lie in the duration range
/// (a time-ordered list of `cap` entries is then the cheaper walk).
fn duration_candidates(
    lock: &RwLock<State>,
    query: &TraceQuery,
    low: u64,
    high: u64,
    cap: usize,
) -> Option<Vec<SpanKey>> {
    let min = query.min_duration_ns.unwrap_or(0);
    let max = query.max_duration_ns.unwrap_or(u64::MAX);
    let mut from = Bound::Included(DurationKey {
        duration_ns: min,
        span: SpanKey::first_at(0),
    });
    let to = Bound::Included(DurationKey {
        duration_ns: max,
        span: SpanKey::last_at(u64::MAX),
    });
    let mut walked = 0;
    let mut keys = Vec::new();
    loop {
        let state = lock.read();
        let mut seen = 0;
        let mut last = None;
        for key in state.index.duration.range_fwd(from, to) {
            let start = key.span.start_ns;
            if start >= low && start <= high {
                keys.push(key.span);
            }
            seen += 1;
            last = Some(key);
            if seen == CHUNK {
                break;
            }
        }
        drop(state);
        walked += seen;
        if walked > cap {
            return None;
        }
        match last {
            Some(key) if seen == CHUNK => from = Bound::Excluded(key),
            _ => break,
        }
    }
    keys.sort_unstable_by(|a, b| b.cmp(a));
    Some(keys)
}

/// Runs a trace search (see [`crate::SpanReader::find_traces`]).
pub(crate) fn find_traces(lock: &RwLock<State>, query: &TraceQuery) -> Vec<Trace> {
    let low = query.start_ns.unwrap_or(0);
    let high = query.end_ns.unwrap_or(u64::MAX);
    if low > high || query.min_duration_ns.unwrap_or(0) > query.max_duration_ns.unwrap_or(u64::MAX)
    {
        return Vec::new();
    }
    let chosen = choose(&lock.read(), query);
    let Some((source, len)) = chosen else {
        return Vec::new();
    };
    let mut search = Search {
        query,
        limit: effective_limit(query.limit),
        found: HashSet::new(),
        traces: Vec::new(),
    };
    let by_duration = (query.min_duration_ns.is_some() || query.max_duration_ns.is_some())
        && len > DURATION_PROBE_MIN;
    match by_duration
        .then(|| duration_candidates(lock, query, low, high, len))
        .flatten()
    {
        Some(keys) => search.visit_all(lock, &keys),
        None => search.walk(lock, source, low, high),
    }
    let mut traces = search.traces;
    for trace in &mut traces {
        sort_spans(&mut trace.spans);
    }
    traces
}

/// Sorts a trace's spans by start time (span id breaks ties, for stable output).
pub(crate) fn sort_spans(spans: &mut [Arc<SpanRecord>]) {
    spans.sort_by(|a, b| {
        (a.start_time_unix_nano, a.span_id).cmp(&(b.start_time_unix_nano, b.span_id))
    });
}

/// Operations of a service (see [`crate::SpanReader::operations`]).
pub(crate) fn operations(state: &State, query: &OperationQuery) -> Vec<Operation> {
    let Some(service) = state.index.services.get(query.service.as_str()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, operation) in &service.operations {
        for (slot, kind) in KINDS.iter().enumerate() {
            if operation.kinds[slot] > 0 && query.span_kind.is_none_or(|k| k == *kind) {
                out.push(Operation {
                    name: name.clone(),
                    span_kind: *kind,
                });
            }
        }
    }
    out
}

/// Service dependencies (see [`crate::SpanReader::dependencies`]): one call per span
/// starting in the window whose parent is stored in the same trace under another service.
pub(crate) fn dependencies(
    lock: &RwLock<State>,
    start_ns: u64,
    end_ns: u64,
) -> Vec<DependencyLink> {
    let mut counts: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut low = Bound::Included(SpanKey::first_at(start_ns));
    let high = Bound::Included(SpanKey::last_at(end_ns));
    loop {
        let state = lock.read();
        let mut seen = 0;
        let mut last = None;
        for key in state.index.time.range_fwd(low, high) {
            seen += 1;
            last = Some(key);
            if let Some(entry) = state.traces.peek(&key.trace_id)
                && let Some(child) = entry.spans.get(key.index as usize)
                && let Some(parent) = child.parent_span_id.and_then(|p| entry.span(&p))
                && parent.service_name != child.service_name
            {
                let children = match counts.get_mut(parent.service_name.as_str()) {
                    Some(children) => children,
                    None => counts.entry(parent.service_name.clone()).or_default(),
                };
                match children.get_mut(child.service_name.as_str()) {
                    Some(count) => *count += 1,
                    None => {
                        children.insert(child.service_name.clone(), 1);
                    }
                }
            }
            if seen == CHUNK {
                break;
            }
        }
        drop(state);
        match last {
            Some(key) if seen == CHUNK => low = Bound::Excluded(key),
            _ => break,
        }
    }
    counts
        .into_iter()
        .flat_map(|(parent, children)| {
            children
                .into_iter()
                .map(move |(child, call_count)| DependencyLink {
                    parent: parent.clone(),
                    child,
                    call_count,
                })
        })
        .collect()
}
