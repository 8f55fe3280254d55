//! The span row: every OTLP span field plus the fields hopscope derives at ingest.
//!
//! A [`SpanRecord`] is what the collector writes and what every reader returns, whatever
//! the store. Times are unix nanoseconds as in OTLP. Resource and scope are shared behind
//! `Arc` because all spans of one OTLP `ResourceSpans`/`ScopeSpans` carry the same ones.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ids::{SpanId, TraceId};

/// OTLP span kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    /// Kind not set by the SDK.
    #[default]
    Unspecified,
    /// An operation inside one service.
    Internal,
    /// The server side of a synchronous call.
    Server,
    /// The client side of a synchronous call.
    Client,
    /// The sender of an asynchronous message.
    Producer,
    /// The receiver of an asynchronous message.
    Consumer,
}

impl SpanKind {
    /// The lowercase name Jaeger uses in its `span.kind` tag and `spanKind` filters
    /// (`""` for unspecified).
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }

    /// Parses the names produced by [`SpanKind::as_str`] (case-insensitive; the OTLP
    /// `SPAN_KIND_*` forms are accepted too).
    pub fn parse(text: &str) -> Option<Self> {
        let lower = text.to_ascii_lowercase();
        let name = lower.strip_prefix("span_kind_").unwrap_or(&lower);
        Some(match name {
            "" | "unspecified" => SpanKind::Unspecified,
            "internal" => SpanKind::Internal,
            "server" => SpanKind::Server,
            "client" => SpanKind::Client,
            "producer" => SpanKind::Producer,
            "consumer" => SpanKind::Consumer,
            _ => return None,
        })
    }

    /// The OTLP enum number.
    pub fn to_otlp(self) -> i32 {
        match self {
            SpanKind::Unspecified => 0,
            SpanKind::Internal => 1,
            SpanKind::Server => 2,
            SpanKind::Client => 3,
            SpanKind::Producer => 4,
            SpanKind::Consumer => 5,
        }
    }

    /// From the OTLP enum number; unknown numbers map to `Unspecified`.
    pub fn from_otlp(value: i32) -> Self {
        match value {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }
}

/// OTLP status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StatusCode {
    /// Not set.
    #[default]
    Unset,
    /// Explicitly successful.
    Ok,
    /// Failed.
    Error,
}

impl StatusCode {
    /// The OTLP enum number.
    pub fn to_otlp(self) -> i32 {
        match self {
            StatusCode::Unset => 0,
            StatusCode::Ok => 1,
            StatusCode::Error => 2,
        }
    }

    /// From the OTLP enum number; unknown numbers map to `Unset`.
    pub fn from_otlp(value: i32) -> Self {
        match value {
            1 => StatusCode::Ok,
            2 => StatusCode::Error,
            _ => StatusCode::Unset,
        }
    }

    /// `"OK"`, `"ERROR"` or `""` — the values of Jaeger's `otel.status_code` tag.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusCode::Unset => "",
            StatusCode::Ok => "OK",
            StatusCode::Error => "ERROR",
        }
    }
}

/// An attribute value with its OTLP type kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum AttrValue {
    /// A UTF-8 string.
    String(String),
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Double(f64),
    /// Raw bytes.
    Bytes(#[serde(with = "hex_bytes")] Vec<u8>),
    /// A homogeneous or mixed array.
    Array(Vec<AttrValue>),
    /// A nested key/value list.
    KvList(Vec<KeyValue>),
    /// An AnyValue with no value set.
    Empty,
}

impl AttrValue {
    /// The value as text, the way a search filter compares it: strings as themselves,
    /// numbers and booleans in their usual form, bytes as hex, arrays and key/value lists
    /// as compact JSON.
    pub fn to_text(&self) -> String {
        match self {
            AttrValue::String(s) => s.clone(),
            AttrValue::Bool(b) => b.to_string(),
            AttrValue::Int(i) => i.to_string(),
            AttrValue::Double(d) => d.to_string(),
            AttrValue::Bytes(b) => hex::encode(b),
            AttrValue::Array(_) | AttrValue::KvList(_) => self.to_json().to_string(),
            AttrValue::Empty => String::new(),
        }
    }

