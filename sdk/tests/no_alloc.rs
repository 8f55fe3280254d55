//! W3C `traceparent` and B3 inject/extract do not touch the heap: a counting global
//! allocator sees zero allocations across many round trips through a fixed-size carrier.
//! It counts the test's own thread only (`allocation_counter`), so the test harness's
//! other threads cannot disturb the count.

#![allow(clippy::unwrap_used)]

use hopscope_sdk::propagation::{B3Encoding, B3Propagator, TraceContextPropagator};
use hopscope_sdk::{Extractor, Injector, SpanContext, SpanId, TextMapPropagator, TraceFlags, TraceId};

/// A carrier with fixed inline storage, as a header buffer in a network stack would be.
struct StackCarrier {
    keys: [&'static str; 6],
    values: [[u8; 64]; 6],
    lens: [usize; 6],
    n: usize,
}

const KEYS: [&str; 6] = [
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-sampled",
];

impl Injector for StackCarrier {
    fn set(&mut self, key: &str, value: &str) {
        let Some(k) = KEYS.iter().find(|k| **k == key) else {
            return;
        };
        let slot = self.keys[..self.n].iter().position(|x| x == k).unwrap_or_else(|| {
            self.n += 1;
            self.n - 1
        });
        self.keys[slot] = k;
        self.values[slot][..value.len()].copy_from_slice(value.as_bytes());
        self.lens[slot] = value.len();
    }
}

impl Extractor for StackCarrier {
    fn get(&self, key: &str) -> Option<&str> {
        let i = self.keys[..self.n].iter().position(|k| *k == key)?;
        std::str::from_utf8(&self.values[i][..self.lens[i]]).ok()
    }
    fn keys(&self) -> Vec<&str> {
        self.keys[..self.n].to_vec()
    }
}

fn round_trips(p: &dyn TextMapPropagator, cx: &SpanContext, carrier: &mut StackCarrier) -> u64 {
    let mut ok = 0;
    for _ in 0..1000 {
        p.inject(cx, carrier);
        let back = p.extract(carrier).expect("round trip");
        if back.trace_id == cx.trace_id && back.span_id == cx.span_id {
            ok += 1;
        }
    }
    ok
}

#[test]
fn propagation_does_not_allocate() {
    let cx = SpanContext::new(TraceId::random(), SpanId::random(), TraceFlags::SAMPLED);
    let w3c = TraceContextPropagator;
    let b3_single = B3Propagator::new(B3Encoding::SingleHeader);
    let b3_multi = B3Propagator::new(B3Encoding::MultipleHeader);
    let mut carrier = StackCarrier {
        keys: [""; 6],
        values: [[0; 64]; 6],
        lens: [0; 6],
        n: 0,
    };

    // The counter is live: a heap allocation on this thread is seen.
    let boxed = allocation_counter::measure(|| drop(std::hint::black_box(Box::new(1u64))));
    assert_eq!(boxed.count_total, 1, "the counting allocator is not installed");

    let mut ok = 0;
    let stats = allocation_counter::measure(|| {
        ok = round_trips(&w3c, &cx, &mut carrier)
            + round_trips(&b3_single, &cx, &mut carrier)
            + round_trips(&b3_multi, &cx, &mut carrier);
    });
    assert_eq!(ok, 3000);
    assert_eq!(stats.count_total, 0, "propagation allocated: {stats:?}");
}
