//! Server version detection: which DDL and SQL generation a server gets.

use std::fmt;

/// A ClickHouse server version as `SELECT version()` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    /// Year-based major (`18`, `23`, `26`).
    pub major: u32,
    /// Minor.
    pub minor: u32,
}

impl ServerVersion {
    /// Parses `"18.16.1"` or `"26.9.2.1"`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(Self { major, minor })
    }

    /// The schema generation this server runs.
    pub fn generation(self) -> Generation {
        if self >= (ServerVersion { major: 23, minor: 8 }) {
            Generation::Modern
        } else {
            Generation::Legacy
        }
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Which feature set the DDL and queries use.
///
/// - `Modern` (≥ 23.8): `DateTime64(9)`, per-column codecs, TTL, skip indexes,
///   insert deduplication tokens on non-replicated tables.
/// - `Legacy` (older, e.g. Debian's 18.16): nanoseconds in `Int64`, no codecs, no TTL
///   (hopscope drops expired partitions itself), no skip indexes (the primary key and
///   the trace-id lookup table carry the searches), `LowCardinality` behind
///   `allow_experimental_low_cardinality_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// ClickHouse 23.8 and newer.
    Modern,
    /// Older servers down to 18.16.
    Legacy,
}

impl Generation {
    /// `modern` or `legacy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Generation::Modern => "modern",
            Generation::Legacy => "legacy",
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn versions_pick_generations() {
        let v = ServerVersion::parse("18.16.1").unwrap();
        assert_eq!(v.generation(), Generation::Legacy);
        assert_eq!(
            ServerVersion::parse("23.7.1.1").unwrap().generation(),
            Generation::Legacy
        );
        assert_eq!(ServerVersion::parse("23.8.1").unwrap().generation(), Generation::Modern);
        assert_eq!(
            ServerVersion::parse("26.9.2.1\n").unwrap().generation(),
            Generation::Modern
        );
        assert!(ServerVersion::parse("garbage").is_none());
    }
}
