//! Per-block posting lists: 64-bit term key → the block's row numbers, in row order.
//!
//! Keys are hashes (of a service id, an operation id or an attribute term), so two terms
//! may share a list: a list holds every row of its terms and perhaps a few others, and a
//! search always checks each candidate row against the whole query. An open block
//! collects lists in a hash map; sealing packs them into three flat arrays.

use std::collections::hash_map::Entry;
use std::hash::{Hash, Hasher};

use hopscope_schemas::derive::int_text;
use hopscope_schemas::{AttrValue, KeyValue, SpanView, ValueRef};
use rustc_hash::{FxHashMap, FxHasher};

use super::table_bytes;

/// Attribute values whose text is longer than this are not indexed (they are still
/// matched by the scan).
pub(crate) const MAX_INDEXED_VALUE: usize = 256;
/// Bytes of one list in a sealed block besides its rows (key and end offset). An open
/// block's lists are counted at this sealed size too, so a block's count does not jump
/// when it is sealed; the open block's hash table is counted apart
/// ([`Postings::open_table_bytes`]).
const LIST: usize = 12;

/// The key of a service's list.
pub(crate) fn service_key(sid: u32) -> u64 {
    let mut h = FxHasher::default();
    (1u8, sid).hash(&mut h);
    h.finish()
}

/// The key of an operation's list.
pub(crate) fn op_key(oid: u32) -> u64 {
    let mut h = FxHasher::default();
    (2u8, oid).hash(&mut h);
    h.finish()
}

/// The key of an attribute term's list.
pub(crate) fn term_key(key: &str, value: &str) -> u64 {
    let mut h = FxHasher::default();
    key.hash(&mut h);
    value.hash(&mut h);
    h.finish()
}

/// Posting lists of one block.
#[derive(Debug)]
pub(crate) enum Postings {
    Open(FxHashMap<u64, OpenList>),
    Sealed {
        /// Sorted keys.
        keys: Box<[u64]>,
        /// `rows[ends[i - 1]..ends[i]]` is the list of `keys[i]`.
        ends: Box<[u32]>,
        rows: Box<[u16]>,
    },
}

/// One list of an open block: most terms (unique values such as request ids) have one
/// row, which needs no allocation.
#[derive(Debug)]
pub(crate) enum OpenList {
    One([u16; 1]),
    Many(Vec<u16>),
}

impl OpenList {
    fn as_slice(&self) -> &[u16] {
        match self {
            OpenList::One(row) => row,
            OpenList::Many(rows) => rows,
        }
    }

    /// Appends `row`; false when it is already the last row.
    fn push(&mut self, row: u16) -> bool {
        match self {
            OpenList::One([last]) if *last == row => false,
            OpenList::One([last]) => {
                let mut rows = Vec::with_capacity(4);
                rows.extend_from_slice(&[*last, row]);
                *self = OpenList::Many(rows);
                true
            }
            OpenList::Many(rows) if rows.last() == Some(&row) => false,
            OpenList::Many(rows) => {
                rows.push(row);
                true
            }
        }
    }
}

impl Default for Postings {
    fn default() -> Self {
        Postings::Open(FxHashMap::default())
    }
}

impl Postings {
    /// Open lists with room for `lists` keys.
    pub fn with_capacity(lists: usize) -> Self {
        Postings::Open(FxHashMap::with_capacity_and_hasher(lists, Default::default()))
    }

    /// Bytes of an open block's hash table as allocated (a slot per bucket and a control
    /// byte), which the lists' own estimate leaves out and sealing frees; 0 once sealed.
    pub fn open_table_bytes(&self) -> usize {
        match self {
            Postings::Open(map) => table_bytes::<u64, OpenList>(map.capacity()),
            Postings::Sealed { .. } => 0,
        }
    }

    /// Number of lists.
    pub fn lists(&self) -> usize {
        match self {
            Postings::Open(map) => map.len(),
            Postings::Sealed { keys, .. } => keys.len(),
        }
    }

    /// Adds `row` (never smaller than the rows already added) to the list of `key`;
    /// returns the estimated bytes added.
    pub fn add(&mut self, key: u64, row: u16) -> usize {
        let Postings::Open(map) = self else {
            return 0;
        };
        match map.entry(key) {
            Entry::Occupied(mut list) => {
                if list.get_mut().push(row) {
                    2
                } else {
                    0
                }
            }
            Entry::Vacant(slot) => {
                slot.insert(OpenList::One([row]));
                LIST + 2
            }
        }
    }

    /// The list of `key`, if any row has it.
    pub fn get(&self, key: u64) -> Option<&[u16]> {
        match self {
            Postings::Open(map) => map.get(&key).map(OpenList::as_slice),
            Postings::Sealed { keys, ends, rows } => {
                let i = keys.binary_search(&key).ok()?;
                let start = if i == 0 { 0 } else { *ends.get(i - 1)? as usize };
                rows.get(start..*ends.get(i)? as usize)
            }
        }
    }

