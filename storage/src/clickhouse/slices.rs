//! Newest-first time slices for trace searches.
//!
//! A search returns the `limit` traces whose latest matching span is newest. Grouping
//! every matching span of a long window by trace costs as much as the window holds
//! (seconds at 10M spans on an old server), while the answer usually lies in its last
//! seconds. So the reader asks slice by slice, newest first: 10 s, then 20 s, 40 s, …
//! (each twice the one before), and after [`MAX_SLICES`]` - 1` slices the whole rest of
//! the window at once, stopping as soon as it holds `limit` traces. The slices are
//! disjoint and together cover the window exactly, and a trace first found in a newer
//! slice ranks above every trace first found in an older one, so the answer is the one
//! a single query over the whole window gives.

/// Length of the newest slice, in nanoseconds.
pub(crate) const FIRST_SLICE_NS: u64 = 10_000_000_000;
/// Most slices one search reads; the last one is the rest of the window.
pub(crate) const MAX_SLICES: usize = 8;

/// One slice: `start..=end` in unix ns; `start` is `None` where the search window is
/// open below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slice {
    pub start: Option<u64>,
    pub end: u64,
}

/// The slices of the window `start..=end`, newest first (see the module doc).
/// `start > end` gives no slice.
pub(crate) fn newest_first(start: Option<u64>, end: u64) -> Vec<Slice> {
    let mut out = Vec::new();
    if start.is_some_and(|s| s > end) {
        return out;
    }
    let (mut end, mut len) = (end, FIRST_SLICE_NS);
    while out.len() + 1 < MAX_SLICES {
        let lowest = end.saturating_sub(len - 1);
        if start.is_some_and(|s| lowest <= s) {
            out.push(Slice { start, end });
            return out;
        }
        out.push(Slice {
            start: Some(lowest),
            end,
        });
        if lowest == 0 {
            return out;
        }
        end = lowest - 1;
        len = len.saturating_mul(2);
    }
    out.push(Slice { start, end });
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Slices are newest first, disjoint, adjacent and cover exactly the window.
    fn assert_covers(slices: &[Slice], start: Option<u64>, end: u64) {
        assert!(!slices.is_empty() && slices.len() <= MAX_SLICES, "{slices:?}");
        assert_eq!(slices[0].end, end);
        for pair in slices.windows(2) {
            assert_eq!(pair[1].end + 1, pair[0].start.unwrap(), "{slices:?}");
        }
        assert_eq!(slices.last().unwrap().start, start, "{slices:?}");
    }

    #[test]
    fn a_short_window_is_one_slice() {
        let slices = newest_first(Some(100), 5_000_000_000);
        assert_eq!(
            slices,
            vec![Slice {
                start: Some(100),
                end: 5_000_000_000
            }]
        );
    }

    #[test]
    fn slices_double_and_the_last_takes_the_rest() {
        let hour = 3_600_000_000_000u64;
        let end = 1_800_000_000_000_000_000;
        let slices = newest_first(Some(end - hour), end);
        assert_covers(&slices, Some(end - hour), end);
        assert_eq!(slices.len(), MAX_SLICES);
        let lens: Vec<u64> = slices.iter().map(|s| s.end - s.start.unwrap() + 1).collect();
        assert_eq!(&lens[..3], &[FIRST_SLICE_NS, 2 * FIRST_SLICE_NS, 4 * FIRST_SLICE_NS]);
    }

    #[test]
    fn a_window_ending_inside_a_doubling_stops_at_its_start() {
        let end = 1_000_000_000_000;
        let start = end - 25_000_000_000; // 25 s: 10 s, then the remaining 15 s
        let slices = newest_first(Some(start), end);
        assert_covers(&slices, Some(start), end);
        assert_eq!(slices.len(), 2);
    }

    #[test]
    fn open_and_degenerate_windows() {
        let slices = newest_first(None, 1_800_000_000_000_000_000);
        assert_covers(&slices, None, 1_800_000_000_000_000_000);
        // Reaching zero ends the slicing with a slice that starts at 0.
        let slices = newest_first(None, 15_000_000_000);
        assert_eq!(slices.last().unwrap().start, Some(0));
        assert_eq!(newest_first(Some(7), 7), vec![Slice { start: Some(7), end: 7 }]);
        assert!(newest_first(Some(8), 7).is_empty());
        let slices = newest_first(Some(0), u64::MAX);
        assert_covers(&slices, Some(0), u64::MAX);
    }
}
