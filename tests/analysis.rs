//! End to end: the real binary with a config file holding a cloud tagging rule, SLA
//! levels and layers; fixture traces sent as OTLP/HTTP; the analysis API read back.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;

use common::Hopscope;
use hopscope_schemas::SpanKind;
use hopscope_schemas::fixtures::{self, T0, resource, span, trace_id};
use hopscope_schemas::otlp::traces_data;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

const CONFIG: &str = r#"
[[cloud.rules]]
match_host = "dc1-*"
kind = "private"
provider = "own-dc"
region = "fra-1"

[sla]
default_level = "B"
[sla.levels.B]
p99_ms = 50.0
max_error_rate = 0.01
[[sla.rules]]
service = "gateway"
level = "B"

[layers]
order = ["edge", "business", "data"]
[[layers.rules]]
service = "web"
layer = "edge"
[[layers.rules]]
service = "orders"
layer = "business"
[[layers.rules]]
service = "inventory"
layer = "data"
"#;

#[tokio::test]
async fn analysis_api_end_to_end_with_cloud_rules() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hopscope.toml");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(CONFIG.as_bytes())
        .unwrap();
    let hopscope = Hopscope::start(&["--config", path.to_str().unwrap()]).await;

    // A gateway on a private-DC host the SDK did not tag: the rule must tag it.
    let gw = resource("gateway", "dc1-gw-1", None);
    let mut spans = vec![
        span(&gw, 900, 9001, None, "GET /home", SpanKind::Server, 0, 30_000)
            .http("gateway")
            .build(),
        span(&gw, 900, 9002, Some(9001), "GET", SpanKind::Client, 1_000, 25_000)
            .redis("redis-shard-9")
            .build(),
    ];
    spans.extend(fixtures::async_queue());
    spans.extend(fixtures::layering());
    spans.extend(fixtures::db_lock_wait());
    let request = ExportTraceServiceRequest {
        resource_spans: traces_data(spans.iter()).resource_spans,
    };
    let response = hopscope
        .client
        .post(format!("{}/v1/traces", hopscope.http_endpoint()))
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let gw_trace = trace_id(900).to_hex();
    hopscope.wait_for_trace(&gw_trace, 2).await;
    hopscope
        .wait_for_trace(&trace_id(fixtures::LOCK_TRACE).to_hex(), 4)
        .await;
    hopscope
        .wait_for_trace(&trace_id(fixtures::LAYER_TRACE).to_hex(), 7)
        .await;
    let queue = trace_id(fixtures::QUEUE_TRACE).to_hex();
    hopscope.wait_for_trace(&queue, 4).await;

    let a = hopscope.get_ok(&format!("/api/v1/traces/{gw_trace}/analysis")).await;
    assert_eq!(a["culprit"]["peer"], "redis-shard-9:6379");
    assert_eq!(a["culprit"]["cloud_kind"], "private", "{a}");
    let a = hopscope.get_ok(&format!("/api/v1/traces/{queue}/analysis")).await;
    assert_eq!(a["culprit"]["operation"], "POST /order");
    assert_eq!(a["background"][0]["culprit"]["operation"], "queue wait");
    assert_eq!(a["background"][0]["culprit"]["self_time_us"], 100_000);

    let window = format!("start={}&end={}", T0 / 1_000, T0 / 1_000 + 10_000_000);
    let hosts = hopscope
        .get_ok(&format!("/api/v1/middleware?kind=host&{window}&cloud_kind=private"))
        .await;
    let names: Vec<&str> = hosts["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["peer"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"dc1-gw-1"), "{hosts}");

    let sla = hopscope.get_ok(&format!("/api/v1/sla?{window}")).await;
    let gw_sla = sla["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["service"] == "gateway")
        .unwrap();
    assert_eq!(
        (gw_sla["level"].as_str(), gw_sla["status"].as_str()),
        (Some("B"), Some("met"))
    );

    let deps = hopscope.get_ok(&format!("/api/v1/dependencies?{window}")).await;
    let kinds: Vec<&str> = deps["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["upward_call", "cycle"]);

    let mismatches = hopscope.get_ok(&format!("/api/v1/mismatches?{window}")).await;
    assert_eq!(mismatches["mismatches"][0]["reason"], "client_timeout");

    let (status, body) = hopscope.get(&format!("/api/v1/middleware?kind=nosql&{window}")).await;
    assert_eq!(status, 400, "{body}");
}
