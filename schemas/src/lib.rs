//! The hopscope data contract: the span row shared by every writer and reader
//! ([`SpanRecord`]), the ids, the fields derived from OpenTelemetry semantic conventions
//! ([`derive`](mod@derive)), and the mapping from and to OTLP ([`otlp`]).
//!
//! Behind features: `clickhouse`, the ClickHouse DDL and row types
//! (`clickhouse`); `fixtures`, crafted spans and traces for tests (`fixtures`, enabled
//! only from dev-dependencies).
//!
//! Golden files under `tests/golden/` pin the OTLP → row mapping; set `UPDATE_GOLDEN=1`
//! to rewrite them after an intended change.

#[cfg(feature = "clickhouse")]
pub mod clickhouse;
pub mod derive;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod glob;
pub mod ids;
pub mod otlp;
pub mod otlp_scan;
pub mod otlp_wire;
pub mod span;
pub mod view;

pub use derive::{CloudKind, CloudTags};
pub use ids::{IdParseError, SpanId, TraceId};
pub use span::{
    AttrValue, Event, HopKind, KeyValue, Link, Resource, Scope, SpanKind, SpanRecord, StatusCode, find_attr, find_str,
};
pub use view::{AttrRef, EventView, LinkView, SpanView, ValueRef};
