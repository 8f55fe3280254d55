//! The cold part of a span: every field a search does not filter on (attributes, events,
//! links, status message, trace state, peer, host, ...), encoded compactly into its block's
//! byte buffer and decoded only when the span is read.
//!
//! Integers are LEB128 varints (signed ones zigzagged). A string is a varint `n`: odd
//! means the block dictionary entry `n >> 1`, even means `n >> 1` inline UTF-8 bytes
//! follow. Attribute keys, event names and short string values go through the
//! dictionary while it has room, so repeated text costs one or two bytes per use.

use std::hash::{Hash, Hasher};

use hopscope_schemas::{AttrRef, AttrValue, Event, KeyValue, Link, SpanId, SpanView, TraceId, ValueRef};
use rustc_hash::{FxHashMap, FxHasher};

use super::table_bytes;

/// String values longer than this are always stored inline.
const DICT_VALUE_MAX: usize = 64;
/// Dictionary entries per block; beyond them new values are stored inline (keys, which
/// repeat, may use up to twice as many).
const DICT_VALUES: usize = 8192;
/// Bytes of one dictionary entry besides its text (its end offset).
const DICT_ENTRY: usize = 4;

/// A block's string dictionary: the entries' text back to back in one buffer. The
/// lookup maps exist only while the block is open.
#[derive(Debug, Default)]
pub(crate) struct Dict {
    text: String,
    /// End offset of each entry in `text`.
    ends: Vec<u32>,
    /// Lookup key → id, for keys and event names (few, so the map stays in cache) and for
    /// values.
    key_ids: FxHashMap<TextKey, u32>,
    value_ids: FxHashMap<TextKey, u32>,
    /// Per key id: string values found in the dictionary and not found. Keys whose
    /// values are nearly all distinct (request ids, URLs) stop using the dictionary.
    value_stats: Vec<[u32; 2]>,
    /// Estimated bytes of the entries (the lookup tables apart, see
    /// [`Dict::open_table_bytes`]).
    pub bytes: usize,
}

/// Bytes of text a [`TextKey::Short`] holds.
const SHORT_TEXT: usize = 32;

/// How the dictionary looks a text up. Most texts (attribute keys, methods, codes, host
/// and service names) are short: their key *is* the text, so a lookup compares four words
/// in the map entry and never reads the dictionary's buffer. A longer text is looked up
/// by its hash and confirmed against the entry's text; of two longer texts with the same
/// hash only the first is entered (the second is stored inline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum TextKey {
    /// At most [`SHORT_TEXT`] bytes, zero-padded, as little-endian words, and the length
    /// (so texts ending in zero bytes stay apart).
    Short([u64; SHORT_TEXT / 8], u8),
    Long(u64),
}

impl TextKey {
    fn of(text: &str) -> Self {
        let bytes = text.as_bytes();
        if bytes.len() > SHORT_TEXT {
            let mut h = FxHasher::default();
            bytes.hash(&mut h);
            return TextKey::Long(h.finish());
        }
        let mut words = [0u64; SHORT_TEXT / 8];
        for (word, chunk) in words.iter_mut().zip(bytes.chunks(8)) {
            *word = match <[u8; 8]>::try_from(chunk) {
                Ok(whole) => u64::from_le_bytes(whole),
                Err(_) => partial_word(chunk),
            };
        }
        TextKey::Short(words, bytes.len() as u8)
    }
}

/// Up to 7 bytes as a zero-padded little-endian word, in at most three reads (no call
/// to memcpy for a handful of bytes).
fn partial_word(mut chunk: &[u8]) -> u64 {
    let (mut word, mut shift) = (0u64, 0);
    if let Some((four, rest)) = chunk.split_first_chunk::<4>() {
        word = u64::from(u32::from_le_bytes(*four));
        shift = 32;
        chunk = rest;
    }
    if let Some((two, rest)) = chunk.split_first_chunk::<2>() {
        word |= u64::from(u16::from_le_bytes(*two)) << shift;
        shift += 16;
        chunk = rest;
    }
    if let Some(&byte) = chunk.first() {
        word |= u64::from(byte) << shift;
    }
    word
}

impl Dict {
    /// The entry for `text`, entered if there is room; the flag says it already existed.
    fn intern(&mut self, text: &str, is_key: bool) -> (Option<u32>, bool) {
        let key = TextKey::of(text);
        let ids = if is_key { &self.key_ids } else { &self.value_ids };
        if let Some(&id) = ids.get(&key) {
            let same = matches!(key, TextKey::Short(..)) || self.get(id as usize) == text;
            return (same.then_some(id), true);
        }
        (self.insert(text, key, is_key), false)
    }

