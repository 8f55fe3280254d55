//! Insert throughput and bytes/span on disk: hopscope's schema next to the OpenTelemetry
//! clickhouseexporter's published `otel_traces` layout, same spans, same run, on the
//! modern engine (chDB behind the test HTTP front). Ignored by default; run with
//! `cargo test --release -p hopscope-storage --test clickhouse_bench -- --ignored --nocapture`.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Instant;

use clickhouse::Row;
use hopscope_schemas::SpanRecord;
use hopscope_storage::SpanWriter;
use hopscope_storage::clickhouse::{ClickHouseStore, Compression};
use serde::Serialize;
use support::{ChdbFront, base_ns, config, fixture};

/// The clickhouseexporter's traces table (its published DDL, TTL 180 days as shipped),
/// with its trace-id lookup table and view.
const OTEL_DDL: &[&str] = &[
    "CREATE DATABASE IF NOT EXISTS otel",
    "CREATE TABLE IF NOT EXISTS otel.otel_traces (
        Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
        TraceId String CODEC(ZSTD(1)),
        SpanId String CODEC(ZSTD(1)),
        ParentSpanId String CODEC(ZSTD(1)),
        TraceState String CODEC(ZSTD(1)),
        SpanName LowCardinality(String) CODEC(ZSTD(1)),
        SpanKind LowCardinality(String) CODEC(ZSTD(1)),
        ServiceName LowCardinality(String) CODEC(ZSTD(1)),
        ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
        ScopeName String CODEC(ZSTD(1)),
        ScopeVersion String CODEC(ZSTD(1)),
        SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
        Duration UInt64 CODEC(ZSTD(1)),
        StatusCode LowCardinality(String) CODEC(ZSTD(1)),
        StatusMessage String CODEC(ZSTD(1)),
        Events Nested (
            Timestamp DateTime64(9),
            Name LowCardinality(String),
            Attributes Map(LowCardinality(String), String)
        ) CODEC(ZSTD(1)),
        Links Nested (
            TraceId String,
            SpanId String,
            TraceState String,
            Attributes Map(LowCardinality(String), String)
        ) CODEC(ZSTD(1)),
        INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
        INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
        INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
        INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
        INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
        INDEX idx_duration Duration TYPE minmax GRANULARITY 1
    ) ENGINE = MergeTree()
    PARTITION BY toDate(Timestamp)
    ORDER BY (ServiceName, SpanName, toDateTime(Timestamp))
    TTL toDateTime(Timestamp) + toIntervalDay(180)
    SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1",
    "CREATE TABLE IF NOT EXISTS otel.otel_traces_trace_id_ts (
        TraceId String CODEC(ZSTD(1)),
        Start DateTime CODEC(Delta, ZSTD(1)),
        End DateTime CODEC(Delta, ZSTD(1)),
        INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
    ) ENGINE = MergeTree()
    PARTITION BY toDate(Start)
    ORDER BY (TraceId, Start)
    TTL toDateTime(Start) + toIntervalDay(180)
    SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1",
    "CREATE MATERIALIZED VIEW IF NOT EXISTS otel.otel_traces_trace_id_ts_mv
    TO otel.otel_traces_trace_id_ts
    AS SELECT TraceId, min(Timestamp) AS Start, max(Timestamp) AS End
    FROM otel.otel_traces WHERE TraceId != '' GROUP BY TraceId",
];

#[derive(Row, Serialize)]
#[allow(non_snake_case)]
struct OtelRow {
    Timestamp: i64,
    TraceId: String,
    SpanId: String,
    ParentSpanId: String,
    TraceState: String,
    SpanName: String,
    SpanKind: String,
    ServiceName: String,
    ResourceAttributes: Vec<(String, String)>,
    ScopeName: String,
    ScopeVersion: String,
    SpanAttributes: Vec<(String, String)>,
    Duration: u64,
    StatusCode: String,
    StatusMessage: String,
    #[serde(rename = "Events.Timestamp")]
    events_timestamp: Vec<i64>,
    #[serde(rename = "Events.Name")]
    events_name: Vec<String>,
    #[serde(rename = "Events.Attributes")]
    events_attributes: Vec<Vec<(String, String)>>,
    #[serde(rename = "Links.TraceId")]
    links_trace_id: Vec<String>,
    #[serde(rename = "Links.SpanId")]
    links_span_id: Vec<String>,
    #[serde(rename = "Links.TraceState")]
    links_trace_state: Vec<String>,
    #[serde(rename = "Links.Attributes")]
    links_attributes: Vec<Vec<(String, String)>>,
}

fn attrs(kvs: &[hopscope_schemas::KeyValue]) -> Vec<(String, String)> {
    kvs.iter().map(|kv| (kv.key.clone(), kv.value.to_text())).collect()
}

