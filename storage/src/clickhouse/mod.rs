//! ClickHouse storage: the production store.
//!
//! - Schema (the contract itself is in `hopscope_schemas::clickhouse`): numbered,
//!   templated DDL migrations (`schemas/migrations/`), rendered for the
//!   server's generation ([`version::Generation`]: modern ≥ 23.8, or legacy down to
//!   Debian's 18.16) and optionally for a cluster, applied at start-up and recorded in
//!   `<database>.hopscope_migrations` ([`migrations`]); a migration may carry a data
//!   step ([`migrations::Step`]), e.g. the upgrade of JSON spans to typed columns.
//!   Spans live in typed columns (`spans_v2`), resources and scopes once per distinct
//!   value (`resources`) ([`hopscope_schemas::clickhouse::rows`]).
//! - Retention: table TTLs kept equal to `ttl_days` on modern servers, partition drops
//!   on legacy ones ([`retention`]).
//! - Writes: each [`SpanWriter::write_spans`] call is one deduplicated insert of that
//!   batch, one attempt ([`writer`]); batching and retries are the caller's (the
//!   collector's store feeder), as the [`SpanWriter`] contract says.
//! - Reads: every [`SpanReader`] query runs in ClickHouse with bound values ([`reader`]).
//!
//! The `clickhouse` crate's schema validation (`RowBinaryWithNamesAndTypes`) is turned
//! off: 18.16 does not know that format, and on modern servers `DateTime64(9)` columns are
//! written from `i64`. Plain `RowBinary` is positional, so the row types in
//! [`hopscope_schemas::clickhouse::rows`] and
//! the DDL must agree: `hopscope-schemas` checks names, order and encodings for both
//! generations in a unit test, and the integration tests here against a real 18.16
//! server and chDB check it end to end.

pub mod config;
// The data contract (DDL, its rendering, the row types) lives in `hopscope-schemas`
// (feature `clickhouse`), which tests that the DDL and the rows agree; the store's
// modules reach it under these names.
use hopscope_schemas::clickhouse::{attrs, rows};
pub use hopscope_schemas::clickhouse::{migrations, version};

mod aggregates;
mod errors;
mod reader;
mod retention;
mod slices;
mod upgrade;
mod writer;

use std::time::Duration;

use async_trait::async_trait;
use hopscope_schemas::{SpanRecord, TraceId};
use tracing::{info, warn};

pub use config::{ClickHouseConfig, Compression};
pub use migrations::{MIGRATIONS, Migration, Step, Target};
pub use version::{Generation, ServerVersion};

use crate::error::{Result, StorageError};
use crate::query::{DependencyLink, Operation, OperationQuery, Trace, TraceQuery};
use crate::{SpanReader, SpanWriter};
use errors::classify;

/// A store backed by ClickHouse.
pub struct ClickHouseStore {
    writer: writer::BatchWriter,
    reader: reader::Reader,
    client: clickhouse::Client,
    target: Target,
    version: ServerVersion,
}

/// Builds the HTTP client for a configuration (no request is sent).
pub fn client(config: &ClickHouseConfig) -> clickhouse::Client {
    let mut client = clickhouse::Client::default()
        .with_url(config.url.trim_end_matches('/'))
        .with_validation(false)
        .with_compression(match config.compression {
            Compression::None => clickhouse::Compression::None,
            Compression::Lz4 => clickhouse::Compression::Lz4,
        });
    if !config.user.is_empty() {
        client = client.with_user(config.user.as_str());
    }
    if !config.password.is_empty() {
        client = client.with_password(config.password.as_str());
    }
    client
}

/// Asks the server for its version.
pub async fn server_version(client: &clickhouse::Client, timeout: Duration) -> Result<ServerVersion> {
    let text = match tokio::time::timeout(timeout, client.query("SELECT version()").fetch_one::<String>()).await {
        Ok(result) => result.map_err(|e| classify("version", e))?,
        Err(_) => {
            return Err(StorageError::Retryable("clickhouse version: no answer in time".into()));
        }
    };
    ServerVersion::parse(&text)
        .ok_or_else(|| StorageError::Permanent(format!("unrecognised clickhouse version {text:?}")))
}

/// The DDL target of a configuration on a server of this version.
pub fn target(config: &ClickHouseConfig, generation: Generation) -> Target {
    Target {
        database: config.database.clone(),
        cluster: config.cluster.clone(),
        ttl_days: config.ttl_days,
        generation,
    }
}

/// Applies every pending migration (statements, then the migration's data step, then
/// its record), then gives the tables the target's retention ([`retention::sync_ttl`]);
/// returns the versions applied now.
pub async fn migrate(client: &clickhouse::Client, target: &Target) -> Result<Vec<u32>> {
    let client = session_client(client, target.generation);
    let exec = |sql: String| {
        let client = client.clone();
        async move {
            client
                .query_raw(&sql)
                .execute()
                .await
                .map_err(|e| classify("migration", e))
        }
    };
    exec(target.create_database()).await?;
    for statement in target.migrations_table() {
        exec(statement).await?;
    }
    let applied: Vec<u32> = client
        .query(&format!(
            "SELECT DISTINCT version FROM {}.hopscope_migrations",
            target.database
        ))
        .fetch_all::<u32>()
        .await
        .map_err(|e| classify("migration", e))?;
    let mut now = Vec::new();
    for migration in MIGRATIONS {
        if applied.contains(&migration.version) {
            continue;
        }
        let statements = target.render(migration.template);
        for statement in &statements {
            exec(statement.clone()).await.map_err(|e| {
                StorageError::Permanent(format!(
                    "migration {:04}_{} failed: {e}",
                    migration.version, migration.name
                ))
            })?;
        }
        if let Some(step) = migration.step {
            run_step(step, &client, target).await.map_err(|e| {
                StorageError::Permanent(format!(
                    "migration {:04}_{} failed: {e}",
                    migration.version, migration.name
                ))
            })?;
        }
        client
            .query(&format!(
                "INSERT INTO {}.hopscope_migrations (version, name, checksum, applied_at) \
                 VALUES (?, ?, ?, now())",
                target.database
            ))
            .bind(migration.version)
            .bind(migration.name)
            .bind(migrations::checksum(&statements))
            .execute()
            .await
            .map_err(|e| classify("migration record", e))?;
        info!(
            version = migration.version,
            name = migration.name,
            "applied clickhouse migration"
        );
        now.push(migration.version);
    }
    for table in retention::sync_ttl(&client, target).await? {
        info!(table, ttl_days = target.ttl_days, "changed clickhouse table retention");
    }
    Ok(now)
}

