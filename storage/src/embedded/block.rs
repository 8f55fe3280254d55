//! A block: up to [`super::state::MAX_BLOCK_ROWS`] spans in arrival order, each as a
//! fixed-size hot [`Row`] plus cold bytes, with the block's string dictionary, its
//! resources and scopes (one copy each) and its posting lists.

use std::borrow::Cow;
use std::hash::{Hash, Hasher};
use std::mem::size_of;
use std::sync::Arc;

use hopscope_schemas::{
    HopKind, KeyValue, Resource, Scope, SpanId, SpanKind, SpanRecord, SpanView, StatusCode, TraceId,
};
use rustc_hash::{FxHashMap, FxHasher};

use super::cold::{self, Dict};
use super::intern::Catalog;
use super::postings::{Postings, op_key, resource_terms, service_key, span_terms, term_key};
use super::table_bytes;

/// The row was evicted (its trace had a span in an evicted block).
const DEAD: u8 = 1;
/// The span has a parent span id.
const HAS_PARENT: u8 = 2;
/// The span has an event named `exception`.
const EXCEPTION: u8 = 4;

/// Estimated bytes of one shared resource or scope entry besides its contents.
const SHARED_ENTRY: usize = 96;

/// Where a span ran and what it talked to, as the middleware and dependency aggregates
/// group it: its derived peer and host and its system
/// ([`hopscope_schemas::derive::system`]). Stored once per block per distinct value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Node {
    pub peer: Option<Box<str>>,
    pub host: Option<Box<str>>,
    pub system: Box<str>,
}

impl Node {
    fn is(&self, peer: Option<&str>, host: Option<&str>, system: &str) -> bool {
        self.peer.as_deref() == peer && self.host.as_deref() == host && &*self.system == system
    }
}

/// The fixed-size part of a span: everything searches and most aggregates read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    pub start_ns: u64,
    pub end_ns: u64,
    pub trace_id: TraceId,
    pub span_id: SpanId,
    parent: SpanId,
    /// [`Catalog`] service id.
    pub service: u32,
    /// [`Catalog`] operation id.
    pub op: u32,
    /// Block-local resource id.
    resource: u32,
    /// Offset of the cold bytes; they end where the next row's begin.
    cold: u32,
    /// Block-local [`Node`] id.
    node: u32,
    pub kind: SpanKind,
    pub status: StatusCode,
    pub hop: HopKind,
    flags: u8,
}

impl Row {
    pub fn duration(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    pub fn is_dead(&self) -> bool {
        self.flags & DEAD != 0
    }

    pub fn parent(&self) -> Option<SpanId> {
        (self.flags & HAS_PARENT != 0).then_some(self.parent)
    }

    pub fn has_exception(&self) -> bool {
        self.flags & EXCEPTION != 0
    }
}

/// Items shared by many spans (resources, scopes), stored once per block.
#[derive(Debug)]
struct SharedTable<T> {
    items: Vec<Arc<T>>,
    /// Other allocations equal to a stored item (the same resource decoded again, e.g.
    /// from another request), held so that their addresses stay theirs while they are
    /// in `by_address`. At most one per distinct allocation interned while the block
    /// is open; the store's encoded path shares resources across requests
    /// (`HeaderCache`), so there it holds next to none.
    aliases: Vec<Arc<T>>,
    /// Allocation address → id, for every allocation interned so far (stored items and
    /// aliases): each one's content is fingerprinted and compared once per block.
    by_address: FxHashMap<usize, u32>,
    /// Content fingerprint → ids.
    by_content: FxHashMap<u64, Vec<u32>>,
    bytes: usize,
}

impl<T> Default for SharedTable<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            aliases: Vec::new(),
            by_address: FxHashMap::default(),
            by_content: FxHashMap::default(),
            bytes: 0,
        }
    }
}

