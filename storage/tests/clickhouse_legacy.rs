//! The ClickHouse store against a real `clickhouse-server` 18.16 (Debian's package) that
//! each test starts in its own temporary directory on free ports.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use hopscope_storage::clickhouse::{ClickHouseStore, Compression, Generation};
use hopscope_storage::{SpanReader, SpanWriter, StorageError};
use support::{LegacyServer, assert_conformance, base_ns, config, fanout, fixture, spread};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_server_conformance_and_restart() {
    let mut server = LegacyServer::start();
    let cfg = config(&server.url(), "hs_legacy", Compression::Lz4);
    let store = ClickHouseStore::open(cfg.clone()).await.unwrap();
    assert_eq!(store.server_version().major, 18);
    assert_eq!(store.target().generation, Generation::Legacy);

    let base = base_ns();
    let mut spans = fixture(base, 40);
    spans.extend(fanout(base));
    spans.extend(spread(base));
    for chunk in spans.chunks(23) {
        store.write_spans(chunk.to_vec()).await.unwrap();
    }
    // A duplicate batch (a retry after an unknown outcome) is read once.
    store.write_spans(spans[..10].to_vec()).await.unwrap();
    assert_conformance(&store, &spans, base).await;

    // hopscope restarts, and so does the server: data and schema are still there.
    drop(store);
    server.kill();
    server.spawn();
    let store = ClickHouseStore::open(cfg).await.unwrap();
    assert_conformance(&store, &spans, base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_server_is_retryable_and_rejected_insert_is_permanent() {
    let mut server = LegacyServer::start();
    let cfg = config(&server.url(), "hs_faults", Compression::Lz4);
    let store = ClickHouseStore::open(cfg.clone()).await.unwrap();
    let base = base_ns();
    store.write_spans(fixture(base, 2)).await.unwrap();

    server.kill();
    let err = store.write_spans(fixture(base + 1_000_000_000, 1)).await.unwrap_err();
    assert!(matches!(err, StorageError::Retryable(_)), "{err}");
    let err = store.services().await.unwrap_err();
    assert!(err.is_retryable(), "{err}");

    // The server comes back: the same store works again without a restart.
    server.spawn();
    store.write_spans(fixture(base + 1_000_000_000, 1)).await.unwrap();
    assert_eq!(store.services().await.unwrap(), vec!["front", "ledger", "pay"]);

    // A schema the rows do not fit: rejected at once, not retried forever.
    store
        .client()
        .query("ALTER TABLE hs_faults.spans_v2 DROP COLUMN status_message")
        .execute()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = store.write_spans(fixture(base + 2_000_000_000, 1)).await.unwrap_err();
    assert!(matches!(err, StorageError::Permanent(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
