//! The embedded store: spans in memory, indexed for search, bounded in size, with no
//! external service. It is the default store; after a restart the collector refills it
//! by replaying its write-ahead log.
//!
//! # Layout
//!
//! Spans are appended, in arrival order, to **blocks** of at most 65,536 spans (fewer
//! when the configured bounds are small: a block is sealed at 1/16 of `max_spans` or of
//! `max_bytes`, so one block is never a large share of the store). Each span is:
//! - a fixed-size **hot row** (72 bytes: start and end time, trace, span and parent ids,
//!   interned service and operation ids, kind, status, hop kind, block-local resource id,
//!   offset of its cold bytes), which searches and most aggregates read directly;
//! - **cold bytes** (`cold.rs`): the rest of the span (attributes, events, links, status
//!   message, trace state, scope id, peer, host) as varints and strings, with attribute
//!   keys, event names and short values taken from the block's string dictionary (keys
//!   whose values rarely repeat, like request ids, store them inline); decoded only when
//!   the span is read.
//!
//! A block also holds each distinct resource and scope once, and its **posting lists**
//! (`postings.rs`): row numbers per service, per operation and per attribute term
//! `(key, value text)` for span and event attributes whose text is at most 256 bytes
//! (arrays and key/value lists excepted), plus the synthetic term `error=true` for ERROR
//! spans. Resource attributes are indexed once per resource: the block keeps each
//! resource's term keys and its rows, and a term's rows are its list merged with the
//! rows of the resources that have it. List keys are 64-bit hashes, so a list may hold a
//! few rows of another term; every candidate is checked against the whole query.
//! Sealing a block packs its lists into flat arrays and drops its lookup maps. Blocks
//! record their smallest and largest start time.
//!
//! Service and operation names are interned once for the store (`intern.rs`) with
//! live-span counts per span kind, which back [`SpanReader::services`] and
//! [`SpanReader::operations`]; a name goes with its last span. A **trace map**
//! (`trace_map.rs`, FxHash) maps each trace id to the `(block, row)` of its spans. Each
//! span is stored once: a second span with the same trace and span id (e.g. from a
//! retried batch) is ignored and the first copy kept.
//!
//! # Writes
//!
//! Spans arrive as records ([`SpanWriter::write_spans`]) or, from the collector's
//! write-ahead log, as encoded OTLP request bodies ([`SpanWriter::write_otlp`]). A body
//! is walked in place ([`hopscope_schemas::otlp_wire`]) into borrowed
//! [`SpanView`]s, so no request is decoded with prost and no `SpanRecord` is built;
//! a body the walk declines is decoded and mapped instead. Records are borrowed as views
//! too, so one insert path serves both. Spans are stored under the write lock 512 at a
//! time.
//!
//! # Searches
//!
//! [`SpanReader::find_traces`] (`planner.rs`) walks the blocks overlapping the time
//! window by descending largest start time. In each block it takes the shortest posting
//! list that must hold every match (service, operation or a tag term; all rows when the
//! query has none of them; none when a required list is missing), walks it newest row
//! first, checks the hot row (time, duration, ids, kind) and, when the query has tags,
//! the decoded span ([`crate::matching::span_matches`]: every filter on the same span),
//! and keeps each trace's newest matching start. Once `limit` traces are known (20 when
//! the query says 0), rows and whole blocks older than the `limit`-th best start are
//! skipped. The answer is the `limit` traces with the newest matching spans, newest
//! first, each whole. Walks take the read lock once per 4096 rows and run on tokio's
//! blocking pool, so neither writers nor the async reactor wait long on a big search.
//! A trace by id is one trace-map lookup and the decoding of its spans.
//!
//! # Memory accounting and eviction
//!
//! The store counts estimated bytes rather than measuring the allocator: per block its
//! rows, cold bytes, dictionary text, resources and scopes, and posting lists, all at
//! their sealed (packed) size from the first row on, so a block's count does not jump
//! when it is sealed; the lookup tables of the one open block (posting-list and
//! dictionary hash tables, as allocated) are counted apart, in the store's total but not
//! in the block's, and go when it is sealed. Per trace its
//! map entry and locations; per interned name its text and entries. An empty store
//! counts 0 bytes. (On a realistic workload the count is about 200 bytes per span and the
//! process RSS about 230 bytes per span at 10M spans: see `benches/embedded_scale.rs`.)
//!
//! After every stored span, while the store holds more than
//! [`EmbeddedConfig::max_spans`] live spans or more than [`EmbeddedConfig::max_bytes`]
//! estimated bytes, it drops the **oldest block**, and with it every trace with a span in
//! it, whole: that trace's spans in newer blocks become dead rows, skipped by every read
//! and counted as evicted, and a block whose rows are all dead frees its memory at once.
//! So eviction is first in, first out by arrival, traces are never returned partially
//! because of eviction, and the bound always holds (a block, even the open one, is
//! dropped whole). Counts of evicted traces and spans are in [`EmbeddedStats`].

