//! Shared helpers for the receiver integration tests: recording and failing writers,
//! request builders, servers on 127.0.0.1:0, a gzip bomb and a peak-memory probe.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use flate2::{Compress, Compression, Crc, FlushCompress};
use hopscope_collector::{Ingest, OtlpGrpcReceiver, OtlpHttpReceiver, RecordSink};
use hopscope_schemas::SpanRecord;
use hopscope_storage::{SpanWriter, StorageError};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tokio::sync::oneshot;

/// Keeps every span written; fails every write when `fail` is set.
#[derive(Default)]
pub struct Recorder {
    pub spans: Mutex<Vec<SpanRecord>>,
    pub fail: Option<fn() -> StorageError>,
}

impl Recorder {
    pub fn failing(fail: fn() -> StorageError) -> Arc<Self> {
        Arc::new(Self {
            fail: Some(fail),
            ..Default::default()
        })
    }

    pub fn count(&self) -> usize {
        self.spans.lock().unwrap().len()
    }
}

#[async_trait]
impl SpanWriter for Recorder {
    async fn write_spans(&self, spans: Vec<SpanRecord>) -> hopscope_storage::Result<()> {
        if let Some(fail) = self.fail {
            return Err(fail());
        }
        self.spans.lock().unwrap().extend(spans);
        Ok(())
    }
}

/// Appends each record straight into a store (decoded as the feeder decodes log
/// records), so tests see the spans as soon as the request is answered.
pub struct StoreSink(pub Arc<dyn SpanWriter>);

#[async_trait]
impl RecordSink for StoreSink {
    async fn append(&self, record: Bytes) -> hopscope_storage::Result<()> {
        let written = self.0.write_otlp(Arc::from([record])).await?;
        assert!(
            written.undecodable.is_empty(),
            "the ingest path logged an undecodable record"
        );
        Ok(())
    }
}

/// An ingest path writing through [`StoreSink`] into `writer`.
pub fn ingest_into(writer: Arc<dyn SpanWriter>) -> Ingest {
    Ingest::new(Arc::new(StoreSink(writer)))
}

static NEXT_ID: AtomicU8 = AtomicU8::new(1);

/// A valid span with fresh ids.
pub fn span(name: &str) -> Span {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed).max(1);
    Span {
        trace_id: vec![id; 16],
        span_id: vec![id; 8],
        name: name.to_owned(),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_001_000_000_000,
        ..Default::default()
    }
}

pub fn string_attr(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

/// One resource (`service.name = checkout`) holding `spans`.
pub fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string_attr("service.name", "checkout".into())],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Two valid spans and three invalid ones (short trace id, zero span id, end before start).
pub fn partly_bad_request() -> ExportTraceServiceRequest {
    let mut short = span("short-trace-id");
    short.trace_id = vec![1; 5];
    let mut zero = span("zero-span-id");
    zero.span_id = vec![0; 8];
    let mut backwards = span("backwards");
    backwards.end_time_unix_nano = backwards.start_time_unix_nano - 1;
    request(vec![span("ok-1"), short, zero, backwards, span("ok-2")])
}

pub struct Server {
    pub addr: SocketAddr,
    pub ingest: Arc<Ingest>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Signals shutdown and waits (at most 10 s) for `serve` to return `Ok`.
    pub async fn shutdown(self) {
        self.stop.send(()).unwrap();
        let joined = tokio::time::timeout(std::time::Duration::from_secs(10), self.task).await;
        joined.expect("serve returns after shutdown").unwrap().unwrap();
    }
}

async fn bind() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()
}

pub async fn grpc_server(writer: Arc<dyn SpanWriter>, max_request_bytes: usize) -> Server {
    serve(writer, |ingest, listener, shutdown| {
        let receiver = OtlpGrpcReceiver::builder(ingest)
            .max_request_bytes(max_request_bytes)
            .build();
        tokio::spawn(receiver.serve(listener, shutdown))
    })
    .await
}

pub async fn http_server(writer: Arc<dyn SpanWriter>, max_request_bytes: usize) -> Server {
    serve(writer, |ingest, listener, shutdown| {
        let receiver = OtlpHttpReceiver::builder(ingest)
            .max_request_bytes(max_request_bytes)
            .build();
        tokio::spawn(receiver.serve(listener, shutdown))
    })
    .await
}

/// A receiver on 127.0.0.1:0 writing through `writer`; `spawn` builds it around the
/// ingest and starts it serving on the listener until the shutdown future resolves.
async fn serve(
    writer: Arc<dyn SpanWriter>,
    spawn: impl FnOnce(
        Arc<Ingest>,
        tokio::net::TcpListener,
        std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    ) -> tokio::task::JoinHandle<std::io::Result<()>>,
) -> Server {
    let listener = bind().await;
    let addr = listener.local_addr().unwrap();
    let ingest = Arc::new(ingest_into(writer));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = spawn(
        Arc::clone(&ingest),
        listener,
        Box::pin(async move {
            let _ = stopped.await;
        }),
    );
    Server {
        addr,
        ingest,
        stop,
        task,
    }
}

/// Requires the partial-success answer to [`partly_bad_request`]: its three bad spans
/// rejected, each with its reason in the message.
pub fn assert_rejects_the_bad_spans(rejected_spans: i64, error_message: &str) {
    assert_eq!(rejected_spans, 3);
    for needle in [
        "trace_id has 5 bytes, expected 16",
        "span_id is all zeros",
        "is before start_time_unix_nano",
    ] {
        assert!(error_message.contains(needle), "{error_message}");
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A valid gzip stream of `mib` MiB of zeros, about 1 KiB per MiB, built without
/// compressing all of it: one sync-flushed deflate block of 1 MiB of zeros is repeated
/// (its back-references only ever see zeros), then a final empty block and the trailer.
pub fn gzip_bomb(mib: u32) -> Vec<u8> {
    let chunk = vec![0u8; 1 << 20];
    let mut deflate = Compress::new(Compression::best(), false);
    let mut block = Vec::with_capacity(8 << 10);
    deflate.compress_vec(&chunk, &mut block, FlushCompress::Sync).unwrap();
    assert_eq!(deflate.total_in(), 1 << 20, "one call must consume the chunk");
    let mut chunk_crc = Crc::new();
    chunk_crc.update(&chunk);
    let mut crc = Crc::new();
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    for _ in 0..mib {
        out.extend_from_slice(&block);
        crc.combine(&chunk_crc);
    }
    out.extend_from_slice(&[0x03, 0x00]); // final, fixed-Huffman, empty block
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&((u64::from(mib) << 20) as u32).to_le_bytes());
    out
}

/// Peak resident memory of this process so far, in bytes (0 where unknown).
pub fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

#[test]
fn gzip_bomb_is_valid_gzip() {
    use std::io::Read;
    let bomb = gzip_bomb(8);
    assert!(bomb.len() < 16 << 10, "{}", bomb.len());
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&bomb[..]).read_to_end(&mut out).unwrap();
    assert_eq!(out.len(), 8 << 20);
    assert!(out.iter().all(|b| *b == 0));
}