    /// The value as plain JSON (arrays as arrays, key/value lists as objects).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            AttrValue::String(s) => Value::String(s.clone()),
            AttrValue::Bool(b) => Value::Bool(*b),
            AttrValue::Int(i) => Value::from(*i),
            AttrValue::Double(d) => Value::from(*d),
            AttrValue::Bytes(b) => Value::String(hex::encode(b)),
            AttrValue::Array(items) => Value::Array(items.iter().map(AttrValue::to_json).collect()),
            AttrValue::KvList(kvs) => {
                Value::Object(kvs.iter().map(|kv| (kv.key.clone(), kv.value.to_json())).collect())
            }
            AttrValue::Empty => Value::Null,
        }
    }

    /// A rough count of heap bytes, used by stores to bound memory.
    pub fn heap_size(&self) -> usize {
        match self {
            AttrValue::String(s) => s.len(),
            AttrValue::Bytes(b) => b.len(),
            AttrValue::Array(items) => items.iter().map(|v| v.heap_size() + 32).sum(),
            AttrValue::KvList(kvs) => kvs.iter().map(|kv| kv.heap_size()).sum(),
            _ => 0,
        }
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

/// One attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyValue {
    /// Attribute name.
    pub key: String,
    /// Attribute value.
    pub value: AttrValue,
}

impl KeyValue {
    /// Builds an attribute.
    pub fn new(key: impl Into<String>, value: AttrValue) -> Self {
        Self { key: key.into(), value }
    }

    /// A rough count of heap bytes.
    pub fn heap_size(&self) -> usize {
        self.key.len() + self.value.heap_size() + 48
    }
}

/// Finds an attribute by key.
pub fn find_attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AttrValue> {
    attrs.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
}

/// Finds a string attribute by key (non-string values are ignored).
pub fn find_str<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match find_attr(attrs, key) {
        Some(AttrValue::String(s)) => Some(s.as_str()),
        _ => None,
    }
}

/// The resource a span came from (the OTLP `Resource`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Resource {
    /// Resource attributes (`service.name`, `host.name`, `cloud.*`, ...).
    pub attributes: Vec<KeyValue>,
    /// Attributes the SDK dropped.
    pub dropped_attributes_count: u32,
    /// The `ResourceSpans.schema_url`.
    pub schema_url: String,
}

/// The instrumentation scope (the OTLP `InstrumentationScope`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Scope {
    /// Library or tracer name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Scope attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes the SDK dropped.
    pub dropped_attributes_count: u32,
    /// The `ScopeSpans.schema_url`.
    pub schema_url: String,
}

/// A span event (Jaeger calls these logs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unix nanoseconds.
    pub time_unix_nano: u64,
    /// Event name (`exception` for recorded errors).
    pub name: String,
    /// Event attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes the SDK dropped.
    pub dropped_attributes_count: u32,
}

/// A link to another span.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// Linked trace.
    pub trace_id: TraceId,
    /// Linked span.
    pub span_id: SpanId,
    /// W3C trace state of the link.
    pub trace_state: String,
    /// Link attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes the SDK dropped.
    pub dropped_attributes_count: u32,
    /// W3C trace flags of the link.
    pub flags: u32,
}

/// What a hop talks to, classified from OpenTelemetry semantic conventions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HopKind {
    /// An HTTP call or handler.
    Http,
    /// An RPC call or handler (gRPC, Thrift, ...).
    Rpc,
    /// A database call.
    Db,
    /// A cache call (Redis, Memcached, ...).
    Cache,
    /// A message-queue publish or consume.
    Mq,
    /// Work inside one service.
    #[default]
    Internal,
}

