//! Schema changes on existing databases: the upgrade of a schema-4 database (spans as
//! JSON in `spans.record`) to typed `spans_v2` on both server generations, and
//! `ttl_days` changes applied at start-up (table TTLs on the modern engine, partition
//! drops on 18.16).

#![allow(clippy::unwrap_used)]

mod support;

use clickhouse::Row;
use hopscope_schemas::{SpanRecord, find_str};
use hopscope_storage::clickhouse::{
    ClickHouseConfig, ClickHouseStore, Compression, Generation, MIGRATIONS, Target, client, migrations::checksum,
};
use hopscope_storage::{SpanReader, SpanWriter};
use serde::{Deserialize, Serialize};
use support::{ChdbFront, LegacyServer, assert_conformance, base_ns, config, fanout, fixture};

const DAY_NS: u64 = 86_400_000_000_000;

/// A row of 0001's `spans` table, as hopscope wrote it before migration 0005.
#[derive(Row, Serialize)]
struct OldRow {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent_span_id: [u8; 8],
    start_time: i64,
    duration_ns: u64,
    service: String,
    name: String,
    kind: u8,
    status_code: u8,
    hop_kind: String,
    peer: String,
    host: String,
    cloud_kind: String,
    cloud_provider: String,
    cloud_region: String,
    cloud_zone: String,
    tags: Vec<String>,
    record: String,
}

fn old_row(s: &SpanRecord) -> OldRow {
    let res = &s.resource.attributes;
    let text = |k: &str| find_str(res, k).unwrap_or_default().to_string();
    OldRow {
        trace_id: s.trace_id.0,
        span_id: s.span_id.0,
        parent_span_id: s.parent_span_id.map(|p| p.0).unwrap_or_default(),
        start_time: s.start_time_unix_nano as i64,
        duration_ns: s.duration_nanos(),
        service: s.service_name.clone(),
        name: s.name.clone(),
        kind: s.kind.to_otlp() as u8,
        status_code: s.status_code.to_otlp() as u8,
        hop_kind: s.hop_kind.as_str().into(),
        peer: s.peer.clone().unwrap_or_default(),
        host: s.host.clone().unwrap_or_default(),
        cloud_kind: text("hopscope.cloud.kind"),
        cloud_provider: text("cloud.provider"),
        cloud_region: text("cloud.region"),
        cloud_zone: text("cloud.availability_zone"),
        tags: Vec::new(),
        record: serde_json::to_string(s).unwrap(),
    }
}

#[derive(Row, Deserialize, Debug)]
struct Count {
    n: u64,
}

async fn count(client: &clickhouse::Client, sql: &str) -> u64 {
    client.query(sql).fetch_one::<Count>().await.unwrap().n
}

/// Creates the database at schema version 4 (migrations 1-4 applied and recorded) and
/// writes `spans` the way hopscope did then.
async fn install_schema_4(cfg: &ClickHouseConfig, generation: Generation, spans: &[SpanRecord]) {
    let target = Target {
        database: cfg.database.clone(),
        cluster: None,
        ttl_days: cfg.ttl_days,
        generation,
    };
    let mut client = client(cfg);
    if generation == Generation::Legacy {
        client = client.with_setting("allow_experimental_low_cardinality_type", "1");
    }
    let mut statements = vec![target.create_database()];
    statements.extend(target.migrations_table());
    for m in &MIGRATIONS[..4] {
        assert!(m.version <= 4);
        statements.extend(target.render(m.template));
    }
    for sql in statements {
        client.query(&sql).execute().await.unwrap();
    }
    for m in &MIGRATIONS[..4] {
        client
            .query(&format!(
                "INSERT INTO {}.hopscope_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, now())",
                cfg.database
            ))
            .bind(m.version)
            .bind(m.name)
            .bind(checksum(&target.render(m.template)))
            .execute()
            .await
            .unwrap();
    }
    let mut insert = client
        .with_database(&cfg.database)
        .insert::<OldRow>("spans")
        .await
        .unwrap();
    for span in spans {
        insert.write(&old_row(span)).await.unwrap();
    }
    insert.end().await.unwrap();
}