impl<T: PartialEq> SharedTable<T> {
    fn intern(&mut self, item: &Arc<T>, fingerprint: impl FnOnce(&T) -> u64, size: impl FnOnce(&T) -> usize) -> u32 {
        let address = Arc::as_ptr(item) as usize;
        if let Some(id) = self.by_address.get(&address) {
            return *id;
        }
        let fp = fingerprint(item);
        let ids = self.by_content.entry(fp).or_default();
        let found = ids
            .iter()
            .copied()
            .find(|id| self.items.get(*id as usize).is_some_and(|i| **i == **item));
        let id = match found {
            Some(id) => {
                self.aliases.push(Arc::clone(item));
                id
            }
            None => {
                let id = u32::try_from(self.items.len()).unwrap_or(u32::MAX);
                self.items.push(Arc::clone(item));
                ids.push(id);
                self.bytes += SHARED_ENTRY + size(item);
                id
            }
        };
        self.by_address.insert(address, id);
        id
    }

    fn seal(&mut self) {
        self.aliases = Vec::new();
        self.by_address = FxHashMap::default();
        self.by_content = FxHashMap::default();
        self.items.shrink_to_fit();
    }

    fn get(&self, id: u32) -> Option<&Arc<T>> {
        self.items.get(id as usize)
    }
}

fn attrs_size(attrs: &[KeyValue]) -> usize {
    attrs.iter().map(KeyValue::heap_size).sum()
}

/// One block of spans.
#[derive(Debug, Default)]
pub(crate) struct Block {
    /// Position in the store's sequence of blocks; never reused.
    pub seq: u64,
    pub rows: Vec<Row>,
    cold: Vec<u8>,
    dict: Dict,
    resources: SharedTable<Resource>,
    /// Term keys of each resource's attributes, sorted, by resource id.
    resource_terms: Vec<Box<[u64]>>,
    /// Rows of each resource, by resource id: resource attribute terms are indexed once
    /// per resource rather than once per span.
    resource_rows: Vec<Vec<u16>>,
    scopes: SharedTable<Scope>,
    nodes: Vec<Node>,
    /// Content hash → node id, while the block is open (a second node with the same
    /// hash is stored again rather than found).
    node_ids: FxHashMap<u64, u32>,
    nodes_bytes: usize,
    pub postings: Postings,
    postings_bytes: usize,
    /// Smallest and largest start time of the rows (`u64::MAX`/0 when empty).
    pub min_start: u64,
    pub max_start: u64,
    /// Rows not dead.
    pub live: u32,
    /// No more rows will be added.
    pub sealed: bool,
    /// Estimated bytes held.
    pub bytes: usize,
}

impl Block {
    /// An empty block with room for `rows` rows and `cold` cold bytes.
    pub fn new(seq: u64, rows: usize, like: Option<&Block>) -> Self {
        // Sized like the previous block, so that nothing is copied or rehashed to grow.
        let cold = like.map_or(0, |b| b.cold.len() + b.cold.len() / 8);
        let lists = like.map_or(0, |b| b.postings.lists());
        Self {
            seq,
            rows: Vec::with_capacity(rows),
            cold: Vec::with_capacity(cold),
            postings: Postings::with_capacity(lists),
            min_start: u64::MAX,
            ..Default::default()
        }
    }

