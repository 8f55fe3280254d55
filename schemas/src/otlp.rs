//! Mapping between OTLP protobuf messages and [`SpanRecord`]s.
//!
//! [`spans_from_request`] consumes an `ExportTraceServiceRequest`, validates every span and
//! maps the valid ones, moving strings instead of copying them. Invalid spans are counted
//! and described, never silently dropped: the receiver turns the count and the first
//! messages into OTLP partial success. [`traces_data`] maps records back to OTLP (used by
//! the api_v3 endpoints), grouping spans by resource and scope.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1 as otlp_common;
use opentelemetry_proto::tonic::resource::v1 as otlp_resource;
use opentelemetry_proto::tonic::trace::v1 as otlp_trace;

use crate::derive;
use crate::ids::{SpanId, TraceId};
use crate::span::{AttrValue, Event, KeyValue, Link, Resource, Scope, SpanKind, SpanRecord, StatusCode};

/// How many rejection messages a [`MappedBatch`] keeps (the count is always exact).
pub const MAX_REJECTION_MESSAGES: usize = 10;

/// The outcome of mapping one export request.
#[derive(Debug, Default)]
pub struct MappedBatch {
    /// The valid spans, in request order.
    pub spans: Vec<SpanRecord>,
    /// How many spans were rejected.
    pub rejected: u64,
    /// Up to [`MAX_REJECTION_MESSAGES`] messages naming what was wrong and where.
    pub messages: Vec<String>,
}

impl MappedBatch {
    fn reject(&mut self, message: String) {
        self.rejected += 1;
        if self.messages.len() < MAX_REJECTION_MESSAGES {
            self.messages.push(message);
        }
    }

    /// One line summarising the rejections, for OTLP `error_message`; empty when none.
    pub fn error_message(&self) -> String {
        if self.rejected == 0 {
            return String::new();
        }
        let more = self.rejected as usize - self.messages.len();
        let mut text = format!("{} span(s) rejected: {}", self.rejected, self.messages.join("; "));
        if more > 0 {
            text.push_str(&format!("; and {more} more"));
        }
        text
    }
}

/// Why one span is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpanError {
    /// An id field has the wrong length.
    #[error("{field} has {got} bytes, expected {expected}")]
    IdLength {
        /// `trace_id`, `span_id` or `parent_span_id`.
        field: &'static str,
        /// Bytes found.
        got: usize,
        /// Bytes required.
        expected: usize,
    },
    /// An id is all zeros.
    #[error("{0} is all zeros")]
    ZeroId(&'static str),
    /// No start time.
    #[error("start_time_unix_nano is 0")]
    MissingStart,
    /// End before start.
    #[error("end_time_unix_nano {end} is before start_time_unix_nano {start}")]
    EndBeforeStart {
        /// Start, ns.
        start: u64,
        /// End, ns.
        end: u64,
    },
}

/// Maps and validates a whole export request. Never fails as a whole: every invalid span
/// is counted in [`MappedBatch::rejected`].
pub fn spans_from_request(request: ExportTraceServiceRequest) -> MappedBatch {
    let mut batch = MappedBatch::default();
    for (ri, resource_spans) in request.resource_spans.into_iter().enumerate() {
        let resource = Arc::new(resource_from_otlp(resource_spans.resource, resource_spans.schema_url));
        let service_name = derive::service_name(&resource.attributes);
        let host = derive::host(&resource.attributes);
        for (si, scope_spans) in resource_spans.scope_spans.into_iter().enumerate() {
            let scope = Arc::new(scope_from_otlp(scope_spans.scope, scope_spans.schema_url));
            for (pi, span) in scope_spans.spans.into_iter().enumerate() {
                let name = span.name.clone();
                match span_from_otlp(span, &resource, &scope, &service_name, &host) {
                    Ok(record) => batch.spans.push(record),
                    Err(err) => batch.reject(format!(
                        "span {name:?} (resource_spans[{ri}].scope_spans[{si}].spans[{pi}]): {err}"
                    )),
                }
            }
        }
    }
    batch
}

/// Total spans in a request, valid or not.
pub fn span_count(request: &ExportTraceServiceRequest) -> usize {
    request
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum()
}

