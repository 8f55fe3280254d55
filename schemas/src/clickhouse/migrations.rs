//! Numbered DDL migrations (`schemas/migrations/*.sql`), rendered for one target and
//! applied in order, each recorded in `<database>.hopscope_migrations`.
//!
//! The files are templates (their syntax is in `schemas/migrations/README.md`): one text
//! serves modern and legacy servers, single nodes and clusters. Every statement is
//! `IF NOT EXISTS`, so applying a migration twice — two hopscope processes starting at
//! once, or a crash between a statement and its record — is harmless.

use super::version::Generation;

/// One numbered migration file.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Its number, the order of application.
    pub version: u32,
    /// Its name (the file name without number and extension).
    pub name: &'static str,
    /// The template text.
    pub template: &'static str,
    /// Data work run after the statements and before the migration is recorded (so a
    /// crash in between runs both again; every step is safe to repeat).
    pub step: Option<Step>,
}

/// Data work that DDL alone cannot do on every server generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Copy every row of the pre-0005 `spans` table (the span as JSON in `record`)
    /// into `spans_v2` and `resources`, decoded and re-encoded by hopscope (18.16 has
    /// no JSON functions that could do it in an `INSERT … SELECT`). Repeating it after
    /// a crash inserts rows that the `ReplacingMergeTree` key and the readers' `LIMIT 1
    /// BY trace_id, span_id` collapse; no view is attached to `spans_v2` yet, so the
    /// rollups do not count copied spans twice.
    CopyJsonSpans,
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "spans",
        template: include_str!("../../migrations/0001_spans.sql"),
        step: None,
    },
    Migration {
        version: 2,
        name: "trace_index",
        template: include_str!("../../migrations/0002_trace_index.sql"),
        step: None,
    },
    Migration {
        version: 3,
        name: "operations",
        template: include_str!("../../migrations/0003_operations.sql"),
        step: None,
    },
    Migration {
        version: 4,
        name: "rollup_1m",
        template: include_str!("../../migrations/0004_rollup_1m.sql"),
        step: None,
    },
    Migration {
        version: 5,
        name: "spans_v2",
        template: include_str!("../../migrations/0005_spans_v2.sql"),
        step: Some(Step::CopyJsonSpans),
    },
    Migration {
        version: 6,
        name: "views_on_spans_v2",
        template: include_str!("../../migrations/0006_views_on_spans_v2.sql"),
        step: None,
    },
];

/// The table recording applied migrations (version 0, applied before the others).
const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS {db}.hopscope_migrations{on_cluster}
(
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime
)
ENGINE = ReplacingMergeTree
ORDER BY version
;";

/// What the DDL is rendered for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Database name (already checked to be an identifier).
    pub database: String,
    /// Cluster name for `ON CLUSTER` + Replicated/Distributed tables.
    pub cluster: Option<String>,
    /// Retention in days; 0 means none.
    pub ttl_days: u32,
    /// Server generation.
    pub generation: Generation,
}

impl Target {
    /// The table name readers and writers use: the Distributed table in cluster mode,
    /// the table itself otherwise, qualified with the database.
    pub fn table(&self, name: &str) -> String {
        format!("{}.{}", self.database, name)
    }

    /// `CREATE DATABASE IF NOT EXISTS`.
    pub fn create_database(&self) -> String {
        format!("CREATE DATABASE IF NOT EXISTS {}{}", self.database, self.on_cluster())
    }

    /// The migrations table's DDL.
    pub fn migrations_table(&self) -> Vec<String> {
        self.render(MIGRATIONS_TABLE)
    }

    fn on_cluster(&self) -> String {
        self.cluster
            .as_ref()
            .map(|c| format!(" ON CLUSTER {c}"))
            .unwrap_or_default()
    }

    fn local(&self, table: &str) -> String {
        match self.cluster {
            Some(_) => format!("{table}_local"),
            None => table.to_string(),
        }
    }

    /// Renders one template into its statements (without trailing `;`).
    pub fn render(&self, template: &str) -> Vec<String> {
        let modern = self.generation == Generation::Modern;
        let mut statements = Vec::new();
        let mut distributed = Vec::new();
        let mut current = String::new();
        for line in template.lines() {
            let trimmed = line.trim_start();
            if let Some(directive) = trimmed.strip_prefix("-- @distributed ") {
                if let Some((table, key)) = directive.trim().split_once(' ') {
                    distributed.push((table.to_string(), key.trim().to_string()));
                }
                continue;
            }
            if trimmed.starts_with("--") || trimmed.is_empty() {
                continue;
            }
            let body = if let Some(rest) = trimmed.strip_prefix("@modern ") {
                if !modern {
                    continue;
                }
                rest
            } else if let Some(rest) = trimmed.strip_prefix("@legacy ") {
                if modern {
                    continue;
                }
                rest
            } else if let Some(rest) = trimmed.strip_prefix("@ttl ") {
                if !modern || self.ttl_days == 0 {
                    continue;
                }
                rest
            } else {
                line
            };
            let rendered = self.substitute(body);
            if rendered.trim() == ";" || rendered.trim_end().ends_with(';') {
                let text = rendered.trim_end().trim_end_matches(';');
                if !text.trim().is_empty() {
                    current.push_str(text);
                }
                if !current.trim().is_empty() {
                    statements.push(current.trim().to_string());
                }
                current.clear();
            } else {
                current.push_str(&rendered);
                current.push('\n');
            }
        }
        if !current.trim().is_empty() {
            statements.push(current.trim().to_string());
        }
        if let Some(cluster) = &self.cluster {
            for (table, key) in distributed {
                statements.push(format!(
                    "CREATE TABLE IF NOT EXISTS {db}.{table} ON CLUSTER {cluster} AS {db}.{table}_local\n\
                     ENGINE = Distributed({cluster}, {db}, {table}_local, {key})",
                    db = self.database
                ));
            }
        }
        statements
    }

