//! OTLP/HTTP with protobuf bodies (`POST {endpoint}/v1/traces`,
//! `application/x-protobuf`), and the choice between it and OTLP/gRPC by
//! `OTEL_EXPORTER_OTLP_PROTOCOL` as the OpenTelemetry SDKs make it.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;

use super::otlp::{OtlpConfig, OtlpGrpcExporter, to_otlp_request};
use super::{BoxFuture, SpanExporter};
use crate::error::{Error, Result};
use crate::resource::Resource;
use crate::span::SpanData;

/// The connector: plain TCP, or (feature `tls`) rustls over it for `https://`.
#[cfg(feature = "tls")]
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
#[cfg(not(feature = "tls"))]
type Connector = HttpConnector;

/// Most response body bytes read (an OTLP response is a few bytes; this bounds a broken
/// or hostile endpoint).
const MAX_RESPONSE: usize = 64 * 1024;

/// Sends spans to an OTLP/HTTP endpoint (hopscope's :4318 or any OpenTelemetry
/// collector) as protobuf, over `http://` or (feature `tls`) `https://`, with HTTP/1.1.
pub struct OtlpHttpExporter {
    config: OtlpConfig,
    uri: http::Uri,
    headers: http::HeaderMap,
    client: Client<Connector, Full<Bytes>>,
}

impl std::fmt::Debug for OtlpHttpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpHttpExporter")
            .field("config", &self.config)
            .finish()
    }
}

impl OtlpHttpExporter {
    /// Sends to `config.endpoint`, which is the full URL of the traces resource
    /// (e.g. `http://localhost:4318/v1/traces`); validates it and, for `https://`, reads
    /// the TLS files (without the `tls` feature `https://` is a configuration error); does
    /// not connect.
    pub fn new(config: OtlpConfig) -> Result<OtlpHttpExporter> {
        let uri: http::Uri = config
            .endpoint
            .parse()
            .map_err(|e| Error::Config(format!("OTLP endpoint {:?}: {e}", config.endpoint)))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") if cfg!(feature = "tls") => true,
            Some("https") => {
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
        if uri.host().is_none() {
            return Err(Error::Config(format!(
                "OTLP endpoint {:?} has no host",
                config.endpoint
            )));
        }
        let mut headers = http::HeaderMap::new();
        for (k, v) in &config.headers {
            let name = http::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| Error::Config(format!("bad OTLP header name {k:?}")))?;
            let value = v
                .parse()
                .map_err(|_| Error::Config(format!("bad OTLP header value for {k:?}")))?;
            headers.insert(name, value);
        }
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(config.timeout.min(std::time::Duration::from_secs(5))));
        #[cfg(feature = "tls")]
        let connector = super::tls::https_connector(tcp, &config, https)?;
        #[cfg(not(feature = "tls"))]
        let connector = {
            let _ = https;
            tcp
        };
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(OtlpHttpExporter {
            config,
            uri,
            headers,
            client,
        })
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

    /// One POST; the status and at most [`MAX_RESPONSE`] bytes of the body.
    async fn post(&self, body: Vec<u8>) -> Result<(http::StatusCode, Bytes)> {
        let failed = |message: String| Error::Export {
            retryable: true,
            message,
        };
        let mut request = http::Request::post(self.uri.clone())
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| failed(format!("OTLP/HTTP request: {e}")))?;
        if self.config.gzip {
            request
                .headers_mut()
                .insert(http::header::CONTENT_ENCODING, http::HeaderValue::from_static("gzip"));
        }
        request.headers_mut().extend(self.headers.clone());
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| failed(format!("OTLP/HTTP request: {e:#}")))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok((status, body))
        };
        tokio::time::timeout(self.config.timeout, exchange)
            .await
            .map_err(|_| failed(format!("OTLP/HTTP request timed out after {:?}", self.config.timeout)))?
    }
}

impl SpanExporter for OtlpHttpExporter {
    fn export<'a>(&'a mut self, batch: &'a [SpanData], resource: &'a Resource) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let (status, body) = self.post(self.body(batch, resource)?).await?;
            // The OTLP/HTTP specification's retryable codes; other failures are final.
            let retryable = matches!(status.as_u16(), 429 | 502 | 503 | 504);
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
