//! No acknowledged span is ever lost: kills under load, restarts, damaged log files.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Hopscope, otlp};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tokio::sync::Mutex;

/// One request: a trace of `spans` spans whose id is derived from `n`.
fn trace_request(n: u64, spans: u64) -> ExportTraceServiceRequest {
    otlp::request(
        "durable",
        otlp::trace_spans(&otlp::numbered_trace_id(0xab, n), spans, 0),
    )
}

fn trace_hex(n: u64) -> String {
    hex::encode(otlp::numbered_trace_id(0xab, n))
}

/// Checks that every acknowledged trace is served with exactly its spans, once each.
async fn assert_all_served(hopscope: &Hopscope, acked: &HashMap<u64, u64>) {
    for (n, spans) in acked {
        let trace = hopscope.wait_for_trace(&trace_hex(*n), *spans as usize).await;
        let served = trace["spans"].as_array().unwrap();
        assert_eq!(
            served.len() as u64,
            *spans,
            "trace {n} served {} spans, acknowledged {spans}",
            served.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_span() {
    let hopscope = Hopscope::start(&[]).await;
    let acked: Arc<Mutex<HashMap<u64, u64>>> = Arc::default();
    let stop_at = Instant::now() + Duration::from_secs(20);
    let mut clients = Vec::new();
    for worker in 0..4u64 {
        let endpoint = hopscope.grpc_endpoint();
        let acked = Arc::clone(&acked);
        clients.push(tokio::spawn(async move {
            let Ok(mut client) = TraceServiceClient::connect(endpoint).await else {
                return;
            };
            for i in 0.. {
                let n = worker * 1_000_000 + i;
                let spans = 5 + n % 20;
                // Every request is acknowledged or fails; the loop ends when the server is gone.
                match client.export(trace_request(n, spans)).await {
                    Ok(_) => {
                        acked.lock().await.insert(n, spans);
                    }
                    Err(_) => return,
                }
                if Instant::now() > stop_at {
                    return;
                }
            }
        }));
    }
    // Let the load run, then kill the process in the middle of it.
    while acked.lock().await.len() < 300 {
        assert!(Instant::now() < stop_at, "load did not get going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let data_dir = hopscope.kill_hard();
    for client in clients {
        client.await.unwrap();
    }
    let acked = acked.lock().await.clone();
    assert!(acked.len() >= 300);

    let restarted = Hopscope::start_in(data_dir, &[]).await;
    restarted.wait_ready_to_query().await;
    assert_all_served(&restarted, &acked).await;
    let accepted_spans: u64 = acked.values().sum();
    assert!(restarted.metric("hopscope_store_spans_written_total").await >= accepted_spans as f64);
    assert_eq!(restarted.metric("hopscope_spans_dropped_total").await, 0.0);
}

async fn send(hopscope: &Hopscope, n: u64, spans: u64) {
    let mut client = TraceServiceClient::connect(hopscope.grpc_endpoint()).await.unwrap();
    client.export(trace_request(n, spans)).await.expect("acknowledged");
}

fn segment_files(data_dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(data_dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn restart_after_sigterm_keeps_everything() {
    let mut hopscope = Hopscope::start(&[]).await;
    send(&hopscope, 1, 7).await;
    hopscope.wait_for_trace(&trace_hex(1), 7).await;
    assert!(hopscope.terminate().success());
    let data_dir = std::mem::replace(&mut hopscope.data_dir, tempfile::tempdir().unwrap());
    drop(hopscope);
    let restarted = Hopscope::start_in(data_dir, &[]).await;
    restarted.wait_ready_to_query().await;
    restarted.wait_for_trace(&trace_hex(1), 7).await;
}

#[tokio::test]
async fn torn_tails_and_bit_flips_are_skipped_and_the_rest_is_served() {
    let hopscope = Hopscope::start(&[]).await;
    for n in 10..13 {
        send(&hopscope, n, 3).await;
    }
    hopscope.wait_for_trace(&trace_hex(12), 3).await;
    let data_dir = hopscope.kill_hard();

    // The three requests are records 1..=3 of the only segment with data. Flip one
    // payload byte of record 2, then leave half a frame at the end, as a crash mid-write.
    let segment = segment_files(data_dir.path())
        .into_iter()
        .find(|p| std::fs::metadata(p).unwrap().len() > 8)
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let first_len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    let second = 8 + 16 + first_len;
    bytes[second + 16 + 5] ^= 0x20;
    bytes.extend_from_slice(&[0x40, 0, 0, 0, 1, 2, 3]);
    std::fs::write(&segment, bytes).unwrap();

    let restarted = Hopscope::start_in(data_dir, &[]).await;
    restarted.wait_ready_to_query().await;
    restarted.wait_for_trace(&trace_hex(10), 3).await;
    restarted.wait_for_trace(&trace_hex(12), 3).await;
    let (status, _) = restarted.get(&format!("/api/traces/{}", trace_hex(11))).await;
    assert_eq!(status, 404, "the damaged record is skipped, not served half-read");
    // And the log keeps taking new data after the damage.
    send(&restarted, 13, 4).await;
    restarted.wait_for_trace(&trace_hex(13), 4).await;

    // A segment that is garbage from the first byte does not stop start-up either.
    let data_dir = restarted.kill_hard();
    std::fs::write(data_dir.path().join("wal").join("00000000000000000000.wal"), b"garbage").unwrap();
    let again = Hopscope::start_in(data_dir, &[]).await;
    again.wait_ready_to_query().await;
    again.wait_for_trace(&trace_hex(13), 4).await;
}

#[tokio::test]
async fn metrics_and_health_endpoints() {
    let hopscope = Hopscope::start(&[]).await;
    send(&hopscope, 20, 5).await;
    hopscope.wait_for_trace(&trace_hex(20), 5).await;
    let health = hopscope.client.get(hopscope.query_url("/health")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    hopscope.wait_ready_to_query().await;
    assert_eq!(hopscope.metric("hopscope_spans_accepted_total").await, 5.0);
    assert_eq!(hopscope.metric("hopscope_spans_received_total").await, 5.0);
    assert_eq!(hopscope.metric("hopscope_store_spans_written_total").await, 5.0);
    assert_eq!(hopscope.metric("hopscope_spans_dropped_total").await, 0.0);
    assert!(hopscope.metric("hopscope_wal_bytes").await > 0.0);
    assert_eq!(hopscope.metric("hopscope_store_write_seconds_count").await, 1.0);
}
