//! Turning an OTLP/HTTP body into an `ExportTraceServiceRequest`: content negotiation,
//! bounded gzip inflation, and protobuf or JSON decoding.
//!
//! Everything here is synchronous and CPU-bound; the ingest path ([`crate::ingest`]) runs
//! it on the blocking pool for large bodies.

use std::io::Read;

use flate2::read::MultiGzDecoder;
use http::HeaderMap;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::error::{BodyFormat, IngestError, Result};
use crate::json;

/// How the body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentEncoding {
    /// Not compressed.
    Identity,
    /// gzip (one or more members).
    Gzip,
}

/// The body format named by `Content-Type`, ignoring parameters such as `charset`.
pub fn body_format(headers: &HeaderMap) -> Result<BodyFormat> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Err(IngestError::UnsupportedContentType("(none)".to_owned()));
    };
    let text = String::from_utf8_lossy(value.as_bytes());
    let mime = text.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(BodyFormat::Protobuf),
        "application/json" => Ok(BodyFormat::Json),
        _ => Err(IngestError::UnsupportedContentType(text.into_owned())),
    }
}

/// The compression named by `Content-Encoding`; at most one non-identity coding is allowed.
pub fn content_encoding(headers: &HeaderMap) -> Result<ContentEncoding> {
    let mut found = ContentEncoding::Identity;
    for value in headers.get_all(CONTENT_ENCODING) {
        let text = String::from_utf8_lossy(value.as_bytes());
        for coding in text.split(',').map(|c| c.trim().to_ascii_lowercase()) {
            match coding.as_str() {
                "" | "identity" => {}
                "gzip" | "x-gzip" if found == ContentEncoding::Identity => found = ContentEncoding::Gzip,
                _ => return Err(IngestError::UnsupportedContentEncoding(text.into_owned())),
            }
        }
    }
    Ok(found)
}

/// Inflates a gzip body, refusing (without inflating further) once the output would pass
/// `max` bytes. Memory use is bounded by about `max` whatever the compression ratio.
pub fn gunzip(body: &[u8], max: usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(max.saturating_add(1)));
    let cap = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    MultiGzDecoder::new(body)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|err| IngestError::InvalidGzip(err.to_string()))?;
    if out.len() > max {
        return Err(IngestError::DecompressedTooLarge { limit: max });
    }
    Ok(out)
}

/// Decodes an (uncompressed) body in the given format.
pub fn decode_request(body: &[u8], format: BodyFormat) -> Result<ExportTraceServiceRequest> {
    match format {
        BodyFormat::Protobuf => {
            ExportTraceServiceRequest::decode(body).map_err(|err| IngestError::InvalidProtobuf(err.to_string()))
        }
        BodyFormat::Json => json::request_from_json(body),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use http::HeaderValue;
    use std::io::Write;

    fn headers(name: http::HeaderName, value: &'static str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(name, HeaderValue::from_static(value));
        map
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn content_types_with_parameters() {
        let format = |v| body_format(&headers(CONTENT_TYPE, v));
        assert_eq!(format("application/x-protobuf").unwrap(), BodyFormat::Protobuf);
        assert_eq!(format("application/protobuf").unwrap(), BodyFormat::Protobuf);
        assert_eq!(format("Application/JSON; charset=utf-8").unwrap(), BodyFormat::Json);
        assert!(matches!(format("text/plain"), Err(IngestError::UnsupportedContentType(t)) if t == "text/plain"));
        assert!(body_format(&HeaderMap::new()).is_err());
    }

    #[test]
    fn content_encodings() {
        let encoding = |v| content_encoding(&headers(CONTENT_ENCODING, v));
        assert_eq!(content_encoding(&HeaderMap::new()).unwrap(), ContentEncoding::Identity);
        assert_eq!(encoding("identity").unwrap(), ContentEncoding::Identity);
        assert_eq!(encoding("GZIP").unwrap(), ContentEncoding::Gzip);
        assert!(matches!(
            encoding("br"),
            Err(IngestError::UnsupportedContentEncoding(_))
        ));
        assert!(matches!(
            encoding("gzip, gzip"),
            Err(IngestError::UnsupportedContentEncoding(_))
        ));
    }

    #[test]
    fn gunzip_honours_the_cap_exactly() {
        let data = vec![7u8; 1000];
        assert_eq!(gunzip(&gzip(&data), 1000).unwrap(), data);
        assert!(matches!(
            gunzip(&gzip(&data), 999),
            Err(IngestError::DecompressedTooLarge { limit: 999 })
        ));
        assert!(matches!(
            gunzip(b"not gzip at all", 1000),
            Err(IngestError::InvalidGzip(_))
        ));
    }

    #[test]
    fn gunzip_stops_a_bomb_early() {
        // 64 MiB of zeros compress to about 64 KiB; a 1 MiB cap must stop after ~1 MiB.
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..64 {
            encoder.write_all(&chunk).unwrap();
        }
        let bomb = encoder.finish().unwrap();
        assert!(bomb.len() < 1 << 20);
        let err = gunzip(&bomb, 1 << 20).unwrap_err();
        assert!(matches!(err, IngestError::DecompressedTooLarge { .. }), "{err}");
    }

    #[test]
    fn truncated_protobuf_names_the_problem() {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![Default::default()],
        };
        let mut bytes = request.encode_to_vec();
        bytes.extend_from_slice(&[0x0a, 0x40, 0x01]); // a field claiming 64 bytes, 1 present
        let err = decode_request(&bytes, BodyFormat::Protobuf).unwrap_err();
        assert!(err.to_string().starts_with("invalid OTLP protobuf:"), "{err}");
        assert_eq!(
            decode_request(&[], BodyFormat::Protobuf).unwrap(),
            ExportTraceServiceRequest::default()
        );
    }

    #[test]
    fn gzip_json_body() {
        let body = gzip(br#"{"resourceSpans":[]}"#);
        let request = decode_request(&gunzip(&body, 1024).unwrap(), BodyFormat::Json).unwrap();
        assert!(request.resource_spans.is_empty());
    }
}