    /// Replaces `{...}` placeholders in one line (one pass: the output is never
    /// re-scanned, so `{shard}`/`{replica}` macros in engine paths survive).
    fn substitute(&self, line: &str) -> String {
        let modern = self.generation == Generation::Modern;
        let mut out = String::with_capacity(line.len() + 16);
        let mut rest = line;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                out.push_str(&rest[open..]);
                return out;
            };
            let inner = &after[..close];
            let (name, arg) = inner.split_once(':').unwrap_or((inner, ""));
            match name {
                "db" => out.push_str(&self.database),
                "on_cluster" => out.push_str(&self.on_cluster()),
                "ttl_days" => out.push_str(&self.ttl_days.to_string()),
                "lc" => out.push_str("LowCardinality(String)"),
                "lc_item" => out.push_str(if modern { "LowCardinality(String)" } else { "String" }),
                "ts" => out.push_str(if modern { "DateTime64(9)" } else { "Int64" }),
                "local" => out.push_str(&self.local(arg)),
                "codec" => {
                    if modern {
                        out.push_str(" CODEC(");
                        out.push_str(arg);
                        out.push(')');
                    }
                }
                "secs" => {
                    if modern {
                        out.push_str(&format!("toDateTime({arg})"));
                    } else {
                        out.push_str(&format!("toDateTime(intDiv({arg}, 1000000000))"));
                    }
                }
                "engine" => {
                    let (engine, table) = arg.split_once(':').unwrap_or((arg, ""));
                    match &self.cluster {
                        Some(_) => out.push_str(&format!(
                            "Replicated{engine}('/clickhouse/tables/{{shard}}/{}/{}', '{{replica}}')",
                            self.database,
                            self.local(table)
                        )),
                        None => out.push_str(engine),
                    }
                }
                _ => {
                    // Not a placeholder (e.g. a literal brace): keep it as written.
                    out.push('{');
                    out.push_str(inner);
                    out.push('}');
                }
            }
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        out
    }

    /// The tables of the current schema that carry a retention TTL, as (local table
    /// name, the time expression the TTL counts from), read from the templates' `@ttl`
    /// lines: the latest `CREATE TABLE` of a name wins and dropped tables are left out.
    pub fn ttl_tables(&self) -> Vec<(String, String)> {
        let mut tables: Vec<(String, String)> = Vec::new();
        let mut current: Option<String> = None;
        for migration in MIGRATIONS {
            for line in migration.template.lines().map(str::trim) {
                if let Some(rest) = line.strip_prefix("CREATE TABLE IF NOT EXISTS {db}.{local:") {
                    current = rest.split_once('}').map(|(name, _)| name.to_string());
                } else if let Some(rest) = line.strip_prefix("DROP TABLE IF EXISTS {db}.") {
                    let rest = rest.strip_prefix("{local:").unwrap_or(rest);
                    let name = rest.split(['}', '{', ';']).next().unwrap_or_default();
                    tables.retain(|(t, _)| t != name);
                } else if let (Some(rest), Some(table)) = (line.strip_prefix("@ttl TTL "), &current)
                    && let Some((expr, _)) = rest.split_once(" + INTERVAL")
                {
                    tables.retain(|(t, _)| t != table);
                    tables.push((table.clone(), expr.trim().to_string()));
                }
            }
        }
        tables
            .into_iter()
            .map(|(table, expr)| (self.local(&table), expr))
            .collect()
    }

    /// `ALTER TABLE` setting a local table's TTL to `days` after `expr` (0: no TTL).
    pub fn ttl_statement(&self, local_table: &str, expr: &str, days: u32) -> String {
        let table = format!("{}.{local_table}{}", self.database, self.on_cluster());
        if days == 0 {
            format!("ALTER TABLE {table} REMOVE TTL")
        } else {
            format!("ALTER TABLE {table} MODIFY TTL {expr} + INTERVAL {days} DAY")
        }
    }

    /// Every statement of every migration, with the database and migrations table first.
    pub fn all_statements(&self) -> Vec<(u32, Vec<String>)> {
        let mut out = vec![(0, {
            let mut first = vec![self.create_database()];
            first.extend(self.migrations_table());
            first
        })];
        for migration in MIGRATIONS {
            out.push((migration.version, self.render(migration.template)));
        }
        out
    }

    /// The whole DDL as one printable script (`hopscope migrate --print`).
    pub fn script(&self) -> String {
        let mut text = format!(
            "-- hopscope ClickHouse schema: database {}, {} server, {}, retention {}\n",
            self.database,
            self.generation.as_str(),
            self.cluster
                .as_ref()
                .map(|c| format!("cluster {c}"))
                .unwrap_or_else(|| "single node".into()),
            if self.ttl_days == 0 {
                "none".to_string()
            } else {
                format!("{} days", self.ttl_days)
            }
        );
        if self.generation == Generation::Legacy {
            text.push_str("-- run with SET allow_experimental_low_cardinality_type = 1\n");
        }
        for (version, statements) in self.all_statements() {
            let name = MIGRATIONS
                .iter()
                .find(|m| m.version == version)
                .map_or("database", |m| m.name);
            text.push_str(&format!("\n-- migration {version:04} {name}\n"));
            for statement in statements {
                text.push_str(&statement);
                text.push_str(";\n\n");
            }
        }
        text
    }
}

