//! The SDK's one error type.

/// Everything that can go wrong in the SDK. Span recording itself never fails: these come
/// from configuration, export and shutdown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value (builder argument or `OTEL_*` variable) is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An export attempt failed. `retryable` says whether sending the same batch again
    /// may succeed (the endpoint is down, overloaded or timed out) or not (it rejected
    /// the data).
    #[error("export failed (retryable: {retryable}): {message}")]
    Export {
        /// Whether the batch may succeed if sent again.
        retryable: bool,
        /// What the exporter or the endpoint said.
        message: String,
    },
    /// The export pipeline has been shut down or its worker is gone.
    #[error("the span pipeline is shut down")]
    Shutdown,
    /// The export worker thread could not be started.
    #[error("cannot start the export worker: {0}")]
    Worker(#[from] std::io::Error),
}

impl Error {
    /// Whether sending the same data again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Export { retryable: true, .. })
    }
}

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
