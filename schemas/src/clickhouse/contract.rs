//! The check that the DDL and the row types agree, for every server generation.
//!
//! RowBinary is positional and the `clickhouse` crate's schema validation is off (18.16
//! does not speak `RowBinaryWithNamesAndTypes`), so a column added to a migration but
//! not to its row type, two swapped fields, or a field whose Rust type encodes
//! differently from its column would corrupt every insert silently. These tests render
//! the migrations for modern and legacy servers, parse each table's column list, and
//! compare it with the fields of its [`Row`](clickhouse::Row) type: names and order
//! exactly, and types by their RowBinary encoding. The fields and their types are read
//! from the types' `Deserialize` impls by a probing deserializer, so no sample row is
//! needed and a new field cannot be missed.

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, SeqAccess, Visitor};

use super::migrations::{MIGRATIONS, Target};
use super::rows::{RecordRow, ResourceRow, SpanRow};
use super::version::Generation;

/// A Rust field's shape as serde sees it: what RowBinary encodes it as.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    U8,
    U16,
    U32,
    U64,
    I64,
    Str,
    /// `[u8; N]` (a serde tuple of `N` bytes).
    Bytes(usize),
    Array(Box<Shape>),
}

impl Shape {
    /// Whether a column of ClickHouse type `ty` (already normalised, see [`normalise`])
    /// has this shape's RowBinary encoding.
    fn encodes(&self, ty: &str) -> bool {
        match self {
            Shape::U8 => ty == "UInt8",
            // `Date` is days since the epoch in a UInt16.
            Shape::U16 => ty == "UInt16" || ty == "Date",
            // `DateTime` is seconds since the epoch in a UInt32.
            Shape::U32 => ty == "UInt32" || ty == "DateTime",
            Shape::U64 => ty == "UInt64",
            // `DateTime64(9)` is nanoseconds since the epoch in an Int64.
            Shape::I64 => ty == "Int64" || ty == "DateTime64(9)",
            Shape::Str => ty == "String",
            Shape::Bytes(n) => ty == format!("FixedString({n})"),
            Shape::Array(item) => ty
                .strip_prefix("Array(")
                .and_then(|rest| rest.strip_suffix(')'))
                .is_some_and(|inner| item.encodes(inner)),
        }
    }
}

/// The fields of a derived `Deserialize` struct, in order, with their shapes.
fn fields<T: DeserializeOwned>() -> Vec<(String, Shape)> {
    let mut out = Vec::new();
    let _ = T::deserialize(StructProbe { out: &mut out }).expect("the probe yields every field");
    out
}

#[derive(Debug)]
struct ProbeError(String);

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProbeError {}

impl de::Error for ProbeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ProbeError(msg.to_string())
    }
}

/// Deserializes a struct, recording each field's name and shape.
struct StructProbe<'a> {
    out: &'a mut Vec<(String, Shape)>,
}

impl<'de> Deserializer<'de> for StructProbe<'_> {
    type Error = ProbeError;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        names: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        visitor.visit_seq(FieldSeq {
            names,
            next: 0,
            out: self.out,
        })
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, ProbeError> {
        Err(de::Error::custom("a row type is a struct"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// The fields of a struct as a sequence, each probed for its shape.
struct FieldSeq<'a> {
    names: &'static [&'static str],
    next: usize,
    out: &'a mut Vec<(String, Shape)>,
}

impl<'de> SeqAccess<'de> for FieldSeq<'_> {
    type Error = ProbeError;

    fn next_element_seed<S: de::DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>, ProbeError> {
        let Some(name) = self.names.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        let mut shape = None;
        let value = seed.deserialize(ValueProbe { shape: &mut shape })?;
        let shape = shape.ok_or_else(|| de::Error::custom(format!("field {name}: no shape")))?;
        self.out.push(((*name).to_string(), shape));
        Ok(Some(value))
    }
}

/// Deserializes one value, recording its shape; sequences yield one element (probed in
/// turn), byte arrays as many as they ask for.
struct ValueProbe<'a> {
    shape: &'a mut Option<Shape>,
}

