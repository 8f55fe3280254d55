//! Sorting ClickHouse client errors into retryable and permanent ones.

use crate::error::StorageError;

/// Server error codes worth retrying: timeouts, overload, replicas or ZooKeeper away,
/// memory pressure, and inserts whose outcome is unknown.
const RETRYABLE_CODES: &[u32] = &[
    3,   // UNEXPECTED_END_OF_FILE (connection cut mid-request)
    159, // TIMEOUT_EXCEEDED
    164, // READONLY (replica temporarily read-only)
    201, // QUOTA_EXCEEDED
    202, // TOO_MANY_SIMULTANEOUS_QUERIES
    209, // SOCKET_TIMEOUT
    210, // NETWORK_ERROR
    225, // NO_ZOOKEEPER
    236, // ABORTED
    241, // MEMORY_LIMIT_EXCEEDED
    242, // TABLE_IS_READ_ONLY
    252, // TOO_MANY_PARTS
    285, // TOO_FEW_LIVE_REPLICAS
    286, // UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE
    319, // UNKNOWN_STATUS_OF_INSERT
    394, // QUERY_WAS_CANCELLED
    425, // SYSTEM_ERROR
    999, // KEEPER_EXCEPTION
];

/// The `Code: N` of a server exception message, when present.
pub(crate) fn exception_code(message: &str) -> Option<u32> {
    let rest = &message[message.find("Code: ")? + 6..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Maps a client error to a storage error of the right kind.
pub(crate) fn classify(context: &str, err: clickhouse::error::Error) -> StorageError {
    use clickhouse::error::Error;
    let retryable = match &err {
        Error::Network(_) | Error::TimedOut => true,
        Error::BadResponse(message) => match exception_code(message) {
            Some(code) => RETRYABLE_CODES.contains(&code),
            // No server exception: a proxy's or the server's bare HTTP status.
            None => {
                let lower = message.to_ascii_lowercase();
                ["500", "502", "503", "504", "bad gateway", "unavailable", "timeout"]
                    .iter()
                    .any(|needle| lower.contains(needle))
            }
        },
        _ => false,
    };
    let text = format!("clickhouse {context}: {err}");
    if retryable {
        StorageError::Retryable(text)
    } else {
        StorageError::Permanent(text)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clickhouse::error::Error;

    #[test]
    fn codes_decide() {
        assert_eq!(
            exception_code("Code: 252, e.displayText() = DB::Exception: Too many parts"),
            Some(252)
        );
        assert_eq!(
            exception_code("Code: 60. DB::Exception: Table x doesn't exist"),
            Some(60)
        );
        assert!(classify("insert", Error::BadResponse("Code: 252, too many parts".into())).is_retryable());
        assert!(!classify("insert", Error::BadResponse("Code: 27. Cannot parse".into())).is_retryable());
        assert!(classify("insert", Error::BadResponse("503 Service Unavailable".into())).is_retryable());
        assert!(classify("insert", Error::TimedOut).is_retryable());
        assert!(!classify("insert", Error::NotEnoughData).is_retryable());
    }
}
