//! The hopscope configuration: one TOML file, overridden by `HOPSCOPE_*` environment
//! variables and command-line flags (in that order of precedence, flags last).

use std::path::{Path, PathBuf};

use anyhow::Context;
use hopscope_analysis::rules::{LayersConfig, SlaConfig};
use hopscope_collector::durable::FeederConfig;
use hopscope_collector::wal::WalConfig;
use hopscope_collector::{CloudConfig, CollectorConfig};
use hopscope_query_api::QueryApiConfig;
use hopscope_storage::clickhouse::ClickHouseConfig;
use hopscope_storage::embedded::EmbeddedConfig;
use serde::{Deserialize, Serialize};

/// Everything hopscope can be configured with. Every section and field is optional in the
/// file; missing ones take their documented defaults.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HopscopeConfig {
    /// Where hopscope keeps its files. Holds a lock file so that two hopscope processes
    /// never share one directory (the write-ahead log lives here too once it exists).
    pub data_dir: DataDir,
    /// The OTLP receivers.
    pub collector: CollectorConfig,
    /// The query API and UI server.
    pub query: QueryApiConfig,
    /// The embedded store (the default storage).
    pub embedded: EmbeddedConfig,
    /// ClickHouse storage, used instead of the embedded store when `url` is set.
    pub clickhouse: ClickHouseConfig,
    /// The write-ahead log under `<data_dir>/wal`: every acknowledged span is in it.
    pub wal: WalConfig,
    /// How spans move from the log into the store.
    pub feeder: FeederConfig,
    /// Hybrid-cloud tagging rules (`[[cloud.rules]]`) the collector applies to resources
    /// that lack cloud tags.
    pub cloud: CloudConfig,
    /// SLA levels and the rules assigning interfaces to them (`/api/v1/sla`).
    pub sla: SlaConfig,
    /// Service layers whose upward calls and cycles `/api/v1/dependencies` reports.
    pub layers: LayersConfig,
}

/// The data directory, `./hopscope-data` unless configured.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DataDir(pub PathBuf);

impl Default for DataDir {
    fn default() -> Self {
        Self(PathBuf::from("hopscope-data"))
    }
}

impl HopscopeConfig {
    /// Reads a TOML file; unknown keys are errors that name the key.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// The configuration as TOML, as `--print-config` shows it.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        toml::to_string_pretty(self).context("cannot render the configuration as TOML")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_means_defaults() {
        let config: HopscopeConfig = toml::from_str("").unwrap();
        assert_eq!(config.collector.grpc_listen.port(), 4317);
        assert_eq!(config.collector.http_listen.port(), 4318);
        assert_eq!(config.query.listen.port(), 16686);
        assert_eq!(config.data_dir.0, PathBuf::from("hopscope-data"));
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = toml::from_str::<HopscopeConfig>("[collector]\ngrpc_lsten = \"0.0.0.0:1\"\n").unwrap_err();
        assert!(err.to_string().contains("grpc_lsten"), "{err}");
    }

    #[test]
    fn printed_config_parses_back() {
        let text = HopscopeConfig::default().to_toml().unwrap();
        let back: HopscopeConfig = toml::from_str(&text).unwrap();
        assert_eq!(back.to_toml().unwrap(), text);
    }
}
