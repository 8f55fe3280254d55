//! Span timestamps. Reading the wall clock costs 20–80 ns per call (more in VMs), twice
//! per span; instead each thread anchors the CPU time-stamp counter (via `quanta`, which
//! falls back to the OS monotonic clock where the TSC is unreliable) to the wall clock
//! and re-anchors every 100 ms, so drift against an NTP-disciplined clock stays far below
//! a microsecond-scale span's precision needs.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();

/// Re-anchor to the wall clock after this long.
const REANCHOR_NS: u64 = 100_000_000;

thread_local! {
    /// (raw counter, wall-clock ns since the epoch) read together.
    static ANCHOR: Cell<Option<(u64, u64)>> = const { Cell::new(None) };
}

/// The current wall-clock time, cheaply.
pub(crate) fn now() -> SystemTime {
    let clock = CLOCK.get_or_init(quanta::Clock::new);
    let raw = clock.raw();
    ANCHOR.with(|anchor| {
        if let Some((anchor_raw, wall_ns)) = anchor.get()
            && raw >= anchor_raw {
                let delta = clock.delta_as_nanos(anchor_raw, raw);
                if delta < REANCHOR_NS {
                    return UNIX_EPOCH + Duration::from_nanos(wall_ns + delta);
                }
            }
        let wall = SystemTime::now();
        let wall_ns = wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        anchor.set(Some((raw, wall_ns)));
        wall
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn tracks_the_wall_clock() {
        for _ in 0..3 {
            let a = super::now();
            let wall = std::time::SystemTime::now();
            let b = super::now();
            std::thread::sleep(std::time::Duration::from_millis(60));
            let diff = wall.duration_since(a).unwrap_or_else(|e| e.duration());
            assert!(diff < std::time::Duration::from_millis(2), "{diff:?}");
            assert!(b >= a);
        }
    }
}
