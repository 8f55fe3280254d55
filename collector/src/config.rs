//! Collector configuration.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use serde::{Deserialize, Serialize};

/// Default OTLP/gRPC port.
pub const DEFAULT_GRPC_PORT: u16 = 4317;
/// Default OTLP/HTTP port.
pub const DEFAULT_HTTP_PORT: u16 = 4318;
/// Default cap on one request body, before and after decompression: 16 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;
/// Default cap on export requests in flight over all receivers.
pub const DEFAULT_MAX_INFLIGHT_REQUESTS: usize = 64;

/// Settings of the OTLP receivers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorConfig {
    /// Address the OTLP/gRPC receiver listens on. Default `0.0.0.0:4317`.
    pub grpc_listen: SocketAddr,
    /// Address the OTLP/HTTP receiver (`POST /v1/traces`) listens on. Default `0.0.0.0:4318`.
    pub http_listen: SocketAddr,
    /// Largest accepted request, in bytes. Applies to the body as received and again to
    /// the body after decompression, so a small gzip bomb is refused without inflating it.
    /// Larger requests get HTTP 413 / gRPC `RESOURCE_EXHAUSTED`. Default 16 MiB.
    pub max_request_bytes: usize,
    /// Most export requests handled at once over both receivers; each holds its body
    /// (at most `max_request_bytes`) until it is answered, so this bounds the memory
    /// bodies take. More get gRPC `RESOURCE_EXHAUSTED` / HTTP 429 with a retry delay at
    /// once. Default 64.
    pub max_inflight_requests: usize,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            grpc_listen: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, DEFAULT_GRPC_PORT)),
            http_listen: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, DEFAULT_HTTP_PORT)),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_inflight_requests: DEFAULT_MAX_INFLIGHT_REQUESTS,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_partial_override() {
        let config: CollectorConfig = serde_json::from_str(r#"{"max_request_bytes": 1024}"#).unwrap();
        assert_eq!(config.grpc_listen.to_string(), "0.0.0.0:4317");
        assert_eq!(config.http_listen.to_string(), "0.0.0.0:4318");
        assert_eq!(config.max_request_bytes, 1024);
        assert_eq!(CollectorConfig::default().max_request_bytes, 16 * 1024 * 1024);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<CollectorConfig>(r#"{"grpc_port": 1}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