macro_rules! probe_scalar {
    ($($method:ident => $shape:expr, $visit:ident($value:expr);)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
            *self.shape = Some($shape);
            visitor.$visit($value)
        }
    )*};
}

impl<'de> Deserializer<'de> for ValueProbe<'_> {
    type Error = ProbeError;

    probe_scalar! {
        deserialize_u8 => Shape::U8, visit_u8(0);
        deserialize_u16 => Shape::U16, visit_u16(0);
        deserialize_u32 => Shape::U32, visit_u32(0);
        deserialize_u64 => Shape::U64, visit_u64(0);
        deserialize_i64 => Shape::I64, visit_i64(0);
        deserialize_str => Shape::Str, visit_str("");
        deserialize_string => Shape::Str, visit_string(String::new());
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        let mut items = Vec::new();
        let value = visitor.visit_seq(ItemSeq {
            left: 1,
            shapes: &mut items,
        })?;
        let item = items.pop().ok_or_else(|| de::Error::custom("empty sequence"))?;
        *self.shape = Some(Shape::Array(Box::new(item)));
        Ok(value)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, ProbeError> {
        let mut items = Vec::new();
        let value = visitor.visit_seq(ItemSeq {
            left: len,
            shapes: &mut items,
        })?;
        if items.len() != len || items.iter().any(|s| *s != Shape::U8) {
            return Err(de::Error::custom(format!(
                "tuple of {items:?}: only byte arrays are columns"
            )));
        }
        *self.shape = Some(Shape::Bytes(len));
        Ok(value)
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, ProbeError> {
        Err(de::Error::custom("a type with no ClickHouse column shape"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i128 u128 f32 f64 char bytes byte_buf option unit unit_struct newtype_struct
        tuple_struct map struct enum identifier ignored_any
    }
}

/// `left` elements, each probed; their shapes in order.
struct ItemSeq<'a> {
    left: usize,
    shapes: &'a mut Vec<Shape>,
}

impl<'de> SeqAccess<'de> for ItemSeq<'_> {
    type Error = ProbeError;

    fn next_element_seed<S: de::DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>, ProbeError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let mut shape = None;
        let value = seed.deserialize(ValueProbe { shape: &mut shape })?;
        self.shapes
            .push(shape.ok_or_else(|| de::Error::custom("element without shape"))?);
        Ok(Some(value))
    }
}

/// Splits at commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut depth, mut start, mut parts) = (0i32, 0, Vec::new());
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text[start..].trim());
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

/// The text inside the parentheses opening at byte `open` of `text`.
fn parenthesised(text: &str, open: usize) -> &str {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses in {text}")
}

/// A column type as RowBinary sees it: `LowCardinality(T)` is encoded as `T`, and
/// whitespace is dropped.
fn normalise(ty: &str) -> String {
    let mut ty: String = ty.split_whitespace().collect();
    while let Some(start) = ty.find("LowCardinality(") {
        let inner = parenthesised(&ty, start + "LowCardinality".len()).to_string();
        let end = start + "LowCardinality(".len() + inner.len() + 1;
        ty.replace_range(start..end, &inner);
    }
    ty
}

/// The columns of `table` as the last `CREATE TABLE` of it in the rendered migrations
/// declares them, in order: `Nested(a T, b U)` column `n` is `n.a Array(T)`,
/// `n.b Array(U)`; codecs are dropped; index lines are not columns.
fn columns(target: &Target, table: &str) -> Vec<(String, String)> {
    let head = format!("CREATE TABLE IF NOT EXISTS {}.{table}\n", target.database);
    let statement = MIGRATIONS
        .iter()
        .flat_map(|m| target.render(m.template))
        .rfind(|s| s.starts_with(&head))
        .unwrap_or_else(|| panic!("no CREATE TABLE of {table}"));
    let body = parenthesised(&statement, statement.find('(').expect("a column list"));
    let mut out = Vec::new();
    for definition in split_top_level(body) {
        let (name, rest) = definition.split_once(char::is_whitespace).expect("name and type");
        if name == "INDEX" {
            continue;
        }
        let ty = match rest.find(" CODEC(") {
            Some(at) => &rest[..at],
            None => rest.trim(),
        };
        if let Some(nested) = ty.strip_prefix("Nested") {
            let inner = parenthesised(nested, 0);
            for member in split_top_level(inner) {
                let (field, item) = member.split_once(char::is_whitespace).expect("nested name and type");
                out.push((format!("{name}.{field}"), format!("Array({})", normalise(item))));
            }
        } else {
            out.push((name.to_string(), normalise(ty)));
        }
    }
    out
}

