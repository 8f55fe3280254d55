//! Encoded OTLP trace requests as a store receives them from the collector's log
//! ([`crate::SpanWriter::write_otlp`]).

use hopscope_schemas::SpanRecord;
use hopscope_schemas::otlp::spans_from_request;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// What [`crate::SpanWriter::write_otlp`] stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtlpWrite {
    /// Spans written: the valid spans of the bodies that decode.
    pub spans: u64,
    /// Bodies that do not decode, by index, with prost's error; nothing of them is
    /// stored.
    pub undecodable: Vec<(usize, String)>,
}

/// The valid spans of one body, mapped; the decode error when it does not decode.
pub fn decode(body: &[u8]) -> Result<Vec<SpanRecord>, String> {
    ExportTraceServiceRequest::decode(body)
        .map(|request| spans_from_request(request).spans)
        .map_err(|e| e.to_string())
}

/// The valid spans of every body, in order, and the bodies that do not decode.
pub fn decode_all(bodies: &[impl AsRef<[u8]>]) -> (Vec<SpanRecord>, Vec<(usize, String)>) {
    let mut spans = Vec::new();
    let mut undecodable = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        match decode(body.as_ref()) {
            Ok(mapped) => spans.extend(mapped),
            Err(err) => undecodable.push((i, err)),
        }
    }
    (spans, undecodable)
}
