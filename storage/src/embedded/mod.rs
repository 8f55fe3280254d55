//! The embedded store: spans in memory, indexed for search, bounded in size, with no
//! external service. It is the default store; after a restart the collector refills it
//! by replaying its write-ahead log.
//!
//! # Layout
//!
//! Traces live in an [`lru::LruCache`] keyed by trace id, promoted each time a span of
//! the trace is written and never on read, so the least recently *written* trace is the
//! first to go. Each span is stored once (a second span with the same trace and span id,
//! e.g. from a retried batch, is ignored and the first copy kept) and is addressed by a
//! key `(start_ns, trace_id, position in its trace)`. The indexes hold such keys, ordered
//! by start time:
//! - every span (the time index) and every span by duration;
//! - spans per service and per (service, operation), with per-kind counts that back
//!   [`SpanReader::operations`];
//! - spans per attribute term `(key, value text)` for span, resource and event
//!   attributes whose text is at most 256 bytes (arrays and key/value lists excepted),
//!   plus the synthetic term `error=true` for ERROR spans.
//!
//! Services and operations are the non-empty index lists, so a service disappears with
//! its last span.
//!
//! # Searches
//!
//! [`SpanReader::find_traces`] picks the shortest list that must contain every matching
//! span (the time index, the service, the operation or the attribute term of a tag
//! filter; list lengths are O(1)). When the query bounds the duration and that list is
//! long, it also probes the duration index and uses it instead if fewer spans lie in the
//! duration range. It walks the candidates newest first within the time window, applies
//! the whole query to each span ([`crate::matching::span_matches`]: every filter on the
//! same span) and collects distinct traces until the limit (20 when the query says 0).
//! Walks take the read lock once per 4096 entries and run on tokio's blocking pool, so
//! neither writers nor the async reactor wait long on a big search.
//!
//! # Memory accounting and eviction
//!
//! The store counts estimated bytes rather than measuring the allocator:
//! - each span: [`SpanRecord::heap_size`] plus its `Arc`, list slot and span-id map entry;
//! - each trace: its LRU node, hash slots and entry;
//! - each resource and scope once while any stored span refers to it (they are shared
//!   behind `Arc`);
//! - each index entry: about twice its key size (B-tree nodes are about half full when
//!   keys arrive in time order), plus each index map entry with its key text.
//!
//! After every stored span, while the store holds more than
//! [`EmbeddedConfig::max_spans`] spans or more than [`EmbeddedConfig::max_bytes`]
//! estimated bytes, it evicts the least recently written trace, whole, with all its
//! index entries. A single trace larger than the limits is therefore evicted too: the
//! bound always holds. Counts of evicted traces and spans are in [`EmbeddedStats`].

mod analytics;
mod index;
mod planner;
mod postings;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use hopscope_schemas::{SpanRecord, TraceId};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use self::index::State;
use crate::error::{Result, StorageError};
use crate::query::{DependencyLink, Operation, OperationQuery, Trace, TraceQuery};
use crate::{SpanReader, SpanWriter};

/// Spans stored per write-lock acquisition, so readers interleave with big batches.
const WRITE_CHUNK: usize = 512;
/// Batches up to this size are stored on the calling task; larger ones on the blocking
/// pool.
const INLINE_WRITE: usize = 64;

/// Configuration of the embedded store.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedConfig {
    /// Most spans kept; beyond it the least recently written traces are evicted whole.
    /// Default 2,000,000.
    pub max_spans: usize,
    /// Most estimated bytes kept (spans, indexes and shared resources, see the module
    /// doc); beyond it the least recently written traces are evicted whole.
    /// Default 1 GiB.
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
}

impl Shared {
    fn write(&self, spans: Vec<SpanRecord>) {
        let mut spans = spans.into_iter().map(Arc::new).peekable();
        while spans.peek().is_some() {
            let chunk: Vec<Arc<SpanRecord>> = spans.by_ref().take(WRITE_CHUNK).collect();
            let mut state = self.state.write();
            let mut evicted = 0;
            for span in chunk {
                state.insert(span);
                evicted += state.evict(self.config.max_spans, self.config.max_bytes);
            }
            drop(state);
            if evicted > 0 {
                tracing::debug!(evicted, "embedded store evicted least recently written traces");
            }
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
                config,
                state: RwLock::new(State::new()),
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
        tokio::task::spawn_blocking(move || f(&shared))
            .await
            .map_err(|e| {
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
}

#[async_trait]
impl SpanReader for EmbeddedStore {
    async fn services(&self) -> Result<Vec<String>> {
        Ok(self
            .shared
            .state
            .read()
            .index
            .services
            .keys()
            .cloned()
            .collect())
    }

    async fn operations(&self, query: &OperationQuery) -> Result<Vec<Operation>> {
        Ok(planner::operations(&self.shared.state.read(), query))
    }

    async fn trace(&self, trace_id: TraceId) -> Result<Option<Trace>> {
        let spans = match self.shared.state.read().traces.peek(&trace_id) {
            Some(entry) => entry.spans.clone(),
            None => return Ok(None),
        };
        let mut trace = Trace { trace_id, spans };
        planner::sort_spans(&mut trace.spans);
        Ok(Some(trace))
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
