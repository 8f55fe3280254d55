//! W3C Trace Context: `traceparent` and `tracestate`.

use super::{Extractor, Injector, TextMapPropagator};
use crate::id::{SpanContext, SpanId, TraceFlags, TraceId, TraceState, hex_decode, hex_into};

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";
const FIELDS: [&str; 2] = [TRACEPARENT, TRACESTATE];

/// The W3C Trace Context propagator (`traceparent: 00-<trace>-<span>-<flags>`).
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceContextPropagator;

impl TraceContextPropagator {
    /// Formats a `traceparent` value into a stack buffer.
    pub fn format_traceparent(cx: &SpanContext, buf: &mut [u8; 55]) {
        buf[..3].copy_from_slice(b"00-");
        hex_into(&cx.trace_id.0, &mut buf[3..35]);
        buf[35] = b'-';
        hex_into(&cx.span_id.0, &mut buf[36..52]);
        buf[52] = b'-';
        hex_into(&[cx.trace_flags.0 & 1], &mut buf[53..55]);
    }

    /// Parses a `traceparent` value; `None` if it is malformed or has invalid ids.
    pub fn parse_traceparent(value: &str) -> Option<SpanContext> {
        let v = value.trim().as_bytes();
        if v.len() < 55 || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
            return None;
        }
        let mut version = [0u8; 1];
        hex_decode(&v[..2], &mut version, false)?;
        // Version 255 is forbidden; version 00 has exactly 55 characters; later versions
        // may append fields after another '-'.
        if version[0] == 0xff || (version[0] == 0 && v.len() != 55) || (v.len() > 55 && v[55] != b'-') {
            return None;
        }
        let mut trace = [0u8; 16];
        let mut span = [0u8; 8];
        let mut flags = [0u8; 1];
        hex_decode(&v[3..35], &mut trace, false)?;
        hex_decode(&v[36..52], &mut span, false)?;
        hex_decode(&v[53..55], &mut flags, false)?;
        let cx = SpanContext {
            trace_id: TraceId(trace),
            span_id: SpanId(span),
            trace_flags: TraceFlags(flags[0]),
            trace_state: TraceState::default(),
            is_remote: true,
        };
        cx.is_valid().then_some(cx)
    }
}

impl TextMapPropagator for TraceContextPropagator {
    fn inject(&self, cx: &SpanContext, injector: &mut dyn Injector) {
        if !cx.is_valid() {
            return;
        }
        let mut buf = [0u8; 55];
        Self::format_traceparent(cx, &mut buf);
        if let Ok(value) = std::str::from_utf8(&buf) {
            injector.set(TRACEPARENT, value);
        }
        if !cx.trace_state.is_empty() {
            injector.set(TRACESTATE, cx.trace_state.as_str());
        }
    }

    fn extract(&self, extractor: &dyn Extractor) -> Option<SpanContext> {
        let mut cx = Self::parse_traceparent(extractor.get(TRACEPARENT)?)?;
        if let Some(state) = extractor.get(TRACESTATE) {
            cx.trace_state = TraceState::from_header(state);
        }
        Some(cx)
    }

    fn fields(&self) -> &[&'static str] {
        &FIELDS
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn round_trip() {
        let cx = TraceContextPropagator::parse_traceparent(SAMPLE).unwrap();
        assert!(cx.is_remote && cx.is_sampled());
        let mut buf = [0u8; 55];
        TraceContextPropagator::format_traceparent(&cx, &mut buf);
        assert_eq!(std::str::from_utf8(&buf).unwrap(), SAMPLE);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert!(TraceContextPropagator::parse_traceparent(bad).is_none(), "{bad}");
        }
        // A future version with extra fields is accepted.
        assert!(TraceContextPropagator::parse_traceparent(&format!("01{}-what", &SAMPLE[2..])).is_some());
    }

    #[test]
    fn carries_tracestate() {
        let mut carrier = HashMap::new();
        carrier.insert("traceparent".to_owned(), SAMPLE.to_owned());
        carrier.insert("tracestate".to_owned(), "congo=t61rcWkgMzE".to_owned());
        let cx = TraceContextPropagator.extract(&carrier).unwrap();
        let mut out: HashMap<String, String> = HashMap::new();
        TraceContextPropagator.inject(&cx, &mut out);
        assert_eq!(out, carrier);
    }
}
