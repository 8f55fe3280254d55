//! Command-line interface. Flags override environment variables (`HOPSCOPE_*`), which
//! override the `--config` file, which overrides the defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{DataDir, HopscopeConfig};

/// hopscope: distributed tracing that names the node that made a request slow or fail.
///
/// With no subcommand, runs the all-in-one: OTLP collector (gRPC :4317, HTTP :4318) and
/// query API (:16686) in one process on the embedded store.
#[derive(Debug, Parser)]
#[command(name = "hopscope", version, about, long_about)]
pub struct Cli {
    /// What to run; `all-in-one` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Options shared by every subcommand.
    #[command(flatten)]
    pub options: Options,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Collector + query API in one process on the embedded store (the default).
    AllInOne,
    /// The all-in-one plus a built-in banking workload (gateway → account → payment →
    /// RabbitMQ → ledger) instrumented with hopscope-sdk, so traces appear at once.
    #[cfg(feature = "demo")]
    Demo(hopscope_demo::DemoArgs),
    /// Applies the ClickHouse schema migrations (or prints the DDL with `--print`).
    Migrate {
        /// Print the DDL for the configured target instead of applying it; uses the
        /// server's version when `--clickhouse-url` is reachable, else the modern DDL.
        #[arg(long)]
        print: bool,
        /// With `--print`: render for the 18.x server generation instead of asking.
        #[arg(long, requires = "print")]
        legacy: bool,
    },
    /// Load generator: sends a seeded OTLP trace workload to any OTLP endpoint and reports
    /// acknowledged spans/s and ack latency (see benches/README.md).
    #[cfg(feature = "loadgen")]
    Loadgen(hopscope_loadgen::LoadgenArgs),
}

/// Options that override the configuration file (shown under "Server options", apart
/// from a subcommand's own options).
#[derive(Debug, Args)]
#[command(next_help_heading = "Server options")]
pub struct Options {
    /// TOML configuration file (see README, "Configuration").
    #[arg(long, short = 'c', env = "HOPSCOPE_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// Data directory [default: ./hopscope-data].
    #[arg(long, env = "HOPSCOPE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// OTLP/gRPC listen address [default: 0.0.0.0:4317].
    #[arg(long, env = "HOPSCOPE_GRPC_LISTEN", global = true)]
    pub grpc_listen: Option<SocketAddr>,

    /// OTLP/HTTP listen address [default: 0.0.0.0:4318].
    #[arg(long, env = "HOPSCOPE_HTTP_LISTEN", global = true)]
    pub http_listen: Option<SocketAddr>,

    /// Query API and UI listen address [default: 0.0.0.0:16686].
    #[arg(long, env = "HOPSCOPE_QUERY_LISTEN", global = true)]
    pub query_listen: Option<SocketAddr>,

    /// Largest OTLP request accepted, in bytes, before and after decompression
    /// [default: 16 MiB].
    #[arg(long, env = "HOPSCOPE_MAX_REQUEST_BYTES", global = true)]
    pub max_request_bytes: Option<usize>,

    /// Embedded store: most spans kept in memory; the oldest traces are evicted first
    /// [default: 2000000].
    #[arg(long, env = "HOPSCOPE_MAX_SPANS", global = true)]
    pub max_spans: Option<usize>,

    /// Embedded store: most bytes of span data kept in memory [default: 1 GiB].
    #[arg(long, env = "HOPSCOPE_MAX_BYTES", global = true)]
    pub max_bytes: Option<usize>,

    /// Write-ahead log: most bytes not yet written to the store before clients get
    /// back-pressure (HTTP 429 / gRPC RESOURCE_EXHAUSTED) [default: 2 GiB].
    #[arg(long, env = "HOPSCOPE_WAL_MAX_BACKLOG_BYTES", global = true)]
    pub wal_max_backlog_bytes: Option<u64>,

    /// ClickHouse HTTP URL, e.g. http://127.0.0.1:8123; switches storage to ClickHouse.
    #[arg(long, env = "HOPSCOPE_CLICKHOUSE_URL", global = true)]
    pub clickhouse_url: Option<String>,