    /// Appends a span (service and operation already interned as `sid`, `oid`); returns
    /// its row number. The caller keeps the row count within `u16`.
    pub fn push(&mut self, span: &SpanView<'_>, sid: u32, oid: u32) -> u16 {
        let row = u16::try_from(self.rows.len()).unwrap_or(u16::MAX);
        let resource = self.resources.intern(
            span.resource,
            |r| cold::fingerprint(&r.attributes, &[&r.schema_url]),
            |r| size_of::<Resource>() + r.schema_url.len() + attrs_size(&r.attributes),
        );
        let scope = self.scopes.intern(
            span.scope,
            |s| cold::fingerprint(&s.attributes, &[&s.name, &s.version, &s.schema_url]),
            |s| size_of::<Scope>() + s.name.len() + s.version.len() + s.schema_url.len() + attrs_size(&s.attributes),
        );
        let offset = u32::try_from(self.cold.len()).unwrap_or(u32::MAX);
        cold::encode(span, scope, &mut self.dict, &mut self.cold);
        let mut added = self.postings.add(service_key(sid), row);
        added += self.postings.add(op_key(oid), row);
        if self.resource_terms.len() <= resource as usize {
            let terms = resource_terms(&span.resource.attributes);
            added += terms.len() * 8 + 32;
            self.resource_terms.push(terms);
            self.resource_rows.push(Vec::new());
        }
        if let Some(rows) = self.resource_rows.get_mut(resource as usize) {
            rows.push(row);
            added += 2;
        }
        let postings = &mut self.postings;
        span_terms(span, |k, v| added += postings.add(term_key(k, v), row));
        self.postings_bytes += added;
        let system = hopscope_schemas::derive::system(&span.attributes[..], span.hop_kind);
        let node = self.node_id(span.peer.as_deref(), span.host, system);
        let mut flags = 0;
        if span.parent_span_id.is_some() {
            flags |= HAS_PARENT;
        }
        if span.events.iter().any(|e| e.name == "exception") {
            flags |= EXCEPTION;
        }
        self.rows.push(Row {
            start_ns: span.start_time_unix_nano,
            end_ns: span.end_time_unix_nano,
            trace_id: span.trace_id,
            span_id: span.span_id,
            parent: span.parent_span_id.unwrap_or(SpanId([0; 8])),
            service: sid,
            op: oid,
            resource,
            cold: offset,
            node,
            kind: span.kind,
            status: span.status_code,
            hop: span.hop_kind,
            flags,
        });
        self.min_start = self.min_start.min(span.start_time_unix_nano);
        self.max_start = self.max_start.max(span.start_time_unix_nano);
        self.live += 1;
        self.bytes = self.estimate();
        row
    }

    /// The id of the node `(peer, host, system)`, entered if new.
    fn node_id(&mut self, peer: Option<&str>, host: Option<&str>, system: &str) -> u32 {
        let hash = {
            let mut h = FxHasher::default();
            (peer, host, system).hash(&mut h);
            h.finish()
        };
        if let Some(&id) = self.node_ids.get(&hash)
            && self.nodes.get(id as usize).is_some_and(|n| n.is(peer, host, system))
        {
            return id;
        }
        let id = u32::try_from(self.nodes.len()).unwrap_or(u32::MAX);
        self.nodes.push(Node {
            peer: peer.map(Box::from),
            host: host.map(Box::from),
            system: Box::from(system),
        });
        self.node_ids.entry(hash).or_insert(id);
        self.nodes_bytes += SHARED_ENTRY + peer.map_or(0, str::len) + host.map_or(0, str::len) + system.len();
        id
    }

    /// The node of a row.
    pub fn node(&self, row: &Row) -> Option<&Node> {
        self.nodes.get(row.node as usize)
    }

    /// Bytes of the lookup tables only an open block has (posting-list and dictionary
    /// hash tables, node lookup), which [`Block::bytes`] leaves out: they go when the
    /// block is sealed, so counting them in the block would make its count drop then.
    pub fn open_table_bytes(&self) -> usize {
        if self.sealed {
            return 0;
        }
        self.postings.open_table_bytes()
            + self.dict.open_table_bytes()
            + table_bytes::<u64, u32>(self.node_ids.capacity())
    }

    fn estimate(&self) -> usize {
        size_of::<Self>()
            + self.rows.len() * size_of::<Row>()
            + self.cold.len()
            + self.dict.bytes
            + self.resources.bytes
            + self.scopes.bytes
            + self.nodes_bytes
            + self.postings_bytes
    }

    /// Packs the block once it is full; it takes no more rows.
    pub fn seal(&mut self) {
        self.sealed = true;
        self.dict.seal();
        self.resources.seal();
        for rows in &mut self.resource_rows {
            rows.shrink_to_fit();
        }
        self.scopes.seal();
        self.node_ids = FxHashMap::default();
        self.nodes.shrink_to_fit();
        self.postings_bytes = self.postings.seal();
        self.rows.shrink_to_fit();
        self.cold.shrink_to_fit();
        self.bytes = self.estimate();
    }

    /// Marks a row dead; returns it if it was live.
    pub fn kill(&mut self, row: u16) -> Option<Row> {
        let r = self.rows.get_mut(row as usize)?;
        if r.is_dead() {
            return None;
        }
        r.flags |= DEAD;
        self.live = self.live.saturating_sub(1);
        Some(*r)
    }

    /// Frees everything of a sealed block with no live row, keeping its place.
    pub fn clear(&mut self) {
        let seq = self.seq;
        *self = Block::new(seq, 0, None);
        self.sealed = true;
        self.bytes = 0;
    }

