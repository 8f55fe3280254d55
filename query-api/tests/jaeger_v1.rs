//! The Jaeger v1 routes through `Router::oneshot`, asserting the fields Grafana's Jaeger
//! data source and Jaeger UI read.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::*;
use hopscope_query_api::QueryApiConfig;
use hopscope_storage::{StorageError, TagFilter};
use serde_json::{Value, json};

fn trace_ids(json: &Value) -> Vec<&str> {
    json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["traceID"].as_str().unwrap())
        .collect()
}

async fn search(query: &str) -> Vec<String> {
    let app = app().await;
    let res = get(&app, &format!("/api/traces?{query}")).await;
    assert_eq!(res.status, StatusCode::OK, "{query}: {}", res.json);
    assert_eq!(res.json["errors"], Value::Null);
    trace_ids(&res.json).into_iter().map(str::to_owned).collect()
}

async fn bad_request(uri: &str) -> String {
    let res = get(&app().await, uri).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{uri}: {}", res.json);
    assert_eq!(res.json["data"], Value::Null);
    assert_eq!(res.json["total"], 0);
    assert_eq!(res.json["errors"][0]["code"], 400);
    res.json["errors"][0]["msg"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn services_envelope() {
    let res = get(&app().await, "/api/services").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.headers["content-type"], "application/json");
    assert_eq!(
        res.json,
        json!({"data": ["checkout", "frontend"], "total": 2, "limit": 0, "offset": 0, "errors": null})
    );
}

#[tokio::test]
async fn service_operations_are_distinct_names() {
    let app = app().await;
    let res = get(&app, "/api/services/frontend/operations").await;
    assert_eq!(res.json["data"], json!(["GET /checkout", "GET /health", "redis GET"]));
    assert_eq!(res.json["total"], 3);
    let res = get(&app, "/api/services/nobody/operations").await;
    assert_eq!(
        (res.status, &res.json["data"], &res.json["total"]),
        (StatusCode::OK, &json!([]), &json!(0))
    );
}

#[tokio::test]
async fn operations_with_span_kinds() {
    let app = app().await;
    let res = get(&app, "/api/operations?service=frontend").await;
    assert_eq!(
        res.json["data"],
        json!([
            {"name": "GET /checkout", "spanKind": "server"},
            {"name": "GET /health", "spanKind": "server"},
            {"name": "redis GET", "spanKind": "client"},
        ])
    );
    assert_eq!(res.json["total"], 3);
    let res = get(&app, "/api/operations?service=frontend&spanKind=client").await;
    assert_eq!(res.json["data"], json!([{"name": "redis GET", "spanKind": "client"}]));
    assert_eq!(bad_request("/api/operations").await, "parameter 'service' is required");
    assert!(
        bad_request("/api/operations?service=frontend&spanKind=up")
            .await
            .contains("'spanKind'")
    );
}

#[tokio::test]
async fn trace_by_id_has_jaeger_shape() {
    let res = get(&app().await, &format!("/api/traces/{TRACE_A}")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.json);
    assert_eq!((&res.json["total"], &res.json["errors"]), (&json!(1), &Value::Null));
    let trace = &res.json["data"][0];
    assert_eq!(trace["traceID"], TRACE_A);
    assert_eq!(trace["warnings"], Value::Null);
    assert_eq!(
        trace["processes"],
        json!({
            "p1": {"serviceName": "frontend", "tags": [
                {"key": "host.name", "type": "string", "value": "web-1"},
                {"key": "deployment.environment", "type": "string", "value": "prod"},
            ]},
            "p2": {"serviceName": "checkout", "tags": []},
        })
    );
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 3);
    let root = &spans[0];
    assert_eq!(
        *root,
        json!({
            "traceID": TRACE_A,
            "spanID": ROOT,
            "flags": 1,
            "operationName": "GET /checkout",
            "references": [{"refType": "FOLLOWS_FROM", "traceID": TRACE_B, "spanID": HEALTH}],
            "startTime": T0 / 1_000,
            "duration": 120_000,
            "tags": [
                {"key": "http.request.method", "type": "string", "value": "GET"},
                {"key": "http.response.status_code", "type": "int64", "value": 500},
                {"key": "span.kind", "type": "string", "value": "server"},
                {"key": "otel.status_code", "type": "string", "value": "ERROR"},
                {"key": "error", "type": "bool", "value": true},
                {"key": "otel.status_description", "type": "string", "value": "boom"},
                {"key": "w3c.tracestate", "type": "string", "value": "vendor=1"},
                {"key": "otel.scope.name", "type": "string", "value": "io.opentelemetry.http"},
                {"key": "otel.scope.version", "type": "string", "value": "1.2.0"},
                {"key": "hopscope.hop_kind", "type": "string", "value": "http"},
                {"key": "hopscope.host", "type": "string", "value": "web-1"},
            ],
            "logs": [{"timestamp": (T0 + 10 * MS) / 1_000, "fields": [
                {"key": "event", "type": "string", "value": "exception"},
                {"key": "exception.message", "type": "string", "value": "card declined"},
            ]}],
            "processID": "p1",
            "warnings": null,
        })
    );
    let redis = &spans[1];
    assert_eq!(
        redis["references"],
        json!([{"refType": "CHILD_OF", "traceID": TRACE_A, "spanID": ROOT}])
    );
    assert_eq!(
        (&redis["processID"], &redis["duration"], &redis["logs"]),
        (&json!("p1"), &json!(2_000), &json!([]))
    );
    let tags = redis["tags"].as_array().unwrap();
    assert!(tags.contains(&json!({"key": "span.kind", "type": "string", "value": "client"})));
    assert!(tags.contains(&json!({"key": "hopscope.hop_kind", "type": "string", "value": "cache"})));
    assert!(tags.contains(&json!({"key": "hopscope.peer", "type": "string", "value": "redis-shard-2:6379"})));
    assert!(
        !tags
            .iter()
            .any(|t| t["key"] == "otel.status_code" || t["key"] == "error")
    );
    let pay = &spans[2];
    assert_eq!(pay["processID"], "p2");
    assert_eq!(pay["startTime"], (T0 + 20 * MS) / 1_000);
    let tags = pay["tags"].as_array().unwrap();
    for expected in [
        json!({"key": "payload", "type": "binary", "value": "AQID"}),
        json!({"key": "ratio", "type": "float64", "value": 0.25}),
        json!({"key": "retry", "type": "bool", "value": false}),
        json!({"key": "items", "type": "string", "value": "[1,\"x\"]"}),
        json!({"key": "otel.status_code", "type": "string", "value": "OK"}),
    ] {
        assert!(tags.contains(&expected), "{expected} not in {tags:?}");
    }
    assert!(
        !tags
            .iter()
            .any(|t| t["key"] == "error" || t["key"] == "otel.scope.name")
    );
}

