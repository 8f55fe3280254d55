//! Trace and span identifiers, trace flags, trace state and span context.

use std::cell::Cell;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

/// A 16-byte W3C trace id. The all-zero id is invalid and never generated.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id. The all-zero id is invalid and never generated.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpanId(pub [u8; 8]);

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `bytes` as lowercase hex into `out`, which must be twice as long.
pub(crate) fn hex_into(bytes: &[u8], out: &mut [u8]) {
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 0xf) as usize];
    }
}

fn hex_digit(c: u8, allow_upper: bool) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' if allow_upper => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses exactly `out.len() * 2` hex digits.
pub(crate) fn hex_decode(s: &[u8], out: &mut [u8], allow_upper: bool) -> Option<()> {
    if s.len() != out.len() * 2 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = (hex_digit(s[2 * i], allow_upper)? << 4) | hex_digit(s[2 * i + 1], allow_upper)?;
    }
    Some(())
}

impl TraceId {
    /// The invalid all-zero id.
    pub const INVALID: TraceId = TraceId([0; 16]);

    /// A new random, valid trace id.
    pub fn random() -> TraceId {
        let [a, b] = random_u64s();
        trace_id_from(a, b)
    }

    /// Whether this id is not all zeros.
    pub fn is_valid(&self) -> bool {
        self.0 != [0; 16]
    }

    /// Parses 32 lowercase (or uppercase) hex digits.
    pub fn from_hex(s: &str) -> Option<TraceId> {
        let mut out = [0u8; 16];
        hex_decode(s.as_bytes(), &mut out, true)?;
        Some(TraceId(out))
    }

    /// The id as 32 lowercase hex digits, without allocating.
    pub fn to_hex_array(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        hex_into(&self.0, &mut out);
        out
    }
}

impl SpanId {
    /// The invalid all-zero id.
    pub const INVALID: SpanId = SpanId([0; 8]);

    /// A new random, valid span id.
    pub fn random() -> SpanId {
        let [v] = random_u64s();
        span_id_from(v)
    }

    /// Whether this id is not all zeros.
    pub fn is_valid(&self) -> bool {
        self.0 != [0; 8]
    }

    /// Parses 16 hex digits.
    pub fn from_hex(s: &str) -> Option<SpanId> {
        let mut out = [0u8; 8];
        hex_decode(s.as_bytes(), &mut out, true)?;
        Some(SpanId(out))
    }

    /// The id as 16 lowercase hex digits, without allocating.
    pub fn to_hex_array(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        hex_into(&self.0, &mut out);
        out
    }
}

macro_rules! hex_fmt {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for b in self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }
    };
}
hex_fmt!(TraceId);
hex_fmt!(SpanId);

/// W3C trace flags; bit 0 is "sampled".
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct TraceFlags(pub u8);

impl TraceFlags {
    /// Sampled.
    pub const SAMPLED: TraceFlags = TraceFlags(1);
    /// Not sampled.
    pub const NOT_SAMPLED: TraceFlags = TraceFlags(0);

    /// Whether the sampled bit is set.
    pub fn is_sampled(self) -> bool {
        self.0 & 1 == 1
    }
}

/// W3C `tracestate`: vendor entries carried unchanged along the trace. Stored as the
/// header value (cheap to clone; empty costs nothing).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct TraceState(Option<Arc<str>>);

impl TraceState {
    /// Most bytes kept; longer values are dropped, as the W3C spec allows.
    pub const MAX_LEN: usize = 512;

    /// A trace state from a `tracestate` header value. Values that are too long or hold
    /// characters outside printable ASCII give an empty state.
    pub fn from_header(value: &str) -> TraceState {
        let value = value.trim();
        if value.is_empty() || value.len() > Self::MAX_LEN || !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return TraceState(None);
        }
        TraceState(Some(Arc::from(value)))
    }

    /// The header value, or "" when empty.
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

/// The part of a span that crosses process boundaries: ids, flags, state, and whether it
/// came from another process (`is_remote`).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct SpanContext {
    /// The trace this span belongs to.
    pub trace_id: TraceId,
    /// This span.
    pub span_id: SpanId,
    /// Sampling decision.
    pub trace_flags: TraceFlags,
    /// Vendor state.
    pub trace_state: TraceState,
    /// True when extracted from a carrier rather than created here.
    pub is_remote: bool,
}

impl SpanContext {
    /// A context; `is_remote` false, empty trace state.
    pub fn new(trace_id: TraceId, span_id: SpanId, trace_flags: TraceFlags) -> SpanContext {
        SpanContext {
            trace_id,
            span_id,
            trace_flags,
            trace_state: TraceState::default(),
            is_remote: false,
        }
    }

    /// Whether both ids are valid.
    pub fn is_valid(&self) -> bool {
        self.trace_id.is_valid() && self.span_id.is_valid()
    }

    /// Whether the trace is sampled.
    pub fn is_sampled(&self) -> bool {
        self.trace_flags.is_sampled()
    }
}

#[inline]
fn trace_id_from(a: u64, b: u64) -> TraceId {
    let v = (u128::from(a) << 64) | u128::from(b);
    TraceId(if v == 0 { 1 } else { v }.to_be_bytes())
}

#[inline]
fn span_id_from(v: u64) -> SpanId {
    SpanId(if v == 0 { 1 } else { v }.to_be_bytes())
}

/// A new trace id and the id of its root span, with one access to the generator.
#[inline]
pub(crate) fn new_root_ids() -> (TraceId, SpanId) {
    let [a, b, c] = random_u64s();
    (trace_id_from(a, b), span_id_from(c))
}

thread_local! {
    /// wyrand state; 0 until first use, then seeded (and never 0 again in practice).
    static RNG: Cell<u64> = const { Cell::new(0) };
}

fn seed() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(std::process::id() as u64);
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    hasher.finish() | 1
}

/// `N` values from wyrand over a per-thread state seeded from the OS-randomised hasher:
/// a few instructions per value, and unpredictable enough for ids (they are not secrets).
#[inline]
fn random_u64s<const N: usize>() -> [u64; N] {
    RNG.with(|state| {
        let mut s = state.get();
        if s == 0 {
            s = seed();
        }
        let out = std::array::from_fn(|_| {
            s = s.wrapping_add(0xa076_1d64_78bd_642f);
            let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
            ((t >> 64) as u64) ^ (t as u64)
        });
        state.set(s);
        out
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_valid_and_distinct() {
        let a = TraceId::random();
        let b = TraceId::random();
        assert!(a.is_valid() && b.is_valid());
        assert_ne!(a, b);
        assert!(SpanId::random().is_valid());
    }

    #[test]
    fn hex_round_trip() {
        let id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(&id.to_hex_array(), b"4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(SpanId::from_hex("00f067aa0ba902b").is_none());
    }

    #[test]
    fn trace_state_rejects_junk() {
        assert!(TraceState::from_header("a=b\u{7f}").is_empty());
        assert_eq!(
            TraceState::from_header(" rojo=00f067aa0ba902b7 ").as_str(),
            "rojo=00f067aa0ba902b7"
        );
    }
}