mod aggregates;
mod block;
mod cold;
mod intern;
mod planner;
mod postings;
mod state;
#[cfg(test)]
mod tests;
mod trace_map;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use hopscope_schemas::otlp_wire::{AttributeSpace, HeaderCache, WireRequest};
use hopscope_schemas::{SpanRecord, SpanView, TraceId};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use self::state::State;
use crate::error::{Result, StorageError};
use crate::otlp_bodies::{self, OtlpWrite};
use crate::query::{DependencyLink, Operation, OperationQuery, Trace, TraceQuery};
use crate::{SpanReader, SpanWriter};

/// Bytes a hashbrown table with room for `capacity` entries of `(K, V)` allocates: its
/// buckets (capacity × 8/7) each hold an entry and a control byte.
pub(crate) fn table_bytes<K, V>(capacity: usize) -> usize {
    capacity.div_ceil(7) * 8 * (std::mem::size_of::<(K, V)>() + 1)
}

/// Spans stored per write-lock acquisition, so readers interleave with big batches.
const WRITE_CHUNK: usize = 512;
/// Batches up to this size are stored on the calling task; larger ones on the blocking
/// pool.
const INLINE_WRITE: usize = 64;

/// Configuration of the embedded store.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedConfig {
    /// Most spans kept; beyond it the oldest block is evicted, with every trace that has a
    /// span in it, whole. Default 2,000,000.
    pub max_spans: usize,
    /// Most estimated bytes kept (spans, indexes and shared resources, see the module
    /// doc); beyond it the oldest block is evicted as for `max_spans`. Default 1 GiB.
    pub max_bytes: usize,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            max_spans: 2_000_000,
            max_bytes: 1 << 30,
        }
    }
}

/// A snapshot of what the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct EmbeddedStats {
    /// Spans stored.
    pub spans: usize,
    /// Traces stored.
    pub traces: usize,
    /// Estimated bytes held (see the module doc).
    pub bytes: usize,
    /// Traces evicted since the store was created.
    pub evicted_traces: u64,
    /// Spans evicted since the store was created.
    pub evicted_spans: u64,
}

struct Shared {
    config: EmbeddedConfig,
    state: RwLock<State>,
    /// Resources and scopes decoded from earlier encoded requests ([`Shared::write_otlp`]).
    headers: Mutex<HeaderCache>,
    /// The attribute list [`Shared::write_otlp`] walks requests with, kept between calls.
    attributes: Mutex<AttributeSpace>,
}

impl Shared {
    fn write(&self, spans: Vec<SpanRecord>) {
        for chunk in spans.chunks(WRITE_CHUNK) {
            let views: Vec<SpanView<'_>> = chunk.iter().map(SpanView::of_record).collect();
            self.write_views(&views);
        }
    }