#[tokio::test]
async fn trace_not_found_and_bad_id() {
    let app = app().await;
    let res = get(&app, "/api/traces/00000000000000000000000000000abc").await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(
        res.json,
        json!({"data": null, "total": 0, "limit": 0, "offset": 0, "errors": [{"code": 404, "msg": "trace not found"}]})
    );
    assert!(bad_request("/api/traces/not-hex").await.contains("'traceID'"));
    assert!(
        bad_request(&format!("/api/traces/{TRACE_A}00"))
            .await
            .contains("'traceID'")
    );
}

#[tokio::test]
async fn search_by_service_and_operation() {
    assert_eq!(search("service=frontend").await, [TRACE_B, TRACE_A]);
    assert_eq!(search("service=checkout").await, [TRACE_A]);
    assert_eq!(search("service=frontend&operation=GET%20%2Fhealth").await, [TRACE_B]);
    assert_eq!(search("service=frontend&operation=nope").await, Vec::<String>::new());
    assert_eq!(search("service=frontend&limit=1").await, [TRACE_B]);
    let res = get(&app().await, "/api/traces?service=frontend").await;
    assert_eq!(res.json["total"], 2);
    assert_eq!(res.json["data"][0]["spans"][0]["operationName"], "GET /health");
}

#[tokio::test]
async fn search_by_tags_in_every_form() {
    let json_tags = "tags=%7B%22http.response.status_code%22%3A%22500%22%7D";
    assert_eq!(search(&format!("service=frontend&{json_tags}")).await, [TRACE_A]);
    assert_eq!(
        search("service=frontend&tags=%7B%22http.response.status_code%22%3A200%7D").await,
        [TRACE_B]
    );
    assert_eq!(search("service=frontend&tags=error%3Dtrue").await, [TRACE_A]);
    assert_eq!(
        search("service=frontend&tags=%7B%22error%22%3A%22true%22%7D").await,
        [TRACE_A]
    );
    assert_eq!(
        search("service=frontend&tags=server.address%3D%22redis-shard-2%22%20db.system%3Dredis").await,
        [TRACE_A]
    );
    assert_eq!(
        search("service=frontend&tags=http.request.method%3DGET%20db.system%3Dredis").await,
        Vec::<String>::new()
    );
    assert_eq!(search("service=frontend&tag=db.system:redis").await, [TRACE_A]);
    assert_eq!(
        search("service=frontend&tag=http.response.status_code:200").await,
        [TRACE_B]
    );
    // All filters must hold for one span: checkout's span has no error.
    assert_eq!(search("service=checkout&tags=error%3Dtrue").await, Vec::<String>::new());
}

