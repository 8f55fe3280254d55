#![allow(clippy::unwrap_used)]

use std::sync::Mutex;

use hopscope_schemas::otlp::spans_from_request;
use hopscope_storage::StorageError;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

use super::*;
use crate::cloud::{CloudConfig, CloudRule};
use crate::durable::WalWriter;
use crate::wal::{Wal, WalConfig};

/// Keeps every record appended; fails every append when `fail` is set.
#[derive(Default)]
struct Recorder {
    records: Mutex<Vec<Bytes>>,
    fail: bool,
}

impl Recorder {
    fn records(&self) -> Vec<Bytes> {
        self.records.lock().unwrap().clone()
    }
}

#[async_trait]
impl RecordSink for Recorder {
    async fn append(&self, record: Bytes) -> hopscope_storage::Result<()> {
        if self.fail {
            return Err(StorageError::Retryable("down".into()));
        }
        self.records.lock().unwrap().push(record);
        Ok(())
    }
}

fn span(id: u8, trace_len: usize) -> Span {
    Span {
        trace_id: vec![1; trace_len],
        span_id: vec![id; 8],
        name: "op".into(),
        start_time_unix_nano: 10,
        end_time_unix_nano: 20,
        ..Default::default()
    }
}

fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn protobuf(bytes: impl Into<Bytes>) -> RequestBody {
    RequestBody {
        bytes: bytes.into(),
        format: BodyFormat::Protobuf,
        encoding: ContentEncoding::Identity,
        max_inflated: 16 << 20,
    }
}

fn body(request: &ExportTraceServiceRequest) -> RequestBody {
    protobuf(request.encode_to_vec())
}

fn recording() -> (Arc<Recorder>, Ingest) {
    let recorder = Arc::new(Recorder::default());
    (recorder.clone(), Ingest::new(recorder))
}

fn decoded(record: &Bytes) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest::decode(record.as_ref()).unwrap()
}

#[tokio::test]
async fn drops_invalid_spans_from_the_record_and_reports_partial_success() {
    let (recorder, ingest) = recording();
    let sent = body(&request(vec![span(2, 16), span(3, 5)]));
    let response = ingest.ingest(sent.clone()).await.unwrap();
    let partial = response.partial_success.unwrap();
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("trace_id has 5 bytes"),
        "{}",
        partial.error_message
    );
    let records = recorder.records();
    assert_ne!(records[0], sent.bytes, "the record is the request without the bad span");
    let back = spans_from_request(decoded(&records[0]));
    assert_eq!((back.spans.len(), back.rejected), (1, 0));
    assert_eq!(
        back.spans[0].span_id,
        hopscope_schemas::SpanId::from_slice(&[2; 8]).unwrap()
    );
    let stats = ingest.stats();
    assert_eq!(
        (
            stats.requests,
            stats.spans_received,
            stats.spans_accepted,
            stats.spans_rejected
        ),
        (1, 2, 1, 1)
    );
}

#[tokio::test]
async fn a_valid_protobuf_body_is_logged_exactly_as_received() {
    let (recorder, ingest) = recording();
    let sent = body(&request(vec![span(2, 16), span(3, 16)]));
    let response = ingest.ingest(sent.clone()).await.unwrap();
    assert_eq!(response.partial_success, None);
    assert_eq!(recorder.records(), vec![sent.bytes]);
    let stats = ingest.stats();
    assert_eq!((stats.requests, stats.spans_received, stats.spans_accepted), (1, 2, 2));
}

#[tokio::test]
async fn a_json_request_is_logged_as_the_encoded_request() {
    let (recorder, ingest) = recording();
    let json = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"01010101010101010101010101010101",
        "spanId":"0202020202020202","name":"op","startTimeUnixNano":"10","endTimeUnixNano":"20"}]}]}]}"#;
    let sent = RequestBody {
        format: BodyFormat::Json,
        ..protobuf(&json[..])
    };
    ingest.ingest(sent).await.unwrap();
    assert_eq!(decoded(&recorder.records()[0]), request(vec![span(2, 16)]));
}

#[tokio::test]
async fn an_empty_request_succeeds_without_an_append() {
    let (recorder, ingest) = recording();
    let response = ingest.ingest(protobuf(Bytes::new())).await.unwrap();
    assert_eq!(response.partial_success, None);
    let response = ingest.ingest(body(&request(vec![span(3, 5)]))).await.unwrap();
    assert_eq!(response.partial_success.unwrap().rejected_spans, 1);
    assert!(recorder.records().is_empty());
}

