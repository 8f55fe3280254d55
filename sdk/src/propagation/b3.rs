//! B3 propagation (Zipkin): the single `b3` header and the multi-header `X-B3-*` form.

use super::{Extractor, Injector, TextMapPropagator};
use crate::id::{SpanContext, SpanId, TraceFlags, TraceId, TraceState, hex_decode, hex_into};

const B3: &str = "b3";
const TRACE_ID: &str = "x-b3-traceid";
const SPAN_ID: &str = "x-b3-spanid";
const SAMPLED: &str = "x-b3-sampled";
const FLAGS: &str = "x-b3-flags";
const SINGLE_FIELDS: [&str; 1] = [B3];
const MULTI_FIELDS: [&str; 4] = [TRACE_ID, SPAN_ID, SAMPLED, FLAGS];
const ALL_FIELDS: [&str; 5] = [B3, TRACE_ID, SPAN_ID, SAMPLED, FLAGS];

/// Which B3 headers to write. Extraction always accepts both forms (single first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum B3Encoding {
    /// `b3: {trace}-{span}-{sampled}`.
    #[default]
    SingleHeader,
    /// `X-B3-TraceId`, `X-B3-SpanId`, `X-B3-Sampled`.
    MultipleHeader,
    /// Both.
    SingleAndMultipleHeader,
}

/// The B3 propagator.
#[derive(Clone, Copy, Debug, Default)]
pub struct B3Propagator {
    encoding: B3Encoding,
}

impl B3Propagator {
    /// A B3 propagator that injects with `encoding`.
    pub fn new(encoding: B3Encoding) -> B3Propagator {
        B3Propagator { encoding }
    }

    fn parse_trace_id(s: &str) -> Option<TraceId> {
        let mut out = [0u8; 16];
        match s.len() {
            32 => hex_decode(s.as_bytes(), &mut out, false)?,
            // 64-bit ids are left-padded with zeros.
            16 => hex_decode(s.as_bytes(), &mut out[8..], false)?,
            _ => return None,
        }
        Some(TraceId(out))
    }

    fn parse_span_id(s: &str) -> Option<SpanId> {
        let mut out = [0u8; 8];
        hex_decode(s.as_bytes(), &mut out, false)?;
        Some(SpanId(out))
    }

    fn sampled(s: &str) -> Option<bool> {
        match s {
            "1" | "d" | "true" => Some(true),
            "0" | "false" => Some(false),
            _ => None,
        }
    }

    fn build(trace_id: TraceId, span_id: SpanId, sampled: bool) -> Option<SpanContext> {
        let cx = SpanContext {
            trace_id,
            span_id,
            trace_flags: if sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::NOT_SAMPLED
            },
            trace_state: TraceState::default(),
            is_remote: true,
        };
        cx.is_valid().then_some(cx)
    }

    fn extract_single(value: &str) -> Option<SpanContext> {
        let mut parts = value.trim().split('-');
        let trace = Self::parse_trace_id(parts.next()?)?;
        let span = Self::parse_span_id(parts.next()?)?;
        // A missing sampling state defers the decision; treat it as sampled, as the
        // OpenTelemetry B3 propagators do.
        let sampled = match parts.next() {
            Some(s) => Self::sampled(s)?,
            None => true,
        };
        if let Some(parent) = parts.next() {
            Self::parse_span_id(parent)?;
        }
        if parts.next().is_some() {
            return None;
        }
        Self::build(trace, span, sampled)
    }

    fn extract_multi(extractor: &dyn Extractor) -> Option<SpanContext> {
        let trace = Self::parse_trace_id(extractor.get(TRACE_ID)?.trim())?;
        let span = Self::parse_span_id(extractor.get(SPAN_ID)?.trim())?;
        let debug = extractor.get(FLAGS).is_some_and(|f| f.trim() == "1");
        let sampled = match extractor.get(SAMPLED) {
            Some(s) => Self::sampled(s.trim())?,
            None => true,
        };
        Self::build(trace, span, sampled || debug)
    }
}

