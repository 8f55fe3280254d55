//! Index keys and posting lists.

use std::collections::BTreeSet;
use std::mem::size_of;
use std::ops::Bound;

use hopscope_schemas::TraceId;

/// Where one stored span lives, ordered by start time: the entry every per-span index
/// holds. `index` is the span's position in its trace's span list, which never changes
/// while the trace is stored (spans are only appended; eviction drops the whole trace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SpanKey {
    /// Span start, unix ns.
    pub start_ns: u64,
    /// Its trace.
    pub trace_id: TraceId,
    /// Position in the trace's span list.
    pub index: u32,
}

impl SpanKey {
    /// The smallest key starting at `start_ns`.
    pub fn first_at(start_ns: u64) -> Self {
        Self {
            start_ns,
            trace_id: TraceId([0; 16]),
            index: 0,
        }
    }

    /// The largest key starting at `start_ns`.
    pub fn last_at(start_ns: u64) -> Self {
        Self {
            start_ns,
            trace_id: TraceId([0xff; 16]),
            index: u32::MAX,
        }
    }
}

/// A [`SpanKey`] ordered by duration first: the duration index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct DurationKey {
    /// Span duration, ns.
    pub duration_ns: u64,
    /// The span.
    pub span: SpanKey,
}

/// Estimated bytes one key costs inside a `BTreeSet`: B-tree nodes hold up to 11 keys and
/// are about half full when keys arrive mostly in order, plus node headers and the
/// internal levels.
pub(crate) const fn entry_cost<K>() -> usize {
    2 * size_of::<K>() + 8
}

/// A set of keys that avoids allocating a B-tree node for the very common single-key
/// case (unique attribute values such as request ids or URLs).
#[derive(Debug, Default)]
pub(crate) enum Postings<K> {
    /// No key.
    #[default]
    Empty,
    /// Exactly one key.
    One(K),
    /// Two or more keys.
    Many(BTreeSet<K>),
}

impl<K: Ord + Copy> Postings<K> {
    /// Adds a key; false when it was already present.
    pub fn insert(&mut self, key: K) -> bool {
        match self {
            Postings::Empty => {
                *self = Postings::One(key);
                true
            }
            Postings::One(existing) => {
                if *existing == key {
                    return false;
                }
                *self = Postings::Many(BTreeSet::from([*existing, key]));
                true
            }
            Postings::Many(set) => set.insert(key),
        }
    }

    /// Removes a key; false when it was absent.
    pub fn remove(&mut self, key: &K) -> bool {
        match self {
            Postings::Empty => false,
            Postings::One(existing) => {
                if existing != key {
                    return false;
                }
                *self = Postings::Empty;
                true
            }
            Postings::Many(set) => {
                if !set.remove(key) {
                    return false;
                }
                if set.len() <= 1 {
                    *self = match set.first() {
                        Some(last) => Postings::One(*last),
                        None => Postings::Empty,
                    };
                }
                true
            }
        }
    }

    /// Number of keys, O(1).
    pub fn len(&self) -> usize {
        match self {
            Postings::Empty => 0,
            Postings::One(_) => 1,
            Postings::Many(set) => set.len(),
        }
    }

    /// True when there is no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keys in `[low, high]` (bounds as given), largest first.
    pub fn range_rev(&self, low: Bound<K>, high: Bound<K>) -> Box<dyn Iterator<Item = K> + '_> {
        self.range(low, high, true)
    }

    /// Keys in `[low, high]` (bounds as given), smallest first.
    pub fn range_fwd(&self, low: Bound<K>, high: Bound<K>) -> Box<dyn Iterator<Item = K> + '_> {
        self.range(low, high, false)
    }

    fn range(&self, low: Bound<K>, high: Bound<K>, rev: bool) -> Box<dyn Iterator<Item = K> + '_> {
        if bounds_empty(&low, &high) {
            return Box::new(std::iter::empty());
        }
        match self {
            Postings::Empty => Box::new(std::iter::empty()),
            Postings::One(key) => {
                let key = *key;
                Box::new(std::iter::once(key).filter(move |k| in_bounds(k, &low, &high)))
            }
            Postings::Many(set) if rev => Box::new(set.range((low, high)).rev().copied()),
            Postings::Many(set) => Box::new(set.range((low, high)).copied()),
        }
    }
}

/// True when no key can lie within the bounds (`BTreeSet::range` panics on such bounds).
fn bounds_empty<K: Ord>(low: &Bound<K>, high: &Bound<K>) -> bool {
    match (low, high) {
        (Bound::Included(l), Bound::Included(h)) => l > h,
        (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(h))
        | (Bound::Excluded(l), Bound::Included(h)) => l >= h,
        _ => false,
    }
}

fn in_bounds<K: Ord>(key: &K, low: &Bound<K>, high: &Bound<K>) -> bool {
    let above = match low {
        Bound::Included(l) => key >= l,
        Bound::Excluded(l) => key > l,
        Bound::Unbounded => true,
    };
    let below = match high {
        Bound::Included(h) => key <= h,
        Bound::Excluded(h) => key < h,
        Bound::Unbounded => true,
    };
    above && below
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(p: &Postings<u32>, low: Bound<u32>, high: Bound<u32>) -> Vec<u32> {
        p.range_rev(low, high).collect()
    }

    #[test]
    fn grows_and_shrinks_through_one_and_many() {
        let mut p = Postings::default();
        assert!(p.insert(5));
        assert!(!p.insert(5));
        assert!(matches!(p, Postings::One(5)));
        assert!(p.insert(3));
        assert!(p.insert(9));
        assert_eq!(p.len(), 3);
        assert_eq!(all(&p, Bound::Unbounded, Bound::Unbounded), vec![9, 5, 3]);
        assert_eq!(all(&p, Bound::Included(4), Bound::Excluded(9)), vec![5]);
        assert!(p.remove(&9));
        assert!(!p.remove(&9));
        assert!(p.remove(&3));
        assert!(matches!(p, Postings::One(5)));
        assert!(p.remove(&5));
        assert!(p.is_empty());
    }

    #[test]
    fn empty_and_inverted_bounds_yield_nothing() {
        let mut p = Postings::default();
        p.insert(1u32);
        p.insert(2);
        assert!(all(&p, Bound::Included(2), Bound::Included(1)).is_empty());
        assert!(all(&p, Bound::Excluded(1), Bound::Excluded(1)).is_empty());
        let one = Postings::One(7u32);
        assert!(all(&one, Bound::Included(8), Bound::Unbounded).is_empty());
        assert_eq!(all(&one, Bound::Included(7), Bound::Included(7)), vec![7]);
    }
}
