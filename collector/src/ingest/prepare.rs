//! Turning a request body into the record the log stores: the CPU-bound half of
//! [`crate::Ingest::ingest`], run on the reactor for small bodies and on the blocking
//! pool for large ones.
//!
//! The record is always an encoded OTLP `ExportTraceServiceRequest` holding exactly the
//! request's valid spans:
//! - a protobuf body that no enrichment rule can change and whose spans are all valid is
//!   the record as it is — checked in place ([`valid_span_count`], no allocation), or,
//!   when the check is unsure, decoded once to make sure;
//! - otherwise the body is decoded (protobuf or JSON), the hybrid-cloud rules tag its
//!   resources, invalid spans are removed from the decoded request (each named in the
//!   OTLP partial success; nothing is mapped to `SpanRecord`), and what is left is
//!   encoded once with prost.

use bytes::Bytes;
use hopscope_schemas::otlp::{MAX_REJECTION_MESSAGES, MappedBatch, span_count, validate_span};
use hopscope_schemas::otlp_scan::valid_span_count;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::cloud::CloudRules;
use crate::decode::{self, ContentEncoding};
use crate::error::{BodyFormat, Result};

/// A request body as a receiver hands it to [`crate::Ingest::ingest`].
#[derive(Debug, Clone)]
pub struct RequestBody {
    /// The body as received (inflated by the transport when it did that itself, as
    /// gRPC does).
    pub bytes: Bytes,
    /// Protobuf or JSON.
    pub format: BodyFormat,
    /// Whether `bytes` are still gzip-compressed.
    pub encoding: ContentEncoding,
    /// Inflation stops (and the request is refused) past this many bytes.
    pub max_inflated: usize,
}

/// What a request becomes: the record to log (none when no valid span is left) and the
/// counts and message for the answer.
#[derive(Debug)]
pub(super) struct Prepared {
    pub record: Option<Bytes>,
    pub accepted: u64,
    pub rejected: u64,
    pub error_message: String,
}

impl Prepared {
    /// A body logged as it is: `spans` valid spans.
    pub fn as_is(body: Bytes, spans: usize) -> Self {
        Self {
            record: (spans > 0).then_some(body),
            accepted: spans as u64,
            rejected: 0,
            error_message: String::new(),
        }
    }
}

/// See the module doc. `scanned`: the in-place check already ran on `body` and was unsure,
/// so it is not run again.
pub(super) fn prepare(body: RequestBody, rules: &CloudRules, scanned: bool) -> Result<Prepared> {
    let RequestBody {
        bytes,
        format,
        encoding,
        max_inflated,
    } = body;
    let plain = match encoding {
        ContentEncoding::Identity => bytes,
        ContentEncoding::Gzip => Bytes::from(decode::gunzip(&bytes, max_inflated)?),
    };
    let as_is = format == BodyFormat::Protobuf && rules.is_empty();
    if as_is
        && !scanned
        && let Some(spans) = valid_span_count(&plain)
    {
        return Ok(Prepared::as_is(plain, spans));
    }
    let mut request = decode::decode_request(&plain, format)?;
    rules.apply(&mut request);
    let rejections = drop_invalid_spans(&mut request);
    let accepted = span_count(&request) as u64;
    let record = if accepted == 0 {
        None
    } else if as_is && rejections.rejected == 0 {
        Some(plain)
    } else {
        Some(Bytes::from(request.encode_to_vec()))
    };
    Ok(Prepared {
        record,
        accepted,
        rejected: rejections.rejected,
        error_message: rejections.error_message(),
    })
}

/// Removes every invalid span ([`validate_span`]) from `request`, and scopes and
/// resources left without spans; returns the count and messages naming each (as
/// [`hopscope_schemas::otlp::spans_from_request`] names them).
fn drop_invalid_spans(request: &mut ExportTraceServiceRequest) -> MappedBatch {
    let mut rejections = MappedBatch::default();
    for (ri, resource_spans) in request.resource_spans.iter_mut().enumerate() {
        for (si, scope_spans) in resource_spans.scope_spans.iter_mut().enumerate() {
            let mut pi = 0;
            scope_spans.spans.retain(|span| {
                let verdict = validate_span(span);
                if let Err(err) = &verdict {
                    rejections.rejected += 1;
                    if rejections.messages.len() < MAX_REJECTION_MESSAGES {
                        rejections.messages.push(format!(
                            "span {:?} (resource_spans[{ri}].scope_spans[{si}].spans[{pi}]): {err}",
                            span.name
                        ));
                    }
                }
                pi += 1;
                verdict.is_ok()
            });
        }
        if rejections.rejected > 0 {
            resource_spans.scope_spans.retain(|scope| !scope.spans.is_empty());
        }
    }
    if rejections.rejected > 0 {
        request
            .resource_spans
            .retain(|resource| !resource.scope_spans.is_empty());
    }
    rejections
}
