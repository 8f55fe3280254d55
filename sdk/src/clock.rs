//! Span timestamps. Reading the wall clock costs 20–80 ns per call (more in VMs), twice
//! per span; instead spans record the CPU time-stamp counter (via `quanta`, which falls
//! back to the OS monotonic clock where the TSC is unreliable), and the export worker
//! converts the readings to wall-clock time against an [`Anchor`] (a counter reading and
//! the wall clock read together) that it takes for every batch, so drift against an
//! NTP-disciplined clock stays far below a microsecond-scale span's precision needs.
//! [`now`] (for events) converts at once against a per-thread anchor renewed every 100 ms.
//! The counter is the same on every core, so a reading converts on any thread.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();

/// Re-anchor to the wall clock after this long.
const REANCHOR_NS: u64 = 100_000_000;

thread_local! {
    /// This thread's anchor for [`now`]; `None` until first used.
    static ANCHOR: Cell<Option<Anchor>> = const { Cell::new(None) };
}

#[inline]
fn clock() -> &'static quanta::Clock {
    CLOCK.get_or_init(quanta::Clock::new)
}

/// A raw counter reading, for [`Anchor::to_system_time`]. Never 0.
#[inline]
pub(crate) fn raw() -> u64 {
    clock().raw().max(1)
}

/// The current wall-clock time, cheaply (against this thread's anchor, renewed every
/// 100 ms).
pub(crate) fn now() -> SystemTime {
    let raw = raw();
    ANCHOR.with(|anchor| {
        if let Some(a) = anchor.get()
            && raw >= a.raw
            && clock().delta_as_nanos(a.raw, raw) < REANCHOR_NS
        {
            return a.to_system_time(raw);
        }
        let fresh = Anchor::now();
        anchor.set(Some(fresh));
        fresh.to_system_time(raw)
    })
}

/// Fixed-point shift of [`Anchor`]'s tick-to-nanosecond factor.
const SCALE_SHIFT: u32 = 40;

/// A counter reading and the wall clock, read together: converts [`raw`] readings taken
/// on any thread shortly before or after it (the export worker takes one per batch).
/// The counter's rate is kept as a fixed-point factor and the wall clock as the offset
/// from scaled counter readings to nanoseconds since the epoch, so that a conversion is
/// one multiplication, a shift and an addition (exact to a nanosecond: the rounding of
/// the two scaled readings).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Anchor {
    raw: u64,
    /// Nanoseconds since the Unix epoch minus the scaled `raw` (wrapping).
    offset_ns: u64,
    /// Nanoseconds per counter tick, times 2^[`SCALE_SHIFT`].
    scale: u64,
}

impl Anchor {
    /// An anchor at this moment.
    pub(crate) fn now() -> Anchor {
        let raw = raw();
        let wall_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        // quanta's own conversion of 2^40 ticks: exact for the OS clock (1 tick = 1 ns),
        // and precise to a few parts in 10^12 for the TSC.
        let scale = clock().delta_as_nanos(1, 1 + (1 << SCALE_SHIFT));
        let mut anchor = Anchor {
            raw,
            offset_ns: 0,
            scale,
        };
        anchor.offset_ns = wall_ns.wrapping_sub(anchor.scaled(raw));
        anchor
    }

    /// `ticks` in nanoseconds.
    #[inline]
    fn scaled(self, ticks: u64) -> u64 {
        ((u128::from(ticks) * u128::from(self.scale)) >> SCALE_SHIFT) as u64
    }

    /// The wall-clock time of a [`raw`] reading.
    #[inline]
    pub(crate) fn to_system_time(self, raw: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.offset_ns.wrapping_add(self.scaled(raw)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, SystemTime};

    #[test]
    fn tracks_the_wall_clock() {
        for _ in 0..3 {
            let before = SystemTime::now();
            let a = super::now();
            let after = SystemTime::now();
            let b = super::now();
            std::thread::sleep(Duration::from_millis(60));
            assert!(within(a, before, after), "{a:?} not in {before:?}..{after:?}");
            assert!(b >= a);
        }
    }

    /// Whether `t` lies within `[before, after]`, give or take 1 ms of clock drift; the
    /// bounds are read around the raw reading, so a preempted test cannot fail it.
    fn within(t: SystemTime, before: SystemTime, after: SystemTime) -> bool {
        let slack = Duration::from_millis(1);
        before - slack <= t && t <= after + slack
    }

    #[test]
    fn readings_convert_on_another_thread_and_later() {
        let before = SystemTime::now();
        let raw = super::raw();
        let after = SystemTime::now();
        std::thread::sleep(Duration::from_millis(150));
        // An anchor taken later, on another thread, converts the reading backwards.
        let converted = std::thread::spawn(move || super::Anchor::now().to_system_time(raw))
            .join()
            .unwrap();
        assert!(
            within(converted, before, after),
            "{converted:?} not in {before:?}..{after:?}"
        );
        // And an earlier anchor forwards.
        let earlier = super::Anchor::now();
        std::thread::sleep(Duration::from_millis(20));
        let before = SystemTime::now();
        let later = super::raw();
        let after = SystemTime::now();
        assert!(within(earlier.to_system_time(later), before, after));
    }
}