    /// Packs the lists; returns the estimated bytes they take afterwards.
    pub fn seal(&mut self) -> usize {
        let Postings::Open(map) = self else {
            return self.sealed_bytes();
        };
        let mut entries: Vec<(u64, OpenList)> = std::mem::take(map).into_iter().collect();
        entries.sort_unstable_by_key(|e| e.0);
        let total: usize = entries.iter().map(|e| e.1.as_slice().len()).sum();
        let mut keys = Vec::with_capacity(entries.len());
        let mut ends = Vec::with_capacity(entries.len());
        let mut rows = Vec::with_capacity(total);
        for (key, list) in entries {
            keys.push(key);
            rows.extend_from_slice(list.as_slice());
            ends.push(u32::try_from(rows.len()).unwrap_or(u32::MAX));
        }
        *self = Postings::Sealed {
            keys: keys.into(),
            ends: ends.into(),
            rows: rows.into(),
        };
        self.sealed_bytes()
    }

    fn sealed_bytes(&self) -> usize {
        match self {
            Postings::Open(_) => 0,
            Postings::Sealed { keys, rows, .. } => keys.len() * LIST + rows.len() * 2,
        }
    }
}

/// Calls `f(key, value_text)` for every attribute term a span is indexed under, its
/// resource's apart (see [`resource_terms`]): its own and its events' attributes whose
/// text ([`AttrValue::to_text`]) is at most [`MAX_INDEXED_VALUE`] bytes, arrays and
/// key/value lists excepted, plus the synthetic `error=true` for ERROR spans. The same
/// term may be reported twice.
pub(crate) fn span_terms(span: &SpanView<'_>, mut f: impl FnMut(&str, &str)) {
    for a in span.attributes.iter() {
        with_indexed_text(&a.value, |text| f(a.key, text));
    }
    for event in &span.events {
        for a in &event.attributes {
            with_indexed_text(&a.value, |text| f(a.key, text));
        }
    }
    if span.is_error() {
        f("error", "true");
    }
}

/// The term keys of a resource's attributes, chosen as in [`span_terms`], sorted.
pub(crate) fn resource_terms(attrs: &[KeyValue]) -> Box<[u64]> {
    let mut keys = Vec::with_capacity(attrs.len());
    for kv in attrs {
        with_indexed_text(&ValueRef::of(&kv.value), |text| keys.push(term_key(&kv.key, text)));
    }
    keys.sort_unstable();
    keys.dedup();
    keys.into()
}

/// Calls `f` with the value's text when it is indexed, allocating only for doubles and
/// bytes.
fn with_indexed_text(value: &ValueRef<'_>, f: impl FnOnce(&str)) {
    match value {
        ValueRef::Str(s) if s.len() <= MAX_INDEXED_VALUE => f(s),
        ValueRef::Str(_) => {}
        ValueRef::Bool(b) => f(if *b { "true" } else { "false" }),
        ValueRef::Int(i) => {
            let mut buf = [0u8; 20];
            f(int_text(*i, &mut buf));
        }
        ValueRef::Bytes(b) if b.len() * 2 > MAX_INDEXED_VALUE => {}
        ValueRef::Other(v) if matches!(**v, AttrValue::Array(_) | AttrValue::KvList(_)) => {}
        other => {
            let text = other.to_owned_value().to_text();
            if text.len() <= MAX_INDEXED_VALUE {
                f(&text);
            }
        }
    }
}

/// True when the term lists hold every span matching `key=value`, so a search may use
/// that term's list as its candidates.
pub(crate) fn term_is_complete(key: &str, value: &str) -> bool {
    let synthetic = crate::matching::SYNTHETIC_KEYS
        .iter()
        .any(|k| *k == key && key != "error");
    !synthetic && value.len() <= MAX_INDEXED_VALUE && !value.starts_with('[') && !value.starts_with('{')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_and_sealed_lists_agree() {
        let mut p = Postings::default();
        for (key, row) in [(7u64, 0u16), (3, 0), (7, 1), (7, 1), (9, 2), (3, 5)] {
            p.add(key, row);
        }
        let expect = |p: &Postings| {
            assert_eq!(p.get(7), Some(&[0u16, 1][..]));
            assert_eq!(p.get(3), Some(&[0u16, 5][..]));
            assert_eq!(p.get(9), Some(&[2u16][..]));
            assert_eq!(p.get(4), None);
        };
        expect(&p);
        assert_eq!(p.seal(), 3 * 12 + 5 * 2);
        expect(&p);
    }
}
