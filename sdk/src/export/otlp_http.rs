//! OTLP/HTTP with protobuf bodies (`POST {endpoint}/v1/traces`,
//! `application/x-protobuf`), and the choice between it and OTLP/gRPC by
//! `OTEL_EXPORTER_OTLP_PROTOCOL` as the OpenTelemetry SDKs make it.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;

use super::otlp::{OtlpConfig, OtlpGrpcExporter, to_otlp_request};
use super::{BoxFuture, SpanExporter};
use crate::error::{Error, Result};
use crate::resource::Resource;
use crate::span::SpanData;

/// Sends spans to an OTLP/HTTP endpoint (hopscope's :4318 or any OpenTelemetry
/// collector) as protobuf, over `http://` or (feature `tls`) `https://`.
#[derive(Debug)]
pub struct OtlpHttpExporter {
    config: OtlpConfig,
    client: reqwest::Client,
}

impl OtlpHttpExporter {
    /// Sends to `config.endpoint`, which is the full URL of the traces resource
    /// (e.g. `http://localhost:4318/v1/traces`); validates it and, for `https://`, reads
    /// the TLS files (without the `tls` feature `https://` is a configuration error); does
    /// not connect.
    pub fn new(config: OtlpConfig) -> Result<OtlpHttpExporter> {
        let url = reqwest::Url::parse(&config.endpoint)
            .map_err(|e| Error::Config(format!("OTLP endpoint {:?}: {e}", config.endpoint)))?;
        let client = match url.scheme() {
            "http" => reqwest::Client::builder(),
            #[cfg(feature = "tls")]
            "https" => {
                reqwest::Client::builder().tls_backend_preconfigured(super::tls::TlsMaterial::load(&config)?.http()?)
            }
            #[cfg(not(feature = "tls"))]
            "https" => {
                return Err(Error::Config(format!(
                    "OTLP/HTTP endpoint {:?}: https:// needs hopscope-sdk's `tls` feature",
                    config.endpoint
                )));
            }
            other => {
                return Err(Error::Config(format!(
                    "OTLP/HTTP endpoint {:?}: scheme {other:?} is not http or https",
                    config.endpoint
                )));
            }
        };
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &config.headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| Error::Config(format!("bad OTLP header name {k:?}")))?;
            let value = v
                .parse()
                .map_err(|_| Error::Config(format!("bad OTLP header value for {k:?}")))?;
            headers.insert(name, value);
        }
        let client = client
            .default_headers(headers)
            .timeout(config.timeout)
            .build()
            .map_err(|e| Error::Config(format!("OTLP/HTTP client: {e}")))?;
        Ok(OtlpHttpExporter { config, client })
    }

    fn body(&self, batch: &[SpanData], resource: &Resource) -> Result<Vec<u8>> {
        let body = to_otlp_request(batch, resource).encode_to_vec();
        if !self.config.gzip {
            return Ok(body);
        }
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&body)
            .and_then(|()| gz.finish())
            .map_err(|e| Error::Export {
                retryable: false,
                message: e.to_string(),
            })
    }
}

impl SpanExporter for OtlpHttpExporter {
    fn export<'a>(&'a mut self, batch: &'a [SpanData], resource: &'a Resource) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut request = self
                .client
                .post(&self.config.endpoint)
                .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
                .body(self.body(batch, resource)?);
            if self.config.gzip {
                request = request.header(reqwest::header::CONTENT_ENCODING, "gzip");
            }
            let response = request.send().await.map_err(|e| Error::Export {
                retryable: true,
                message: format!("OTLP/HTTP request: {e}"),
            })?;
            let status = response.status();
            // The OTLP/HTTP specification's retryable codes; other failures are final.
            let retryable = matches!(status.as_u16(), 429 | 502 | 503 | 504);
            let body = response.bytes().await.unwrap_or_default();
            if !status.is_success() {
                return Err(Error::Export {
                    retryable,
                    message: format!("OTLP/HTTP {status}"),
                });
            }
            match ExportTraceServiceResponse::decode(body.as_ref())
                .ok()
                .and_then(|r| r.partial_success)
            {
                Some(p) if p.rejected_spans > 0 => Err(Error::Export {
                    retryable: false,
                    message: format!("endpoint rejected {} spans: {}", p.rejected_spans, p.error_message),
                }),
                _ => Ok(()),
            }
        })
    }
}