    /// Rows of the block indexed under `key`: its posting list merged with the rows of
    /// every resource with that attribute term. `None` when no row is.
    pub fn term_rows(&self, key: u64) -> Option<Cow<'_, [u16]>> {
        let own = self.postings.get(key);
        let mut resources = self
            .resource_terms
            .iter()
            .zip(&self.resource_rows)
            .filter(|(terms, _)| terms.binary_search(&key).is_ok())
            .map(|(_, rows)| rows.as_slice());
        let first = resources.next();
        let second = resources.next();
        match (own, first, second) {
            (None, None, _) => None,
            (Some(rows), None, _) | (None, Some(rows), None) => Some(Cow::Borrowed(rows)),
            (own, first, second) => {
                let mut rows: Vec<u16> = own
                    .into_iter()
                    .chain(first)
                    .chain(second)
                    .chain(resources)
                    .flatten()
                    .copied()
                    .collect();
                rows.sort_unstable();
                rows.dedup();
                Some(Cow::Owned(rows))
            }
        }
    }

    /// An upper bound of `term_rows(key).len()`, without merging.
    pub fn term_rows_len(&self, key: u64) -> Option<usize> {
        let own = self.postings.get(key).map(<[u16]>::len);
        let resources: usize = self
            .resource_terms
            .iter()
            .zip(&self.resource_rows)
            .filter(|(terms, _)| terms.binary_search(&key).is_ok())
            .map(|(_, rows)| rows.len())
            .sum();
        match (own, resources) {
            (None, 0) => None,
            (own, resources) => Some(own.unwrap_or(0) + resources),
        }
    }

    pub fn resource(&self, row: &Row) -> Option<&Arc<Resource>> {
        self.resources.get(row.resource)
    }

    /// The whole span of row `i`.
    pub fn decode(&self, i: usize, catalog: &Catalog) -> Option<SpanRecord> {
        let row = self.rows.get(i)?;
        let end = match self.rows.get(i + 1) {
            Some(next) => next.cold as usize,
            None => self.cold.len(),
        };
        let bytes = self.cold.get(row.cold as usize..end)?;
        let c = cold::decode(bytes, &self.dict, row.start_ns)?;
        Some(SpanRecord {
            trace_id: row.trace_id,
            span_id: row.span_id,
            parent_span_id: row.parent(),
            trace_state: c.trace_state,
            flags: c.flags,
            name: catalog.op_name(row.op).to_owned(),
            kind: row.kind,
            start_time_unix_nano: row.start_ns,
            end_time_unix_nano: row.end_ns,
            status_code: row.status,
            status_message: c.status_message,
            attributes: c.attributes,
            dropped_attributes_count: c.dropped_attributes_count,
            events: c.events,
            dropped_events_count: c.dropped_events_count,
            links: c.links,
            dropped_links_count: c.dropped_links_count,
            resource: Arc::clone(self.resources.get(row.resource)?),
            scope: Arc::clone(self.scopes.get(c.scope)?),
            service_name: catalog.service_name(row.service).to_owned(),
            hop_kind: row.hop,
            peer: c.peer,
            host: c.host,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_items_share_an_id_and_each_allocation_is_compared_once() {
        let mut table = SharedTable::<String>::default();
        let fingerprint = |s: &String| s.len() as u64;
        let once = |_: &String| -> u64 { panic!("fingerprinted an allocation seen before") };
        let (a, b, c) = (
            Arc::new("pay".to_owned()),
            Arc::new("pay".to_owned()),
            Arc::new("cart".to_owned()),
        );
        assert_eq!(table.intern(&a, fingerprint, |_| 0), 0);
        assert_eq!(
            table.intern(&b, fingerprint, |_| 0),
            0,
            "equal content, another allocation"
        );
        assert_eq!(table.intern(&c, fingerprint, |_| 0), 1);
        // Every allocation seen is found by address from then on, the alias included.
        for item in [&b, &a, &c, &b] {
            table.intern(item, once, |_| 0);
        }
        assert_eq!(table.items.len(), 2);
        table.seal();
        assert!(table.aliases.is_empty() && table.by_address.is_empty());
    }
}
