//! The `[clickhouse]` configuration section.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How hopscope talks to ClickHouse. Every field has a default; only `url` is needed to
/// switch storage to ClickHouse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// HTTP endpoint of the server (or load balancer), e.g. `http://127.0.0.1:8123`.
    /// Empty means ClickHouse is not used. Usually set by `--clickhouse-url` or
    /// `HOPSCOPE_CLICKHOUSE_URL`.
    pub url: String,
    /// Database holding hopscope's tables; created by the migrations. Letters, digits and
    /// `_` only.
    pub database: String,
    /// User name.
    pub user: String,
    /// Password (prefer `HOPSCOPE_CLICKHOUSE_PASSWORD` over the file).
    #[serde(skip_serializing)]
    pub password: String,
    /// Cluster name from the servers' `remote_servers`: when set, DDL runs `ON CLUSTER`,
    /// data lives in `ReplicatedMergeTree` `*_local` tables and reads/writes go through
    /// `Distributed` tables over them.
    pub cluster: Option<String>,
    /// Retention in days (0 keeps spans forever). Modern servers get a table TTL, which
    /// start-up (with `migrate_on_start`) alters when this value changes; on servers
    /// without TTL (18.x) hopscope drops expired daily partitions itself at start-up.
    pub ttl_days: u32,
    /// Apply pending migrations at start-up.
    pub migrate_on_start: bool,
    /// Compress request bodies with LZ4 (`none` or `lz4`).
    pub compression: Compression,
    /// Timeout of one request (insert or query).
    #[serde(with = "millis")]
    pub request_timeout: Duration,
}

/// Request body compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// Plain RowBinary bodies.
    None,
    /// ClickHouse's LZ4 block framing (`decompress=1`).
    #[default]
    Lz4,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            database: "hopscope".into(),
            user: "default".into(),
            password: String::new(),
            cluster: None,
            ttl_days: 7,
            migrate_on_start: true,
            compression: Compression::Lz4,
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl ClickHouseConfig {
    /// True when a URL is set, i.e. ClickHouse should be used.
    pub fn enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }

    /// Checks names that end up in DDL text: they are identifiers, never user input, but
    /// are still restricted to `[A-Za-z_][A-Za-z0-9_]*`.
    pub fn validate(&self) -> Result<(), String> {
        check_identifier("database", &self.database)?;
        if let Some(cluster) = &self.cluster {
            check_identifier("cluster", cluster)?;
        }
        Ok(())
    }
}

/// Accepts `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn check_identifier(what: &str, name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "clickhouse {what} name {name:?} must match [A-Za-z_][A-Za-z0-9_]*"
        ))
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_checked() {
        let mut config = ClickHouseConfig::default();
        assert!(config.validate().is_ok());
        config.database = "x; DROP".into();
        assert!(config.validate().is_err());
        config.database = "ok_1".into();
        config.cluster = Some("main-cluster".into());
        assert!(config.validate().is_err());
    }

    #[test]
    fn unknown_keys_are_rejected_and_defaults_fill_in() {
        let config: ClickHouseConfig = serde_json::from_str(r#"{"url":"http://x:8123","request_timeout":50}"#).unwrap();
        assert_eq!(config.request_timeout, Duration::from_millis(50));
        assert_eq!(config.database, "hopscope");
        assert!(serde_json::from_str::<ClickHouseConfig>(r#"{"urll":"x"}"#).is_err());
    }
}