#[tokio::test]
async fn search_by_durations_and_time() {
    assert_eq!(search("service=frontend&minDuration=100ms").await, [TRACE_A]);
    assert_eq!(
        search("service=frontend&minDuration=0.1s&maxDuration=2m").await,
        [TRACE_A]
    );
    assert_eq!(search("service=frontend&maxDuration=1ms").await, [TRACE_B]);
    assert_eq!(search("service=frontend&maxDuration=1000us").await, [TRACE_B]);
    assert_eq!(
        search("service=frontend&minDuration=2000%C2%B5s&maxDuration=2ms").await,
        [TRACE_A]
    );
    assert_eq!(search("service=frontend&minDuration=1h").await, Vec::<String>::new());
    let half = (T0 + 500 * MS) / 1_000;
    assert_eq!(search(&format!("service=frontend&start={half}")).await, [TRACE_B]);
    assert_eq!(search(&format!("service=frontend&end={half}")).await, [TRACE_A]);
    assert_eq!(
        search(&format!("service=frontend&start={}&end={half}", T0 / 1_000)).await,
        [TRACE_A]
    );
    let end = (T0 + 2_000 * MS) / 1_000;
    assert_eq!(
        search(&format!("service=frontend&end={end}&lookback=1s")).await,
        [TRACE_B]
    );
    assert_eq!(
        search(&format!("service=frontend&end={end}&lookback=1h")).await,
        [TRACE_B, TRACE_A]
    );
}