    /// Stores each body's spans: walked in place ([`WireRequest`]) when the walk follows
    /// it, else decoded and mapped.
    fn write_otlp(&self, bodies: &[Bytes]) -> OtlpWrite {
        let mut result = OtlpWrite::default();
        // One list for the attributes of every span walked here, in the kept allocation.
        let mut attributes = self.attributes.lock().take();
        for (i, body) in bodies.iter().enumerate() {
            let request = WireRequest::parse_cached(body, &mut self.headers.lock());
            if let Some(views) = request.as_ref().and_then(|r| r.views(&mut attributes)) {
                result.spans += views.len() as u64;
                for chunk in views.chunks(WRITE_CHUNK) {
                    self.write_views(chunk);
                }
                continue;
            }
            match otlp_bodies::decode(body) {
                Ok(spans) => {
                    result.spans += spans.len() as u64;
                    self.write(spans);
                }
                Err(err) => result.undecodable.push((i, err)),
            }
        }
        self.attributes.lock().keep(attributes);
        result
    }

    /// Stores spans under one write lock.
    fn write_views(&self, spans: &[SpanView<'_>]) {
        let mut state = self.state.write();
        let mut evicted = 0;
        for span in spans {
            if state.insert(span) {
                evicted += state.evict(self.config.max_spans, self.config.max_bytes);
            }
        }
        drop(state);
        if evicted > 0 {
            tracing::debug!(evicted, "embedded store evicted oldest block traces");
        }
    }
}

/// The in-memory store; cheap to clone (clones share the data).
#[derive(Clone)]
pub struct EmbeddedStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("config", &self.shared.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for EmbeddedStore {
    fn default() -> Self {
        Self::new(EmbeddedConfig::default())
    }
}

impl EmbeddedStore {
    /// An empty store bounded by `config`.
    pub fn new(config: EmbeddedConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                config: config.clone(),
                state: RwLock::new(State::new(config.max_spans, config.max_bytes)),
                headers: Mutex::new(HeaderCache::default()),
                attributes: Mutex::new(AttributeSpace::default()),
            }),
        }
    }

    /// The store's configuration.
    pub fn config(&self) -> &EmbeddedConfig {
        &self.shared.config
    }

    /// What the store holds now.
    pub fn stats(&self) -> EmbeddedStats {
        let state = self.shared.state.read();
        EmbeddedStats {
            spans: state.spans,
            traces: state.traces.len(),
            bytes: state.bytes(),
            evicted_traces: state.evicted_traces,
            evicted_spans: state.evicted_spans,
        }
    }

    /// Runs `f` on the blocking pool.
    async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Shared) -> T + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || f(&shared)).await.map_err(|e| {
            if e.is_cancelled() {
                StorageError::Retryable(format!("embedded store task cancelled: {e}"))
            } else {
                StorageError::Permanent(format!("embedded store task failed: {e}"))
            }
        })
    }
}

#[async_trait]
impl SpanWriter for EmbeddedStore {
    async fn write_spans(&self, spans: Vec<SpanRecord>) -> Result<()> {
        if spans.len() <= INLINE_WRITE {
            self.shared.write(spans);
            Ok(())
        } else {
            self.blocking(move |shared| shared.write(spans)).await
        }
    }

    async fn write_otlp(&self, bodies: Arc<[Bytes]>) -> Result<OtlpWrite> {
        self.blocking(move |shared| shared.write_otlp(&bodies)).await
    }

    fn reads_otlp(&self) -> bool {
        true
    }
}

#[async_trait]
impl SpanReader for EmbeddedStore {
    async fn services(&self) -> Result<Vec<String>> {
        Ok(self.shared.state.read().catalog.services())
    }

    async fn operations(&self, query: &OperationQuery) -> Result<Vec<Operation>> {
        Ok(planner::operations(&self.shared.state.read(), query))
    }

    async fn trace(&self, trace_id: TraceId) -> Result<Option<Trace>> {
        Ok(planner::trace(&self.shared.state.read(), trace_id))
    }

    async fn find_traces(&self, query: &TraceQuery) -> Result<Vec<Trace>> {
        let query = query.clone();
        self.blocking(move |shared| planner::find_traces(&shared.state, &query))
            .await
    }

    async fn dependencies(&self, start_ns: u64, end_ns: u64) -> Result<Vec<DependencyLink>> {
        if start_ns > end_ns {
            return Ok(Vec::new());
        }
        self.blocking(move |shared| planner::dependencies(&shared.state, start_ns, end_ns))
            .await
    }
}
