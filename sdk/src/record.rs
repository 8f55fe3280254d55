//! Span records and attribute vectors, recycled so that a span costs no allocation once
//! the pipeline is warm.
//!
//! A recording span keeps its data in a heap record (`Box<Option<SpanData>>`), so the
//! span handle stays small and cheap to move. Ending it moves the data into the export
//! queue (leaving `None`, one store) and puts the emptied record back into a per-thread
//! slot, where the next span on that thread finds it (a small per-thread cache holds the
//! records of nested spans). The attribute vector travels with the data to the export
//! worker, which clears it after export and hands it back through a bounded
//! process-wide pool of spare vectors; application threads take spares a handful at a
//! time into a per-thread cache (one lock per [`CACHE_REFILL`] spans).
//!
//! Bounds: each thread caches at most [`CACHE_MAX`] records and as many spare vectors;
//! the pool keeps at most as many vectors as the largest export queue holds spans (at
//! least [`POOL_MAX`]; see [`raise_pool_limit`]), so that a full queue's vectors all come
//! back, and none that grew beyond [`KEEP_CAPACITY`] entries. Beyond the bounds things
//! are simply freed.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

use crate::span::SpanData;
use crate::value::KeyValue;

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

/// A span's data on the heap; `None` between spans.
pub(crate) type Record = Box<Option<SpanData>>;

thread_local! {
    /// The record the last span on this thread ended with: sequential spans reuse it.
    static LAST_RECORD: Cell<Option<Record>> = const { Cell::new(None) };
    /// More empty records (those of nested spans).
    static RECORDS: RefCell<Vec<Record>> = const { RefCell::new(Vec::new()) };
    static SPARE_ATTRIBUTES: RefCell<Vec<Vec<KeyValue>>> = const { RefCell::new(Vec::new()) };
}

static ATTRIBUTE_POOL: Mutex<Vec<Vec<KeyValue>>> = Mutex::new(Vec::new());
/// The pool's current bound: [`POOL_MAX`] or the largest export queue's capacity.
static POOL_LIMIT: AtomicUsize = AtomicUsize::new(POOL_MAX);

/// Lets the pool keep up to `queue_capacity` spare vectors (called when an export queue
/// of that capacity starts), so that vectors of spans queued beyond [`POOL_MAX`] are
/// reused rather than freed and allocated again.
pub(crate) fn raise_pool_limit(queue_capacity: usize) {
    POOL_LIMIT.fetch_max(queue_capacity, Ordering::Relaxed);
}

/// An empty record: this thread's last one, else one from its cache, else a new one.
#[inline]
pub(crate) fn take() -> Record {
    if let Ok(Some(record)) = LAST_RECORD.try_with(Cell::take) {
        return record;
    }
    let cached = RECORDS.try_with(|cache| cache.borrow_mut().pop());
    cached.ok().flatten().unwrap_or_else(|| Box::new(None))
}

/// Keeps `record`, which must be `None`, for the next span on this thread (or frees it
/// when the caches are full).
#[inline]
pub(crate) fn keep(record: Record) {
    if let Ok(Some(previous)) = LAST_RECORD.try_with(|last| last.replace(Some(record))) {
        let _ = RECORDS.try_with(|cache| {
            let mut cache = cache.borrow_mut();
            if cache.len() < CACHE_MAX {
                cache.push(previous);
            }
        });
    }
}

/// Empties `record` (recycling its attribute vector) and keeps it for the next span.
pub(crate) fn recycle(mut record: Record) {
    if let Some(data) = record.take() {
        recycle_attributes(data.attributes);
    }
    keep(record);
}

/// Keeps an ended span's attribute vector (emptied) in this thread's cache of spares.
pub(crate) fn recycle_attributes(mut attributes: Vec<KeyValue>) {
    attributes.clear();
    if (1..=KEEP_CAPACITY).contains(&attributes.capacity()) {
        let _ = SPARE_ATTRIBUTES.try_with(|cache| {
            let mut cache = cache.borrow_mut();
            if cache.len() < CACHE_MAX {
                cache.push(attributes);
            }
        });
    }
}

/// An empty attribute vector with room for a few entries: a spare from this thread's
/// cache, else a few from the pool, else a new one.
pub(crate) fn spare_attributes() -> Vec<KeyValue> {
    let spare = SPARE_ATTRIBUTES.try_with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.is_empty() {
            let mut pool = ATTRIBUTE_POOL.lock();
            // Pop and push: cheaper here than drain and extend.
            for _ in 0..CACHE_REFILL {
                match pool.pop() {
                    Some(spare) => cache.push(spare),
                    None => break,
                }
            }
        }
        cache.pop()
    });
    spare.ok().flatten().unwrap_or_else(|| Vec::with_capacity(NEW_CAPACITY))
}

/// Takes the attribute vectors of exported spans for reuse (emptying `spans`' vectors);
/// called by the export worker. Oversized vectors and those beyond the pool's bound are
/// freed.
pub(crate) fn harvest_attributes<'a>(spans: impl Iterator<Item = &'a mut SpanData>, spare: &mut Vec<Vec<KeyValue>>) {
    for span in spans {
        if (1..=KEEP_CAPACITY).contains(&span.attributes.capacity()) {
            let mut attributes = std::mem::take(&mut span.attributes);
            attributes.clear();
            spare.push(attributes);
        }
    }
    let mut pool = ATTRIBUTE_POOL.lock();
    spare.truncate(POOL_LIMIT.load(Ordering::Relaxed).saturating_sub(pool.len()));
    if pool.is_empty() {
        // Hand over the whole buffer rather than copying it.
        std::mem::swap(&mut *pool, spare);
    } else {
        pool.append(spare);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::id::SpanContext;
    use crate::span::{SpanKind, Status};
    use std::time::UNIX_EPOCH;

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
            assert_eq!(spans[0].attributes.capacity(), 0, "the small vector was taken");
            assert!(
                spans[1].attributes.capacity() >= 100,
                "the oversized one is left to be freed"
            );
            // Only the small vector went to the pool (other tests may use it too).
            assert!(ATTRIBUTE_POOL.lock().len() <= (before + 1).min(POOL_LIMIT.load(Ordering::Relaxed)));
            let again = spare_attributes();
            assert!(again.is_empty() && again.capacity() >= 1);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn records_are_reused_per_thread_and_kept_empty() {
        std::thread::spawn(|| {
            let mut record = take();
            let mut data = SpanData::blank();
            data.name = "x".to_string().into();
            data.attributes = spare_attributes();
            data.attributes.push(KeyValue::new("k", 1));
            *record = Some(data);
            let nested = take();
            recycle(record);
            recycle(nested);
            assert!(SPARE_ATTRIBUTES.with(|c| !c.borrow().is_empty()));
            assert_eq!(RECORDS.with(|c| c.borrow().len()), 1, "the second one is cached");
            assert!(take().is_none() && take().is_none());
            assert_eq!(RECORDS.with(|c| c.borrow().len()), 0);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn dropped_spans_recycle_their_attributes() {
        std::thread::spawn(|| {
            let mut attributes = spare_attributes();
            attributes.push(KeyValue::new("k", 1));
            recycle_attributes(attributes);
            assert_eq!(SPARE_ATTRIBUTES.with(|c| c.borrow().len()), 1);
            let again = spare_attributes();
            assert!(again.is_empty() && again.capacity() >= 1);
        })
        .join()
        .unwrap();
    }
}