    fn insert(&mut self, text: &str, key: TextKey, is_key: bool) -> Option<u32> {
        let cap = if is_key { 2 * DICT_VALUES } else { DICT_VALUES };
        if self.ends.len() >= cap || (!is_key && text.len() > DICT_VALUE_MAX) {
            return None;
        }
        let id = u32::try_from(self.ends.len()).ok()?;
        self.text.push_str(text);
        self.ends.push(u32::try_from(self.text.len()).ok()?);
        if is_key {
            self.key_ids.insert(key, id);
        } else {
            self.value_ids.insert(key, id);
        }
        self.bytes += DICT_ENTRY + text.len();
        Some(id)
    }

    /// Bytes of the lookup tables as allocated (0 once sealed); not in [`Dict::bytes`].
    pub fn open_table_bytes(&self) -> usize {
        table_bytes::<TextKey, u32>(self.key_ids.capacity())
            + table_bytes::<TextKey, u32>(self.value_ids.capacity())
            + self.value_stats.capacity() * std::mem::size_of::<[u32; 2]>()
    }

    /// Drops the lookup map once no more spans will be encoded.
    pub fn seal(&mut self) {
        self.key_ids = FxHashMap::default();
        self.value_ids = FxHashMap::default();
        self.value_stats = Vec::new();
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
    }

    fn get(&self, id: usize) -> &str {
        let start = match id.checked_sub(1) {
            Some(prev) => self.ends.get(prev).map_or(0, |e| *e as usize),
            None => 0,
        };
        let end = self.ends.get(id).map_or(start, |e| *e as usize);
        self.text.get(start..end).unwrap_or("")
    }
}

/// Appends the cold part of `span` (with `scope`, its block-local scope id) to `out`.
pub(crate) fn encode(span: &SpanView<'_>, scope: u32, dict: &mut Dict, out: &mut Vec<u8>) {
    let mut w = Writer { out, dict: Some(dict) };
    w.uint(u64::from(scope));
    w.str(span.trace_state, false);
    w.uint(u64::from(span.flags));
    w.str(span.status_message, false);
    w.attrs(&span.attributes);
    w.uint(u64::from(span.dropped_attributes_count));
    w.uint(span.events.len() as u64);
    for event in &span.events {
        w.int(event.time_unix_nano.wrapping_sub(span.start_time_unix_nano) as i64);
        w.str(event.name, true);
        w.attrs(&event.attributes);
        w.uint(u64::from(event.dropped_attributes_count));
    }
    w.uint(u64::from(span.dropped_events_count));
    w.uint(span.links.len() as u64);
    for link in &span.links {
        w.out.extend_from_slice(&link.trace_id.0);
        w.out.extend_from_slice(&link.span_id.0);
        w.str(link.trace_state, false);
        w.attrs(&link.attributes);
        w.uint(u64::from(link.dropped_attributes_count));
        w.uint(u64::from(link.flags));
    }
    w.uint(u64::from(span.dropped_links_count));
    w.opt_str(span.peer.as_deref());
    w.opt_str(span.host);
}

/// Encodes attributes with inline strings only (no dictionary): a content fingerprint.
pub(crate) fn fingerprint(attrs: &[KeyValue], extra: &[&str]) -> u64 {
    let mut out = Vec::new();
    let mut w = Writer {
        out: &mut out,
        dict: None,
    };
    w.kvs(attrs);
    for s in extra {
        w.str(s, false);
    }
    let mut h = FxHasher::default();
    out.hash(&mut h);
    h.finish()
}

/// The cold fields of a span, decoded.
pub(crate) struct Cold {
    pub scope: u32,
    pub trace_state: String,
    pub flags: u32,
    pub status_message: String,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
    pub events: Vec<Event>,
    pub dropped_events_count: u32,
    pub links: Vec<Link>,
    pub dropped_links_count: u32,
    pub peer: Option<String>,
    pub host: Option<String>,
}