/// The exporter's mapping (attributes flattened to strings, as it does).
fn otel_row(s: &SpanRecord) -> OtelRow {
    OtelRow {
        Timestamp: s.start_time_unix_nano as i64,
        TraceId: s.trace_id.to_string(),
        SpanId: s.span_id.to_string(),
        ParentSpanId: s.parent_span_id.map(|p| p.to_string()).unwrap_or_default(),
        TraceState: s.trace_state.clone(),
        SpanName: s.name.clone(),
        SpanKind: format!("{:?}", s.kind),
        ServiceName: s.service_name.clone(),
        ResourceAttributes: attrs(&s.resource.attributes),
        ScopeName: s.scope.name.clone(),
        ScopeVersion: s.scope.version.clone(),
        SpanAttributes: attrs(&s.attributes),
        Duration: s.duration_nanos(),
        StatusCode: format!("{:?}", s.status_code),
        StatusMessage: s.status_message.clone(),
        events_timestamp: s.events.iter().map(|e| e.time_unix_nano as i64).collect(),
        events_name: s.events.iter().map(|e| e.name.clone()).collect(),
        events_attributes: s.events.iter().map(|e| attrs(&e.attributes)).collect(),
        links_trace_id: s.links.iter().map(|l| l.trace_id.to_string()).collect(),
        links_span_id: s.links.iter().map(|l| l.span_id.to_string()).collect(),
        links_trace_state: s.links.iter().map(|l| l.trace_state.clone()).collect(),
        links_attributes: s.links.iter().map(|l| attrs(&l.attributes)).collect(),
    }
}

#[derive(Row, serde::Deserialize)]
struct Size {
    bytes: u64,
    rows: u64,
}

async fn size(client: &clickhouse::Client, db: &str, table: &str) -> Size {
    client
        .query(&format!("OPTIMIZE TABLE {db}.{table} FINAL"))
        .execute()
        .await
        .unwrap();
    client
        .query(
            "SELECT toUInt64(sum(bytes_on_disk)) AS bytes, toUInt64(sum(rows)) AS rows \
             FROM system.parts WHERE database = ? AND table = ? AND active",
        )
        .bind(db)
        .bind(table)
        .fetch_one()
        .await
        .unwrap()
}

#[derive(Row, serde::Deserialize)]
struct Column {
    name: String,
    bytes: u64,
}

/// The parts of a table by compressed size on disk, largest first, from a system table
/// with `name` and `data_compressed_bytes` per part (`system.columns`,
/// `system.data_skipping_indices`).
async fn sizes(client: &clickhouse::Client, system_table: &str, db: &str, table: &str) -> Vec<Column> {
    client
        .query(&format!(
            "SELECT name, toUInt64(data_compressed_bytes) AS bytes FROM system.{system_table} \
             WHERE database = ? AND table = ? ORDER BY bytes DESC"
        ))
        .bind(db)
        .bind(table)
        .fetch_all()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly, see benches/README.md"]
async fn insert_throughput_and_bytes_per_span() {
    let traces: u32 = std::env::var("HOPSCOPE_BENCH_TRACES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let batch = 2_000;
    let front = ChdbFront::start();
    let spans = fixture(base_ns(), traces);
    let n = spans.len();

    let store = ClickHouseStore::open(config(&front.url, "hs_bench", Compression::None))
        .await
        .unwrap();
    let started = Instant::now();
    for chunk in spans.chunks(batch) {
        store.write_spans(chunk.to_vec()).await.unwrap();
    }
    let hs_secs = started.elapsed().as_secs_f64();

    let client =
        hopscope_storage::clickhouse::client(&config(&front.url, "otel", Compression::None)).with_database("otel");
    for ddl in OTEL_DDL {
        client.query(ddl).execute().await.unwrap();
    }
    let started = Instant::now();
    for chunk in spans.chunks(batch) {
        let mut insert = client.insert::<OtelRow>("otel_traces").await.unwrap();
        for span in chunk {
            insert.write(&otel_row(span)).await.unwrap();
        }
        insert.end().await.unwrap();
    }
    let otel_secs = started.elapsed().as_secs_f64();

    let mut hs_total = 0;
    println!("| table | rows | bytes on disk | bytes/span |");
    println!("|---|---|---|---|");
    for table in ["spans_v2", "resources", "trace_index", "operations", "rollup_1m"] {
        let s = size(&client, "hs_bench", table).await;
        hs_total += s.bytes;
        println!(
            "| hopscope {table} | {} | {} | {:.1} |",
            s.rows,
            s.bytes,
            s.bytes as f64 / n as f64
        );
    }
    let mut otel_total = 0;
    for table in ["otel_traces", "otel_traces_trace_id_ts"] {
        let s = size(&client, "otel", table).await;
        otel_total += s.bytes;
        println!(
            "| otel {table} | {} | {} | {:.1} |",
            s.rows,
            s.bytes,
            s.bytes as f64 / n as f64
        );
    }
    println!();
    println!("| hopscope spans_v2 column | compressed bytes | bytes/span |");
    println!("|---|---|---|");
    for c in sizes(&client, "columns", "hs_bench", "spans_v2").await {
        println!("| {} | {} | {:.2} |", c.name, c.bytes, c.bytes as f64 / n as f64);
    }
    println!();
    println!("| skip index | compressed bytes | bytes/span |");
    println!("|---|---|---|");
    for (db, table) in [("hs_bench", "spans_v2"), ("otel", "otel_traces")] {
        for c in sizes(&client, "data_skipping_indices", db, table).await {
            println!(
                "| {table}.{} | {} | {:.2} |",
                c.name,
                c.bytes,
                c.bytes as f64 / n as f64
            );
        }
    }
    println!();
    println!("spans: {n}, batches of {batch}");
    println!(
        "hopscope: {:.0} spans/s, {:.1} bytes/span on disk (all tables)",
        n as f64 / hs_secs,
        hs_total as f64 / n as f64
    );
    println!(
        "otel clickhouseexporter layout: {:.0} spans/s, {:.1} bytes/span on disk (all tables)",
        n as f64 / otel_secs,
        otel_total as f64 / n as f64
    );
}
