//! What a newcomer meets in the API (issue 23): `/api` is an index of every endpoint,
//! service → service dependency edges say how the calls travel (`hop_kind`), and blame
//! over an empty baseline falls back to the tail and says so.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use hopscope_query_api::index::ENDPOINTS;
use hopscope_query_api::{AnalysisConfig, QueryApiConfig, router_with_aggregates};
use hopscope_schemas::fixtures::{self, T0};
use hopscope_storage::embedded::EmbeddedStore;
use hopscope_storage::{AggregateReader, SpanWriter};

use common::get;

async fn app() -> Router {
    let store = Arc::new(EmbeddedStore::default());
    store.write_spans(fixtures::all()).await.unwrap();
    let aggregates: Arc<dyn AggregateReader> = store.clone();
    router_with_aggregates(
        store,
        Some(aggregates),
        &QueryApiConfig::default(),
        &AnalysisConfig::default(),
    )
}

fn window(from_us: u64, to_us: u64) -> String {
    format!("start={}&end={}", T0 / 1_000 + from_us, T0 / 1_000 + to_us)
}

#[tokio::test]
async fn api_index_lists_every_endpoint_and_each_one_exists() {
    let app = app().await;
    for path in ["/api", "/api/"] {
        let r = get(&app, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        let listed: Vec<&str> = r.json["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap())
            .collect();
        assert_eq!(listed.len(), ENDPOINTS.len());
        for expected in [
            "/api/services",
            "/api/v1/blame",
            "/api/v1/dependencies",
            "/api/v3/traces",
        ] {
            assert!(listed.contains(&expected), "{expected} missing from {listed:?}");
        }
    }
    // Every /api endpoint listed is routed: with placeholders filled in it answers
    // anything but 404 (400 for missing parameters is fine; /metrics and friends are
    // served by the binary and checked there).
    let id = fixtures::trace_id(fixtures::QUEUE_TRACE).to_hex();
    for e in ENDPOINTS.iter().filter(|e| e.path.starts_with("/api")) {
        let path = e.path.replace("{service}", "cart").replace("{traceID}", &id);
        let r = get(&app, &path).await;
        assert_ne!(r.status, StatusCode::NOT_FOUND, "{path} is listed but not routed");
        assert!(!e.about.is_empty());
    }
}

#[tokio::test]
async fn service_edges_have_a_hop_kind() {
    let app = app().await;
    let r = get(&app, &format!("/api/v1/dependencies?{}", window(0, 200_000_000))).await;
    assert_eq!(r.status, StatusCode::OK);
    let edges = r.json["edges"].as_array().unwrap();
    assert!(edges.iter().all(|e| e["hop_kind"].is_string()), "{edges:?}");
    let reserve = edges
        .iter()
        .find(|e| e["from"] == "inventory" && e["to"] == "orders")
        .unwrap();
    assert_eq!(
        (reserve["to_kind"].as_str(), reserve["hop_kind"].as_str()),
        (Some("service"), Some("http"))
    );
    // The queue hop of the async fixture: the ledger consumes what payment produced.
    let queued = edges
        .iter()
        .find(|e| e["to_kind"] == "service" && e["hop_kind"] == "mq");
    assert!(queued.is_some(), "{edges:?}");
}

#[tokio::test]
async fn blame_without_baseline_traces_ranks_the_tail_and_says_so() {
    let app = app().await;
    let (i0, i1) = fixtures::REDIS_INCIDENT_US;
    let (b0, b1) = fixtures::REDIS_BASELINE_US;
    let base = format!("/api/v1/blame?service=cart&operation=GET%20/cart&{}", window(i0, i1));
    // A baseline window before any fixture: no traces.
    let empty = format!(
        "{base}&baseline_start={}&baseline_end={}",
        T0 / 1_000 - 100_000_000,
        T0 / 1_000 - 1
    );
    let r = get(&app, &empty).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["mode"], "p99", "{}", r.json);
    // The tail is compared with the rest of the window, not with the empty baseline.
    assert_eq!(
        r.json["baseline_traces"].as_u64().unwrap() + r.json["tail_traces"].as_u64().unwrap(),
        r.json["traces"].as_u64().unwrap()
    );
    assert!(
        r.json["notice"]
            .as_str()
            .unwrap()
            .contains("baseline window has no traces"),
        "{}",
        r.json
    );

    let with = format!(
        "{base}&baseline_start={}&baseline_end={}",
        T0 / 1_000 + b0,
        T0 / 1_000 + b1
    );
    let r = get(&app, &with).await;
    assert_eq!(r.json["mode"], "baseline", "{}", r.json);
    assert!(r.json["notice"].is_null(), "{}", r.json);
    let r = get(&app, &base).await;
    assert_eq!(
        (r.json["mode"].as_str(), r.json["notice"].is_null()),
        (Some("p99"), true)
    );
}
