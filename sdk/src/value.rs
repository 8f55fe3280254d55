//! Attribute keys and values.

use std::borrow::Cow;

/// An attribute key. Static strings cost nothing to store.
pub type Key = Cow<'static, str>;

/// An attribute value.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// A string.
    String(Cow<'static, str>),
    /// A 64-bit signed integer.
    I64(i64),
    /// A 64-bit float.
    F64(f64),
    /// A boolean.
    Bool(bool),
}

impl Value {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

impl From<&'static str> for Value {
    fn from(v: &'static str) -> Value {
        Value::String(Cow::Borrowed(v))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::String(Cow::Owned(v))
    }
}
impl From<Cow<'static, str>> for Value {
    fn from(v: Cow<'static, str>) -> Value {
        Value::String(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::F64(v)
    }
}
macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Value {
                Value::I64(i64::from(v))
            }
        }
    )*};
}
int_value!(i64, i32, i16, i8, u32, u16, u8);

/// One attribute.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyValue {
    /// The key, e.g. `db.system.name`.
    pub key: Key,
    /// The value.
    pub value: Value,
}

impl KeyValue {
    /// A key/value pair.
    pub fn new(key: impl Into<Key>, value: impl Into<Value>) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// Key equality with a shortcut for the common case of two uses of one static string.
#[inline]
fn same_key(a: &str, b: &str) -> bool {
    a.len() == b.len() && (std::ptr::eq(a.as_ptr(), b.as_ptr()) || a.as_bytes() == b.as_bytes())
}

/// Sets `key` to `value` in `attrs`, replacing an existing entry with the same key.
/// Returns false (and stores nothing) when `attrs` is at `limit` and `key` is new.
#[inline]
pub(crate) fn upsert(attrs: &mut Vec<KeyValue>, kv: KeyValue, limit: usize) -> bool {
    if let Some(existing) = attrs.iter_mut().find(|a| same_key(&a.key, &kv.key)) {
        existing.value = kv.value;
        return true;
    }
    if attrs.len() >= limit {
        return false;
    }
    if attrs.capacity() == 0 {
        // A recycled vector with room for a handful (a new one only when none is spare).
        *attrs = crate::record::spare_attributes();
    }
    attrs.push(kv);
    true
}

/// A key's bit in a 64-bit Bloom filter of keys (over its length and last byte; for a
/// literal key the compiler folds it to a constant).
#[inline]
pub(crate) fn key_bit(key: &str) -> u64 {
    let last = key.as_bytes().last().map_or(0, |&b| u64::from(b));
    let h = (key.len() as u64 | last << 8).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    1u64 << (h >> 58)
}

/// Adds `key` to a Bloom filter of keys; true when it may already be there.
#[inline]
pub(crate) fn note_key(seen: &mut u64, key: &str) -> bool {
    let bit = key_bit(key);
    let maybe = *seen & bit != 0;
    *seen |= bit;
    maybe
}

/// Whether two entries of `attrs` share a key: a Bloom filter settles the common case
/// (distinct keys); only a hit compares keys.
pub(crate) fn has_duplicate_keys(attrs: &[KeyValue]) -> bool {
    let mut seen = 0u64;
    let mut hit = false;
    for kv in attrs {
        hit |= note_key(&mut seen, &kv.key);
    }
    hit && attrs
        .iter()
        .enumerate()
        .any(|(i, a)| attrs[..i].iter().any(|b| same_key(&b.key, &a.key)))
}

/// Resolves repeated keys the way [`upsert`] would have: each key keeps the position of
/// its first entry and the value of its last. Spans append attributes without looking
/// for an existing key (noting keys in a Bloom filter); the export worker calls this
/// before export for spans whose filter saw a possible repeat (and a span at its
/// attribute limit calls it before deciding what to drop).
pub(crate) fn dedupe(attrs: &mut Vec<KeyValue>) {
    if !has_duplicate_keys(attrs) {
        return;
    }
    let mut kept = 0;
    for j in 0..attrs.len() {
        match attrs[..kept].iter().position(|a| same_key(&a.key, &attrs[j].key)) {
            Some(k) => attrs[k].value = std::mem::replace(&mut attrs[j].value, Value::Bool(false)),
            None => {
                attrs.swap(kept, j);
                kept += 1;
            }
        }
    }
    attrs.truncate(kept);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_keeps_first_position_and_last_value() {
        let mut attrs = vec![
            KeyValue::new("a", 1),
            KeyValue::new("b", 2),
            KeyValue::new(String::from("a"), 3),
            KeyValue::new("c", 4),
            KeyValue::new("b", 5),
            KeyValue::new("a", 6),
        ];
        let mut expected = Vec::new();
        for kv in attrs.clone() {
            upsert(&mut expected, kv, usize::MAX);
        }
        dedupe(&mut attrs);
        assert_eq!(attrs, expected);
        assert_eq!(
            attrs,
            vec![KeyValue::new("a", 6), KeyValue::new("b", 5), KeyValue::new("c", 4)]
        );
        let mut unique = vec![KeyValue::new("x", 1), KeyValue::new("y", 2)];
        dedupe(&mut unique);
        assert_eq!(unique.len(), 2);
        // Many distinct keys (the filter saturates) and a late duplicate.
        let mut many: Vec<KeyValue> = (0..100).map(|i| KeyValue::new(format!("key.{i}"), i)).collect();
        assert!(!has_duplicate_keys(&many));
        many.push(KeyValue::new("key.42", -1));
        assert!(has_duplicate_keys(&many));
        dedupe(&mut many);
        assert_eq!(many.len(), 100);
        assert_eq!(many[42], KeyValue::new("key.42", -1));
    }
}