async fn run_step(step: Step, client: &clickhouse::Client, target: &Target) -> Result<()> {
    match step {
        Step::CopyJsonSpans => {
            let writer = writer::BatchWriter::new(client.clone(), target.clone(), ClickHouseConfig::default());
            upgrade::copy_json_spans(&writer).await.map(drop)
        }
    }
}

/// Legacy servers need `LowCardinality` enabled per request.
fn session_client(client: &clickhouse::Client, generation: Generation) -> clickhouse::Client {
    match generation {
        Generation::Legacy => client
            .clone()
            .with_setting("allow_experimental_low_cardinality_type", "1"),
        Generation::Modern => client.clone(),
    }
}

impl ClickHouseStore {
    /// Connects, detects the server version and applies pending migrations when
    /// `migrate_on_start` is set.
    pub async fn open(config: ClickHouseConfig) -> Result<Self> {
        config.validate().map_err(StorageError::Permanent)?;
        let base = client(&config);
        let version = server_version(&base, config.request_timeout).await?;
        let target = target(&config, version.generation());
        info!(%version, generation = target.generation.as_str(), database = %target.database,
            "connected to clickhouse");
        if config.migrate_on_start {
            migrate(&base, &target).await?;
        }
        let client = session_client(&base, target.generation);
        let writer = writer::BatchWriter::new(client.clone(), target.clone(), config.clone());
        let reader = reader::Reader::new(client.clone(), target.clone(), config.request_timeout);
        let store = Self {
            writer,
            reader,
            client,
            target,
            version,
        };
        if store.target.generation == Generation::Legacy
            && config.ttl_days > 0
            && let Err(err) = store.drop_expired_partitions().await
        {
            warn!(error = %err, "clickhouse retention: dropping old partitions failed");
        }
        Ok(store)
    }

    /// The server version found at start-up.
    pub fn server_version(&self) -> ServerVersion {
        self.version
    }

    /// The DDL target in use.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The underlying client (for tests and tools).
    pub fn client(&self) -> &clickhouse::Client {
        &self.client
    }

    /// Retention on servers without TTL: drops daily partitions older than `ttl_days`
    /// (see [`retention`]). Modern servers use table TTLs instead and this does
    /// nothing there.
    pub async fn drop_expired_partitions(&self) -> Result<usize> {
        retention::drop_expired_partitions(&self.client, &self.target).await
    }
}

#[async_trait]
impl SpanWriter for ClickHouseStore {
    async fn write_spans(&self, spans: Vec<SpanRecord>) -> Result<()> {
        self.writer.insert(&spans).await
    }
}

#[async_trait]
impl SpanReader for ClickHouseStore {
    async fn services(&self) -> Result<Vec<String>> {
        self.reader.services().await
    }

    async fn operations(&self, query: &OperationQuery) -> Result<Vec<Operation>> {
        self.reader.operations(query).await
    }

    async fn trace(&self, trace_id: TraceId) -> Result<Option<Trace>> {
        self.reader.trace(trace_id).await
    }

    async fn find_traces(&self, query: &TraceQuery) -> Result<Vec<Trace>> {
        self.reader.find_traces(query).await
    }

    async fn dependencies(&self, start_ns: u64, end_ns: u64) -> Result<Vec<DependencyLink>> {
        self.reader.dependencies(start_ns, end_ns).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use hopscope_schemas::fixtures::every_field;

    use super::attrs;
    use super::rows::{encode_batch, tag_entry};
    use crate::matching::tag_matches;
    use crate::query::TagFilter;

    #[test]
    fn span_and_resource_tags_cover_the_reference_attribute_matches() {
        let s = every_field();
        let (resources, rows) = encode_batch(std::slice::from_ref(&s));
        let row = &rows[0];
        let scalar = |k: &str, v: &str| {
            (0..row.attr_keys.len())
                .any(|i| row.attr_keys[i] == k && row.attr_types[i] < attrs::FIRST_NON_TEXT && row.attr_values[i] == v)
        };
        for (k, v) in [
            ("n", "3"),
            ("b", "true"),
            ("l", "[true]"),
            ("cloud.provider", "aws"),
            ("n", "4"),
            ("l", ""),
        ] {
            let entry = tag_entry(k, v);
            let found = scalar(k, v) || row.tags.contains(&entry) || resources[0].tags.contains(&entry);
            let filter = TagFilter {
                key: k.into(),
                value: v.into(),
            };
            assert_eq!(found, tag_matches(&s, &filter), "{k}={v}");
        }
    }
}
