//! The `/api/v1/` analysis routes through `Router` + oneshot against the embedded store
//! holding the shared fixtures (`hopscope_schemas::fixtures`). `check_store`
//! takes any store as `Arc<dyn ...>` so the same assertions can run on ClickHouse.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use hopscope_analysis::rules::{LayerRule, LayersConfig, SlaConfig, SlaLevel, SlaRule};
use hopscope_query_api::{AnalysisConfig, QueryApiConfig, router, router_with_aggregates};
use hopscope_schemas::fixtures::{self, T0};
use hopscope_storage::embedded::EmbeddedStore;
use hopscope_storage::{AggregateReader, SpanReader, SpanWriter};
use serde_json::Value;

use common::get;

fn analysis_config() -> AnalysisConfig {
    let mut sla = SlaConfig::default();
    sla.levels.insert(
        "A".into(),
        SlaLevel {
            p99_ms: Some(10.0),
            max_error_rate: Some(0.01),
            ..Default::default()
        },
    );
    sla.rules.push(SlaRule {
        service: "cart".into(),
        operation: "*".into(),
        level: "A".into(),
    });
    let rule = |service: &str, layer: &str| LayerRule {
        service: service.into(),
        layer: layer.into(),
    };
    AnalysisConfig {
        sla,
        layers: LayersConfig {
            order: vec!["edge".into(), "business".into(), "data".into()],
            rules: vec![
                rule("web", "edge"),
                rule("orders", "business"),
                rule("inventory", "data"),
            ],
        },
    }
}

/// The analysis routes over `store`, already holding `fixtures::all()`.
pub fn app_over<S: SpanReader + AggregateReader + 'static>(store: Arc<S>) -> Router {
    let aggregates: Arc<dyn AggregateReader> = store.clone();
    router_with_aggregates(store, Some(aggregates), &QueryApiConfig::default(), &analysis_config())
}

async fn embedded_app() -> Router {
    let store = EmbeddedStore::default();
    store.write_spans(fixtures::all()).await.unwrap();
    app_over(Arc::new(store))
}

fn us(offset_us: u64) -> u64 {
    T0 / 1_000 + offset_us
}

/// Whole fixture range.
fn all_window() -> String {
    format!("start={}&end={}", us(0), us(200_000_000))
}

async fn ok(app: &Router, uri: &str) -> Value {
    let r = get(app, uri).await;
    assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.json);
    r.json
}

#[tokio::test]
async fn embedded_store_gives_the_known_answers() {
    check_store(&embedded_app().await).await;
}