/// Decodes what [`encode`] wrote; `None` only if the bytes are not such an encoding.
pub(crate) fn decode(bytes: &[u8], dict: &Dict, start_ns: u64) -> Option<Cold> {
    let mut r = Reader { bytes, pos: 0, dict };
    let scope = r.u32()?;
    let trace_state = r.string()?;
    let flags = r.u32()?;
    let status_message = r.string()?;
    let attributes = r.kvs()?;
    let dropped_attributes_count = r.u32()?;
    let n = r.len()?;
    let mut events = Vec::with_capacity(n);
    for _ in 0..n {
        events.push(Event {
            time_unix_nano: start_ns.wrapping_add(r.int()? as u64),
            name: r.string()?,
            attributes: r.kvs()?,
            dropped_attributes_count: r.u32()?,
        });
    }
    let dropped_events_count = r.u32()?;
    let n = r.len()?;
    let mut links = Vec::with_capacity(n);
    for _ in 0..n {
        links.push(Link {
            trace_id: TraceId(r.array()?),
            span_id: SpanId(r.array()?),
            trace_state: r.string()?,
            attributes: r.kvs()?,
            dropped_attributes_count: r.u32()?,
            flags: r.u32()?,
        });
    }
    let dropped_links_count = r.u32()?;
    let peer = r.opt_string()?;
    let host = r.opt_string()?;
    Some(Cold {
        scope,
        trace_state,
        flags,
        status_message,
        attributes,
        dropped_attributes_count,
        events,
        dropped_events_count,
        links,
        dropped_links_count,
        peer,
        host,
    })
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
    /// `None` stores every string inline.
    dict: Option<&'a mut Dict>,
}

