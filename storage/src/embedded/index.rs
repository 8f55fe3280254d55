//! The store's state under one lock: the traces in write order and the per-span indexes,
//! with the byte accounting described in the module doc of [`super`].

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::mem::size_of;
use std::sync::Arc;

use hopscope_schemas::{AttrValue, KeyValue, SpanId, SpanKind, SpanRecord, TraceId};
use lru::LruCache;

use super::postings::{DurationKey, Postings, SpanKey, entry_cost};

/// Attribute values whose text is longer than this are not indexed (they are still
/// matched by the scan).
pub(crate) const MAX_INDEXED_VALUE: usize = 256;

/// Estimated bytes of one hash or B-tree map entry besides its key text and value.
const MAP_ENTRY: usize = 64;
/// Estimated bytes a stored trace costs besides its spans: the LRU node and its hash
/// slot, the trace entry and its span-id map.
const TRACE_OVERHEAD: usize = size_of::<TraceEntry>() + size_of::<TraceId>() + 2 * MAP_ENTRY;
/// Estimated bytes a stored span costs besides `SpanRecord::heap_size`: the `Arc` header,
/// its slot in the trace's span list (with growth slack) and its span-id map entry.
const SPAN_OVERHEAD: usize = 16 + 2 * size_of::<Arc<SpanRecord>>() + 32;

/// One stored trace.
#[derive(Debug, Default)]
pub(crate) struct TraceEntry {
    /// Spans in the order they were stored; a span's position is its [`SpanKey::index`].
    pub spans: Vec<Arc<SpanRecord>>,
    /// Span id → position, to store each span once.
    pub by_span_id: HashMap<SpanId, u32>,
}

impl TraceEntry {
    /// The span with this id.
    pub fn span(&self, span_id: &SpanId) -> Option<&Arc<SpanRecord>> {
        self.by_span_id
            .get(span_id)
            .and_then(|i| self.spans.get(*i as usize))
    }
}

/// One operation of a service: its spans and how many were seen with each span kind.
#[derive(Debug, Default)]
pub(crate) struct OperationEntry {
    pub spans: Postings<SpanKey>,
    /// Span counts indexed by `SpanKind::to_otlp()`, which follows `SpanKind`'s order.
    pub kinds: [usize; 6],
}

/// One service: its spans and operations.
#[derive(Debug, Default)]
pub(crate) struct ServiceEntry {
    pub spans: Postings<SpanKey>,
    pub operations: BTreeMap<String, OperationEntry>,
}

/// The per-span indexes. Every stored span has exactly one entry in `time`, `duration`,
/// its service and its operation, and one per indexed attribute term.
#[derive(Debug, Default)]
pub(crate) struct Indexes {
    /// Every span by start time.
    pub time: Postings<SpanKey>,
    /// Every span by duration.
    pub duration: Postings<DurationKey>,
    /// Service name → its spans and operations; a service is removed with its last span.
    pub services: BTreeMap<String, ServiceEntry>,
    /// Attribute key → value text → spans (see [`index_terms`]).
    pub attributes: HashMap<Box<str>, HashMap<Box<str>, Postings<SpanKey>>>,
    /// Estimated bytes of all of the above.
    pub bytes: usize,
}

/// Resources and scopes are shared by many spans and counted once while any stored span
/// refers to them.
#[derive(Debug, Default)]
struct SharedCounts {
    /// Allocation address → (referring spans, estimated bytes).
    entries: HashMap<usize, (usize, usize)>,
    bytes: usize,
}

impl SharedCounts {
    fn acquire(&mut self, address: usize, size: impl FnOnce() -> usize) {
        let entry = self.entries.entry(address).or_insert_with(|| {
            let bytes = size() + MAP_ENTRY;
            self.bytes += bytes;
            (0, bytes)
        });
        entry.0 += 1;
    }

    fn release(&mut self, address: usize) {
        if let Some(entry) = self.entries.get_mut(&address) {
            entry.0 = entry.0.saturating_sub(1);
            if entry.0 == 0 {
                self.bytes = self.bytes.saturating_sub(entry.1);
                self.entries.remove(&address);
            }
        }
    }
}

/// Everything the store holds.
pub(crate) struct State {
    /// Traces, most recently written last; reads use `peek` and never promote.
    pub traces: LruCache<TraceId, TraceEntry>,
    pub index: Indexes,
    shared: SharedCounts,
    /// Spans stored.
    pub spans: usize,
    /// Estimated bytes of the traces and spans (indexes and shared parts apart).
    data_bytes: usize,
    pub evicted_traces: u64,
    pub evicted_spans: u64,
}