impl TextMapPropagator for B3Propagator {
    fn inject(&self, cx: &SpanContext, injector: &mut dyn Injector) {
        if !cx.is_valid() {
            return;
        }
        let sampled: &[u8; 1] = if cx.is_sampled() { b"1" } else { b"0" };
        if matches!(
            self.encoding,
            B3Encoding::SingleHeader | B3Encoding::SingleAndMultipleHeader
        ) {
            let mut buf = [0u8; 51];
            hex_into(&cx.trace_id.0, &mut buf[..32]);
            buf[32] = b'-';
            hex_into(&cx.span_id.0, &mut buf[33..49]);
            buf[49] = b'-';
            buf[50] = sampled[0];
            if let Ok(v) = std::str::from_utf8(&buf) {
                injector.set(B3, v);
            }
        }
        if matches!(
            self.encoding,
            B3Encoding::MultipleHeader | B3Encoding::SingleAndMultipleHeader
        ) {
            let trace = cx.trace_id.to_hex_array();
            let span = cx.span_id.to_hex_array();
            if let (Ok(t), Ok(s), Ok(f)) = (
                std::str::from_utf8(&trace),
                std::str::from_utf8(&span),
                std::str::from_utf8(sampled),
            ) {
                injector.set(TRACE_ID, t);
                injector.set(SPAN_ID, s);
                injector.set(SAMPLED, f);
            }
        }
    }

    fn extract(&self, extractor: &dyn Extractor) -> Option<SpanContext> {
        match extractor.get(B3) {
            Some(single) => Self::extract_single(single),
            None => Self::extract_multi(extractor),
        }
    }

    fn fields(&self) -> &[&'static str] {
        match self.encoding {
            B3Encoding::SingleHeader => &SINGLE_FIELDS,
            B3Encoding::MultipleHeader => &MULTI_FIELDS,
            B3Encoding::SingleAndMultipleHeader => &ALL_FIELDS,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cx() -> SpanContext {
        SpanContext::new(TraceId::random(), SpanId::random(), TraceFlags::SAMPLED)
    }

    #[test]
    fn single_and_multi_round_trip() {
        for enc in [
            B3Encoding::SingleHeader,
            B3Encoding::MultipleHeader,
            B3Encoding::SingleAndMultipleHeader,
        ] {
            let p = B3Propagator::new(enc);
            let original = cx();
            let mut carrier: HashMap<String, String> = HashMap::new();
            p.inject(&original, &mut carrier);
            let back = p.extract(&carrier).unwrap();
            assert_eq!(
                (back.trace_id, back.span_id, back.is_sampled()),
                (original.trace_id, original.span_id, true)
            );
            assert_eq!(
                carrier.len(),
                p.fields().len() - usize::from(enc != B3Encoding::SingleHeader)
            );
        }
    }

    #[test]
    fn parses_variants() {
        let one = |v: &str| B3Propagator::extract_single(v);
        assert!(one("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90").is_some());
        let short = one("64fe8b2a57d3eff7-e457b5a2e4d86bd1-0").unwrap();
        assert_eq!(short.trace_id.to_string(), "000000000000000064fe8b2a57d3eff7");
        assert!(!short.is_sampled());
        assert!(one("0").is_none());
        assert!(one("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-x").is_none());
        let mut multi = HashMap::new();
        multi.insert("x-b3-traceid".to_owned(), "80f198ee56343ba864fe8b2a57d3eff7".to_owned());
        multi.insert("x-b3-spanid".to_owned(), "e457b5a2e4d86bd1".to_owned());
        multi.insert("x-b3-sampled".to_owned(), "0".to_owned());
        multi.insert("x-b3-flags".to_owned(), "1".to_owned());
        assert!(B3Propagator::default().extract(&multi).unwrap().is_sampled());
    }
}