/// Every known answer of the fixtures; call with an app over any store.
pub async fn check_store(app: &Router) {
    // Per trace: nothing waits for the fire-and-forget consumer, so it is background
    // work, with the wait in the queue as its own culprit; the request is its own code.
    let queue = fixtures::trace_id(fixtures::QUEUE_TRACE);
    let a = ok(app, &format!("/api/v1/traces/{queue}/analysis")).await;
    assert_eq!(a["trace_id"], queue.to_hex());
    assert_eq!(a["duration_us"], 20_000);
    assert_eq!(a["culprit"]["operation"], "POST /order");
    assert_eq!(a["culprit"]["self_time_us"], 17_000);
    let share = a["culprit"]["share"].as_f64().unwrap();
    assert!((share - 0.85).abs() < 1e-9);
    let path: Vec<&str> = a["critical_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["operation"].as_str().unwrap())
        .collect();
    assert_eq!(path, ["POST /order", "payments publish"]);
    let background = &a["background"][0];
    assert_eq!(background["queue"], "payments");
    assert_eq!(background["culprit"]["operation"], "queue wait");
    assert_eq!(background["culprit"]["hop_kind"], "mq");
    assert_eq!(background["culprit"]["peer"], "payments");
    assert_eq!(background["culprit"]["self_time_us"], 100_000);
    let path: Vec<&str> = background["critical_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["operation"].as_str().unwrap())
        .collect();
    assert_eq!(path, ["queue wait", "payments process", "INSERT invoices"]);
    let first = &a["critical_path"][0];
    for field in [
        "span_id",
        "service",
        "operation",
        "hop_kind",
        "peer",
        "host",
        "cloud_kind",
        "start_us",
        "duration_us",
        "self_time_us",
    ] {
        assert!(first.get(field).is_some(), "missing {field} in {first}");
    }
    assert_eq!(first["cloud_kind"], "public");
    assert_eq!(first["start_us"], us(0));

    // Lock wait behind a timeout: the database span is the culprit, the client the error.
    let lock = fixtures::trace_id(fixtures::LOCK_TRACE);
    let a = ok(app, &format!("/api/v1/traces/{lock}/analysis")).await;
    assert_eq!(a["culprit"]["operation"], "UPDATE accounts");
    assert_eq!(a["culprit"]["peer"], "ledger-db:5432");
    assert_eq!(a["errors"].as_array().unwrap().len(), 1);
    assert_eq!(
        a["errors"][0]["span_id"],
        fixtures::span_id(fixtures::LOCK_CLIENT_SPAN).to_hex()
    );
    // Culprit among the hosted part only: the api's own spans.
    let a = ok(app, &format!("/api/v1/traces/{lock}/analysis?cloud_kind=hosted")).await;
    assert_eq!(a["culprit"]["service"], "api");

    // Middleware: the slow shard.
    let (from, to) = fixtures::REDIS_INCIDENT_US;
    let m = ok(
        app,
        &format!(
            "/api/v1/middleware?kind=cache&start={}&end={}&step=10000000",
            us(from),
            us(to)
        ),
    )
    .await;
    let instances = m["instances"].as_array().unwrap();
    let p99: Vec<(&str, u64)> = instances
        .iter()
        .map(|i| (i["peer"].as_str().unwrap(), i["p99_us"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        p99,
        [
            ("redis-shard-1:6379", 1_000),
            ("redis-shard-2:6379", 40_000),
            ("redis-shard-3:6379", 1_000)
        ]
    );
    assert_eq!(instances[1]["system"], "redis");
    assert_eq!(instances[1]["count"], 10);
    assert_eq!(instances[1]["max_qps"], 1);
    assert_eq!(instances[1]["series"].as_array().unwrap().len(), 6);
    for key in ["p50_us", "p95_us", "p999_us", "max_us", "errors"] {
        assert!(instances[1].get(key).is_some(), "{key}");
    }
    // Grouped by cloud kind: one private group; hosts with kind=host.
    let m = ok(
        app,
        &format!("/api/v1/middleware?kind=cache&group_by=cloud_kind&{}", all_window()),
    )
    .await;
    assert_eq!(m["instances"][0]["peer"], "private");
    assert_eq!(m["instances"][0]["count"], 60);
    let h = ok(
        app,
        &format!("/api/v1/middleware?kind=host&{}&cloud_kind=public", all_window()),
    )
    .await;
    let hosts: Vec<&str> = h["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["peer"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["vm-billing-1", "vm-orders-1", "vm-web-1"]);

    // Blame: the slow shard, against the baseline minute and without one.
    let (bf, bt) = fixtures::REDIS_BASELINE_US;
    let b = ok(
        app,
        &format!(
            "/api/v1/blame?service=cart&operation=GET%20/cart&start={}&end={}&baseline_start={}&baseline_end={}",
            us(from),
            us(to),
            us(bf),
            us(bt)
        ),
    )
    .await;
    assert_eq!(b["mode"], "baseline");
    assert_eq!(b["traces"], 30);
    assert_eq!(b["nodes"][0]["node_type"], "peer");
    assert_eq!(b["nodes"][0]["peer"], "redis-shard-2:6379");
    assert_eq!(b["nodes"][0]["share"], 1.0);
    assert_eq!(b["nodes"][0]["example_trace_ids"].as_array().unwrap().len(), 3);
    let b = ok(
        app,
        &format!(
            "/api/v1/blame?service=cart&operation=GET%20/cart&start={}&end={}",
            us(from),
            us(to)
        ),
    )
    .await;
    assert_eq!(b["mode"], "p99");
    assert_eq!(b["nodes"][0]["peer"], "redis-shard-2:6379");

    // SLA: cart is level A (p99 ≤ 10 ms) and misses it; the others default to D.
    let s = ok(app, &format!("/api/v1/sla?{}", all_window())).await;
    let cart = s["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["service"] == "cart")
        .unwrap();
    assert_eq!(cart["level"], "A");
    assert_eq!(cart["status"], "missed");
    assert_eq!(cart["p99_us"], 42_000);
    assert!(
        cart["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("p99 42.000 ms > 10 ms"),
        "{cart}"
    );
    let api = s["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["service"] == "api")
        .unwrap();
    assert_eq!(
        (
            api["level"].as_str(),
            api["fail_count"].as_u64(),
            api["status"].as_str()
        ),
        (Some("D"), Some(1), Some("missed"))
    );
    let svc = s["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["service"] == "cart")
        .unwrap();
    assert_eq!((svc["interfaces"].as_u64(), svc["missed"].as_u64()), (Some(1), Some(1)));

    // Exceptions.
    let e = ok(app, &format!("/api/v1/exceptions?{}", all_window())).await;
    let groups: Vec<(&str, &str, u64)> = e["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["service"].as_str().unwrap(),
                g["exception_type"].as_str().unwrap(),
                g["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(groups, [("api", "TimeoutError", 1), ("orders", "StockError", 1)]);
    assert_eq!(
        e["exceptions"][1]["example_trace_ids"][0],
        fixtures::trace_id(fixtures::LAYER_TRACE).to_hex()
    );

    // Dependencies and layer violations.
    let d = ok(app, &format!("/api/v1/dependencies?{}", all_window())).await;
    let ledger_db = d["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["to"] == "ledger-db:5432")
        .unwrap();
    assert_eq!(
        (
            ledger_db["to_kind"].as_str(),
            ledger_db["hop_kind"].as_str(),
            ledger_db["p99_us"].as_u64()
        ),
        (Some("middleware"), Some("db"), Some(2_530_000))
    );
    let api_ledger = d["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["from"] == "api" && x["to"] == "ledger")
        .unwrap();
    assert_eq!(
        (api_ledger["error_count"].as_u64(), api_ledger["p95_us"].as_u64()),
        (Some(1), Some(1_000_000))
    );
    let violations = d["violations"].as_array().unwrap();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert_eq!(violations[0]["kind"], "upward_call");
    assert_eq!(
        (violations[0]["from"].as_str(), violations[0]["to"].as_str()),
        (Some("inventory"), Some("orders"))
    );
    assert_eq!(violations[1]["kind"], "cycle");
    assert_eq!(violations[1]["services"], serde_json::json!(["inventory", "orders"]));
    // The called (child) span decides the cloud filter of service edges.
    let d = ok(app, &format!("/api/v1/dependencies?{}&cloud_kind=hosted", all_window())).await;
    assert_eq!(d["edges"].as_array().unwrap().len(), 0, "{}", d["edges"]);

    // Mismatches: the client timed out, the ledger committed.
    let m = ok(app, &format!("/api/v1/mismatches?{}", all_window())).await;
    let found = m["mismatches"].as_array().unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["reason"], "client_timeout");
    assert_eq!(found[0]["trace_id"], lock.to_hex());
    assert_eq!(found[0]["client"]["service"], "api");
    assert_eq!(found[0]["client"]["status_code"], "ERROR");
    assert_eq!(found[0]["server"]["service"], "ledger");
    assert_eq!(found[0]["server"]["cloud_kind"], "private");
    let m = ok(app, &format!("/api/v1/mismatches?{}&cloud_kind=public", all_window())).await;
    assert_eq!(m["mismatches"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn bad_parameters_are_named() {
    let app = embedded_app().await;
    let w = all_window();
    let cases = [
        ("/api/v1/traces/xyz/analysis".to_owned(), "traceID"),
        (
            "/api/v1/traces/00000000000000000000000000000000/analysis".to_owned(),
            "traceID",
        ),
        (format!("/api/v1/middleware?kind=queue&{w}"), "kind"),
        (format!("/api/v1/middleware?{w}"), "kind"),
        (format!("/api/v1/middleware?kind=db&{w}&group_by=rack"), "group_by"),
        (format!("/api/v1/middleware?kind=db&{w}&step=1"), "step"),
        (format!("/api/v1/middleware?kind=db&{w}&step=0"), "step"),
        (format!("/api/v1/sla?start={}&end={}", us(10), us(5)), "end"),
        ("/api/v1/exceptions?end=5".to_owned(), "start"),
        (format!("/api/v1/exceptions?start=abc&end={}", us(1)), "start"),
        (format!("/api/v1/dependencies?{w}&cloud_kind=moon"), "cloud_kind"),
        (format!("/api/v1/blame?operation=x&{w}"), "service"),
        (
            format!("/api/v1/blame?service=cart&operation=x&{w}&baseline_start=1"),
            "baseline_end",
        ),
        (format!("/api/v1/mismatches?{w}&limit=0"), "limit"),
    ];
    for (uri, param) in cases {
        let r = get(&app, &uri).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.json);
        let msg = r.json["errors"][0]["msg"].as_str().unwrap();
        assert!(msg.contains(&format!("'{param}'")), "{uri}: {msg}");
    }
    let r = get(&app, "/api/v1/traces/4bf92f3577b34da6a3ce929d0e0e4736/analysis").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn without_aggregates_the_window_endpoints_say_so() {
    let store = EmbeddedStore::default();
    store.write_spans(fixtures::async_queue()).await.unwrap();
    let app = router(Arc::new(store), &QueryApiConfig::default());
    let r = get(&app, &format!("/api/v1/exceptions?{}", all_window())).await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);
    let queue = fixtures::trace_id(fixtures::QUEUE_TRACE);
    let r = get(&app, &format!("/api/v1/traces/{queue}/analysis")).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn request_reply_over_a_queue_names_the_wait_in_the_queue() {
    let store = EmbeddedStore::default();
    store.write_spans(fixtures::request_reply()).await.unwrap();
    let app = app_over(Arc::new(store));
    let id = fixtures::trace_id(fixtures::REPLY_TRACE);
    let a = ok(&app, &format!("/api/v1/traces/{id}/analysis")).await;
    assert_eq!(a["duration_us"], 140_000);
    assert_eq!(a["culprit"]["operation"], "queue wait");
    assert_eq!(a["culprit"]["peer"], "payments");
    assert_eq!(a["culprit"]["self_time_us"], 100_000);
    assert_eq!(a["culprit"]["node_self_time_us"], 103_000);
    let entry = &a["critical_path"][0];
    assert_eq!(
        (entry["operation"].as_str(), entry["self_time_us"].as_u64()),
        (Some("POST /order"), Some(9_000))
    );
    assert_eq!(a["background"].as_array().unwrap().len(), 1);
    assert_eq!(a["background"][0]["operation"], "audit process");
}

#[tokio::test]
async fn compare_with_a_trace_and_with_the_typical_trace() {
    let app = embedded_app().await;
    // Trace 31 of the slow-shard fixture hit shard 2 in the incident; trace 1 in the baseline.
    let slow = fixtures::trace_id(fixtures::REDIS_TRACES + 31);
    let fast = fixtures::trace_id(fixtures::REDIS_TRACES + 1);
    let c = ok(&app, &format!("/api/v1/traces/{slow}/compare?with={fast}")).await;
    assert_eq!(c["baseline"]["kind"], "trace");
    assert_eq!(c["baseline"]["trace_id"], fast.to_hex());
    assert_eq!(
        c["verdict"],
        "+39 ms in GET on redis-shard-2:6379 vs the other trace's 1.0 ms"
    );
    let top = &c["nodes"][0];
    assert_eq!(top["peer"], "redis-shard-2:6379");
    assert_eq!(
        (top["self_time_us"].as_u64(), top["baseline_self_time_us"].as_u64()),
        (Some(40_000), Some(1_000))
    );
    assert_eq!(top["delta_us"], 39_000);
    assert_eq!(top["path"][0]["operation"], "GET /cart");

    let (b0, b1) = fixtures::REDIS_BASELINE_US;
    let c = ok(
        &app,
        &format!(
            "/api/v1/traces/{slow}/compare?baseline_start={}&baseline_end={}",
            us(b0),
            us(b1)
        ),
    )
    .await;
    assert_eq!(c["baseline"]["kind"], "typical");
    assert_eq!(c["baseline"]["traces"], 30);
    assert_eq!(
        c["verdict"],
        "+39 ms in GET on redis-shard-2:6379 vs the typical 1.0 ms"
    );
    assert_eq!(c["baseline_duration_us"], 3_000);

    for (query, status) in [
        (String::new(), StatusCode::BAD_REQUEST),
        (
            format!("with={fast}&baseline_start=1&baseline_end=2"),
            StatusCode::BAD_REQUEST,
        ),
        ("with=zz".to_owned(), StatusCode::BAD_REQUEST),
        ("baseline_start=1".to_owned(), StatusCode::BAD_REQUEST),
        (
            "with=0123456789abcdef0123456789abcdef".to_owned(),
            StatusCode::NOT_FOUND,
        ),
        ("baseline_start=1&baseline_end=2".to_owned(), StatusCode::NOT_FOUND),
    ] {
        let r = get(&app, &format!("/api/v1/traces/{slow}/compare?{query}")).await;
        assert_eq!(r.status, status, "{query}: {}", r.json);
    }
}