/// Upgrades a schema-4 database, then checks every old and new span reads back equal,
/// the old table is gone and the rollups counted each span once.
async fn upgrade(cfg: ClickHouseConfig, generation: Generation) {
    let base = base_ns();
    let old = fixture(base, 20);
    install_schema_4(&cfg, generation, &old).await;
    let store = ClickHouseStore::open(cfg.clone()).await.unwrap();
    assert_eq!(store.target().generation, generation);
    let new = fanout(base);
    store.write_spans(new.clone()).await.unwrap();
    let mut all = old.clone();
    all.extend(new);
    assert_conformance(&store, &all, base).await;

    let db = cfg.database.clone();
    let c = store.client();
    assert_eq!(
        count(
            c,
            &format!("SELECT count() AS n FROM system.tables WHERE database = '{db}' AND name = 'spans'")
        )
        .await,
        0
    );
    assert_eq!(
        count(c, &format!("SELECT count() AS n FROM {db}.spans_v2")).await,
        all.len() as u64
    );
    let rollup = format!("SELECT toUInt64(countMerge(spans)) AS n FROM {db}.rollup_1m");
    assert_eq!(
        count(c, &rollup).await,
        all.len() as u64,
        "copied spans must not be rolled up again"
    );
    let versions = format!("SELECT count() AS n FROM (SELECT DISTINCT version FROM {db}.hopscope_migrations)");
    assert_eq!(count(c, &versions).await, MIGRATIONS.len() as u64);

    // A restart applies nothing and copies nothing again.
    drop(store);
    let store = ClickHouseStore::open(cfg).await.unwrap();
    assert_eq!(
        count(store.client(), &format!("SELECT count() AS n FROM {db}.spans_v2")).await,
        all.len() as u64
    );
    assert_conformance(&store, &all, base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_4_database_upgrades_on_the_legacy_server() {
    let server = LegacyServer::start();
    upgrade(
        config(&server.url(), "hs_up_legacy", Compression::Lz4),
        Generation::Legacy,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_4_database_upgrades_on_the_modern_engine() {
    let front = ChdbFront::start();
    upgrade(
        config(&front.url, "hs_up_modern", Compression::None),
        Generation::Modern,
    )
    .await;
}

#[derive(Row, Deserialize, Debug)]
struct Engine {
    name: String,
    engine_full: String,
}

async fn engines(store: &ClickHouseStore) -> Vec<Engine> {
    store
        .client()
        .query(
            "SELECT name, engine_full FROM system.tables WHERE database = 'hs_ttl' \
             AND name IN ('spans_v2', 'resources', 'trace_index', 'operations', 'rollup_1m') ORDER BY name",
        )
        .fetch_all()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_ttl_days_alter_the_tables_on_the_modern_engine() {
    let front = ChdbFront::start();
    let cfg = config(&front.url, "hs_ttl", Compression::None);
    let store = ClickHouseStore::open(ClickHouseConfig {
        ttl_days: 7,
        ..cfg.clone()
    })
    .await
    .unwrap();
    let tables = engines(&store).await;
    assert_eq!(tables.len(), 5);
    assert!(
        tables.iter().all(|t| t.engine_full.contains("toIntervalDay(7)")),
        "{tables:?}"
    );
    drop(store);

    let store = ClickHouseStore::open(ClickHouseConfig {
        ttl_days: 3,
        ..cfg.clone()
    })
    .await
    .unwrap();
    for t in engines(&store).await {
        assert!(
            t.engine_full.contains("toIntervalDay(3)"),
            "{}: {}",
            t.name,
            t.engine_full
        );
    }
    store.write_spans(fixture(base_ns(), 2)).await.unwrap();
    drop(store);

    let store = ClickHouseStore::open(ClickHouseConfig { ttl_days: 0, ..cfg })
        .await
        .unwrap();
    for t in engines(&store).await {
        assert!(!t.engine_full.contains(" TTL "), "{}: {}", t.name, t.engine_full);
    }
    assert_eq!(store.services().await.unwrap(), vec!["front", "ledger", "pay"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_ttl_days_drop_old_partitions_on_the_legacy_server() {
    let server = LegacyServer::start();
    let cfg = config(&server.url(), "hs_keep", Compression::Lz4);
    let store = ClickHouseStore::open(ClickHouseConfig {
        ttl_days: 0,
        ..cfg.clone()
    })
    .await
    .unwrap();
    let base = base_ns();
    let old = fixture(base - 10 * DAY_NS, 3);
    let recent = fanout(base);
    store.write_spans(old.clone()).await.unwrap();
    store.write_spans(recent.clone()).await.unwrap();
    drop(store);

    // Retention 30 days: nothing is old enough.
    let store = ClickHouseStore::open(ClickHouseConfig {
        ttl_days: 30,
        ..cfg.clone()
    })
    .await
    .unwrap();
    assert!(store.trace(old[0].trace_id).await.unwrap().is_some());
    drop(store);

    // Retention shortened to 3 days: the 10-day-old partitions go at start-up.
    let store = ClickHouseStore::open(ClickHouseConfig { ttl_days: 3, ..cfg })
        .await
        .unwrap();
    assert!(store.trace(old[0].trace_id).await.unwrap().is_none());
    let kept = store.trace(recent[0].trace_id).await.unwrap().unwrap();
    assert_eq!(kept.spans.len(), recent.len());
    let c = store.client();
    assert_eq!(
        count(c, "SELECT count() AS n FROM hs_keep.spans_v2").await,
        recent.len() as u64
    );
    assert_eq!(
        count(c, "SELECT count() AS n FROM hs_keep.resources WHERE day < today() - 3").await,
        0
    );
    assert_eq!(
        count(
            c,
            "SELECT count() AS n FROM hs_keep.trace_index WHERE day < today() - 3"
        )
        .await,
        0
    );
}