fn required_id<T>(
    bytes: &[u8],
    field: &'static str,
    len: usize,
    build: impl Fn(&[u8]) -> Option<T>,
    is_zero: impl Fn(&T) -> bool,
) -> Result<T, SpanError> {
    let id = build(bytes).ok_or(SpanError::IdLength {
        field,
        got: bytes.len(),
        expected: len,
    })?;
    if is_zero(&id) {
        return Err(SpanError::ZeroId(field));
    }
    Ok(id)
}

pub(crate) fn trace_id(bytes: &[u8], field: &'static str) -> Result<TraceId, SpanError> {
    required_id(bytes, field, TraceId::LEN, TraceId::from_slice, TraceId::is_zero)
}

pub(crate) fn span_id(bytes: &[u8], field: &'static str) -> Result<SpanId, SpanError> {
    required_id(bytes, field, SpanId::LEN, SpanId::from_slice, SpanId::is_zero)
}

/// Maps one span. An empty or all-zero parent id means a root span.
pub fn span_from_otlp(
    span: otlp_trace::Span,
    resource: &Arc<Resource>,
    scope: &Arc<Scope>,
    service_name: &str,
    host: &Option<String>,
) -> Result<SpanRecord, SpanError> {
    let trace_id = trace_id(&span.trace_id, "trace_id")?;
    let span_id = span_id(&span.span_id, "span_id")?;
    let parent_span_id = match span.parent_span_id.len() {
        0 => None,
        _ => span_id_or_zero(&span.parent_span_id)?,
    };
    if span.start_time_unix_nano == 0 {
        return Err(SpanError::MissingStart);
    }
    if span.end_time_unix_nano < span.start_time_unix_nano {
        return Err(SpanError::EndBeforeStart {
            start: span.start_time_unix_nano,
            end: span.end_time_unix_nano,
        });
    }
    let kind = SpanKind::from_otlp(span.kind);
    let attributes = attrs_from_otlp(span.attributes);
    let hop_kind = derive::hop_kind(&attributes);
    let peer = derive::peer(kind, hop_kind, &attributes);
    let (status_code, status_message) = match span.status {
        Some(status) => (StatusCode::from_otlp(status.code), status.message),
        None => (StatusCode::Unset, String::new()),
    };
    let mut dropped_links_count = span.dropped_links_count;
    let links = span
        .links
        .into_iter()
        .filter_map(|link| {
            // A link with unusable ids cannot be followed; count it as dropped.
            let mapped = link_from_otlp(link);
            if mapped.is_none() {
                dropped_links_count += 1;
            }
            mapped
        })
        .collect();
    Ok(SpanRecord {
        trace_id,
        span_id,
        parent_span_id,
        trace_state: span.trace_state,
        flags: span.flags,
        name: span.name,
        kind,
        start_time_unix_nano: span.start_time_unix_nano,
        end_time_unix_nano: span.end_time_unix_nano,
        status_code,
        status_message,
        attributes,
        dropped_attributes_count: span.dropped_attributes_count,
        events: span.events.into_iter().map(event_from_otlp).collect(),
        dropped_events_count: span.dropped_events_count,
        links,
        dropped_links_count,
        resource: Arc::clone(resource),
        scope: Arc::clone(scope),
        service_name: service_name.to_owned(),
        hop_kind,
        peer,
        host: host.clone(),
    })
}

/// Checks one span exactly as [`span_from_otlp`] does, without mapping it: `Ok` iff
/// [`span_from_otlp`] would accept the span.
pub fn validate_span(span: &otlp_trace::Span) -> Result<(), SpanError> {
    trace_id(&span.trace_id, "trace_id")?;
    span_id(&span.span_id, "span_id")?;
    if !span.parent_span_id.is_empty() {
        span_id_or_zero(&span.parent_span_id)?;
    }
    if span.start_time_unix_nano == 0 {
        return Err(SpanError::MissingStart);
    }
    if span.end_time_unix_nano < span.start_time_unix_nano {
        return Err(SpanError::EndBeforeStart {
            start: span.start_time_unix_nano,
            end: span.end_time_unix_nano,
        });
    }
    Ok(())
}

/// True when every span of `request` is valid ([`validate_span`]), i.e. when
/// [`spans_from_request`] would reject none. Allocates nothing.
pub fn request_is_valid(request: &ExportTraceServiceRequest) -> bool {
    request
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .all(|span| validate_span(span).is_ok())
}

