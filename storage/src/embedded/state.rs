//! Everything the store holds, under one lock: the blocks oldest first, the catalog of
//! names, the trace map, and the counts and eviction described in the module doc of
//! [`super`].

use std::collections::VecDeque;

use hopscope_schemas::{SpanRecord, SpanView, TraceId};

use super::block::{Block, Row};
use super::intern::Catalog;
use super::trace_map::{Loc, TraceMap};

/// Most rows in one block (row numbers are `u16`).
pub(crate) const MAX_BLOCK_ROWS: usize = 1 << 16;
/// A block is sealed once it holds this fraction of `max_spans` or `max_bytes`, so that
/// evicting one block never drops more than about 1/16 of the store.
const BLOCKS_PER_BOUND: usize = 16;

pub(crate) struct State {
    /// Consecutive sequence numbers, oldest first; only the last may be open.
    pub blocks: VecDeque<Block>,
    next_seq: u64,
    pub catalog: Catalog,
    pub traces: TraceMap,
    /// Live spans.
    pub spans: usize,
    /// Estimated bytes of the blocks.
    block_bytes: usize,
    pub evicted_traces: u64,
    pub evicted_spans: u64,
    block_rows: usize,
    block_bytes_target: usize,
}

impl State {
    pub fn new(max_spans: usize, max_bytes: usize) -> Self {
        Self {
            blocks: VecDeque::new(),
            next_seq: 0,
            catalog: Catalog::default(),
            traces: TraceMap::default(),
            spans: 0,
            block_bytes: 0,
            evicted_traces: 0,
            evicted_spans: 0,
            block_rows: (max_spans / BLOCKS_PER_BOUND).clamp(1, MAX_BLOCK_ROWS),
            block_bytes_target: (max_bytes / BLOCKS_PER_BOUND).max(1),
        }
    }

    /// Estimated bytes held, everything included: the open block's lookup tables too
    /// ([`Block::open_table_bytes`]), which go when it is sealed.
    pub fn bytes(&self) -> usize {
        let open_tables = self.blocks.back().map_or(0, Block::open_table_bytes);
        self.block_bytes + open_tables + self.catalog.bytes + self.traces.bytes
    }

    /// The block with sequence number `seq`, unless evicted.
    pub fn block(&self, seq: u64) -> Option<&Block> {
        let first = self.blocks.front()?.seq;
        self.blocks.get(usize::try_from(seq.checked_sub(first)?).ok()?)
    }

    fn block_mut(&mut self, seq: u64) -> Option<&mut Block> {
        let first = self.blocks.front()?.seq;
        self.blocks.get_mut(usize::try_from(seq.checked_sub(first)?).ok()?)
    }

    /// The row at `loc`.
    pub fn row(&self, loc: Loc) -> Option<&Row> {
        self.block(loc.seq())?.rows.get(loc.row() as usize)
    }

    /// The whole span at `loc`.
    pub fn decode(&self, loc: Loc) -> Option<SpanRecord> {
        self.block(loc.seq())?.decode(loc.row() as usize, &self.catalog)
    }

    fn is_duplicate(&self, span: &SpanView<'_>) -> bool {
        let Some(entry) = self.traces.get(&span.trace_id) else {
            return false;
        };
        if let Some(ids) = entry.ids() {
            return ids.contains_key(&span.span_id);
        }
        entry
            .locs
            .iter()
            .any(|loc| self.row(*loc).is_some_and(|r| r.span_id == span.span_id))
    }

    /// Stores one span; false when a span with the same trace and span id is stored.
    pub fn insert(&mut self, span: &SpanView<'_>) -> bool {
        if self.is_duplicate(span) {
            return false;
        }
        if self.blocks.back().is_none_or(|b| b.sealed) {
            let block = Block::new(self.next_seq, self.block_rows, self.blocks.back());
            self.blocks.push_back(block);
            self.next_seq += 1;
        }
        let (sid, oid) = self.catalog.acquire(span.service_name, span.name, span.kind);
        let Some(block) = self.blocks.back_mut() else {
            return false;
        };
        let before = block.bytes;
        let row = block.push(span, sid, oid);
        let seq = block.seq;
        if block.rows.len() >= self.block_rows || block.bytes >= self.block_bytes_target {
            block.seal();
        }
        self.block_bytes = self.block_bytes + block.bytes - before;
        self.spans += 1;
        let blocks = &self.blocks;
        let first = blocks.front().map_or(0, |b| b.seq);
        self.traces
            .push(span.trace_id, span.span_id, Loc::new(seq, row), |locs| {
                locs.iter()
                    .filter_map(|loc| {
                        let block = blocks.get(usize::try_from(loc.seq() - first).ok()?)?;
                        Some((block.rows.get(loc.row() as usize)?.span_id, *loc))
                    })
                    .collect()
            });
        true
    }

    /// Evicts oldest blocks until both limits hold; returns how many traces went.
    pub fn evict(&mut self, max_spans: usize, max_bytes: usize) -> u64 {
        let before = self.evicted_traces;
        while self.spans > max_spans || self.bytes() > max_bytes {
            if !self.evict_oldest() {
                break;
            }
        }
        self.evicted_traces - before
    }

    /// Drops the oldest block and every trace with a span in it; false when empty.
    fn evict_oldest(&mut self) -> bool {
        let Some(mut oldest) = self.blocks.pop_front() else {
            return false;
        };
        self.block_bytes = self.block_bytes.saturating_sub(oldest.bytes);
        for i in 0..oldest.rows.len() {
            let Some(row) = oldest.rows.get(i).copied() else {
                break;
            };
            if row.is_dead() {
                continue;
            }
            let Some(entry) = self.traces.remove(&row.trace_id) else {
                // Not in the map: count the row alone (cannot happen when consistent).
                if let Some(r) = oldest.kill(i as u16) {
                    self.forget(&r);
                }
                continue;
            };
            for loc in entry.locs {
                let killed = if loc.seq() == oldest.seq {
                    oldest.kill(loc.row())
                } else {
                    self.kill(loc)
                };
                if let Some(r) = killed {
                    self.forget(&r);
                }
            }
            self.evicted_traces += 1;
        }
        // Blocks left with no live row free their memory now.
        while self.blocks.front().is_some_and(|b| b.live == 0 && b.sealed) {
            if let Some(b) = self.blocks.pop_front() {
                self.block_bytes = self.block_bytes.saturating_sub(b.bytes);
            }
        }
        true
    }

    fn kill(&mut self, loc: Loc) -> Option<Row> {
        let block = self.block_mut(loc.seq())?;
        let row = block.kill(loc.row())?;
        if block.live == 0 && block.sealed {
            let freed = block.bytes;
            block.clear();
            self.block_bytes = self.block_bytes.saturating_sub(freed);
        }
        Some(row)
    }

    fn forget(&mut self, row: &Row) {
        self.catalog.release(row.service, row.op, row.kind);
        self.spans = self.spans.saturating_sub(1);
        self.evicted_spans += 1;
    }

    /// Locations of a trace's live spans.
    pub fn trace_locs(&self, trace_id: &TraceId) -> Option<&[Loc]> {
        self.traces.get(trace_id).map(|e| e.locs.as_slice())
    }
}
