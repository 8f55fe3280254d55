//! Trace id → where its spans are: `(block sequence number, row)` pairs packed in a `u64`.

use std::mem::size_of;

use hopscope_schemas::{SpanId, TraceId};
use rustc_hash::FxHashMap;

/// Traces with more spans than this also keep a map span id → location, so duplicate
/// checks and parent lookups stay O(1) for very large traces.
const MAP_AFTER: usize = 64;
/// Estimated bytes of one trace entry besides its locations: hash slot, key, vector
/// header, control bytes and load-factor slack.
const TRACE_ENTRY: usize = 72;

/// Where one span is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loc(u64);

impl Loc {
    pub fn new(seq: u64, row: u16) -> Self {
        Loc((seq << 16) | u64::from(row))
    }

    pub fn seq(self) -> u64 {
        self.0 >> 16
    }

    pub fn row(self) -> u16 {
        (self.0 & 0xffff) as u16
    }
}

/// One stored trace.
#[derive(Debug, Default)]
pub(crate) struct TraceEntry {
    pub locs: Vec<Loc>,
    ids: Option<Box<FxHashMap<SpanId, Loc>>>,
}

impl TraceEntry {
    fn bytes(&self) -> usize {
        TRACE_ENTRY + self.locs.capacity() * size_of::<Loc>() + self.ids.as_ref().map_or(0, |s| 32 + s.capacity() * 17)
    }

    /// The span id → location map, when the trace is large enough to have one.
    pub fn ids(&self) -> Option<&FxHashMap<SpanId, Loc>> {
        self.ids.as_deref()
    }
}

#[derive(Debug, Default)]
pub(crate) struct TraceMap {
    map: FxHashMap<TraceId, TraceEntry>,
    /// Estimated bytes of the entries.
    pub bytes: usize,
}

impl TraceMap {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn get(&self, trace_id: &TraceId) -> Option<&TraceEntry> {
        self.map.get(trace_id)
    }

    /// Records a new span of a trace. `span_ids` lists the trace's span ids and locations
    /// when called for the span that makes the trace large (see [`MAP_AFTER`]).
    pub fn push(
        &mut self,
        trace_id: TraceId,
        span_id: SpanId,
        loc: Loc,
        span_ids: impl FnOnce(&[Loc]) -> Vec<(SpanId, Loc)>,
    ) {
        let entry = self.map.entry(trace_id).or_default();
        let before = if entry.locs.is_empty() && entry.ids.is_none() {
            0
        } else {
            entry.bytes()
        };
        entry.locs.push(loc);
        match &mut entry.ids {
            Some(ids) => {
                ids.insert(span_id, loc);
            }
            None if entry.locs.len() > MAP_AFTER => {
                let mut ids: FxHashMap<SpanId, Loc> = span_ids(&entry.locs).into_iter().collect();
                ids.insert(span_id, loc);
                entry.ids = Some(Box::new(ids));
            }
            None => {}
        }
        self.bytes = self.bytes + entry.bytes() - before;
    }

    /// Removes a trace.
    pub fn remove(&mut self, trace_id: &TraceId) -> Option<TraceEntry> {
        let entry = self.map.remove(trace_id)?;
        self.bytes = self.bytes.saturating_sub(entry.bytes());
        Some(entry)
    }
}