/// A parent id must be 8 bytes; all zeros is read as "no parent".
pub(crate) fn span_id_or_zero(bytes: &[u8]) -> Result<Option<SpanId>, SpanError> {
    let id = SpanId::from_slice(bytes).ok_or(SpanError::IdLength {
        field: "parent_span_id",
        got: bytes.len(),
        expected: SpanId::LEN,
    })?;
    Ok((!id.is_zero()).then_some(id))
}

fn link_from_otlp(link: otlp_trace::span::Link) -> Option<Link> {
    Some(Link {
        trace_id: trace_id(&link.trace_id, "link.trace_id").ok()?,
        span_id: span_id(&link.span_id, "link.span_id").ok()?,
        trace_state: link.trace_state,
        attributes: attrs_from_otlp(link.attributes),
        dropped_attributes_count: link.dropped_attributes_count,
        flags: link.flags,
    })
}

fn event_from_otlp(event: otlp_trace::span::Event) -> Event {
    Event {
        time_unix_nano: event.time_unix_nano,
        name: event.name,
        attributes: attrs_from_otlp(event.attributes),
        dropped_attributes_count: event.dropped_attributes_count,
    }
}

pub(crate) fn resource_from_otlp(resource: Option<otlp_resource::Resource>, schema_url: String) -> Resource {
    let resource = resource.unwrap_or_default();
    Resource {
        attributes: attrs_from_otlp(resource.attributes),
        dropped_attributes_count: resource.dropped_attributes_count,
        schema_url,
    }
}

pub(crate) fn scope_from_otlp(scope: Option<otlp_common::InstrumentationScope>, schema_url: String) -> Scope {
    let scope = scope.unwrap_or_default();
    Scope {
        name: scope.name,
        version: scope.version,
        attributes: attrs_from_otlp(scope.attributes),
        dropped_attributes_count: scope.dropped_attributes_count,
        schema_url,
    }
}

/// Maps OTLP attributes, keeping value types.
pub fn attrs_from_otlp(attrs: Vec<otlp_common::KeyValue>) -> Vec<KeyValue> {
    attrs
        .into_iter()
        .map(|kv| KeyValue {
            key: kv.key,
            value: value_from_otlp(kv.value),
        })
        .collect()
}

pub(crate) fn value_from_otlp(value: Option<otlp_common::AnyValue>) -> AttrValue {
    use otlp_common::any_value::Value;
    match value.and_then(|v| v.value) {
        None => AttrValue::Empty,
        Some(Value::StringValue(s)) => AttrValue::String(s),
        Some(Value::BoolValue(b)) => AttrValue::Bool(b),
        Some(Value::IntValue(i)) => AttrValue::Int(i),
        Some(Value::DoubleValue(d)) => AttrValue::Double(d),
        Some(Value::BytesValue(b)) => AttrValue::Bytes(b),
        Some(Value::ArrayValue(a)) => {
            AttrValue::Array(a.values.into_iter().map(|v| value_from_otlp(Some(v))).collect())
        }
        Some(Value::KvlistValue(kvs)) => AttrValue::KvList(attrs_from_otlp(kvs.values)),
        // String-table references (a profiles-only proto feature that other crates in the
        // build may switch on) mean nothing without their table.
        #[allow(unreachable_patterns)]
        Some(_) => AttrValue::Empty,
    }
}

/// Maps attributes back to OTLP.
pub fn attrs_to_otlp(attrs: &[KeyValue]) -> Vec<otlp_common::KeyValue> {
    attrs
        .iter()
        .map(|kv| otlp_common::KeyValue {
            key: kv.key.clone(),
            value: Some(value_to_otlp(&kv.value)),
            ..Default::default()
        })
        .collect()
}

fn value_to_otlp(value: &AttrValue) -> otlp_common::AnyValue {
    use otlp_common::any_value::Value;
    let value = match value {
        AttrValue::String(s) => Some(Value::StringValue(s.clone())),
        AttrValue::Bool(b) => Some(Value::BoolValue(*b)),
        AttrValue::Int(i) => Some(Value::IntValue(*i)),
        AttrValue::Double(d) => Some(Value::DoubleValue(*d)),
        AttrValue::Bytes(b) => Some(Value::BytesValue(b.clone())),
        AttrValue::Array(items) => Some(Value::ArrayValue(otlp_common::ArrayValue {
            values: items.iter().map(value_to_otlp).collect(),
        })),
        AttrValue::KvList(kvs) => Some(Value::KvlistValue(otlp_common::KeyValueList {
            values: attrs_to_otlp(kvs),
        })),
        AttrValue::Empty => None,
    };
    otlp_common::AnyValue { value }
}

