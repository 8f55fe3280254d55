//! The official OpenTelemetry Python SDK sends a known trace over OTLP/gRPC and
//! OTLP/HTTP (protobuf); hopscope must serve it back through the Jaeger API field by field
//! and find it with searches.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Hopscope, span_named, tag, trace_ids, typed_tag};
use serde_json::Value;

/// The Python interpreter with the OpenTelemetry SDK installed (`scripts/test.sh` creates
/// `.venv`; `HOPSCOPE_TEST_PYTHON` overrides).
fn python() -> PathBuf {
    if let Ok(path) = std::env::var("HOPSCOPE_TEST_PYTHON") {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run scripts/test.sh (it installs tests/python/requirements.txt), \
         or set HOPSCOPE_TEST_PYTHON",
        venv.display()
    );
    venv
}

fn send_with_python(protocol: &str, endpoint: &str, service: &str) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/send_spans.py");
    let output = Command::new(python())
        .arg(script)
        .args(["--protocol", protocol, "--endpoint", endpoint, "--service", service])
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "python sender failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("python printed no JSON ({e}): {stdout}"))
}

async fn check_python_trace(hopscope: &Hopscope, protocol: &str, endpoint: &str) {
    let service = format!("py-{protocol}-checkout");
    let sent = send_with_python(protocol, endpoint, &service);
    let trace_id = sent["trace_id"].as_str().expect("trace id");
    let trace = hopscope.wait_for_trace(trace_id, 2).await;

    assert_eq!(trace["traceID"], trace_id);
    let root = span_named(&trace, "GET /accounts/{id}");
    let child = span_named(&trace, "GET");
    assert_eq!(root["spanID"], sent["root_span_id"]);
    assert_eq!(child["spanID"], sent["child_span_id"]);
    assert_eq!(root["traceID"], trace_id);

    // Parentage and links.
    let child_refs = child["references"].as_array().expect("references");
    assert_eq!(child_refs[0]["refType"], "CHILD_OF");
    assert_eq!(child_refs[0]["spanID"], sent["root_span_id"]);
    assert_eq!(child_refs[0]["traceID"], trace_id);
    let root_refs = root["references"].as_array().expect("references");
    assert!(
        root_refs.iter().all(|r| r["refType"] != "CHILD_OF"),
        "root has a parent: {root_refs:?}"
    );
    let link = root_refs
        .iter()
        .find(|r| r["refType"] == "FOLLOWS_FROM")
        .expect("link as FOLLOWS_FROM");
    assert_eq!(link["traceID"], sent["linked_trace_id"]);
    assert_eq!(link["spanID"], sent["linked_span_id"]);

    // Kinds and status.
    assert_eq!(typed_tag(&root["tags"], "span.kind", "string"), "server");
    assert_eq!(typed_tag(&child["tags"], "span.kind", "string"), "client");
    assert_eq!(typed_tag(&child["tags"], "otel.status_code", "string"), "ERROR");
    assert_eq!(typed_tag(&child["tags"], "error", "bool"), true);
    assert_eq!(
        typed_tag(&child["tags"], "otel.status_description", "string"),
        "timeout talking to redis-shard-2"
    );

    // Times: the child slept 120 ms inside the root, which slept 20 ms before it.
    let (root_start, root_dur) = (root["startTime"].as_u64().unwrap(), root["duration"].as_u64().unwrap());
    let (child_start, child_dur) = (
        child["startTime"].as_u64().unwrap(),
        child["duration"].as_u64().unwrap(),
    );
    assert!(child_dur >= 120_000, "child duration {child_dur} µs");
    assert!(
        root_dur >= child_dur + 20_000,
        "root {root_dur} µs vs child {child_dur} µs"
    );
    assert!(child_start >= root_start + 20_000 && child_start + child_dur <= root_start + root_dur);
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    assert!(
        root_start > now_us - 120_000_000 && root_start < now_us,
        "start time {root_start} is not recent µs"
    );

    // Attributes keep their types.
    assert_eq!(typed_tag(&child["tags"], "db.system.name", "string"), "redis");
    assert_eq!(typed_tag(&child["tags"], "server.port", "int64"), 6379);
    assert_eq!(typed_tag(&child["tags"], "cache.hit", "bool"), false);
    assert_eq!(typed_tag(&child["tags"], "retry.delays", "string"), "[1.5,2.5]");
    assert_eq!(typed_tag(&root["tags"], "http.response.status_code", "int64"), 500);
    assert_eq!(typed_tag(&child["tags"], "hopscope.hop_kind", "string"), "cache");
    assert_eq!(
        typed_tag(&child["tags"], "hopscope.peer", "string"),
        "redis-shard-2:6379"
    );
    assert_eq!(typed_tag(&root["tags"], "hopscope.hop_kind", "string"), "http");
    assert_eq!(typed_tag(&child["tags"], "otel.scope.name", "string"), "hopscope.test");

    // Events become logs.
    let logs = child["logs"].as_array().expect("logs");
    assert_eq!(logs.len(), 1);
    let log_time = logs[0]["timestamp"].as_u64().unwrap();
    assert!(log_time >= child_start && log_time <= child_start + child_dur);
    assert_eq!(typed_tag(&logs[0]["fields"], "event", "string"), "cache miss");
    assert_eq!(typed_tag(&logs[0]["fields"], "key.count", "int64"), 3);

    // The resource becomes the process.
    let process = &trace["processes"][root["processID"].as_str().unwrap()];
    assert_eq!(process["serviceName"], service.as_str());
    assert_eq!(typed_tag(&process["tags"], "host.name", "string"), "vm-py-1");
    assert_eq!(typed_tag(&process["tags"], "service.version", "string"), "1.2.3");
    assert_eq!(typed_tag(&process["tags"], "cloud.provider", "string"), "aws");
    assert_eq!(
        typed_tag(&process["tags"], "telemetry.sdk.language", "string"),
        "python"
    );
    assert!(
        tag(&process["tags"], "service.name").is_none(),
        "service.name is the serviceName, not a tag"
    );
    assert_eq!(child["processID"], root["processID"]);

    // Searches: each filter alone finds the trace; filters hold on one and the same span.
    let search = |query: String| async move { trace_ids(&hopscope.get_ok(&format!("/api/traces?{query}")).await) };
    let found = |ids: Vec<String>| ids.iter().any(|id| id == trace_id);
    assert!(found(search(format!("service={service}")).await));
    assert!(found(search(format!("service={service}&operation=GET")).await));
    assert!(found(
        search(format!(
            "service={service}&tags=%7B%22db.system.name%22%3A%22redis%22%7D"
        ))
        .await
    ));
    assert!(found(search(format!("service={service}&tags=error%3Dtrue")).await));
    assert!(found(
        search(format!("service={service}&operation=GET&minDuration=100ms")).await
    ));
    assert!(!found(
        search(format!("service={service}&operation=GET&maxDuration=50ms")).await
    ));
    assert!(!found(
        search(format!(
            "service={service}&operation=GET&tags=http.route%3D%2Faccounts%2F%7Bid%7D"
        ))
        .await
    ));
    assert!(!found(
        search(format!("service={service}&tags=db.system.name%3Dmysql")).await
    ));

    // Services and operations list it.
    let services = hopscope.get_ok("/api/services").await;
    assert!(
        services["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == service.as_str())
    );
    let ops = hopscope.get_ok(&format!("/api/services/{service}/operations")).await;
    for name in ["GET /accounts/{id}", "GET", "warmup"] {
        assert!(
            ops["data"].as_array().unwrap().iter().any(|o| o == name),
            "{name} missing from {ops}"
        );
    }
    let client_ops = hopscope
        .get_ok(&format!("/api/operations?service={service}&spanKind=client"))
        .await;
    assert_eq!(
        client_ops["data"],
        serde_json::json!([{"name": "GET", "spanKind": "client"}])
    );
}

#[tokio::test]
async fn python_sdk_over_grpc_and_http() {
    let hopscope = Hopscope::start(&[]).await;
    check_python_trace(&hopscope, "grpc", &hopscope.grpc_endpoint()).await;
    check_python_trace(&hopscope, "http", &hopscope.http_endpoint()).await;
}
