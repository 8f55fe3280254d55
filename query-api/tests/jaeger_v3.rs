//! The api_v3 routes through `Router::oneshot`: OTLP JSON results and gRPC-gateway errors.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};

const WINDOW: &str = "query.start_time_min=2023-11-14T22:00:00Z&query.start_time_max=2023-11-14T23:00:00Z";

fn spans(json: &Value) -> Vec<&Value> {
    json["result"]["resourceSpans"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rs| rs["scopeSpans"].as_array().unwrap())
        .flat_map(|ss| ss["spans"].as_array().unwrap())
        .collect()
}

fn trace_ids(json: &Value) -> Vec<&str> {
    let mut ids: Vec<&str> = spans(json).iter().map(|s| s["traceId"].as_str().unwrap()).collect();
    ids.dedup();
    ids
}

async fn v3_error(uri: &str, status: StatusCode) -> String {
    let res = get(&app().await, uri).await;
    assert_eq!(res.status, status, "{uri}: {}", res.json);
    assert_eq!(res.json["error"]["httpCode"], status.as_u16());
    res.json["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn services_and_operations() {
    let app = app().await;
    let res = get(&app, "/api/v3/services").await;
    assert_eq!(
        (res.status, res.json),
        (StatusCode::OK, json!({"services": ["checkout", "frontend"]}))
    );
    let res = get(&app, "/api/v3/operations?service=frontend&span_kind=client").await;
    assert_eq!(
        res.json,
        json!({"operations": [{"name": "redis GET", "spanKind": "client"}]})
    );
    let res = get(&app, "/api/v3/operations?service=frontend&spanKind=server").await;
    assert_eq!(
        res.json,
        json!({"operations": [{"name": "GET /checkout", "spanKind": "server"}, {"name": "GET /health", "spanKind": "server"}]})
    );
    let res = get(&app, "/api/v3/operations?service=checkout").await;
    assert_eq!(
        res.json,
        json!({"operations": [{"name": "POST /pay", "spanKind": "server"}]})
    );
    assert!(
        v3_error("/api/v3/operations", StatusCode::BAD_REQUEST)
            .await
            .contains("'service'")
    );
    assert!(
        v3_error("/api/v3/operations?service=x&span_kind=odd", StatusCode::BAD_REQUEST)
            .await
            .contains("span_kind")
    );
}

#[tokio::test]
async fn trace_by_id_is_otlp_json() {
    let res = get(&app().await, &format!("/api/v3/traces/{TRACE_A}")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.json);
    let resource_spans = res.json["result"]["resourceSpans"].as_array().unwrap();
    assert_eq!(resource_spans.len(), 2);
    let frontend = &resource_spans[0];
    assert_eq!(
        frontend["resource"]["attributes"][0],
        json!({"key": "service.name", "value": {"stringValue": "frontend"}})
    );
    assert_eq!(frontend["scopeSpans"][0]["scope"]["name"], "io.opentelemetry.http");
    let root = &frontend["scopeSpans"][0]["spans"][0];
    assert_eq!(root["traceId"], TRACE_A);
    assert_eq!(root["spanId"], ROOT);
    assert_eq!(root["name"], "GET /checkout");
    assert_eq!(root["kind"], 2);
    assert_eq!(root["startTimeUnixNano"], T0.to_string());
    assert_eq!(root["endTimeUnixNano"], (T0 + 120 * MS).to_string());
    assert_eq!(root["status"], json!({"message": "boom", "code": 2}));
    assert_eq!(
        root["attributes"][1],
        json!({"key": "http.response.status_code", "value": {"intValue": "500"}})
    );
    assert_eq!(root["events"][0]["name"], "exception");
    assert_eq!(root["links"][0]["traceId"], TRACE_B);
    let redis = &frontend["scopeSpans"][0]["spans"][1];
    assert_eq!(redis["parentSpanId"], ROOT);
    assert_eq!(resource_spans[1]["scopeSpans"][0]["spans"][0]["spanId"], PAY);
}

#[tokio::test]
async fn trace_by_id_errors() {
    let msg = v3_error("/api/v3/traces/00000000000000000000000000000abc", StatusCode::NOT_FOUND).await;
    assert_eq!(msg, "trace not found");
    let msg = v3_error("/api/v3/traces/zzz", StatusCode::BAD_REQUEST).await;
    assert!(msg.starts_with("malformed parameter trace_id"), "{msg}");
}

#[tokio::test]
async fn find_traces_with_each_parameter() {
    let app = app().await;
    let find = |query: String| {
        let app = app.clone();
        async move {
            let res = get(&app, &format!("/api/v3/traces?{WINDOW}&{query}")).await;
            assert_eq!(res.status, StatusCode::OK, "{query}: {}", res.json);
            trace_ids(&res.json).into_iter().map(str::to_owned).collect::<Vec<_>>()
        }
    };
    assert_eq!(find("query.service_name=frontend".into()).await, [TRACE_B, TRACE_A]);
    assert_eq!(find("query.serviceName=checkout".into()).await, [TRACE_A]);
    assert_eq!(
        find("query.service_name=frontend&query.operation_name=GET%20%2Fhealth".into()).await,
        [TRACE_B]
    );
    assert_eq!(
        find("query.service_name=frontend&query.duration_min=100ms".into()).await,
        [TRACE_A]
    );
    assert_eq!(
        find("query.service_name=frontend&query.durationMax=1ms".into()).await,
        [TRACE_B]
    );
    assert_eq!(
        find("query.service_name=frontend&query.search_depth=1".into()).await,
        [TRACE_B]
    );
    assert_eq!(
        find("query.service_name=frontend&query.attributes=%7B%22db.system%22%3A%22redis%22%7D".into()).await,
        [TRACE_A]
    );
    assert_eq!(
        find("query.service_name=frontend&query.attributes.error=true".into()).await,
        [TRACE_A]
    );
    // A window that ends before any span started finds nothing, and says so with 200.
    let res = get(
        &app,
        "/api/v3/traces?query.service_name=frontend&query.start_time_min=2023-11-14T21:00:00Z&query.start_time_max=2023-11-14T22:00:00Z",
    )
    .await;
    assert_eq!(
        (res.status, res.json),
        (StatusCode::OK, json!({"result": {"resourceSpans": []}}))
    );
    // A trace's spans are all returned, not only the matching one.
    let res = get(&app, &format!("/api/v3/traces?{WINDOW}&query.service_name=checkout")).await;
    assert_eq!(spans(&res.json).len(), 3);
}

#[tokio::test]
async fn find_traces_errors() {
    let bad = StatusCode::BAD_REQUEST;
    let msg = v3_error("/api/v3/traces?query.service_name=frontend", bad).await;
    assert_eq!(msg, "query.start_time_min and query.start_time_max are required");
    let msg = v3_error(
        "/api/v3/traces?query.start_time_min=yesterday&query.start_time_max=2023-11-14T23:00:00Z",
        bad,
    )
    .await;
    assert!(msg.starts_with("malformed parameter query.start_time_min"), "{msg}");
    for (name, value) in [
        ("query.duration_min", "10"),
        ("query.durationMax", "1d"),
        ("query.search_depth", "many"),
        ("query.attributes", "error%3Dtrue"),
    ] {
        let msg = v3_error(&format!("/api/v3/traces?{WINDOW}&{name}={value}"), bad).await;
        assert!(msg.contains(name), "{name}: {msg}");
    }
}
