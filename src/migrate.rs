//! `hopscope migrate`: applies the ClickHouse schema, or prints it with `--print`.

use anyhow::{Context, bail};
use hopscope_storage::clickhouse::{self, Generation};

use crate::config::HopscopeConfig;

/// Prints or applies the migrations for the configured ClickHouse target.
pub async fn run(config: HopscopeConfig, print: bool, legacy: bool) -> anyhow::Result<()> {
    let ch = &config.clickhouse;
    ch.validate().map_err(anyhow::Error::msg)?;
    if print {
        let generation = if legacy {
            Generation::Legacy
        } else if ch.enabled() {
            match clickhouse::server_version(&clickhouse::client(ch), ch.request_timeout).await {
                Ok(version) => version.generation(),
                Err(err) => {
                    eprintln!("cannot ask {} for its version ({err}); printing the modern DDL", ch.url);
                    Generation::Modern
                }
            }
        } else {
            Generation::Modern
        };
        print!("{}", clickhouse::target(ch, generation).script());
        return Ok(());
    }
    if !ch.enabled() {
        bail!("set --clickhouse-url (or HOPSCOPE_CLICKHOUSE_URL) to apply migrations");
    }
    let client = clickhouse::client(ch);
    let version = clickhouse::server_version(&client, ch.request_timeout)
        .await
        .context("cannot reach clickhouse")?;
    let target = clickhouse::target(ch, version.generation());
    let applied = clickhouse::migrate(&client, &target)
        .await
        .context("migration failed")?;
    println!(
        "clickhouse {version} ({}): database {}, {} migration(s) applied, {} already present",
        target.generation.as_str(),
        target.database,
        applied.len(),
        clickhouse::MIGRATIONS.len() - applied.len()
    );
    Ok(())
}
