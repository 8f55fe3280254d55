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