    /// ClickHouse database [default: hopscope].
    #[arg(long, env = "HOPSCOPE_CLICKHOUSE_DATABASE", global = true)]
    pub clickhouse_database: Option<String>,

    /// ClickHouse user [default: default].
    #[arg(long, env = "HOPSCOPE_CLICKHOUSE_USER", global = true)]
    pub clickhouse_user: Option<String>,

    /// ClickHouse password.
    #[arg(long, env = "HOPSCOPE_CLICKHOUSE_PASSWORD", global = true, hide_env_values = true)]
    pub clickhouse_password: Option<String>,

    /// ClickHouse cluster name: ON CLUSTER DDL, ReplicatedMergeTree + Distributed tables.
    #[arg(long, env = "HOPSCOPE_CLICKHOUSE_CLUSTER", global = true)]
    pub clickhouse_cluster: Option<String>,

    /// ClickHouse retention in days, 0 for none [default: 7].
    #[arg(long, env = "HOPSCOPE_CLICKHOUSE_TTL_DAYS", global = true)]
    pub clickhouse_ttl_days: Option<u32>,

    /// Log filter, e.g. `info`, `debug`, `hopscope_collector=debug` (RUST_LOG syntax).
    #[arg(long, env = "HOPSCOPE_LOG", default_value = "info", global = true)]
    pub log: String,

    /// Print the effective configuration as TOML and exit.
    #[arg(long, global = true)]
    pub print_config: bool,
}

impl Options {
    /// Applies the flags and environment variables that were given over `config`.
    pub fn apply(&self, config: &mut HopscopeConfig) {
        if let Some(dir) = &self.data_dir {
            config.data_dir = DataDir(dir.clone());
        }
        if let Some(addr) = self.grpc_listen {
            config.collector.grpc_listen = addr;
        }
        if let Some(addr) = self.http_listen {
            config.collector.http_listen = addr;
        }
        if let Some(addr) = self.query_listen {
            config.query.listen = addr;
        }
        if let Some(bytes) = self.max_request_bytes {
            config.collector.max_request_bytes = bytes;
        }
        if let Some(spans) = self.max_spans {
            config.embedded.max_spans = spans;
        }
        if let Some(bytes) = self.max_bytes {
            config.embedded.max_bytes = bytes;
        }
        if let Some(bytes) = self.wal_max_backlog_bytes {
            config.wal.max_backlog_bytes = bytes;
        }
        let ch = &mut config.clickhouse;
        for (flag, field) in [
            (&self.clickhouse_url, &mut ch.url),
            (&self.clickhouse_database, &mut ch.database),
            (&self.clickhouse_user, &mut ch.user),
            (&self.clickhouse_password, &mut ch.password),
        ] {
            if let Some(value) = flag {
                field.clone_from(value);
            }
        }
        if let Some(cluster) = &self.clickhouse_cluster {
            ch.cluster = Some(cluster.clone());
        }
        if let Some(days) = self.clickhouse_ttl_days {
            ch.ttl_days = days;
        }
    }

    /// The configuration file (if any) with these options applied.
    pub fn resolve(&self) -> anyhow::Result<HopscopeConfig> {
        let mut config = match &self.config {
            Some(path) => HopscopeConfig::from_file(path)?,
            None => HopscopeConfig::default(),
        };
        self.apply(&mut config);
        Ok(config)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("hopscope-cli-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hopscope.toml");
        std::fs::write(
            &file,
            "[collector]\nhttp_listen = \"127.0.0.1:9999\"\ngrpc_listen = \"127.0.0.1:9998\"\n",
        )
        .unwrap();
        let cli = Cli::try_parse_from([
            "hopscope",
            "--config",
            file.to_str().unwrap(),
            "--grpc-listen",
            "127.0.0.1:7000",
        ])
        .unwrap();
        let config = cli.options.resolve().unwrap();
        assert_eq!(config.collector.grpc_listen.port(), 7000);
        assert_eq!(config.collector.http_listen.port(), 9999);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