/// The OTLP exporter the environment asks for: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else
/// `OTEL_EXPORTER_OTLP_PROTOCOL`, is `grpc` (the default) or `http/protobuf`.
#[derive(Debug)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // one per process, owned by the export worker
pub enum OtlpExporter {
    /// OTLP/gRPC.
    Grpc(OtlpGrpcExporter),
    /// OTLP/HTTP with protobuf bodies.
    Http(OtlpHttpExporter),
}

impl OtlpExporter {
    /// From the process environment (see [`OtlpExporter::from_env_vars`]).
    pub fn from_env() -> Result<OtlpExporter> {
        OtlpExporter::from_env_vars(|k| std::env::var(k).ok())
    }

    /// The protocol as above, settings from [`OtlpConfig::from_env_vars`]. For
    /// `http/protobuf` the endpoint follows the specification:
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is used as is, `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// gets `/v1/traces` appended, and the default is `http://localhost:4318/v1/traces`.
    /// `http/json` and unknown protocols are configuration errors.
    pub fn from_env_vars(get: impl Fn(&str) -> Option<String>) -> Result<OtlpExporter> {
        let set = |k: &str| get(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let protocol = set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| set("OTEL_EXPORTER_OTLP_PROTOCOL"));
        let mut config = OtlpConfig::from_env_vars(&get)?;
        match protocol.as_deref().unwrap_or("grpc") {
            "grpc" => Ok(OtlpExporter::Grpc(OtlpGrpcExporter::new(config)?)),
            "http/protobuf" => {
                config.endpoint = match (
                    set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
                    set("OTEL_EXPORTER_OTLP_ENDPOINT"),
                ) {
                    (Some(traces), _) => traces,
                    (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
                    (None, None) => "http://localhost:4318/v1/traces".to_owned(),
                };
                Ok(OtlpExporter::Http(OtlpHttpExporter::new(config)?))
            }
            other => Err(Error::Config(format!(
                "OTLP protocol {other:?} is not supported (grpc, http/protobuf)"
            ))),
        }
    }
}

impl SpanExporter for OtlpExporter {
    fn export<'a>(&'a mut self, batch: &'a [SpanData], resource: &'a Resource) -> BoxFuture<'a, Result<()>> {
        match self {
            OtlpExporter::Grpc(e) => e.export(batch, resource),
            OtlpExporter::Http(e) => e.export(batch, resource),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn exporter(vars: &[(&str, &str)]) -> Result<OtlpExporter> {
        OtlpExporter::from_env_vars(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    }

    fn http_endpoint(vars: &[(&str, &str)]) -> String {
        match exporter(vars).unwrap() {
            OtlpExporter::Http(e) => e.config.endpoint,
            other => panic!("not HTTP: {other:?}"),
        }
    }

    #[test]
    fn protocol_and_endpoint_follow_the_specification() {
        assert!(matches!(exporter(&[]).unwrap(), OtlpExporter::Grpc(_)));
        let http = [("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")];
        assert_eq!(http_endpoint(&http), "http://localhost:4318/v1/traces");
        assert_eq!(
            http_endpoint(&[http[0], ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            http_endpoint(&[http[0], ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:9/custom")]),
            "http://c:9/custom"
        );
        let traces_only = [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
        ];
        assert_eq!(http_endpoint(&traces_only), "http://localhost:4318/v1/traces");
        assert!(exporter(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]).is_err());
        let https = exporter(&[http[0], ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://secure:4318")]);
        assert_eq!(https.is_ok(), cfg!(feature = "tls"), "{https:?}");
        assert!(exporter(&[http[0], ("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://secure:4318")]).is_err());
    }
}