#[tokio::test]
async fn search_by_trace_ids_reports_missing_ones() {
    let res = get(&app().await, &format!("/api/traces?traceID={TRACE_A}&traceID=abc")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(trace_ids(&res.json), [TRACE_A]);
    assert_eq!(res.json["data"][0]["spans"].as_array().unwrap().len(), 3);
    assert_eq!(
        res.json["errors"],
        json!([{"msg": "trace not found", "traceID": "00000000000000000000000000000abc"}])
    );
    assert_eq!(
        search(&format!("traceID={TRACE_B}&traceID={TRACE_A}")).await,
        [TRACE_B, TRACE_A]
    );
}

#[tokio::test]
async fn search_errors_name_the_parameter() {
    assert_eq!(bad_request("/api/traces").await, "parameter 'service' is required");
    assert_eq!(
        bad_request("/api/traces?operation=x").await,
        "parameter 'service' is required"
    );
    for (name, value) in [
        ("minDuration", "100"),
        ("maxDuration", "3days"),
        ("start", "2024-01-01"),
        ("end", "-5"),
        ("limit", "lots"),
        ("tags", "%7Bbroken"),
        ("tag", "novalue"),
        ("lookback", "whenever"),
        ("traceID", "xyz"),
    ] {
        let msg = bad_request(&format!("/api/traces?service=frontend&{name}={value}")).await;
        assert!(msg.contains(&format!("'{name}'")), "{name}: {msg}");
    }
    let msg = bad_request("/api/traces?service=frontend&minDuration=2s&maxDuration=1s").await;
    assert!(msg.contains("maxDuration"), "{msg}");
}

#[tokio::test]
async fn dependencies_in_milliseconds() {
    let app = app().await;
    let end_ms = T0 / 1_000_000 + 10_000;
    let res = get(&app, &format!("/api/dependencies?endTs={end_ms}&lookback=60000")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        res.json,
        json!({"data": [{"parent": "frontend", "child": "checkout", "callCount": 1}],
               "total": 1, "limit": 0, "offset": 0, "errors": null})
    );
    let res = get(&app, &format!("/api/dependencies?endTs={end_ms}&lookback=1000")).await;
    assert_eq!(res.json["data"], json!([]));
    let res = get(
        &app,
        &format!("/api/dependencies?endTs={end_ms}&lookback=60000&service=nobody"),
    )
    .await;
    assert_eq!(res.json["data"], json!([]));
    assert!(bad_request("/api/dependencies?endTs=soon").await.contains("'endTs'"));
    assert!(
        bad_request("/api/dependencies?lookback=1h")
            .await
            .contains("'lookback'")
    );
}

#[tokio::test]
async fn queries_reach_the_store_converted() {
    let recorder = Arc::new(Recorder::default());
    let config = QueryApiConfig {
        default_search_limit: 3,
        max_search_limit: 10,
        ..Default::default()
    };
    let app = recorder_app(recorder.clone(), &config);
    get(
        &app,
        "/api/traces?service=web&limit=50&start=5&end=9&tags=a%3D1&tag=b:2&minDuration=1us",
    )
    .await;
    get(&app, "/api/traces?service=web").await;
    let queries = recorder.trace_queries.lock().unwrap().clone();
    assert_eq!(queries[0].limit, 10);
    assert_eq!((queries[0].start_ns, queries[0].end_ns), (Some(5_000), Some(9_000)));
    assert_eq!(queries[0].min_duration_ns, Some(1_000));
    assert_eq!(
        queries[0].tags,
        [
            TagFilter {
                key: "b".into(),
                value: "2".into()
            },
            TagFilter {
                key: "a".into(),
                value: "1".into()
            }
        ]
    );
    assert_eq!(queries[1].limit, 3);
    get(&app, "/api/dependencies?endTs=1000").await;
    get(&app, "/api/dependencies").await;
    let ranges = recorder.dependency_ranges.lock().unwrap().clone();
    assert_eq!(ranges[0], (0, 1_000_000_000));
    assert_eq!(ranges[1].1 - ranges[1].0, 24 * 3_600 * 1_000_000_000);
}

#[tokio::test]
async fn storage_failures_map_to_statuses() {
    let cases: [(fn() -> StorageError, StatusCode); 3] = [
        (
            || StorageError::Retryable("clickhouse at 10.1.2.3 refused".into()),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        (
            || StorageError::Permanent("table spans_v2 missing".into()),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        (
            || StorageError::InvalidQuery("too many tags".into()),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (fail, status) in cases {
        let app = recorder_app(
            Arc::new(Recorder {
                fail: Some(fail),
                ..Default::default()
            }),
            &QueryApiConfig::default(),
        );
        let res = get(&app, "/api/traces?service=web").await;
        assert_eq!(res.status, status);
        assert_eq!(res.json["errors"][0]["code"], status.as_u16());
        let msg = res.json["errors"][0]["msg"].as_str().unwrap();
        assert!(!msg.contains("10.1.2.3") && !msg.contains("spans_v2"), "{msg}");
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(res.headers["retry-after"], "1");
        }
        if status == StatusCode::BAD_REQUEST {
            assert_eq!(msg, "too many tags");
        }
    }
}
