//! The window aggregates on ClickHouse (real 18.16 server and chDB 26.x) give the
//! same answers as the embedded store over the shared fixtures
//! (`hopscope_schemas::fixtures`), for every method, window and cloud filter.

#![allow(clippy::unwrap_used)]

mod support;

use hopscope_schemas::CloudKind;
use hopscope_schemas::fixtures::{self, MS, T0, US};
use hopscope_storage::aggregates::{
    AggregateReader, EntryTraceQuery, GroupBy, MiddlewareKind, MiddlewareQuery, Window,
};
use hopscope_storage::clickhouse::{ClickHouseStore, Compression};
use hopscope_storage::{EmbeddedStore, SpanWriter};
use support::{ChdbFront, LegacyServer, config};

fn window(from_us: u64, to_us: u64, cloud_kind: Option<CloudKind>) -> Window {
    Window {
        start_ns: T0 + from_us * US,
        end_ns: T0 + to_us * US,
        cloud_kind,
    }
}

fn windows() -> Vec<Window> {
    let mut out = Vec::new();
    for cloud in [
        None,
        Some(CloudKind::Private),
        Some(CloudKind::Hosted),
        Some(CloudKind::Public),
        Some(CloudKind::Unknown),
    ] {
        for (a, b) in [
            (0, 200_000_000),
            fixtures::REDIS_BASELINE_US,
            fixtures::REDIS_INCIDENT_US,
            (1_000, 3_100),
        ] {
            out.push(window(a, b, cloud));
        }
    }
    out
}

async fn open(url: &str, database: &str, compression: Compression) -> ClickHouseStore {
    let cfg = hopscope_storage::clickhouse::ClickHouseConfig {
        ttl_days: 0, // the fixtures are from 2023
        ..config(url, database, compression)
    };
    let store = ClickHouseStore::open(cfg).await.unwrap();
    let spans = fixtures::all();
    for chunk in spans.chunks(25) {
        store.write_spans(chunk.to_vec()).await.unwrap();
    }
    // A retried batch must not count twice.
    store.write_spans(spans[..30].to_vec()).await.unwrap();
    store
}

async fn assert_same_answers(store: &ClickHouseStore) {
    let embedded = EmbeddedStore::default();
    embedded.write_spans(fixtures::all()).await.unwrap();
    for w in windows() {
        assert_eq!(
            store.interfaces(&w).await.unwrap(),
            embedded.interfaces(&w).await.unwrap(),
            "interfaces {w:?}"
        );
        assert_eq!(
            store.exceptions(&w, 3).await.unwrap(),
            embedded.exceptions(&w, 3).await.unwrap(),
            "exceptions {w:?}"
        );
        assert_eq!(
            store.dependency_edges(&w).await.unwrap(),
            embedded.dependency_edges(&w).await.unwrap(),
            "edges {w:?}"
        );
        assert_eq!(
            store.mismatches(&w, 10).await.unwrap(),
            embedded.mismatches(&w, 10).await.unwrap(),
            "mismatches {w:?}"
        );
        for limit in [1, 6, 1000] {
            let q = EntryTraceQuery {
                window: w,
                service: "cart".into(),
                operation: "GET /cart".into(),
                limit,
            };
            assert_eq!(
                store.entry_traces(&q).await.unwrap(),
                embedded.entry_traces(&q).await.unwrap(),
                "entries {q:?}"
            );
        }
        for kind in [
            MiddlewareKind::Cache,
            MiddlewareKind::Db,
            MiddlewareKind::Mq,
            MiddlewareKind::Http,
            MiddlewareKind::Rpc,
            MiddlewareKind::Host,
        ] {
            for group_by in [GroupBy::Peer, GroupBy::Host, GroupBy::CloudKind] {
                let q = MiddlewareQuery {
                    window: w,
                    kind,
                    group_by,
                    step_ns: 10_000 * MS,
                };
                assert_eq!(
                    store.middleware(&q).await.unwrap(),
                    embedded.middleware(&q).await.unwrap(),
                    "middleware {q:?}"
                );
            }
        }
    }
    // The known answers, so that agreeing on nothing cannot pass.
    let all = window(0, 200_000_000, None);
    assert_eq!(store.dependency_edges(&all).await.unwrap().len(), 11);
    assert_eq!(store.mismatches(&all, 10).await.unwrap().len(), 1);
    assert_eq!(store.exceptions(&all, 3).await.unwrap().len(), 2);
    let (a, b) = fixtures::REDIS_INCIDENT_US;
    let cache = store
        .middleware(&MiddlewareQuery {
            window: window(a, b, None),
            kind: MiddlewareKind::Cache,
            group_by: GroupBy::Peer,
            step_ns: 10_000 * MS,
        })
        .await
        .unwrap();
    assert_eq!(cache[1].stats.p99_ns, 40_000 * US);
    assert_eq!(cache[1].series.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_server_aggregates_match_the_embedded_store() {
    let server = LegacyServer::start();
    let store = open(&server.url(), "hs_aggregates_legacy", Compression::Lz4).await;
    assert_same_answers(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modern_engine_aggregates_match_the_embedded_store() {
    let front = ChdbFront::start();
    let store = open(&front.url, "hs_aggregates_modern", Compression::None).await;
    assert_same_answers(&store).await;
}
