//! Checks an encoded OTLP `ExportTraceServiceRequest` without decoding it.
//!
//! The collector's fast path logs a protobuf request body exactly as it arrived when every
//! span in it is valid. Decoding the whole request with prost just to learn that costs an
//! allocation per string, attribute and span; [`valid_span_count`] walks the wire format
//! in place instead, allocating nothing.
//!
//! # Contract
//!
//! `valid_span_count(body) == Some(n)` implies that
//! `ExportTraceServiceRequest::decode(body)` succeeds, that the decoded request passes
//! [`crate::otlp::request_is_valid`], and that it holds `n` spans. The scan is at least as
//! strict as prost: it walks every known field of every message of the trace schema
//! (resource, scope, span, event, link, status, key/value, any-value, array, key/value
//! list, entity ref), checks wire types, varints, lengths, UTF-8 of every string field and
//! the well-formedness of unknown fields (with prost's own key, varint and skip routines).
//! Anything it is unsure of — groups, nesting deeper than [`MAX_DEPTH`], a span that
//! would be rejected — gives `None`, and the caller decodes the body with prost to get
//! the exact error or partial success. `None` is therefore never wrong, only slower.

use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};

/// Deepest message nesting the scan follows (prost's own limit is 100); deeper bodies
/// get `None`.
pub const MAX_DEPTH: u32 = 32;

/// The number of spans in `body` when it is a well-formed `ExportTraceServiceRequest`
/// whose spans are all valid; `None` otherwise (see the module doc).
pub fn valid_span_count(body: &[u8]) -> Option<usize> {
    let mut spans = 0;
    each_field(body, |tag, wire, buf| match tag {
        1 => {
            spans += resource_spans(message(wire, buf)?)?;
            Some(())
        }
        _ => skip(tag, wire, buf),
    })?;
    Some(spans)
}

/// Calls `field` with each field's tag and wire type; `field` must consume the value.
pub(crate) fn each_field<'a>(
    mut buf: &'a [u8],
    mut field: impl FnMut(u32, WireType, &mut &'a [u8]) -> Option<()>,
) -> Option<()> {
    while let Some((&first, rest)) = buf.split_first() {
        // One-byte keys (tags 1-15) are nearly all keys: decoded here as prost's
        // decode_key does (wire type 0-5, tag at least 1), the rest by prost.
        let (tag, wire) = match WireType::try_from(u64::from(first & 7)) {
            Ok(wire) if (8..0x80).contains(&first) => {
                buf = rest;
                (u32::from(first >> 3), wire)
            }
            _ => decode_key(&mut buf).ok()?,
        };
        field(tag, wire, &mut buf)?;
    }
    Some(())
}

/// A varint, as prost's `decode_varint` reads it, with a fast path for one byte.
#[inline]
fn read_varint(buf: &mut &[u8]) -> Option<u64> {
    match buf.split_first() {
        Some((&first, rest)) if first < 0x80 => {
            *buf = rest;
            Some(u64::from(first))
        }
        _ => decode_varint(buf).ok(),
    }
}

pub(crate) fn skip(tag: u32, wire: WireType, buf: &mut &[u8]) -> Option<()> {
    match wire {
        WireType::StartGroup | WireType::EndGroup => None,
        _ => skip_field(wire, tag, buf, DecodeContext::default()).ok(),
    }
}

pub(crate) fn delimited<'a>(wire: WireType, buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    if wire != WireType::LengthDelimited {
        return None;
    }
    let len = usize::try_from(read_varint(buf)?).ok()?;
    if len > buf.len() {
        return None;
    }
    let (value, rest) = buf.split_at(len);
    *buf = rest;
    Some(value)
}

fn message<'a>(wire: WireType, buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    delimited(wire, buf)
}

fn bytes<'a>(wire: WireType, buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    delimited(wire, buf)
}

/// Checks a string field is valid UTF-8, as prost would.
fn string(wire: WireType, buf: &mut &[u8]) -> Option<()> {
    is_utf8(delimited(wire, buf)?).then_some(())
}

/// True when `text` is valid UTF-8. ASCII (nearly every string in telemetry) is checked a
/// word at a time; `std::str::from_utf8` walks short strings a byte at a time, which made
/// it about 40% of this scan's instructions.
fn is_utf8(text: &[u8]) -> bool {
    text.is_ascii() || std::str::from_utf8(text).is_ok()
}