impl State {
    pub fn new() -> Self {
        Self {
            traces: LruCache::unbounded(),
            index: Indexes::default(),
            shared: SharedCounts::default(),
            spans: 0,
            data_bytes: 0,
            evicted_traces: 0,
            evicted_spans: 0,
        }
    }

    /// Estimated bytes held, everything included.
    pub fn bytes(&self) -> usize {
        self.data_bytes + self.index.bytes + self.shared.bytes
    }

    /// Stores one span and promotes its trace to most recently written; false when a span
    /// with the same trace and span id is already stored (the trace is still promoted).
    pub fn insert(&mut self, span: Arc<SpanRecord>) -> bool {
        let trace_id = span.trace_id;
        if !self.traces.contains(&trace_id) {
            self.traces.put(trace_id, TraceEntry::default());
            self.data_bytes += TRACE_OVERHEAD;
        }
        let Some(entry) = self.traces.get_mut(&trace_id) else {
            return false;
        };
        if entry.by_span_id.contains_key(&span.span_id) {
            return false;
        }
        let Ok(index) = u32::try_from(entry.spans.len()) else {
            // Four billion spans in one trace cannot fit in any configured memory bound.
            return false;
        };
        entry.by_span_id.insert(span.span_id, index);
        entry.spans.push(Arc::clone(&span));
        self.spans += 1;
        self.data_bytes += span.heap_size() + SPAN_OVERHEAD;
        self.shared
            .acquire(Arc::as_ptr(&span.resource) as usize, || {
                size_of::<hopscope_schemas::Resource>()
                    + span.resource.schema_url.len()
                    + attrs_size(&span.resource.attributes)
            });
        self.shared.acquire(Arc::as_ptr(&span.scope) as usize, || {
            size_of::<hopscope_schemas::Scope>()
                + span.scope.name.len()
                + span.scope.version.len()
                + span.scope.schema_url.len()
                + attrs_size(&span.scope.attributes)
        });
        let key = SpanKey {
            start_ns: span.start_time_unix_nano,
            trace_id,
            index,
        };
        self.index.add(&span, key);
        true
    }

    /// Evicts least recently written traces until both limits hold; returns how many
    /// traces went.
    pub fn evict(&mut self, max_spans: usize, max_bytes: usize) -> usize {
        let mut evicted = 0;
        while self.spans > max_spans || self.bytes() > max_bytes {
            let Some((trace_id, entry)) = self.traces.pop_lru() else {
                break;
            };
            self.remove_trace(trace_id, entry);
            evicted += 1;
        }
        evicted
    }

    fn remove_trace(&mut self, trace_id: TraceId, entry: TraceEntry) {
        for (index, span) in entry.spans.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let key = SpanKey {
                start_ns: span.start_time_unix_nano,
                trace_id,
                index,
            };
            self.index.remove(span, key);
            self.shared.release(Arc::as_ptr(&span.resource) as usize);
            self.shared.release(Arc::as_ptr(&span.scope) as usize);
            self.data_bytes = self
                .data_bytes
                .saturating_sub(span.heap_size() + SPAN_OVERHEAD);
        }
        self.data_bytes = self.data_bytes.saturating_sub(TRACE_OVERHEAD);
        self.spans = self.spans.saturating_sub(entry.spans.len());
        self.evicted_spans += entry.spans.len() as u64;
        self.evicted_traces += 1;
    }
}

fn attrs_size(attrs: &[KeyValue]) -> usize {
    attrs.iter().map(KeyValue::heap_size).sum()
}

/// Calls `f(key, value_text)` for every attribute term a span is indexed under: its own,
/// its resource's and its events' attributes whose text ([`AttrValue::to_text`]) is at
/// most [`MAX_INDEXED_VALUE`] bytes, arrays and key/value lists excepted, plus the
/// synthetic `error=true` for ERROR spans. The same term may be reported twice.
///
/// So for a tag filter whose key is not synthetic (other than `error`) and whose value
/// is short and does not start with `[` or `{`, every matching span is under that term:
/// see [`term_is_complete`].
pub(crate) fn index_terms(span: &SpanRecord, mut f: impl FnMut(&str, &str)) {
    let mut visit = |attrs: &[KeyValue]| {
        for kv in attrs {
            if let Some(text) = indexed_text(&kv.value) {
                f(&kv.key, &text);
            }
        }
    };
    visit(&span.attributes);
    visit(&span.resource.attributes);
    for event in &span.events {
        visit(&event.attributes);
    }
    if span.is_error() {
        f("error", "true");
    }
}

fn indexed_text(value: &AttrValue) -> Option<Cow<'_, str>> {
    let text = match value {
        AttrValue::String(s) => Cow::Borrowed(s.as_str()),
        AttrValue::Bytes(b) if b.len() * 2 > MAX_INDEXED_VALUE => return None,
        AttrValue::Array(_) | AttrValue::KvList(_) => return None,
        other => Cow::Owned(other.to_text()),
    };
    (text.len() <= MAX_INDEXED_VALUE).then_some(text)
}