impl HopKind {
    /// The lowercase name used in APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            HopKind::Http => "http",
            HopKind::Rpc => "rpc",
            HopKind::Db => "db",
            HopKind::Cache => "cache",
            HopKind::Mq => "mq",
            HopKind::Internal => "internal",
        }
    }

    /// Parses [`HopKind::as_str`] names.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "http" => HopKind::Http,
            "rpc" => HopKind::Rpc,
            "db" => HopKind::Db,
            "cache" => HopKind::Cache,
            "mq" => HopKind::Mq,
            "internal" => HopKind::Internal,
            _ => return None,
        })
    }
}

/// One stored span.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanRecord {
    /// Trace id (never all zeros).
    pub trace_id: TraceId,
    /// Span id (never all zeros).
    pub span_id: SpanId,
    /// Parent span id; `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    /// W3C trace state.
    pub trace_state: String,
    /// W3C trace flags and OTLP span flags.
    pub flags: u32,
    /// Operation name.
    pub name: String,
    /// Span kind.
    pub kind: SpanKind,
    /// Start, unix nanoseconds.
    pub start_time_unix_nano: u64,
    /// End, unix nanoseconds (never before the start).
    pub end_time_unix_nano: u64,
    /// Status code.
    pub status_code: StatusCode,
    /// Status message.
    pub status_message: String,
    /// Span attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes the SDK dropped.
    pub dropped_attributes_count: u32,
    /// Events.
    pub events: Vec<Event>,
    /// Events the SDK dropped.
    pub dropped_events_count: u32,
    /// Links.
    pub links: Vec<Link>,
    /// Links the SDK dropped.
    pub dropped_links_count: u32,
    /// The resource, shared by the spans of one OTLP `ResourceSpans`.
    pub resource: Arc<Resource>,
    /// The instrumentation scope, shared by the spans of one OTLP `ScopeSpans`.
    pub scope: Arc<Scope>,
    /// Derived: `service.name` of the resource, or `unknown_service` when absent.
    pub service_name: String,
    /// Derived: what kind of hop this span is.
    pub hop_kind: HopKind,
    /// Derived: the concrete peer node a client/producer/consumer span talks to
    /// (`host:port`, queue/topic, database namespace), when known.
    pub peer: Option<String>,
    /// Derived: the VM/host the span ran on (`host.name`, else `host.id`), when known.
    pub host: Option<String>,
}

impl SpanRecord {
    /// Duration in nanoseconds (end is never before start for stored spans).
    pub fn duration_nanos(&self) -> u64 {
        self.end_time_unix_nano.saturating_sub(self.start_time_unix_nano)
    }

    /// The hybrid-cloud location, derived from the resource attributes (which the
    /// collector's tagging rules complete where the SDK left them out).
    pub fn cloud(&self) -> crate::derive::CloudTags {
        crate::derive::cloud(&self.resource.attributes)
    }

    /// True when the status is ERROR.
    pub fn is_error(&self) -> bool {
        self.status_code == StatusCode::Error
    }

    /// A rough count of the bytes this span holds, not counting the shared resource and
    /// scope; stores use it to bound memory.
    pub fn heap_size(&self) -> usize {
        let attrs: usize = self.attributes.iter().map(KeyValue::heap_size).sum();
        let events: usize = self
            .events
            .iter()
            .map(|e| e.name.len() + 64 + e.attributes.iter().map(KeyValue::heap_size).sum::<usize>())
            .sum();
        let links: usize = self
            .links
            .iter()
            .map(|l| l.trace_state.len() + 80 + l.attributes.iter().map(KeyValue::heap_size).sum::<usize>())
            .sum();
        std::mem::size_of::<Self>()
            + self.trace_state.len()
            + self.name.len()
            + self.status_message.len()
            + self.service_name.len()
            + self.peer.as_ref().map_or(0, String::len)
            + self.host.as_ref().map_or(0, String::len)
            + attrs
            + events
            + links
    }
}