/// The value of a [`simple_key_value`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Simple<'a> {
    /// `string_value`, not checked as UTF-8 yet.
    Str(&'a [u8]),
    Bool(bool),
    Int(i64),
    Double(f64),
}

/// Reads a `KeyValue` laid out as encoders write nearly every attribute, without the
/// general walk: `key` (field 1), then `value` (field 2) holding exactly one string, bool,
/// int or double field, and every tag and length one byte. Returns the key (not checked
/// as UTF-8 yet) and the value. Any other layout gives `None`, and the caller walks the
/// message field by field; `Some` always agrees with prost's decode of `body`.
pub(crate) fn simple_key_value(body: &[u8]) -> Option<(&[u8], Simple<'_>)> {
    let [0x0a, key_len @ 0..0x80, rest @ ..] = body else {
        return None;
    };
    let (key, rest) = rest.split_at_checked(usize::from(*key_len))?;
    let [0x12, any_len @ 0..0x80, any @ ..] = rest else {
        return None;
    };
    if usize::from(*any_len) != any.len() {
        return None;
    }
    let value = match any {
        [0x0a, len @ 0..0x80, text @ ..] if usize::from(*len) == text.len() => Simple::Str(text),
        [0x10, b @ 0..0x80] => Simple::Bool(*b != 0),
        [0x18, varint @ ..] => {
            let mut buf = varint;
            let v = read_varint(&mut buf)?;
            if !buf.is_empty() {
                return None;
            }
            Simple::Int(v as i64)
        }
        [0x21, bits @ ..] => Simple::Double(f64::from_le_bytes(bits.try_into().ok()?)),
        _ => return None,
    };
    Some((key, value))
}

pub(crate) fn varint(wire: WireType, buf: &mut &[u8]) -> Option<u64> {
    if wire != WireType::Varint {
        return None;
    }
    read_varint(buf)
}

pub(crate) fn fixed<const N: usize>(wire: WireType, buf: &mut &[u8]) -> Option<[u8; N]> {
    let expected = match N {
        4 => WireType::ThirtyTwoBit,
        _ => WireType::SixtyFourBit,
    };
    if wire != expected || buf.len() < N {
        return None;
    }
    let (value, rest) = buf.split_at(N);
    *buf = rest;
    value.try_into().ok()
}

pub(crate) fn fixed64(wire: WireType, buf: &mut &[u8]) -> Option<u64> {
    fixed::<8>(wire, buf).map(u64::from_le_bytes)
}

/// `ResourceSpans`: returns its span count.
fn resource_spans(body: &[u8]) -> Option<usize> {
    let mut spans = 0;
    each_field(body, |tag, wire, buf| match tag {
        1 => resource(message(wire, buf)?),
        2 => {
            spans += scope_spans(message(wire, buf)?)?;
            Some(())
        }
        3 => string(wire, buf),
        _ => skip(tag, wire, buf),
    })?;
    Some(spans)
}

fn resource(body: &[u8]) -> Option<()> {
    each_field(body, |tag, wire, buf| match tag {
        1 => key_value(message(wire, buf)?, 1),
        2 => varint(wire, buf).map(drop),
        3 => entity_ref(message(wire, buf)?),
        _ => skip(tag, wire, buf),
    })
}

fn entity_ref(body: &[u8]) -> Option<()> {
    each_field(body, |tag, wire, buf| match tag {
        1..=4 => string(wire, buf),
        _ => skip(tag, wire, buf),
    })
}

/// `ScopeSpans`: returns its span count.
fn scope_spans(body: &[u8]) -> Option<usize> {
    let mut spans = 0;
    each_field(body, |tag, wire, buf| match tag {
        1 => scope(message(wire, buf)?),
        2 => {
            span(message(wire, buf)?)?;
            spans += 1;
            Some(())
        }
        3 => string(wire, buf),
        _ => skip(tag, wire, buf),
    })?;
    Some(spans)
}

fn scope(body: &[u8]) -> Option<()> {
    each_field(body, |tag, wire, buf| match tag {
        1 | 2 => string(wire, buf),
        3 => key_value(message(wire, buf)?, 1),
        4 => varint(wire, buf).map(drop),
        _ => skip(tag, wire, buf),
    })
}

