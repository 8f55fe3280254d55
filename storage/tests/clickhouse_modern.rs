//! The ClickHouse store on the modern engine: chDB (ClickHouse 26.x in-process, from
//! the `chdb-core` PyPI package) behind a thin HTTP front (`support/chdb_http.py`).

#![allow(clippy::unwrap_used)]

mod support;

use hopscope_storage::clickhouse::{ClickHouseStore, Compression, Generation, Target, client, target};
use hopscope_storage::{SpanReader, SpanWriter};
use support::{ChdbFront, assert_conformance, base_ns, config, fanout, fixture, spread};

#[derive(clickhouse::Row, serde::Deserialize, Debug)]
struct Count {
    n: u64,
}

async fn count(store: &ClickHouseStore, sql: &str) -> u64 {
    store.client().query(sql).fetch_one::<Count>().await.unwrap().n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modern_engine_conformance_fidelity_and_dedupe() {
    let front = ChdbFront::start();
    let cfg = config(&front.url, "hs_modern", Compression::None);
    let store = ClickHouseStore::open(cfg.clone()).await.unwrap();
    assert_eq!(store.target().generation, Generation::Modern);

    let base = base_ns();
    let mut spans = fixture(base, 40);
    spans.extend(fanout(base));
    spans.extend(spread(base));
    // Request-sized batches, written concurrently, as the collector does.
    let mut tasks = Vec::new();
    let store = std::sync::Arc::new(store);
    for chunk in spans.chunks(17) {
        let store = store.clone();
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move { store.write_spans(chunk).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_conformance(store.as_ref(), &spans, base).await;

    // A retried batch (same spans, same token) is not inserted twice, rollups included.
    let before = count(&store, "SELECT count() AS n FROM hs_modern.spans_v2").await;
    let rollup = "SELECT toUInt64(countMerge(spans)) AS n FROM hs_modern.rollup_1m";
    let rolled = count(&store, rollup).await;
    assert_eq!(before, spans.len() as u64);
    assert_eq!(rolled, spans.len() as u64);
    // Each call is one insert, so the same batch carries the same token.
    let solo = ClickHouseStore::open(cfg.clone()).await.unwrap();
    let batch = fixture(base + 1_000_000_000_000, 4);
    solo.write_spans(batch.clone()).await.unwrap();
    let after_one = count(&store, "SELECT count() AS n FROM hs_modern.spans_v2").await;
    let rolled_one = count(&store, rollup).await;
    assert_eq!(after_one, before + batch.len() as u64);
    solo.write_spans(batch).await.unwrap();
    assert_eq!(
        count(&store, "SELECT count() AS n FROM hs_modern.spans_v2").await,
        after_one
    );
    assert_eq!(count(&store, rollup).await, rolled_one);

    // Quantile states are real: p99.9 over the rollups.
    #[derive(clickhouse::Row, serde::Deserialize, Debug)]
    struct Q {
        service: String,
        q: Vec<f32>,
        errors: u64,
    }
    let rows: Vec<Q> = store
        .client()
        .query(
            "SELECT service, quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99, 0.999)(duration_quantiles) AS q, \
             toUInt64(sumMerge(errors)) AS errors FROM hs_modern.rollup_1m GROUP BY service ORDER BY service",
        )
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|r| r.q.len() == 5 && r.q[4] >= r.q[0]));
    assert_eq!(
        rows.iter().find(|r| r.service == "pay").unwrap().errors,
        8 + 1,
        "40 traces + 4 more, every fifth failing"
    );

    // Migrations are recorded once and re-running them is a no-op.
    let applied = hopscope_storage::clickhouse::migrate(&client(&cfg), store.target())
        .await
        .unwrap();
    assert!(applied.is_empty());
    assert_eq!(
        count(
            &store,
            "SELECT count() AS n FROM (SELECT DISTINCT version FROM hs_modern.hopscope_migrations)"
        )
        .await,
        hopscope_storage::clickhouse::MIGRATIONS.len() as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_insert_is_permanent_on_the_modern_engine() {
    let front = ChdbFront::start();
    let cfg = config(&front.url, "hs_reject", Compression::None);
    let store = ClickHouseStore::open(cfg).await.unwrap();
    store
        .client()
        .query("ALTER TABLE hs_reject.spans_v2 DROP COLUMN status_message")
        .execute()
        .await
        .unwrap();
    let err = store.write_spans(fixture(base_ns(), 1)).await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
}

#[test]
fn generated_ddl_parses_on_the_modern_engine_for_every_target() {
    for generation in [Generation::Modern, Generation::Legacy] {
        for cluster in [None, Some("prod".to_string())] {
            let t = Target {
                database: "hs".into(),
                cluster: cluster.clone(),
                ttl_days: 7,
                generation,
            };
            ChdbFront::validate(&t.script()).unwrap_or_else(|e| panic!("{generation:?} cluster={cluster:?}: {e}"));
        }
    }
    let _ = target; // the helper used by the binary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_resource_is_inserted_once_per_day_by_a_writer() {
    let front = ChdbFront::start();
    let cfg = config(&front.url, "hs_res", Compression::None);
    let store = ClickHouseStore::open(cfg.clone()).await.unwrap();
    // Unmerged rows stay visible: every resources insert is counted.
    store
        .client()
        .query("SYSTEM STOP MERGES hs_res.resources")
        .execute()
        .await
        .unwrap();
    let base = base_ns();
    let rows = "SELECT count() AS n FROM hs_res.resources";
    // Three services on two hosts, one scope: six distinct resources.
    store.write_spans(fixture(base, 2)).await.unwrap();
    assert_eq!(count(&store, rows).await, 6);
    store.write_spans(fanout(base)).await.unwrap();
    store.write_spans(fixture(base + 1_000_000_000, 2)).await.unwrap();
    assert_eq!(count(&store, rows).await, 6, "known resources are not inserted again");
    // Another writer (a restart) does not know them yet; readers see one either way.
    let other = ClickHouseStore::open(cfg).await.unwrap();
    other.write_spans(fixture(base + 2_000_000_000, 1)).await.unwrap();
    assert_eq!(count(&store, rows).await, 9);
    let trace = other.trace(fixture(base, 1)[0].trace_id).await.unwrap().unwrap();
    assert_eq!(trace.spans[0].resource.attributes.len(), 4);
}