fn target(generation: Generation) -> Target {
    Target {
        database: "hs".into(),
        cluster: None,
        ttl_days: 7,
        generation,
    }
}

const GENERATIONS: [Generation; 2] = [Generation::Modern, Generation::Legacy];

/// Asserts that `T`'s fields are `table`'s columns: all of them, in order, when `whole`
/// (a row that is inserted); a subset in any order otherwise (a row that is selected by
/// name).
fn assert_agrees<T: DeserializeOwned>(table: &str, whole: bool) {
    let fields = fields::<T>();
    for generation in GENERATIONS {
        let columns = columns(&target(generation), table);
        let which = format!("{} {table}", generation.as_str());
        if whole {
            let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
            let expected: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, expected, "{which}: row fields vs DDL columns");
        }
        for (name, shape) in &fields {
            let (_, ty) = columns
                .iter()
                .find(|(c, _)| c == name)
                .unwrap_or_else(|| panic!("{which}: no column {name}"));
            assert!(
                shape.encodes(ty),
                "{which}.{name}: field {shape:?} does not encode as {ty}"
            );
        }
    }
}

#[test]
fn span_row_is_spans_v2() {
    assert_agrees::<SpanRow>("spans_v2", true);
}

#[test]
fn resource_row_is_resources() {
    assert_agrees::<ResourceRow>("resources", true);
}

#[test]
fn record_row_reads_the_old_spans_table() {
    // `spans` is dropped by 0006, after the copy that reads it: its last CREATE still
    // declares the columns `RecordRow` selects.
    assert_agrees::<RecordRow>("spans", false);
}

#[test]
fn the_parser_sees_codecs_nested_columns_and_low_cardinality() {
    let modern = columns(&target(Generation::Modern), "spans_v2");
    let legacy = columns(&target(Generation::Legacy), "spans_v2");
    let find = |cols: &[(String, String)], name: &str| cols.iter().find(|(n, _)| n == name).map(|(_, t)| t.clone());
    assert_eq!(find(&modern, "start_time").as_deref(), Some("DateTime64(9)"));
    assert_eq!(find(&legacy, "start_time").as_deref(), Some("Int64"));
    assert_eq!(find(&modern, "service").as_deref(), Some("String"));
    assert_eq!(
        find(&modern, "events.attr_keys").as_deref(),
        Some("Array(Array(String))")
    );
    assert_eq!(
        find(&modern, "links.trace_id").as_deref(),
        Some("Array(FixedString(16))")
    );
    assert!(modern.iter().all(|(n, _)| n != "INDEX" && !n.starts_with("idx_")));
    // A mismatch is caught: a `u32` field is not a `UInt64` column, a `[u8; 8]` is not
    // a `FixedString(16)`.
    assert!(!Shape::U32.encodes("UInt64"));
    assert!(!Shape::Bytes(8).encodes("FixedString(16)"));
    assert!(Shape::Array(Box::new(Shape::Bytes(16))).encodes("Array(FixedString(16))"));
}

#[test]
fn the_probe_reads_renamed_fields_in_declaration_order() {
    let fields = fields::<SpanRow>();
    assert_eq!(fields[0], ("trace_id".to_string(), Shape::Bytes(16)));
    let keys = fields
        .iter()
        .position(|(n, _)| n == "attributes.key")
        .expect("renamed field");
    assert_eq!(fields[keys + 1].0, "attributes.type");
    assert_eq!(fields.last().map(|(n, _)| n.as_str()), Some("resource_hash"));
}
