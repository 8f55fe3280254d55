//! Storage errors, split by what the caller can do about them.

/// What went wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A transient failure (backend down, timeout, overload): retrying the same call later
    /// may succeed.
    #[error("storage temporarily unavailable: {0}")]
    Retryable(String),
    /// A failure retrying cannot fix (bad data, schema mismatch).
    #[error("storage rejected the request: {0}")]
    Permanent(String),
    /// The write path is full (its backlog reached the configured limit): back-pressure.
    /// Retrying later succeeds once the backlog drains.
    #[error("storage intake is full: {0}")]
    Full(String),
    /// The query itself is invalid (bad parameters); nothing was read.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
}

impl StorageError {
    /// True when the same call may succeed if retried later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StorageError::Retryable(_) | StorageError::Full(_))
    }
}

/// Result alias for storage calls.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