/// Maps one record back to an OTLP span.
pub fn span_to_otlp(span: &SpanRecord) -> otlp_trace::Span {
    otlp_trace::Span {
        trace_id: span.trace_id.0.to_vec(),
        span_id: span.span_id.0.to_vec(),
        trace_state: span.trace_state.clone(),
        parent_span_id: span.parent_span_id.map(|p| p.0.to_vec()).unwrap_or_default(),
        flags: span.flags,
        name: span.name.clone(),
        kind: span.kind.to_otlp(),
        start_time_unix_nano: span.start_time_unix_nano,
        end_time_unix_nano: span.end_time_unix_nano,
        attributes: attrs_to_otlp(&span.attributes),
        dropped_attributes_count: span.dropped_attributes_count,
        events: span
            .events
            .iter()
            .map(|e| otlp_trace::span::Event {
                time_unix_nano: e.time_unix_nano,
                name: e.name.clone(),
                attributes: attrs_to_otlp(&e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: span.dropped_events_count,
        links: span
            .links
            .iter()
            .map(|l| otlp_trace::span::Link {
                trace_id: l.trace_id.0.to_vec(),
                span_id: l.span_id.0.to_vec(),
                trace_state: l.trace_state.clone(),
                attributes: attrs_to_otlp(&l.attributes),
                dropped_attributes_count: l.dropped_attributes_count,
                flags: l.flags,
            })
            .collect(),
        dropped_links_count: span.dropped_links_count,
        status: Some(otlp_trace::Status {
            message: span.status_message.clone(),
            code: span.status_code.to_otlp(),
        }),
    }
}

/// Spans grouped by scope, within one resource.
type ScopeGroups = Vec<(Arc<Scope>, Vec<otlp_trace::Span>)>;

/// Maps records back to OTLP `TracesData`, one `ResourceSpans` per distinct resource and
/// one `ScopeSpans` per distinct scope within it, in first-seen order.
pub fn traces_data<'a>(spans: impl IntoIterator<Item = &'a SpanRecord>) -> otlp_trace::TracesData {
    let mut groups: Vec<(Arc<Resource>, ScopeGroups)> = Vec::new();
    for span in spans {
        let gi = match groups
            .iter()
            .position(|(r, _)| Arc::ptr_eq(r, &span.resource) || **r == *span.resource)
        {
            Some(i) => i,
            None => {
                groups.push((Arc::clone(&span.resource), Vec::new()));
                groups.len() - 1
            }
        };
        let scopes = &mut groups[gi].1;
        let si = match scopes
            .iter()
            .position(|(s, _)| Arc::ptr_eq(s, &span.scope) || **s == *span.scope)
        {
            Some(i) => i,
            None => {
                scopes.push((Arc::clone(&span.scope), Vec::new()));
                scopes.len() - 1
            }
        };
        scopes[si].1.push(span_to_otlp(span));
    }
    otlp_trace::TracesData {
        resource_spans: groups
            .into_iter()
            .map(|(resource, scopes)| otlp_trace::ResourceSpans {
                resource: Some(otlp_resource::Resource {
                    attributes: attrs_to_otlp(&resource.attributes),
                    dropped_attributes_count: resource.dropped_attributes_count,
                    ..Default::default()
                }),
                schema_url: resource.schema_url.clone(),
                scope_spans: scopes
                    .into_iter()
                    .map(|(scope, spans)| otlp_trace::ScopeSpans {
                        scope: Some(otlp_common::InstrumentationScope {
                            name: scope.name.clone(),
                            version: scope.version.clone(),
                            attributes: attrs_to_otlp(&scope.attributes),
                            dropped_attributes_count: scope.dropped_attributes_count,
                        }),
                        schema_url: scope.schema_url.clone(),
                        spans,
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(trace: Vec<u8>, id: Vec<u8>, start: u64, end: u64) -> otlp_trace::Span {
        otlp_trace::Span {
            trace_id: trace,
            span_id: id,
            name: "op".into(),
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            ..Default::default()
        }
    }

    fn request(spans: Vec<otlp_trace::Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![otlp_trace::ResourceSpans {
                resource: None,
                scope_spans: vec![otlp_trace::ScopeSpans {
                    scope: None,
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    #[test]
    fn rejects_each_invalid_span_with_a_reason() {
        let good = span(vec![1; 16], vec![2; 8], 10, 20);
        let short_trace = span(vec![1; 5], vec![2; 8], 10, 20);
        let zero_span = span(vec![1; 16], vec![0; 8], 10, 20);
        let backwards = span(vec![1; 16], vec![3; 8], 20, 10);
        let mut bad_parent = span(vec![1; 16], vec![4; 8], 10, 20);
        bad_parent.parent_span_id = vec![1; 3];
        let batch = spans_from_request(request(vec![good, short_trace, zero_span, backwards, bad_parent]));
        assert_eq!(batch.spans.len(), 1);
        assert_eq!(batch.rejected, 4);
        let text = batch.error_message();
        assert!(text.contains("trace_id has 5 bytes, expected 16"), "{text}");
        assert!(text.contains("span_id is all zeros"), "{text}");
        assert!(
            text.contains("end_time_unix_nano 10 is before start_time_unix_nano 20"),
            "{text}"
        );
        assert!(text.contains("parent_span_id has 3 bytes"), "{text}");
        assert!(text.contains("spans[1]"), "{text}");
    }

    #[test]
    fn zero_parent_is_a_root_and_bad_links_are_counted() {
        let mut s = span(vec![1; 16], vec![2; 8], 10, 20);
        s.parent_span_id = vec![0; 8];
        s.links = vec![otlp_trace::span::Link {
            trace_id: vec![9; 3],
            span_id: vec![1; 8],
            ..Default::default()
        }];
        let batch = spans_from_request(request(vec![s]));
        let record = &batch.spans[0];
        assert_eq!(record.parent_span_id, None);
        assert!(record.links.is_empty());
        assert_eq!(record.dropped_links_count, 1);
        assert_eq!(record.service_name, derive::UNKNOWN_SERVICE);
    }

    #[test]
    fn round_trips_through_otlp() {
        let mut s = span(vec![1; 16], vec![2; 8], 10, 20);
        s.attributes = vec![otlp_common::KeyValue {
            key: "k".into(),
            value: Some(otlp_common::AnyValue {
                value: Some(otlp_common::any_value::Value::ArrayValue(otlp_common::ArrayValue {
                    values: vec![otlp_common::AnyValue {
                        value: Some(otlp_common::any_value::Value::IntValue(7)),
                    }],
                })),
            }),
            ..Default::default()
        }];
        let batch = spans_from_request(request(vec![s.clone()]));
        let back = traces_data(&batch.spans);
        let again = spans_from_request(ExportTraceServiceRequest {
            resource_spans: back.resource_spans,
        });
        assert_eq!(again.spans, batch.spans);
    }

    #[test]
    fn validate_span_agrees_with_the_mapping() {
        let mut zero_parent = span(vec![1; 16], vec![5; 8], 10, 20);
        zero_parent.parent_span_id = vec![0; 8];
        let mut bad_parent = span(vec![1; 16], vec![4; 8], 10, 20);
        bad_parent.parent_span_id = vec![1; 3];
        let cases = [
            span(vec![1; 16], vec![2; 8], 10, 20),
            span(vec![1; 16], vec![2; 8], 10, 10),
            span(vec![1; 5], vec![2; 8], 10, 20),
            span(vec![0; 16], vec![2; 8], 10, 20),
            span(vec![1; 16], vec![0; 8], 10, 20),
            span(vec![1; 16], vec![2; 7], 10, 20),
            span(vec![1; 16], vec![2; 8], 0, 20),
            span(vec![1; 16], vec![3; 8], 20, 10),
            zero_parent,
            bad_parent,
        ];
        for case in cases {
            let mapped = spans_from_request(request(vec![case.clone()]));
            assert_eq!(validate_span(&case).is_ok(), mapped.rejected == 0, "{case:?}");
            assert_eq!(request_is_valid(&request(vec![case])), mapped.rejected == 0);
        }
        assert!(request_is_valid(&ExportTraceServiceRequest::default()));
    }
}