#[tokio::test]
async fn large_bodies_are_worked_on_off_the_reactor_with_the_same_result() {
    // A current-thread runtime: a blocking reactor would still give the same answer, so
    // what this checks is that the large paths produce it too.
    let (recorder, ingest) = recording();
    let mut spans: Vec<Span> = (0..4_000).map(|i| span((i % 250) as u8 + 1, 16)).collect();
    spans[0].name = "x".repeat(SCAN_BLOCKING_THRESHOLD);
    let valid = body(&request(spans.clone()));
    assert!(valid.bytes.len() > SCAN_BLOCKING_THRESHOLD);
    ingest.ingest(valid.clone()).await.unwrap();
    spans[1].trace_id = vec![1; 5];
    let partly = body(&request(spans));
    let response = ingest.ingest(partly).await.unwrap();
    assert_eq!(response.partial_success.unwrap().rejected_spans, 1);
    let records = recorder.records();
    assert_eq!(records[0], valid.bytes);
    assert_eq!(spans_from_request(decoded(&records[1])).spans.len(), 3_999);
}

#[tokio::test]
async fn a_failed_append_is_reported_and_counted() {
    let ingest = Ingest::new(Arc::new(Recorder {
        fail: true,
        ..Default::default()
    }));
    let err = ingest.ingest(body(&request(vec![span(2, 16)]))).await.unwrap_err();
    assert!(matches!(err, IngestError::Storage(StorageError::Retryable(_))));
    let stats = ingest.stats();
    assert_eq!(
        (stats.spans_failed, stats.write_errors, stats.spans_accepted),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn malformed_bodies_are_refused_and_counted() {
    let (recorder, ingest) = recording();
    let err = ingest.ingest(protobuf(&[0x0a, 0x05, 0x01][..])).await.unwrap_err();
    assert!(matches!(err, IngestError::InvalidProtobuf(_)), "{err}");
    let gzip = RequestBody {
        encoding: ContentEncoding::Gzip,
        ..protobuf(&b"not gzip"[..])
    };
    assert!(matches!(ingest.ingest(gzip).await, Err(IngestError::InvalidGzip(_))));
    let stats = ingest.stats();
    assert_eq!((stats.invalid_requests, stats.requests), (2, 0));
    assert!(recorder.records().is_empty());
}

#[tokio::test]
async fn with_enrichment_rules_the_enriched_request_is_logged_not_the_body() {
    let rules = CloudRules::new(&CloudConfig {
        rules: vec![CloudRule {
            match_host: Some("dc1-*".into()),
            match_cidr: None,
            match_cluster: None,
            match_provider: None,
            kind: "private".into(),
            provider: None,
            region: Some("ams".into()),
            zone: None,
        }],
    })
    .unwrap();
    let recorder = Arc::new(Recorder::default());
    let ingest = Ingest::new(recorder.clone()).with_cloud_rules(rules);
    let mut sent = request(vec![span(2, 16)]);
    sent.resource_spans[0].resource = Some(Resource {
        attributes: vec![KeyValue {
            key: "host.name".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("dc1-web-3".into())),
            }),
            ..Default::default()
        }],
        ..Default::default()
    });
    ingest.ingest(body(&sent)).await.unwrap();
    let mapped = spans_from_request(decoded(&recorder.records()[0]));
    assert_eq!(
        mapped.spans[0].cloud().region.as_deref(),
        Some("ams"),
        "{:?}",
        mapped.spans[0].resource
    );
}

#[tokio::test]
async fn on_a_full_disk_the_sender_gets_the_error_and_nothing_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let fs = crate::wal::fault::FaultyFs::default();
    let wal = Arc::new(
        Wal::open_with(dir.path(), WalConfig::default(), Arc::new(fs.clone()))
            .unwrap()
            .0,
    );
    let ingest = Ingest::new(Arc::new(WalWriter::new(Arc::clone(&wal), Arc::default())));
    fs.faults.lock().space_left = Some(100);
    let refused = body(&request(vec![span(2, 16), span(3, 16)]));
    let err = ingest.ingest(refused).await.unwrap_err();
    assert!(matches!(err, IngestError::Storage(StorageError::Retryable(_))), "{err}");
    assert_eq!(tonic::Status::from(err).code(), tonic::Code::Unavailable);
    let stats = ingest.stats();
    assert_eq!((stats.spans_failed, stats.spans_accepted), (2, 0));
    fs.heal();
    let taken = body(&request(vec![span(4, 16)]));
    ingest.ingest(taken.clone()).await.unwrap();
    let mut reader = wal.reader(1);
    assert_eq!(reader.next_record().unwrap(), Some((1, taken.bytes)));
    assert_eq!(reader.next_record().unwrap(), None, "only the acknowledged request");
}