/// A stable checksum of a migration's rendered statements (FNV-1a, hex).
pub fn checksum(statements: &[String]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for statement in statements {
        for byte in statement.bytes().chain(std::iter::once(b';')) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn target(generation: Generation, cluster: Option<&str>) -> Target {
        Target {
            database: "hs".into(),
            cluster: cluster.map(Into::into),
            ttl_days: 3,
            generation,
        }
    }

    #[test]
    fn modern_single_node_uses_modern_features() {
        let script = target(Generation::Modern, None).script();
        for needle in [
            "DateTime64(9)",
            "CODEC(Delta, ZSTD(1))",
            "TTL toDateTime(start_time) + INTERVAL 3 DAY",
            "TYPE bloom_filter",
            "ENGINE = ReplacingMergeTree\n",
            "CREATE TABLE IF NOT EXISTS hs.spans\n",
        ] {
            assert!(script.contains(needle), "missing {needle:?} in\n{script}");
        }
        assert!(!script.contains("ON CLUSTER"));
        assert!(!script.contains('@'));
        assert!(!script.contains("{"), "{script}");
    }

    #[test]
    fn legacy_drops_missing_features_only() {
        let script = target(Generation::Legacy, None).script();
        for absent in ["DateTime64", "CODEC", "TTL ", "INDEX ", "non_replicated"] {
            assert!(!script.contains(absent), "{absent:?} in\n{script}");
        }
        assert!(script.contains("start_time Int64"));
        assert!(script.contains("LowCardinality(String)"));
        assert!(script.contains("toDateTime(intDiv(start_time, 1000000000))"));
    }

    #[test]
    fn cluster_mode_adds_replicated_local_and_distributed_tables() {
        let t = target(Generation::Modern, Some("prod"));
        let script = t.script();
        assert!(script.contains("CREATE DATABASE IF NOT EXISTS hs ON CLUSTER prod"));
        assert!(script.contains("CREATE TABLE IF NOT EXISTS hs.spans_local ON CLUSTER prod"));
        assert!(
            script.contains("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/hs/spans_local', '{replica}')")
        );
        assert!(script.contains("ENGINE = Distributed(prod, hs, spans_local, cityHash64(trace_id))"));
        assert!(script.contains("FROM hs.spans_local"));
        assert!(script.contains("TO hs.trace_index_local"));
        assert_eq!(t.table("spans"), "hs.spans");
    }

    #[test]
    fn ttl_tables_follow_the_latest_schema() {
        let t = target(Generation::Modern, None);
        let tables = t.ttl_tables();
        let names: Vec<&str> = tables.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["trace_index", "operations", "rollup_1m", "spans_v2", "resources"]
        );
        assert_eq!(tables[3].1, "toDateTime(start_time)");
        assert_eq!(
            t.ttl_statement("spans_v2", "toDateTime(start_time)", 3),
            "ALTER TABLE hs.spans_v2 MODIFY TTL toDateTime(start_time) + INTERVAL 3 DAY"
        );
        assert_eq!(
            t.ttl_statement("resources", "day", 0),
            "ALTER TABLE hs.resources REMOVE TTL"
        );
        let c = target(Generation::Modern, Some("prod"));
        assert_eq!(c.ttl_tables()[0].0, "trace_index_local");
        assert!(
            c.ttl_statement("trace_index_local", "day", 2)
                .contains("trace_index_local ON CLUSTER prod MODIFY")
        );
    }

    #[test]
    fn statements_split_and_checksums_are_stable() {
        let t = target(Generation::Modern, None);
        let all = t.all_statements();
        assert_eq!(all.len(), MIGRATIONS.len() + 1);
        assert_eq!(all[2].1.len(), 2, "table + view: {:?}", all[2].1);
        assert!(all.iter().flat_map(|(_, s)| s).all(|s| !s.ends_with(';')));
        assert_eq!(checksum(&all[1].1), checksum(&t.all_statements()[1].1));
    }
}