impl Writer<'_> {
    fn uint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    fn int(&mut self, v: i64) {
        self.uint(((v << 1) ^ (v >> 63)) as u64);
    }

    /// Writes a string; returns its dictionary id when it has one.
    fn str(&mut self, s: &str, is_key: bool) -> Option<u32> {
        if s.is_empty() {
            self.uint(0);
            return None;
        }
        let id = self.dict.as_mut().and_then(|d| d.intern(s, is_key).0);
        self.str_as(s, id);
        id
    }

    /// Writes a string value of the attribute with key id `key`, through the dictionary
    /// unless that key's values rarely repeat.
    fn value_str(&mut self, s: &str, key: Option<u32>) {
        let (Some(dict), Some(key)) = (self.dict.as_mut(), key) else {
            self.str(s, false);
            return;
        };
        let k = key as usize;
        if dict.value_stats.len() <= k {
            dict.value_stats.resize(k + 1, [0, 0]);
        }
        let [found, missed] = dict.value_stats.get(k).copied().unwrap_or([0, 0]);
        if s.is_empty() || (missed > 64 && missed > 8 * found) {
            self.str_as(s, None);
            return;
        }
        let (id, existed) = dict.intern(s, false);
        if let Some(stats) = dict.value_stats.get_mut(k) {
            stats[usize::from(!existed)] += 1;
        }
        self.str_as(s, id);
    }

    fn str_as(&mut self, s: &str, id: Option<u32>) {
        if s.is_empty() {
            self.uint(0);
            return;
        }
        match id {
            Some(id) => self.uint((u64::from(id) << 1) | 1),
            None => {
                self.uint((s.len() as u64) << 1);
                self.out.extend_from_slice(s.as_bytes());
            }
        }
    }

    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.uint(0),
            Some(s) => {
                self.uint(1);
                self.str(s, true);
            }
        }
    }

    fn attrs(&mut self, attrs: &[AttrRef<'_>]) {
        self.uint(attrs.len() as u64);
        for a in attrs {
            let key = self.str(a.key, true);
            self.value(&a.value, key);
        }
    }

    fn kvs(&mut self, kvs: &[KeyValue]) {
        self.uint(kvs.len() as u64);
        for kv in kvs {
            let key = self.str(&kv.key, true);
            self.value(&ValueRef::of(&kv.value), key);
        }
    }

    fn value(&mut self, v: &ValueRef<'_>, key: Option<u32>) {
        match v {
            ValueRef::Str(s) => {
                self.out.push(0);
                self.value_str(s, key);
            }
            ValueRef::Bool(false) => self.out.push(1),
            ValueRef::Bool(true) => self.out.push(2),
            ValueRef::Int(i) => {
                self.out.push(3);
                self.int(*i);
            }
            ValueRef::Double(d) => {
                self.out.push(4);
                self.out.extend_from_slice(&d.to_le_bytes());
            }
            ValueRef::Bytes(b) => {
                self.out.push(5);
                self.uint(b.len() as u64);
                self.out.extend_from_slice(b);
            }
            ValueRef::Other(other) => match &**other {
                AttrValue::Array(items) => {
                    self.out.push(6);
                    self.uint(items.len() as u64);
                    for item in items {
                        self.value(&ValueRef::of(item), None);
                    }
                }
                AttrValue::KvList(kvs) => {
                    self.out.push(7);
                    self.kvs(kvs);
                }
                AttrValue::Empty => self.out.push(8),
                scalar => self.value(&ValueRef::of(scalar), key),
            },
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    dict: &'a Dict,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn uint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b < 0x80 {
                return Some(v);
            }
            shift += 7;
        }
    }

    fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.uint()?).ok()
    }

    fn len(&mut self) -> Option<usize> {
        let n = usize::try_from(self.uint()?).ok()?;
        // Every element takes at least one byte: a corrupt length cannot over-allocate.
        (n <= self.bytes.len() - self.pos.min(self.bytes.len())).then_some(n)
    }

    fn int(&mut self) -> Option<i64> {
        let v = self.uint()?;
        Some(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn string(&mut self) -> Option<String> {
        let n = self.uint()?;
        if n & 1 == 1 {
            let id = usize::try_from(n >> 1).ok()?;
            return Some(self.dict.get(id).to_owned());
        }
        let len = usize::try_from(n >> 1).ok()?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).ok()
    }

    fn opt_string(&mut self) -> Option<Option<String>> {
        match self.uint()? {
            0 => Some(None),
            _ => Some(Some(self.string()?)),
        }
    }

    fn kvs(&mut self) -> Option<Vec<KeyValue>> {
        let n = self.len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let key = self.string()?;
            let value = self.value()?;
            out.push(KeyValue { key, value });
        }
        Some(out)
    }

    fn value(&mut self) -> Option<AttrValue> {
        Some(match self.byte()? {
            0 => AttrValue::String(self.string()?),
            1 => AttrValue::Bool(false),
            2 => AttrValue::Bool(true),
            3 => AttrValue::Int(self.int()?),
            4 => AttrValue::Double(f64::from_le_bytes(self.array()?)),
            5 => {
                let n = self.len()?;
                AttrValue::Bytes(self.take(n)?.to_vec())
            }
            6 => {
                let n = self.len()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value()?);
                }
                AttrValue::Array(items)
            }
            7 => AttrValue::KvList(self.kvs()?),
            8 => AttrValue::Empty,
            _ => return None,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_inline_and_through_the_dictionary() {
        let kvs = vec![
            KeyValue::new("s", AttrValue::String("short".into())),
            KeyValue::new("long", AttrValue::String("x".repeat(300))),
            KeyValue::new("b", AttrValue::Bool(true)),
            KeyValue::new("i", AttrValue::Int(-123_456_789)),
            KeyValue::new("d", AttrValue::Double(-0.25)),
            KeyValue::new("raw", AttrValue::Bytes(vec![0, 1, 255])),
            KeyValue::new("arr", AttrValue::Array(vec![AttrValue::Int(1), AttrValue::Empty])),
            KeyValue::new(
                "kv",
                AttrValue::KvList(vec![KeyValue::new("in", AttrValue::Bool(false))]),
            ),
            KeyValue::new("", AttrValue::String(String::new())),
        ];
        let mut dict = Dict::default();
        let mut out = Vec::new();
        let mut w = Writer {
            out: &mut out,
            dict: Some(&mut dict),
        };
        w.kvs(&kvs);
        w.kvs(&kvs);
        dict.seal();
        let mut r = Reader {
            bytes: &out,
            pos: 0,
            dict: &dict,
        };
        assert_eq!(r.kvs().unwrap(), kvs);
        assert_eq!(r.kvs().unwrap(), kvs);
        assert_eq!(r.pos, out.len());
    }

    #[test]
    fn texts_of_every_length_get_their_own_entries() {
        // Lengths around the short-key limit, texts differing only in their last byte
        // or in trailing zero bytes, and long texts.
        let mut texts: Vec<String> = Vec::new();
        for len in [1, 7, 8, 9, 16, 31, 32, 33, 40, 64] {
            texts.push("a".repeat(len));
            texts.push(format!("{}b", "a".repeat(len - 1)));
        }
        texts.extend(["\0".into(), "\0\0".into(), "a\0".into(), "ü".into()]);
        let mut dict = Dict::default();
        let ids: Vec<_> = texts.iter().map(|t| dict.intern(t, false)).collect();
        for (text, (id, existed)) in texts.iter().zip(&ids) {
            assert!(!existed, "{text:?} is new");
            assert_eq!(dict.get(id.unwrap() as usize), text);
        }
        for (text, first) in texts.iter().zip(&ids) {
            assert_eq!(dict.intern(text, false), (first.0, true), "{text:?} found again");
        }
        assert_eq!(dict.intern("a", true), (Some(ids.len() as u32), false), "keys apart");
    }

    #[test]
    fn partial_words_are_the_bytes_zero_padded() {
        let bytes = [1u8, 2, 3, 4, 5, 6, 7];
        for len in 0..8 {
            let mut padded = [0u8; 8];
            padded[..len].copy_from_slice(&bytes[..len]);
            assert_eq!(partial_word(&bytes[..len]), u64::from_le_bytes(padded), "{len} bytes");
        }
    }
}
