//! OTLP/gRPC exporter (tonic client from `opentelemetry-proto`).

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1 as pc;
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
use opentelemetry_proto::tonic::trace::v1 as pt;
use tonic::transport::{Channel, Endpoint};

use super::{BoxFuture, SpanExporter};
use crate::error::{Error, Result};
use crate::resource::Resource;
use crate::span::{SpanData, SpanKind, Status};
use crate::value::{KeyValue, Value};

/// OTLP exporter settings. Defaults and environment variables follow the OpenTelemetry
/// specification.
#[derive(Clone, Debug, PartialEq)]
pub struct OtlpConfig {
    /// Collector gRPC endpoint (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`; default `http://localhost:4317`).
    pub endpoint: String,
    /// Per-request timeout (`OTEL_EXPORTER_OTLP[_TRACES]_TIMEOUT`, ms; default 10 s).
    pub timeout: Duration,
    /// Extra request metadata, e.g. auth (`OTEL_EXPORTER_OTLP[_TRACES]_HEADERS`,
    /// `k1=v1,k2=v2`).
    pub headers: Vec<(String, String)>,
    /// Gzip request bodies (`OTEL_EXPORTER_OTLP[_TRACES]_COMPRESSION=gzip`).
    pub gzip: bool,
    /// PEM file of the CA certificates to trust for an `https://` endpoint, instead of the
    /// system roots (`OTEL_EXPORTER_OTLP[_TRACES]_CERTIFICATE`). Ignored for `http://`.
    pub certificate: Option<PathBuf>,
    /// PEM file of the client certificate chain, for mTLS
    /// (`OTEL_EXPORTER_OTLP[_TRACES]_CLIENT_CERTIFICATE`); needs `client_key`.
    pub client_certificate: Option<PathBuf>,
    /// PEM file of the client certificate's private key
    /// (`OTEL_EXPORTER_OTLP[_TRACES]_CLIENT_KEY`).
    pub client_key: Option<PathBuf>,
}

impl Default for OtlpConfig {
    fn default() -> OtlpConfig {
        OtlpConfig {
            endpoint: "http://localhost:4317".into(),
            timeout: Duration::from_secs(10),
            headers: Vec::new(),
            gzip: false,
            certificate: None,
            client_certificate: None,
            client_key: None,
        }
    }
}

impl OtlpConfig {
    /// Settings for `endpoint`, other fields default.
    pub fn with_endpoint(endpoint: impl Into<String>) -> OtlpConfig {
        OtlpConfig {
            endpoint: endpoint.into(),
            ..OtlpConfig::default()
        }
    }

    /// Defaults overridden by the process environment.
    pub fn from_env() -> Result<OtlpConfig> {
        OtlpConfig::from_env_vars(|k| std::env::var(k).ok())
    }

    /// [`OtlpConfig::from_env`] over any variable source.
    pub fn from_env_vars(get: impl Fn(&str) -> Option<String>) -> Result<OtlpConfig> {
        let pick =
            |specific: &str, general: &str| get(specific).or_else(|| get(general)).filter(|v| !v.trim().is_empty());
        let mut c = OtlpConfig::default();
        if let Some(e) = pick("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT") {
            c.endpoint = e.trim().to_owned();
        }
        if let Some(t) = pick("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT") {
            let ms: u64 = t
                .trim()
                .parse()
                .map_err(|_| Error::Config(format!("OTLP timeout {t:?} is not milliseconds")))?;
            c.timeout = Duration::from_millis(ms);
        }
        if let Some(h) = pick("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS") {
            c.headers = h
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
        }
        if let Some(z) = pick(
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            "OTEL_EXPORTER_OTLP_COMPRESSION",
        ) {
            c.gzip = z.trim().eq_ignore_ascii_case("gzip");
        }
        let path = |specific: &str, general: &str| pick(specific, general).map(|p| PathBuf::from(p.trim()));
        c.certificate = path(
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
        );
        c.client_certificate = path(
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        );
        c.client_key = path("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "OTEL_EXPORTER_OTLP_CLIENT_KEY");
        Ok(c)
    }
}

/// Sends spans to an OTLP/gRPC endpoint (hopscope's :4317 or any OpenTelemetry
/// collector). Connects lazily on the export worker, reconnecting as needed.
pub struct OtlpGrpcExporter {
    config: OtlpConfig,
    endpoint: Endpoint,
    metadata: tonic::metadata::MetadataMap,
    client: Option<TraceServiceClient<Channel>>,
}

impl std::fmt::Debug for OtlpGrpcExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpGrpcExporter")
            .field("config", &self.config)
            .finish()
    }
}

