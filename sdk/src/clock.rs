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
use std::time::{Duration, SystemTime};

static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();

/// Re-anchor to the wall clock after this long.
const REANCHOR_NS: u64 = 100_000_000;

thread_local! {
    /// This thread's anchor for [`now`]; `None` until first used.
    static ANCHOR: Cell<Option<Anchor>> = const { Cell::new(None) };
}

fn clock() -> &'static quanta::Clock {
    CLOCK.get_or_init(quanta::Clock::new)
}

/// A raw counter reading, for [`Anchor::to_system_time`]. Never 0.
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

/// A counter reading and the wall clock, read together: converts [`raw`] readings taken
/// on any thread shortly before or after it (the export worker takes one per batch).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Anchor {
    raw: u64,
    wall: SystemTime,
}

impl Anchor {
    /// An anchor at this moment.
    pub(crate) fn now() -> Anchor {
        Anchor {
            raw: raw(),
            wall: SystemTime::now(),
        }
    }

    /// The wall-clock time of a [`raw`] reading.
    pub(crate) fn to_system_time(self, raw: u64) -> SystemTime {
        let clock = clock();
        if raw >= self.raw {
            self.wall + Duration::from_nanos(clock.delta_as_nanos(self.raw, raw))
        } else {
            self.wall - Duration::from_nanos(clock.delta_as_nanos(raw, self.raw))
        }
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
            assert!(
                within(a, before, after),
                "{a:?} not in {before:?}..{after:?}"
            );
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
