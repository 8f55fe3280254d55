//! TLS for the OTLP exporters (feature `tls`): rustls with the ring provider, no OpenSSL.
//!
//! Trust: the CA certificates in [`OtlpConfig::certificate`] when it is set (they replace
//! the system roots, as in the OpenTelemetry Go and Java SDKs), else the system's roots
//! (`rustls-native-certs`). Client authentication (mTLS): [`OtlpConfig::client_certificate`]
//! and [`OtlpConfig::client_key`], both or neither. All three are PEM files, read once
//! when the exporter is built.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::otlp::OtlpConfig;
use crate::error::{Error, Result};

/// The PEM material an `https://` exporter needs, read from the configured files.
pub(crate) struct TlsMaterial {
    /// CA bundle to trust instead of the system roots.
    pub(crate) ca: Option<Vec<u8>>,
    /// Client certificate chain and key, for mTLS.
    pub(crate) identity: Option<(Vec<u8>, Vec<u8>)>,
}

fn read(what: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Config(format!("OTLP {what} {}: {e}", path.display())))
}

impl TlsMaterial {
    /// Reads the files `config` names; a client certificate without a key (or the
    /// reverse) is a configuration error.
    pub(crate) fn load(config: &OtlpConfig) -> Result<TlsMaterial> {
        let ca = config
            .certificate
            .as_deref()
            .map(|p| read("certificate", p))
            .transpose()?;
        let identity = match (&config.client_certificate, &config.client_key) {
            (Some(c), Some(k)) => Some((read("client certificate", c)?, read("client key", k)?)),
            (None, None) => None,
            _ => {
                return Err(Error::Config(
                    "OTLP client certificate and client key must be set together".into(),
                ));
            }
        };
        Ok(TlsMaterial { ca, identity })
    }

    /// tonic's TLS settings for the gRPC exporter.
    pub(crate) fn grpc(&self) -> tonic::transport::ClientTlsConfig {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let mut tls = ClientTlsConfig::new();
        tls = match &self.ca {
            Some(ca) => tls.ca_certificate(Certificate::from_pem(ca)),
            None => tls.with_native_roots(),
        };
        if let Some((cert, key)) = &self.identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        tls
    }

    /// A rustls client configuration for the OTLP/HTTP exporter.
    pub(crate) fn http(&self) -> Result<rustls::ClientConfig> {
        let bad = |what: &str, e: &dyn std::fmt::Display| Error::Config(format!("OTLP TLS {what}: {e}"));
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca {
            Some(ca) => {
                for cert in CertificateDer::pem_slice_iter(ca) {
                    let cert = cert.map_err(|e| bad("certificate", &e))?;
                    roots.add(cert).map_err(|e| bad("certificate", &e))?;
                }
                if roots.is_empty() {
                    return Err(Error::Config("OTLP TLS certificate: no certificate in the file".into()));
                }
            }
            None => {
                // Unreadable system certificates are skipped, as tonic does; an empty
                // store fails at the handshake with a clear error, not here.
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            }
        }
        self.client_config(roots)
    }

    /// A rustls client configuration trusting `roots`, with the client certificate if
    /// one is configured.
    fn client_config(&self, roots: rustls::RootCertStore) -> Result<rustls::ClientConfig> {
        let bad = |what: &str, e: &dyn std::fmt::Display| Error::Config(format!("OTLP TLS {what}: {e}"));
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("protocol versions", &e))?
            .with_root_certificates(roots);
        let config = match &self.identity {
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(cert)
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| bad("client certificate", &e))?;
                let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| bad("client key", &e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| bad("client certificate", &e))?
            }
            None => builder.with_no_client_auth(),
        };
        // ALPN (HTTP/1.1) is the connector's to set.
        Ok(config)
    }
}

/// The OTLP/HTTP exporter's connector: rustls for `https://` endpoints (with the
/// configured trust and client certificate), plain TCP for `http://` ones.
pub(crate) fn https_connector(
    tcp: hyper_util::client::legacy::connect::HttpConnector,
    config: &OtlpConfig,
    https: bool,
) -> Result<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>> {
    let tls = if https {
        TlsMaterial::load(config)?.http()?
    } else {
        // Never used: the endpoint is plain HTTP. No system roots to load.
        TlsMaterial {
            ca: None,
            identity: None,
        }
        .client_config(rustls::RootCertStore::empty())?
    };
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp))
}