impl OtlpGrpcExporter {
    /// Validates the configuration and, for an `https://` endpoint, reads the TLS files
    /// (feature `tls`; without it `https://` is a configuration error); does not connect.
    pub fn new(config: OtlpConfig) -> Result<OtlpGrpcExporter> {
        let mut endpoint = Endpoint::from_shared(config.endpoint.clone())
            .map_err(|e| Error::Config(format!("OTLP endpoint {:?}: {e}", config.endpoint)))?
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)));
        if endpoint.uri().scheme_str() == Some("https") {
            endpoint = with_tls(endpoint, &config)?;
        }
        let mut metadata = tonic::metadata::MetadataMap::new();
        for (k, v) in &config.headers {
            let key = tonic::metadata::MetadataKey::from_bytes(k.as_bytes())
                .map_err(|_| Error::Config(format!("bad OTLP header name {k:?}")))?;
            let value = v
                .parse()
                .map_err(|_| Error::Config(format!("bad OTLP header value for {k:?}")))?;
            metadata.insert(key, value);
        }
        Ok(OtlpGrpcExporter {
            config,
            endpoint,
            metadata,
            client: None,
        })
    }

    fn client(&mut self) -> &mut TraceServiceClient<Channel> {
        let (endpoint, gzip) = (&self.endpoint, self.config.gzip);
        self.client.get_or_insert_with(|| {
            let client = TraceServiceClient::new(endpoint.connect_lazy());
            if gzip {
                client.send_compressed(tonic::codec::CompressionEncoding::Gzip)
            } else {
                client
            }
        })
    }
}

impl SpanExporter for OtlpGrpcExporter {
    fn export<'a>(&'a mut self, batch: &'a [SpanData], resource: &'a Resource) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut request = tonic::Request::new(to_otlp_request(batch, resource));
            *request.metadata_mut() = self.metadata.clone();
            match self.client().export(request).await {
                Ok(response) => match response.into_inner().partial_success {
                    Some(p) if p.rejected_spans > 0 => Err(Error::Export {
                        retryable: false,
                        message: format!("endpoint rejected {} spans: {}", p.rejected_spans, p.error_message),
                    }),
                    _ => Ok(()),
                },
                Err(status) => {
                    use tonic::Code;
                    let retryable = matches!(
                        status.code(),
                        Code::Unavailable
                            | Code::ResourceExhausted
                            | Code::DeadlineExceeded
                            | Code::Aborted
                            | Code::Cancelled
                            | Code::Unknown
                            | Code::Internal
                            | Code::OutOfRange
                            | Code::DataLoss
                    );
                    if status.code() == Code::Unavailable {
                        // Reconnect next time (the endpoint may have moved or restarted).
                        self.client = None;
                    }
                    Err(Error::Export {
                        retryable,
                        message: format!("{}: {}", status.code(), status.message()),
                    })
                }
            }
        })
    }
}

#[cfg(feature = "tls")]
fn with_tls(endpoint: Endpoint, config: &OtlpConfig) -> Result<Endpoint> {
    let tls = super::tls::TlsMaterial::load(config)?.grpc();
    endpoint
        .tls_config(tls)
        .map_err(|e| Error::Config(format!("OTLP TLS: {e}")))
}

