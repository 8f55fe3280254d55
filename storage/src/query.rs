//! Query and result types shared by every store.

use std::sync::Arc;

use hopscope_schemas::{SpanKind, SpanRecord, TraceId};
use serde::Serialize;

/// Which operations to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationQuery {
    /// The service whose operations to list.
    pub service: String,
    /// Only operations seen with this span kind, when set.
    pub span_kind: Option<SpanKind>,
}

/// One operation of a service, per span kind it was seen with.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Operation {
    /// Span name.
    pub name: String,
    /// Span kind it was recorded with.
    pub span_kind: SpanKind,
}

/// One `key=value` search filter.
///
/// A span matches when the key names one of its attributes, its resource's attributes or
/// an attribute of one of its events, and that value's text form
/// ([`hopscope_schemas::AttrValue::to_text`]) equals `value`. A few keys follow Jaeger's
/// synthetic tags: `error=true` matches spans with ERROR status, `span.kind` the span kind
/// name, `otel.status_code` `OK`/`ERROR`, `otel.status_description` the status message,
/// `otel.scope.name` / `otel.scope.version` the scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFilter {
    /// Attribute key.
    pub key: String,
    /// Expected value, as text.
    pub value: String,
}

/// A trace search. All set filters must hold for one and the same span.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TraceQuery {
    /// Span's service name.
    pub service: Option<String>,
    /// Span's name.
    pub operation: Option<String>,
    /// Span's kind.
    pub span_kind: Option<SpanKind>,
    /// Attribute filters.
    pub tags: Vec<TagFilter>,
    /// Span duration at least this, ns.
    pub min_duration_ns: Option<u64>,
    /// Span duration at most this, ns.
    pub max_duration_ns: Option<u64>,
    /// Span start at or after this, unix ns.
    pub start_ns: Option<u64>,
    /// Span start at or before this, unix ns.
    pub end_ns: Option<u64>,
    /// At most this many traces (a store may cap it further).
    pub limit: usize,
}

/// The spans of one trace, sorted by start time.
#[derive(Debug, Clone)]
pub struct Trace {
    /// Trace id.
    pub trace_id: TraceId,
    /// Its spans.
    pub spans: Vec<Arc<SpanRecord>>,
}

/// Calls from one service to another, Jaeger's `DependencyLink`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DependencyLink {
    /// Calling service.
    pub parent: String,
    /// Called service.
    pub child: String,
    /// Number of parent → child span pairs.
    #[serde(rename = "callCount")]
    pub call_count: u64,
}
