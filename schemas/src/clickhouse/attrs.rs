//! Attribute lists as three parallel ClickHouse arrays — keys, type codes, values — so
//! every attribute keeps its OTLP type and round-trips exactly.
//!
//! Values are text: scalars in their search form ([`AttrValue::to_text`]: strings as
//! themselves, `true`/`false`, decimal integers, floats in Rust's shortest round-trip
//! form, bytes as lowercase hex, `""` for an empty value), arrays and key/value lists as
//! the typed JSON of [`AttrValue`] (the plain JSON of `to_text` would lose int-vs-double
//! and bytes-vs-string). SQL reads a string attribute `k` as
//! `if(types[indexOf(keys, k)] = 1, values[indexOf(keys, k)], '')`.

use crate::{AttrValue, KeyValue};

/// Type code of [`AttrValue::Empty`].
pub const EMPTY: u8 = 0;
/// Type code of [`AttrValue::String`] (the only one SQL reads as text).
pub const STRING: u8 = 1;
const BOOL: u8 = 2;
const INT: u8 = 3;
const DOUBLE: u8 = 4;
const BYTES: u8 = 5;
const ARRAY: u8 = 6;
const KV_LIST: u8 = 7;
/// Type codes below this one store the value's text form ([`AttrValue::to_text`]), so
/// a tag filter compares them directly.
pub const FIRST_NON_TEXT: u8 = ARRAY;

/// True when [`encode`] stores the value as its text form (every scalar).
pub fn is_text(value: &AttrValue) -> bool {
    !matches!(value, AttrValue::Array(_) | AttrValue::KvList(_))
}

/// One attribute list as column arrays.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AttrColumns {
    pub keys: Vec<String>,
    pub types: Vec<u8>,
    pub values: Vec<String>,
}

/// Encodes an attribute list (order kept).
pub fn encode(attrs: &[KeyValue]) -> AttrColumns {
    let mut out = AttrColumns {
        keys: Vec::with_capacity(attrs.len()),
        types: Vec::with_capacity(attrs.len()),
        values: Vec::with_capacity(attrs.len()),
    };
    for kv in attrs {
        let (code, text) = match &kv.value {
            AttrValue::Empty => (EMPTY, String::new()),
            AttrValue::String(s) => (STRING, s.clone()),
            AttrValue::Bool(_) => (BOOL, kv.value.to_text()),
            AttrValue::Int(_) => (INT, kv.value.to_text()),
            AttrValue::Double(_) => (DOUBLE, kv.value.to_text()),
            AttrValue::Bytes(_) => (BYTES, kv.value.to_text()),
            // Serialising an AttrValue to JSON cannot fail (string keys, no maps).
            AttrValue::Array(_) => (ARRAY, serde_json::to_string(&kv.value).unwrap_or_default()),
            AttrValue::KvList(_) => (KV_LIST, serde_json::to_string(&kv.value).unwrap_or_default()),
        };
        out.keys.push(kv.key.clone());
        out.types.push(code);
        out.values.push(text);
    }
    out
}

/// Decodes the arrays written by [`encode`]; an error names what is malformed.
pub fn decode(keys: Vec<String>, types: &[u8], values: Vec<String>) -> Result<Vec<KeyValue>, String> {
    if keys.len() != types.len() || keys.len() != values.len() {
        return Err(format!(
            "attribute arrays differ in length ({}, {}, {})",
            keys.len(),
            types.len(),
            values.len()
        ));
    }
    keys.into_iter()
        .zip(types)
        .zip(values)
        .map(|((key, &code), text)| {
            let value = decode_value(code, text).map_err(|e| format!("attribute {key:?}: {e}"))?;
            Ok(KeyValue { key, value })
        })
        .collect()
}

fn decode_value(code: u8, text: String) -> Result<AttrValue, String> {
    Ok(match code {
        EMPTY => AttrValue::Empty,
        STRING => AttrValue::String(text),
        BOOL => AttrValue::Bool(text == "true"),
        INT => AttrValue::Int(text.parse().map_err(|e| format!("{e}"))?),
        DOUBLE => AttrValue::Double(text.parse().map_err(|e| format!("{e}"))?),
        BYTES => AttrValue::Bytes(decode_hex(&text)?),
        ARRAY | KV_LIST => serde_json::from_str(&text).map_err(|e| e.to_string())?,
        other => return Err(format!("unknown type code {other}")),
    })
}

fn decode_hex(text: &str) -> Result<Vec<u8>, String> {
    if !text.len().is_multiple_of(2) {
        return Err("odd-length hex".into());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("bad hex {text:?}"))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips() {
        let attrs = vec![
            KeyValue::new("s", AttrValue::String("x \"y\"".into())),
            KeyValue::new("b", AttrValue::Bool(false)),
            KeyValue::new("i", AttrValue::Int(-42)),
            KeyValue::new("d", AttrValue::Double(0.1 + 0.2)),
            KeyValue::new("d2", AttrValue::Double(-0.0)),
            KeyValue::new("d3", AttrValue::Double(1e300)),
            KeyValue::new("y", AttrValue::Bytes(vec![0, 0xfe, 0x10])),
            KeyValue::new("a", AttrValue::Array(vec![AttrValue::Int(1), AttrValue::Double(1.0)])),
            KeyValue::new(
                "k",
                AttrValue::KvList(vec![KeyValue::new("z", AttrValue::Bytes(vec![1]))]),
            ),
            KeyValue::new("e", AttrValue::Empty),
            KeyValue::new("s", AttrValue::Int(2)),
        ];
        let cols = encode(&attrs);
        assert_eq!(cols.types[0], STRING);
        assert_eq!(cols.values[6], "00fe10");
        let back = decode(cols.keys, &cols.types, cols.values).unwrap();
        assert_eq!(back, attrs);
        assert!(back[4].value == AttrValue::Double(-0.0));
        let AttrValue::Double(d) = back[4].value else {
            unreachable!()
        };
        assert!(d.is_sign_negative());
    }

    #[test]
    fn malformed_columns_are_errors() {
        assert!(decode(vec!["a".into()], &[], vec![]).is_err());
        assert!(decode(vec!["a".into()], &[INT], vec!["x".into()]).is_err());
        assert!(decode(vec!["a".into()], &[BYTES], vec!["abc".into()]).is_err());
        assert!(decode(vec!["a".into()], &[99], vec![String::new()]).is_err());
    }
}