#[cfg(not(feature = "tls"))]
fn with_tls(_: Endpoint, config: &OtlpConfig) -> Result<Endpoint> {
    Err(Error::Config(format!(
        "OTLP endpoint {:?}: https:// needs hopscope-sdk's `tls` feature",
        config.endpoint
    )))
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

fn any_value(v: &Value) -> pc::AnyValue {
    use pc::any_value::Value as V;
    let value = match v {
        Value::String(s) => V::StringValue(s.to_string()),
        Value::I64(i) => V::IntValue(*i),
        Value::F64(f) => V::DoubleValue(*f),
        Value::Bool(b) => V::BoolValue(*b),
    };
    pc::AnyValue { value: Some(value) }
}

fn attributes(attrs: &[KeyValue]) -> Vec<pc::KeyValue> {
    attrs
        .iter()
        .map(|kv| pc::KeyValue {
            key: kv.key.to_string(),
            value: Some(any_value(&kv.value)),
            ..Default::default()
        })
        .collect()
}

fn kind(k: SpanKind) -> i32 {
    (match k {
        SpanKind::Server => pt::span::SpanKind::Server,
        SpanKind::Client => pt::span::SpanKind::Client,
        SpanKind::Producer => pt::span::SpanKind::Producer,
        SpanKind::Consumer => pt::span::SpanKind::Consumer,
        SpanKind::Internal => pt::span::SpanKind::Internal,
    }) as i32
}

/// The span flags word: W3C flags in the low byte, plus the "has is_remote" bit (0x100)
/// and the "parent is remote" bit (0x200).
fn flags(trace_flags: u8, remote: bool) -> u32 {
    u32::from(trace_flags) | 0x100 | if remote { 0x200 } else { 0 }
}

fn span(s: &SpanData) -> pt::Span {
    let status = match &s.status {
        Status::Unset => None,
        Status::Ok => Some(pt::Status {
            code: pt::status::StatusCode::Ok as i32,
            message: String::new(),
        }),
        Status::Error { message } => Some(pt::Status {
            code: pt::status::StatusCode::Error as i32,
            message: message.to_string(),
        }),
    };
    pt::Span {
        trace_id: s.context.trace_id.0.to_vec(),
        span_id: s.context.span_id.0.to_vec(),
        trace_state: s.context.trace_state.as_str().to_owned(),
        parent_span_id: s.parent_span_id.map(|p| p.0.to_vec()).unwrap_or_default(),
        flags: flags(s.context.trace_flags.0, s.parent_is_remote),
        name: s.name.to_string(),
        kind: kind(s.kind),
        start_time_unix_nano: nanos(s.start_time),
        end_time_unix_nano: nanos(s.end_time),
        attributes: attributes(&s.attributes),
        dropped_attributes_count: s.dropped_attributes,
        events: s
            .events
            .iter()
            .map(|e| pt::span::Event {
                time_unix_nano: nanos(e.timestamp),
                name: e.name.to_string(),
                attributes: attributes(&e.attributes),
                dropped_attributes_count: 0,
            })
            .collect(),
        dropped_events_count: s.dropped_events,
        links: s
            .links
            .iter()
            .map(|l| pt::span::Link {
                trace_id: l.context.trace_id.0.to_vec(),
                span_id: l.context.span_id.0.to_vec(),
                trace_state: l.context.trace_state.as_str().to_owned(),
                attributes: attributes(&l.attributes),
                dropped_attributes_count: 0,
                flags: flags(l.context.trace_flags.0, l.context.is_remote),
            })
            .collect(),
        dropped_links_count: s.dropped_links,
        status,
    }
}

/// Converts a batch into one OTLP request: one resource, spans grouped by scope.
pub fn to_otlp_request(batch: &[SpanData], resource: &Resource) -> ExportTraceServiceRequest {
    let mut scopes: Vec<pt::ScopeSpans> = Vec::new();
    for s in batch {
        let pos = match scopes
            .iter()
            .position(|sc| sc.scope.as_ref().is_some_and(|x| x.name == s.scope))
        {
            Some(pos) => pos,
            None => {
                scopes.push(pt::ScopeSpans {
                    scope: Some(pc::InstrumentationScope {
                        name: s.scope.to_string(),
                        ..Default::default()
                    }),
                    spans: Vec::new(),
                    schema_url: String::new(),
                });
                scopes.len() - 1
            }
        };
        scopes[pos].spans.push(span(s));
    }
    ExportTraceServiceRequest {
        resource_spans: vec![pt::ResourceSpans {
            resource: Some(ProtoResource {
                attributes: attributes(resource.attributes()),
                ..Default::default()
            }),
            scope_spans: scopes,
            schema_url: String::new(),
        }],
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn env_config() {
        let env = |k: &str| match k {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://collector:4317".to_owned()),
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT" => Some("2500".to_owned()),
            "OTEL_EXPORTER_OTLP_HEADERS" => Some("Authorization=Bearer x,tenant=a".to_owned()),
            _ => None,
        };
        let c = OtlpConfig::from_env_vars(env).unwrap();
        assert_eq!(c.endpoint, "http://collector:4317");
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(c.headers[0], ("authorization".to_owned(), "Bearer x".to_owned()));
        assert!(OtlpGrpcExporter::new(c).is_ok());
        assert!(OtlpGrpcExporter::new(OtlpConfig::with_endpoint("not a url")).is_err());
    }
}