/// True when the attribute index holds every span matching `key=value`, so a search
/// may use that term's posting list as its candidates.
pub(crate) fn term_is_complete(key: &str, value: &str) -> bool {
    let synthetic = crate::matching::SYNTHETIC_KEYS
        .iter()
        .any(|k| *k == key && key != "error");
    !synthetic
        && value.len() <= MAX_INDEXED_VALUE
        && !value.starts_with('[')
        && !value.starts_with('{')
}

impl Indexes {
    fn add(&mut self, span: &SpanRecord, key: SpanKey) {
        let mut bytes = 0;
        if self.time.insert(key) {
            bytes += entry_cost::<SpanKey>();
        }
        if self.duration.insert(DurationKey {
            duration_ns: span.duration_nanos(),
            span: key,
        }) {
            bytes += entry_cost::<DurationKey>();
        }
        let service = match self.services.get_mut(span.service_name.as_str()) {
            Some(service) => service,
            None => {
                bytes += MAP_ENTRY + span.service_name.len();
                self.services.entry(span.service_name.clone()).or_default()
            }
        };
        if service.spans.insert(key) {
            bytes += entry_cost::<SpanKey>();
        }
        let operation = match service.operations.get_mut(span.name.as_str()) {
            Some(operation) => operation,
            None => {
                bytes += MAP_ENTRY + span.name.len();
                service.operations.entry(span.name.clone()).or_default()
            }
        };
        if operation.spans.insert(key) {
            bytes += entry_cost::<SpanKey>();
            operation.kinds[kind_slot(span.kind)] += 1;
        }
        let attributes = &mut self.attributes;
        index_terms(span, |k, v| {
            let values = match attributes.get_mut(k) {
                Some(values) => values,
                None => {
                    bytes += MAP_ENTRY + k.len();
                    attributes.entry(k.into()).or_default()
                }
            };
            let postings = match values.get_mut(v) {
                Some(postings) => postings,
                None => {
                    bytes += MAP_ENTRY + v.len();
                    values.entry(v.into()).or_default()
                }
            };
            if postings.insert(key) {
                bytes += entry_cost::<SpanKey>();
            }
        });
        self.bytes += bytes;
    }

    fn remove(&mut self, span: &SpanRecord, key: SpanKey) {
        let mut bytes = 0;
        if self.time.remove(&key) {
            bytes += entry_cost::<SpanKey>();
        }
        if self.duration.remove(&DurationKey {
            duration_ns: span.duration_nanos(),
            span: key,
        }) {
            bytes += entry_cost::<DurationKey>();
        }
        if let Some(service) = self.services.get_mut(span.service_name.as_str()) {
            if service.spans.remove(&key) {
                bytes += entry_cost::<SpanKey>();
            }
            if let Some(operation) = service.operations.get_mut(span.name.as_str()) {
                if operation.spans.remove(&key) {
                    bytes += entry_cost::<SpanKey>();
                    let slot = &mut operation.kinds[kind_slot(span.kind)];
                    *slot = slot.saturating_sub(1);
                }
                if operation.spans.is_empty() {
                    service.operations.remove(span.name.as_str());
                    bytes += MAP_ENTRY + span.name.len();
                }
            }
            if service.spans.is_empty() {
                self.services.remove(span.service_name.as_str());
                bytes += MAP_ENTRY + span.service_name.len();
            }
        }
        let attributes = &mut self.attributes;
        index_terms(span, |k, v| {
            let Some(values) = attributes.get_mut(k) else {
                return;
            };
            if let Some(postings) = values.get_mut(v) {
                if postings.remove(&key) {
                    bytes += entry_cost::<SpanKey>();
                }
                if postings.is_empty() {
                    values.remove(v);
                    bytes += MAP_ENTRY + v.len();
                }
            }
            if values.is_empty() {
                attributes.remove(k);
                bytes += MAP_ENTRY + k.len();
            }
        });
        self.bytes = self.bytes.saturating_sub(bytes);
    }
}

/// The slot of a kind in [`OperationEntry::kinds`].
pub(crate) fn kind_slot(kind: SpanKind) -> usize {
    usize::try_from(kind.to_otlp()).unwrap_or(0).min(5)
}

/// All kinds, in slot order.
pub(crate) const KINDS: [SpanKind; 6] = [
    SpanKind::Unspecified,
    SpanKind::Internal,
    SpanKind::Server,
    SpanKind::Client,
    SpanKind::Producer,
    SpanKind::Consumer,
];
