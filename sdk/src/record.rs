//! Span records and attribute vectors, recycled so that a span costs no allocation once
//! the pipeline is warm.
//!
//! A recording span keeps its data in a heap record (`Box<SpanData>`), so the span handle
//! stays small and cheap to move. Ending it moves the data into the export queue and
//! puts the emptied record back into a small per-thread cache, where the next span on
//! that thread finds it. The attribute vector travels with the data to the export worker,
//! which clears it after export and hands it back through a bounded process-wide pool of
//! spare vectors; application threads take spares a handful at a time into a per-thread
//! cache (one lock per [`CACHE_REFILL`] spans).
//!
//! Bounds: each thread caches at most [`CACHE_MAX`] records and as many spare vectors;
//! the pool keeps at most [`POOL_MAX`] vectors, and none that grew beyond
//! [`KEEP_CAPACITY`] entries. Beyond the bounds things are simply freed.

use std::cell::RefCell;
use std::time::UNIX_EPOCH;

use parking_lot::Mutex;

use crate::id::SpanContext;
use crate::span::{SpanData, SpanKind, Status};
use crate::value::KeyValue;

/// A span's data on the heap.
pub(crate) type Record = Box<SpanData>;

/// Most records (and spare attribute vectors) one thread caches.
pub(crate) const CACHE_MAX: usize = 64;
/// Spare vectors a thread takes from the pool at once when its cache is empty.
pub(crate) const CACHE_REFILL: usize = 32;
/// Most spare attribute vectors the process-wide pool keeps.
pub(crate) const POOL_MAX: usize = 2048;
/// Vectors with more capacity than this are freed rather than recycled.
pub(crate) const KEEP_CAPACITY: usize = 16;
/// Capacity of a new attribute vector: spans usually get a handful of attributes.
const NEW_CAPACITY: usize = 8;

thread_local! {
    static RECORDS: RefCell<Vec<Record>> = const { RefCell::new(Vec::new()) };
    static SPARE_ATTRIBUTES: RefCell<Vec<Vec<KeyValue>>> = const { RefCell::new(Vec::new()) };
}

static ATTRIBUTE_POOL: Mutex<Vec<Vec<KeyValue>>> = Mutex::new(Vec::new());

impl SpanData {
    /// An empty record: no ids, no name, epoch times, nothing recorded, no allocation.
    pub(crate) fn blank() -> SpanData {
        SpanData {
            context: SpanContext::default(),
            parent_span_id: None,
            parent_is_remote: false,
            name: "".into(),
            kind: SpanKind::Internal,
            scope: "".into(),
            start_time: UNIX_EPOCH,
            end_time: UNIX_EPOCH,
            attributes: Vec::new(),
            events: Vec::new(),
            links: Vec::new(),
            status: Status::Unset,
            dropped_attributes: 0,
            dropped_events: 0,
            dropped_links: 0,
        }
    }
}

/// An empty record: from this thread's cache, else a new one.
pub(crate) fn take() -> Record {
    let cached = RECORDS.try_with(|cache| cache.borrow_mut().pop());
    cached
        .ok()
        .flatten()
        .unwrap_or_else(|| Box::new(SpanData::blank()))
}

/// Keeps `record`, which must be [`SpanData::blank`], in this thread's cache (or frees it
/// when the cache is full).
pub(crate) fn keep_blank(record: Record) {
    let _ = RECORDS.try_with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() < CACHE_MAX {
            cache.push(record);
        }
    });
}

/// Empties `record` (recycling its attribute vector) and keeps it in this thread's cache.
pub(crate) fn recycle(mut record: Record) {
    let mut attributes = std::mem::take(&mut record.attributes);
    *record = SpanData::blank();
    attributes.clear();
    if (1..=KEEP_CAPACITY).contains(&attributes.capacity()) {
        let _ = SPARE_ATTRIBUTES.try_with(|cache| {
            let mut cache = cache.borrow_mut();
            if cache.len() < CACHE_MAX {
                cache.push(attributes);
            }
        });
    }
    keep_blank(record);
}

/// An empty attribute vector with room for a few entries: a spare from this thread's
/// cache, else a few from the pool, else a new one.
pub(crate) fn spare_attributes() -> Vec<KeyValue> {
    let spare = SPARE_ATTRIBUTES.try_with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.is_empty() {
            let mut pool = ATTRIBUTE_POOL.lock();
            let from = pool.len().saturating_sub(CACHE_REFILL);
            cache.extend(pool.drain(from..));
        }
        cache.pop()
    });
    spare
        .ok()
        .flatten()
        .unwrap_or_else(|| Vec::with_capacity(NEW_CAPACITY))
}

/// Takes the attribute vectors of exported spans for reuse (emptying `spans`' vectors);
/// called by the export worker. Oversized vectors and those beyond the pool's bound are
/// freed.
pub(crate) fn harvest_attributes<'a>(
    spans: impl Iterator<Item = &'a mut SpanData>,
    spare: &mut Vec<Vec<KeyValue>>,
) {
    for span in spans {
        if (1..=KEEP_CAPACITY).contains(&span.attributes.capacity()) {
            let mut attributes = std::mem::take(&mut span.attributes);
            attributes.clear();
            spare.push(attributes);
        }
    }
    let mut pool = ATTRIBUTE_POOL.lock();
    spare.truncate(POOL_MAX.saturating_sub(pool.len()));
    pool.append(spare);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn attribute_vectors_go_round_and_stay_bounded() {
        // A fresh thread, so that its caches start empty.
        std::thread::spawn(|| {
            let mut spans: Vec<SpanData> = (0..3).map(|_| SpanData::blank()).collect();
            spans[0].attributes = spare_attributes();
            spans[0].attributes.push(KeyValue::new("k", 1));
            spans[1].attributes = (0..100).map(|i| KeyValue::new("k", i)).collect();
            let before = ATTRIBUTE_POOL.lock().len();
            let mut spare = Vec::new();
            harvest_attributes(spans.iter_mut(), &mut spare);
            assert!(spare.is_empty());
            assert_eq!(
                spans[0].attributes.capacity(),
                0,
                "the small vector was taken"
            );
            assert!(
                spans[1].attributes.capacity() >= 100,
                "the oversized one is left to be freed"
            );
            // Only the small vector went to the pool (other tests may use it too).
            assert!(ATTRIBUTE_POOL.lock().len() <= (before + 1).min(POOL_MAX));
            let again = spare_attributes();
            assert!(again.is_empty() && again.capacity() >= 1);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn records_are_cached_per_thread_and_recycled_empty() {
        std::thread::spawn(|| {
            let mut record = take();
            record.name = "x".to_string().into();
            record.attributes = spare_attributes();
            record.attributes.push(KeyValue::new("k", 1));
            record.status = Status::error("bad");
            recycle(record);
            assert!(SPARE_ATTRIBUTES.with(|c| !c.borrow().is_empty()));
            let again = take();
            assert_eq!(*again, SpanData::blank());
            assert_eq!(RECORDS.with(|c| c.borrow().len()), 0);
        })
        .join()
        .unwrap();
    }
}
