//! The JSON shapes of Jaeger's v1 HTTP API (Jaeger `model/json/model.go` and the
//! `structuredResponse` envelope of `cmd/query/app/http_handler.go`).

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// Jaeger's response envelope: `{"data", "total", "limit", "offset", "errors"}`.
#[derive(Debug, Serialize)]
pub struct Envelope<T> {
    /// The payload; `null` on errors.
    pub data: Option<T>,
    /// Number of items in `data` (0 on errors).
    pub total: usize,
    /// Always 0 (Jaeger does not page).
    pub limit: usize,
    /// Always 0.
    pub offset: usize,
    /// `null` unless something went wrong.
    pub errors: Option<Vec<StructuredError>>,
}

impl<T> Envelope<T> {
    /// A successful answer with `total` items.
    pub fn ok(data: T, total: usize) -> Self {
        Self {
            data: Some(data),
            total,
            limit: 0,
            offset: 0,
            errors: None,
        }
    }

    /// An error answer.
    pub fn error(code: u16, msg: &str) -> Self {
        Self {
            data: None,
            total: 0,
            limit: 0,
            offset: 0,
            errors: Some(vec![StructuredError {
                code: Some(code),
                msg: msg.to_owned(),
                trace_id: None,
            }]),
        }
    }
}

/// One entry of the envelope's `errors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StructuredError {
    /// HTTP status code (omitted for per-trace errors, as Jaeger does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// What went wrong.
    pub msg: String,
    /// The trace the error is about, for `traceID=` lookups.
    #[serde(rename = "traceID", skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// A trace as the Jaeger UI and Grafana read it.
#[derive(Debug, Serialize)]
pub struct Trace {
    /// 32 lowercase hex digits.
    #[serde(rename = "traceID")]
    pub trace_id: String,
    /// Spans, sorted by start time.
    pub spans: Vec<Span>,
    /// Process id → process.
    pub processes: Processes,
    /// Always `null`.
    pub warnings: Option<Vec<String>>,
}

/// A span.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    /// 32 hex digits.
    #[serde(rename = "traceID")]
    pub trace_id: String,
    /// 16 hex digits.
    #[serde(rename = "spanID")]
    pub span_id: String,
    /// W3C trace flags (bit 0: sampled).
    pub flags: u32,
    /// Span name.
    pub operation_name: String,
    /// `CHILD_OF` the parent first, then `FOLLOWS_FROM` each link.
    pub references: Vec<Reference>,
    /// Unix microseconds.
    pub start_time: u64,
    /// Microseconds.
    pub duration: u64,
    /// Attributes plus the OTel-translation and hopscope tags.
    pub tags: Vec<KeyValue>,
    /// Events.
    pub logs: Vec<Log>,
    /// Key into the trace's `processes`.
    #[serde(rename = "processID")]
    pub process_id: String,
    /// Always `null`.
    pub warnings: Option<Vec<String>>,
}

/// A reference to another span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reference {
    /// `CHILD_OF` or `FOLLOWS_FROM`.
    #[serde(rename = "refType")]
    pub ref_type: &'static str,
    /// 32 hex digits.
    #[serde(rename = "traceID")]
    pub trace_id: String,
    /// 16 hex digits.
    #[serde(rename = "spanID")]
    pub span_id: String,
}

/// A typed tag.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyValue {
    /// Tag name.
    pub key: String,
    /// `string`, `bool`, `int64`, `float64` or `binary`.
    #[serde(rename = "type")]
    pub value_type: &'static str,
    /// The value (binary as base64, as Go encodes `[]byte`).
    pub value: serde_json::Value,
}

/// A span event.
#[derive(Debug, Serialize)]
pub struct Log {
    /// Unix microseconds.
    pub timestamp: u64,
    /// `event` = the event name first, then its attributes.
    pub fields: Vec<KeyValue>,
}

/// The service and resource tags of spans.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    /// `service.name`.
    pub service_name: String,
    /// Resource attributes other than `service.name`.
    pub tags: Vec<KeyValue>,
}

/// Process id → process, serialised as a JSON object in first-seen order (`p1`, `p2`, ...).
#[derive(Debug, Default)]
pub struct Processes(pub Vec<(String, Process)>);

impl Serialize for Processes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (id, process) in &self.0 {
            map.serialize_entry(id, process)?;
        }
        map.end()
    }
}

/// One operation of `/api/operations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// Span name.
    pub name: String,
    /// `server`, `client`, ... or `""` when unspecified.
    pub span_kind: &'static str,
}

impl From<&hopscope_storage::Operation> for Operation {
    fn from(op: &hopscope_storage::Operation) -> Self {
        Self {
            name: op.name.clone(),
            span_kind: op.span_kind.as_str(),
        }
    }
}
