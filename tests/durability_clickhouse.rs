//! No acknowledged span is lost when ClickHouse goes away: the write-ahead log absorbs the
//! backlog (even across a SIGKILL of hopscope), pushes back when its disk limit is
//! reached, and drains when ClickHouse returns. Runs Debian's clickhouse-server (18.16),
//! started by the test in its own directory.

#![allow(clippy::unwrap_used)]

#[path = "../storage/tests/support/mod.rs"]
mod clickhouse_support;
mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clickhouse_support::LegacyServer;
use common::{Hopscope, otlp};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;

fn trace_id(n: u64) -> Vec<u8> {
    otlp::numbered_trace_id(0xcd, n)
}

fn trace_request(n: u64, spans: u64, padding: usize) -> ExportTraceServiceRequest {
    otlp::request("ch-durable", otlp::trace_spans(&trace_id(n), spans, padding))
}

fn clickhouse_args(server: &LegacyServer, database: &str) -> Vec<String> {
    vec![
        "--clickhouse-url".into(),
        server.url(),
        "--clickhouse-database".into(),
        database.into(),
    ]
}

/// Sends one trace per request at a steady pace until `until`, recording what was acked.
async fn load(hopscope: &Hopscope, first: u64, until: Instant, acked: &mut HashMap<u64, u64>) {
    let mut client = TraceServiceClient::connect(hopscope.grpc_endpoint())
        .await
        .expect("connect");
    let mut n = first;
    while Instant::now() < until {
        let spans = 3 + n % 7;
        if client.export(trace_request(n, spans, 32)).await.is_ok() {
            acked.insert(n, spans);
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

async fn assert_served_exactly_once(hopscope: &Hopscope, acked: &HashMap<u64, u64>) {
    for (n, spans) in acked {
        let id = hex::encode(trace_id(*n));
        let trace = hopscope.wait_for_trace(&id, *spans as usize).await;
        let served = trace["spans"].as_array().unwrap().len() as u64;
        assert_eq!(
            served, *spans,
            "trace {id}: {served} spans served, {spans} acknowledged"
        );
    }
}

async fn wait_drained(hopscope: &Hopscope) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while hopscope.metric("hopscope_wal_backlog_records").await > 0.0 {
        assert!(
            Instant::now() < deadline,
            "the log did not drain into clickhouse within 90 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_down_for_30s_with_a_sigkill_in_between_loses_nothing() {
    let mut server = LegacyServer::start();
    let args = clickhouse_args(&server, "durability_outage");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let hopscope = Hopscope::start(&args).await;
    let mut acked = HashMap::new();

    load(&hopscope, 0, Instant::now() + Duration::from_secs(2), &mut acked).await;
    server.kill();
    let outage = Instant::now();
    load(&hopscope, 10_000, Instant::now() + Duration::from_secs(12), &mut acked).await;
    let data_dir = hopscope.kill_hard();

    // hopscope restarts while ClickHouse is still down, and keeps acknowledging.
    let hopscope = Hopscope::start_in(data_dir, &args).await;
    load(&hopscope, 20_000, outage + Duration::from_secs(31), &mut acked).await;
    assert!(outage.elapsed() >= Duration::from_secs(30));
    server.spawn();
    load(&hopscope, 30_000, Instant::now() + Duration::from_secs(2), &mut acked).await;

    assert!(acked.len() > 200, "only {} requests acknowledged", acked.len());
    wait_drained(&hopscope).await;
    assert_served_exactly_once(&hopscope, &acked).await;
    assert_eq!(hopscope.metric("hopscope_spans_dropped_total").await, 0.0);
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_log_pushes_back_with_bounded_memory_and_resumes_after_the_drain() {
    let mut server = LegacyServer::start();
    let mut args = clickhouse_args(&server, "durability_backpressure");
    args.extend(["--wal-max-backlog-bytes".into(), (8 * 1024 * 1024).to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let hopscope = Hopscope::start(&args).await;
    let rss_at_start = rss_bytes(hopscope.child.id());
    server.kill();

    let mut grpc = TraceServiceClient::connect(hopscope.grpc_endpoint()).await.unwrap();
    let mut acked = HashMap::new();
    let mut grpc_pushback = None;
    for n in 0..2_000u64 {
        match grpc.export(trace_request(n, 10, 2_000)).await {
            Ok(_) => {
                acked.insert(n, 10);
            }
            Err(status) => {
                grpc_pushback = Some(status);
                break;
            }
        }
    }
    let status = grpc_pushback.expect("the log never filled up");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        !status.details().is_empty(),
        "RESOURCE_EXHAUSTED carries RetryInfo so clients retry"
    );

    let body = trace_request(999_999, 10, 2_000).encode_to_vec();
    let response = hopscope
        .client
        .post(format!("{}/v1/traces", hopscope.http_endpoint()))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert!(response.headers().contains_key("retry-after"));

    // Keep pushing while full: memory must not grow with the refused load.
    for n in 2_000..2_300u64 {
        assert!(grpc.export(trace_request(n, 10, 2_000)).await.is_err());
    }
    let rss = rss_bytes(hopscope.child.id());
    assert!(
        rss < rss_at_start + 200 * 1024 * 1024,
        "RSS grew from {rss_at_start} to {rss} bytes while refusing load"
    );
    assert!(rss < 400 * 1024 * 1024, "RSS {rss} bytes");

    server.spawn();
    wait_drained(&hopscope).await;
    grpc.export(trace_request(5_000, 10, 2_000))
        .await
        .expect("ingest resumes after the drain");
    acked.insert(5_000, 10);
    assert_served_exactly_once(&hopscope, &acked).await;
}
