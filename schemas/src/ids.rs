//! Trace and span identifiers.
//!
//! Both are fixed-size byte arrays, written as lowercase hex in every text form (Jaeger
//! JSON, OTLP JSON, golden files). An all-zero id is invalid in OTLP and is rejected by
//! the mapping in [`crate::otlp`]; the types themselves can hold it so that error paths
//! can name the bad value.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a textual id could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdParseError {
    /// The text is not hexadecimal.
    #[error("id `{0}` is not hexadecimal")]
    NotHex(String),
    /// The text decodes to the wrong number of bytes.
    #[error("id `{text}` has {got} hex digits, expected at most {max}")]
    TooLong {
        /// The offending text.
        text: String,
        /// Digits found.
        got: usize,
        /// Digits allowed.
        max: usize,
    },
    /// The id is all zeros, which OTLP and W3C trace context forbid.
    #[error("id `{0}` is all zeros")]
    Zero(String),
}

macro_rules! hex_id {
    ($(#[$meta:meta])* $name:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length of the id in bytes.
            pub const LEN: usize = $len;

            /// Builds an id from a byte slice; `None` when the length is not [`Self::LEN`].
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; $len]>::try_from(bytes).ok().map(Self)
            }

            /// True when every byte is zero (an invalid id).
            pub fn is_zero(&self) -> bool {
                self.0.iter().all(|b| *b == 0)
            }

            /// The id as lowercase hex, always `2 * LEN` digits.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut buf = [0u8; $len * 2];
                // Encoding into a buffer of exactly twice the length cannot fail.
                hex::encode_to_slice(self.0, &mut buf).map_err(|_| fmt::Error)?;
                f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        /// Parses hex. Shorter input is left-padded with zeros, as Jaeger does for
        /// 64-bit trace ids; the all-zero id is refused.
        impl FromStr for $name {
            type Err = IdParseError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                let max = $len * 2;
                if text.len() > max {
                    return Err(IdParseError::TooLong { text: text.to_owned(), got: text.len(), max });
                }
                if text.is_empty() || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(IdParseError::NotHex(text.to_owned()));
                }
                let mut padded = [b'0'; $len * 2];
                padded[max - text.len()..].copy_from_slice(text.as_bytes());
                let mut out = [0u8; $len];
                hex::decode_to_slice(padded, &mut out)
                    .map_err(|_| IdParseError::NotHex(text.to_owned()))?;
                let id = Self(out);
                if id.is_zero() {
                    return Err(IdParseError::Zero(text.to_owned()));
                }
                Ok(id)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_id!(
    /// A 16-byte trace id.
    TraceId,
    16
);
hex_id!(
    /// An 8-byte span id.
    SpanId,
    8
);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_hex() {
        let id: TraceId = "0af7651916cd43dd8448eb211c80319c".parse().unwrap();
        assert_eq!(id.to_string(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(format!("{id}"), id.to_hex());
    }

    #[test]
    fn pads_short_ids_like_jaeger() {
        let id: TraceId = "abc".parse().unwrap();
        assert_eq!(id.to_hex(), "00000000000000000000000000000abc");
    }

    #[test]
    fn rejects_bad_ids() {
        assert!(matches!("zz".parse::<SpanId>(), Err(IdParseError::NotHex(_))));
        assert!(matches!("0000".parse::<SpanId>(), Err(IdParseError::Zero(_))));
        assert!(matches!(
            "00112233445566778".parse::<SpanId>(),
            Err(IdParseError::TooLong { got: 17, .. })
        ));
        assert!("".parse::<SpanId>().is_err());
    }
}