/// The fields [`crate::otlp::validate_span`] looks at; the last occurrence of a field
/// wins, as in prost.
#[derive(Default)]
struct SpanIds<'a> {
    trace_id: &'a [u8],
    span_id: &'a [u8],
    parent_span_id: &'a [u8],
    start: u64,
    end: u64,
}

impl SpanIds<'_> {
    /// Mirrors `validate_span`: 16-byte non-zero trace id, 8-byte non-zero span id, an
    /// empty or 8-byte parent id, a non-zero start and an end not before it.
    fn is_valid(&self) -> bool {
        let non_zero = |id: &[u8]| id.iter().any(|&b| b != 0);
        self.trace_id.len() == 16
            && non_zero(self.trace_id)
            && self.span_id.len() == 8
            && non_zero(self.span_id)
            && (self.parent_span_id.is_empty() || self.parent_span_id.len() == 8)
            && self.start != 0
            && self.end >= self.start
    }
}

fn span(body: &[u8]) -> Option<()> {
    let mut ids = SpanIds::default();
    each_field(body, |tag, wire, buf| match tag {
        1 => bytes(wire, buf).map(|id| ids.trace_id = id),
        2 => bytes(wire, buf).map(|id| ids.span_id = id),
        4 => bytes(wire, buf).map(|id| ids.parent_span_id = id),
        3 | 5 => string(wire, buf),
        6 | 10 | 12 | 14 => varint(wire, buf).map(drop),
        7 => fixed64(wire, buf).map(|t| ids.start = t),
        8 => fixed64(wire, buf).map(|t| ids.end = t),
        9 => key_value(message(wire, buf)?, 1),
        11 => event(message(wire, buf)?),
        13 => link(message(wire, buf)?),
        15 => status(message(wire, buf)?),
        16 => fixed::<4>(wire, buf).map(drop),
        _ => skip(tag, wire, buf),
    })?;
    ids.is_valid().then_some(())
}

fn event(body: &[u8]) -> Option<()> {
    each_field(body, |tag, wire, buf| match tag {
        1 => fixed64(wire, buf).map(drop),
        2 => string(wire, buf),
        3 => key_value(message(wire, buf)?, 1),
        4 => varint(wire, buf).map(drop),
        _ => skip(tag, wire, buf),
    })
}

fn link(body: &[u8]) -> Option<()> {
    each_field(body, |tag, wire, buf| match tag {
        1 | 2 => bytes(wire, buf).map(drop),
        3 => string(wire, buf),
        4 => key_value(message(wire, buf)?, 1),
        5 => varint(wire, buf).map(drop),
        6 => fixed::<4>(wire, buf).map(drop),
        _ => skip(tag, wire, buf),
    })
}

fn status(body: &[u8]) -> Option<()> {
    each_field(body, |tag, wire, buf| match tag {
        2 => string(wire, buf),
        3 => varint(wire, buf).map(drop),
        _ => skip(tag, wire, buf),
    })
}

/// `KeyValue` at nesting `depth` (1 for an attribute of a span, resource, …).
fn key_value(body: &[u8], depth: u32) -> Option<()> {
    if let Some((key, value)) = simple_key_value(body) {
        let valid = match value {
            Simple::Str(text) => is_utf8(key) && is_utf8(text),
            _ => is_utf8(key),
        };
        return valid.then_some(());
    }
    each_field(body, |tag, wire, buf| match tag {
        1 => string(wire, buf),
        2 => any_value(message(wire, buf)?, depth + 1),
        3 => varint(wire, buf).map(drop),
        _ => skip(tag, wire, buf),
    })
}

pub(crate) fn any_value(body: &[u8], depth: u32) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    each_field(body, |tag, wire, buf| match tag {
        1 => string(wire, buf),
        2 | 3 | 8 => varint(wire, buf).map(drop),
        4 => fixed64(wire, buf).map(drop),
        5 => each_field(message(wire, buf)?, |tag, wire, buf| match tag {
            1 => any_value(message(wire, buf)?, depth + 1),
            _ => skip(tag, wire, buf),
        }),
        6 => each_field(message(wire, buf)?, |tag, wire, buf| match tag {
            1 => key_value(message(wire, buf)?, depth + 1),
            _ => skip(tag, wire, buf),
        }),
        7 => bytes(wire, buf).map(drop),
        _ => skip(tag, wire, buf),
    })
}

#[cfg(test)]
#[path = "otlp_scan_tests.rs"]
pub(crate) mod tests;
