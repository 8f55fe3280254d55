//! The one ingest path shared by the gRPC and HTTP receivers.
//!
//! A receiver decodes its wire format into an `ExportTraceServiceRequest` and calls
//! [`Ingest::export`], which validates and maps every span
//! ([`hopscope_schemas::otlp::spans_from_request`]), writes the valid ones through the
//! [`SpanWriter`] and answers with OTLP partial success naming the rejected ones.
//!
//! Fast path: with a write-ahead log attached ([`Ingest::with_log`]) a request whose spans
//! are all valid is not mapped here at all. It goes to the log as one record: the body as
//! the client sent it (uncompressed protobuf) when the receiver passed it along and no
//! enrichment rule could have changed the request, else the (enriched) request encoded
//! once with prost. The feeder maps it when it moves the record into the store. Requests
//! with invalid spans take the mapping path, so the log holds exactly the accepted spans.
//!
//! Fastest path: when a protobuf body may be logged as it is (a log, no enrichment rules),
//! the receivers do not even decode it. [`Ingest::receive_protobuf`] checks it in place
//! ([`hopscope_schemas::otlp_scan`], no allocation) and hands over a
//! [`Received::Checked`] body; only bodies the scan is unsure of (malformed, or with an
//! invalid span) are decoded with prost, to give the exact error or partial success.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use hopscope_schemas::otlp::{MappedBatch, request_is_valid, span_count, spans_from_request};
use hopscope_schemas::otlp_scan::valid_span_count;
use hopscope_storage::SpanWriter;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::body_pool::BodyPool;
use crate::cloud::CloudRules;
use crate::config::DEFAULT_MAX_INFLIGHT_REQUESTS;
use crate::durable::{LogPayload, WalWriter};
use crate::error::{IngestError, Result};

/// Requests with at least this many spans, attributes and events together are mapped on
/// the blocking pool rather than on the async reactor (mapping costs about a microsecond
/// per item, so this keeps a reactor thread busy for well under a millisecond).
pub const MAP_BLOCKING_THRESHOLD: usize = 512;

/// Idle body buffers kept for reuse ([`BodyPool`]). A store write releases up to ~20
/// bodies at once (a feeder batch of 10,000 spans); keeping 24 of them cost 7-16 MiB of
/// peak RSS for the same CPU as keeping 8 (2026-12-02, `benches/README.md`).
const SPARE_BODY_BUFFERS: usize = 8;

/// Counters since start-up. Every field only grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IngestStats {
    /// Export requests that were decoded and handed to [`Ingest::export`].
    pub requests: u64,
    /// Requests refused before decoding finished (bad body, too large, wrong type).
    pub invalid_requests: u64,
    /// Spans in decoded requests, valid or not.
    pub spans_received: u64,
    /// Valid spans the store acknowledged.
    pub spans_accepted: u64,
    /// Invalid spans reported back as OTLP partial success.
    pub spans_rejected: u64,
    /// Valid spans whose write failed (the client was told to retry or that it failed).
    pub spans_failed: u64,
    /// Failed `write_spans` calls.
    pub write_errors: u64,
    /// Requests refused because [`Ingest::admit`] found the in-flight limit reached.
    pub requests_throttled: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    invalid_requests: AtomicU64,
    spans_received: AtomicU64,
    spans_accepted: AtomicU64,
    spans_rejected: AtomicU64,
    spans_failed: AtomicU64,
    write_errors: AtomicU64,
    requests_throttled: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// An export request as a receiver hands it to [`Ingest::export_received`].
#[derive(Debug)]
pub enum Received {
    /// An uncompressed protobuf body that [`valid_span_count`] found well formed with
    /// `spans` spans, all valid; logged as it is.
    Checked {
        /// The body as the client sent it (after inflation).
        body: Bytes,
        /// Its span count.
        spans: usize,
    },
    /// A decoded request, with the uncompressed protobuf body it was decoded from when it
    /// arrived as protobuf.
    Decoded {
        /// The request.
        request: ExportTraceServiceRequest,
        /// Its protobuf body, if it had one.
        body: Option<Bytes>,
    },
}

/// Validates, maps and stores export requests; shared by all receivers as `Arc<Ingest>`.
pub struct Ingest {
    writer: Arc<dyn SpanWriter>,
    /// Permits for requests in flight ([`Ingest::admit`]).
    admission: Arc<Semaphore>,
    max_inflight_requests: usize,
    /// Where fully valid requests go unmapped (see the module doc).
    log: Option<Arc<WalWriter>>,
    counters: Counters,
    cloud: CloudRules,
    /// Buffers the receivers gather request bodies in.
    bodies: Arc<BodyPool>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Ingest {
    /// An ingest path writing into `writer`.
    pub fn new(writer: Arc<dyn SpanWriter>) -> Self {
        Self {
            writer,
            admission: Arc::new(Semaphore::new(DEFAULT_MAX_INFLIGHT_REQUESTS)),
            max_inflight_requests: DEFAULT_MAX_INFLIGHT_REQUESTS,
            log: None,
            counters: Counters::default(),
            cloud: CloudRules::default(),
            bodies: BodyPool::new(SPARE_BODY_BUFFERS),
        }
    }

    /// The pool the receivers gather request bodies in ([`crate::body_pool`]).
    pub fn body_pool(&self) -> &Arc<BodyPool> {
        &self.bodies
    }

    /// Admits at most `limit` export requests at once ([`Ingest::admit`]; at least 1).
    pub fn with_max_inflight_requests(mut self, limit: usize) -> Self {
        let limit = limit.max(1);
        self.admission = Arc::new(Semaphore::new(limit));
        self.max_inflight_requests = limit;
        self
    }

    /// Sends requests whose spans are all valid straight to this log as one record,
    /// without mapping them (see the module doc). `log` should be the log the `writer`
    /// given to [`Ingest::new`] appends to, so both paths land in one ordered log.
    pub fn with_log(mut self, log: Arc<WalWriter>) -> Self {
        self.log = Some(log);
        self
    }

    /// Tags resources with these hybrid-cloud rules before mapping
    /// ([`crate::cloud`]); without it no resource is changed.
    pub fn with_cloud_rules(mut self, rules: CloudRules) -> Self {
        self.cloud = rules;
        self
    }

    /// True when a valid protobuf body may go to the log as it is: a log is attached and
    /// no enrichment rule could change the request.
    pub fn logs_bodies_unmapped(&self) -> bool {
        self.log.is_some() && self.cloud.is_empty()
    }

    /// Turns an uncompressed protobuf body into what [`Ingest::export_received`] takes:
    /// checked in place when it may be logged as it is and the scan vouches for it, else
    /// decoded with prost (whose error, on a malformed body, is returned as it is).
    /// CPU-bound: about a microsecond per span when decoding, much less when checking.
    pub fn receive_protobuf(&self, body: Bytes) -> std::result::Result<Received, prost::DecodeError> {
        if self.logs_bodies_unmapped()
            && let Some(spans) = valid_span_count(&body)
        {
            return Ok(Received::Checked { body, spans });
        }
        let request = ExportTraceServiceRequest::decode(body.as_ref())?;
        Ok(Received::Decoded {
            request,
            body: Some(body),
        })
    }

    /// [`Ingest::export_body`] for either form of [`Received`]; same contract.
    pub async fn export_received(&self, received: Received) -> Result<ExportTraceServiceResponse> {
        match received {
            Received::Decoded { request, body } => self.export_body(request, body).await,
            Received::Checked { body, spans } => {
                let Some(log) = self.log.as_ref().filter(|_| self.cloud.is_empty()) else {
                    // Not a body `receive_protobuf` would have checked here: the long way.
                    let request = ExportTraceServiceRequest::decode(body.as_ref())
                        .map_err(|err| IngestError::InvalidProtobuf(err.to_string()))?;
                    return self.export_body(request, Some(body)).await;
                };
                add(&self.counters.requests, 1);
                add(&self.counters.spans_received, spans as u64);
                self.log_unmapped(log, LogPayload::Encoded(body), spans as u64).await?;
                tracing::debug!(accepted = spans, "export request logged as it arrived");
                Ok(ExportTraceServiceResponse { partial_success: None })
            }
        }
    }

    /// Appends a request of `spans` valid spans to the log as one record (nothing when
    /// it has no spans) and counts the outcome.
    async fn log_unmapped(&self, log: &WalWriter, payload: LogPayload, spans: u64) -> Result<()> {
        if spans == 0 {
            return Ok(());
        }
        if let Err(err) = log.append_request(payload).await {
            add(&self.counters.spans_failed, spans);
            add(&self.counters.write_errors, 1);
            return Err(IngestError::Storage(err));
        }
        add(&self.counters.spans_accepted, spans);
        Ok(())
    }

    /// Maps and validates `request`, writes its valid spans and returns OTLP partial
    /// success (`rejected_spans` and `error_message`) when some spans were invalid.
    ///
    /// Contract: `Ok` means every valid span is stored (the writer acknowledged it); an
    /// empty request succeeds without calling the writer. On a write error nothing is
    /// acknowledged and the error says whether a retry may help. Large requests are mapped
    /// on the blocking pool. May be called concurrently.
    pub async fn export(&self, request: ExportTraceServiceRequest) -> Result<ExportTraceServiceResponse> {
        self.export_body(request, None).await
    }

    /// [`Ingest::export`] for a request that arrived as protobuf: `body` is the
    /// uncompressed body `request` was decoded from, which may be logged as it is (see
    /// the module doc). Same contract as [`Ingest::export`].
    pub async fn export_body(
        &self,
        mut request: ExportTraceServiceRequest,
        body: Option<Bytes>,
    ) -> Result<ExportTraceServiceResponse> {
        add(&self.counters.requests, 1);
        // Rules may add resource attributes: with any configured, the body as sent is
        // stale and the enriched request is what gets logged.
        let may_enrich = !self.cloud.is_empty();
        // Before mapping, so the tags are resource attributes in the log and in the store.
        self.cloud.apply(&mut request);
        if let Some(log) = &self.log
            && request_is_valid(&request)
        {
            let spans = span_count(&request) as u64;
            add(&self.counters.spans_received, spans);
            let payload = match body {
                Some(body) if !may_enrich => LogPayload::Encoded(body),
                _ => LogPayload::Request(request),
            };
            self.log_unmapped(log, payload, spans).await?;
            tracing::debug!(accepted = spans, "export request logged unmapped");
            return Ok(ExportTraceServiceResponse { partial_success: None });
        }
        let batch = if mapping_work(&request) >= MAP_BLOCKING_THRESHOLD {
            tokio::task::spawn_blocking(move || spans_from_request(request))
                .await
                .map_err(|err| IngestError::Internal(format!("span mapping task failed: {err}")))?
        } else {
            spans_from_request(request)
        };
        let MappedBatch { spans, rejected, .. } = &batch;
        let valid = spans.len() as u64;
        let rejected = *rejected;
        add(&self.counters.spans_received, valid + rejected);
        add(&self.counters.spans_rejected, rejected);
        let error_message = batch.error_message();
        if rejected > 0 {
            tracing::info!(rejected, valid, error_message, "export request has invalid spans");
        }
        if valid > 0 {
            if let Err(err) = self.writer.write_spans(batch.spans).await {
                add(&self.counters.spans_failed, valid);
                add(&self.counters.write_errors, 1);
                return Err(IngestError::Storage(err));
            }
            add(&self.counters.spans_accepted, valid);
        }
        tracing::debug!(accepted = valid, rejected, "export request stored");
        let partial_success = (rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: i64::try_from(rejected).unwrap_or(i64::MAX),
            error_message,
        });
        Ok(ExportTraceServiceResponse { partial_success })
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> IngestStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let c = &self.counters;
        IngestStats {
            requests: get(&c.requests),
            invalid_requests: get(&c.invalid_requests),
            spans_received: get(&c.spans_received),
            spans_accepted: get(&c.spans_accepted),
            spans_rejected: get(&c.spans_rejected),
            spans_failed: get(&c.spans_failed),
            write_errors: get(&c.write_errors),
            requests_throttled: get(&c.requests_throttled),
        }
    }

    /// Admits one export request, to be called before its body is read: the request
    /// holds the permit until it is answered, so at most `max_inflight_requests` bodies
    /// (each at most `max_request_bytes`) are held at once over all receivers, however
    /// many clients send and however slowly the log takes them. Past the limit it
    /// refuses at once with [`IngestError::Overloaded`] (gRPC `RESOURCE_EXHAUSTED` with
    /// a retry delay, HTTP 429 with `Retry-After`).
    pub fn admit(&self) -> Result<OwnedSemaphorePermit> {
        Arc::clone(&self.admission).try_acquire_owned().map_err(|_| {
            add(&self.counters.requests_throttled, 1);
            IngestError::Overloaded {
                limit: self.max_inflight_requests,
            }
        })
    }

    /// Counts a request a receiver refused before it reached [`Ingest::export`].
    pub(crate) fn record_invalid_request(&self) {
        add(&self.counters.invalid_requests, 1);
    }
}

/// Rough cost of mapping a request: spans plus their attributes and events.
fn mapping_work(request: &ExportTraceServiceRequest) -> usize {
    request
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .map(|span| 1 + span.attributes.len() + span.events.len())
        .sum()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use hopscope_schemas::SpanRecord;
    use hopscope_storage::StorageError;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder {
        batches: Mutex<Vec<Vec<SpanRecord>>>,
        fail: bool,
    }

    #[async_trait]
    impl SpanWriter for Recorder {
        async fn write_spans(&self, spans: Vec<SpanRecord>) -> hopscope_storage::Result<()> {
            if self.fail {
                return Err(StorageError::Retryable("down".into()));
            }
            self.batches.lock().unwrap().push(spans);
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

    #[tokio::test]
    async fn writes_valid_spans_and_reports_partial_success() {
        let recorder = Arc::new(Recorder::default());
        let ingest = Ingest::new(recorder.clone());
        let response = ingest.export(request(vec![span(2, 16), span(3, 5)])).await.unwrap();
        let partial = response.partial_success.unwrap();
        assert_eq!(partial.rejected_spans, 1);
        assert!(
            partial.error_message.contains("trace_id has 5 bytes"),
            "{}",
            partial.error_message
        );
        assert_eq!(recorder.batches.lock().unwrap()[0].len(), 1);
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
    async fn empty_request_succeeds_without_writing() {
        let recorder = Arc::new(Recorder::default());
        let ingest = Ingest::new(recorder.clone());
        let response = ingest.export(ExportTraceServiceRequest::default()).await.unwrap();
        assert_eq!(response.partial_success, None);
        assert!(recorder.batches.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn large_requests_map_on_the_blocking_pool_with_the_same_result() {
        let recorder = Arc::new(Recorder::default());
        let ingest = Ingest::new(recorder.clone());
        let spans: Vec<Span> = (0..MAP_BLOCKING_THRESHOLD)
            .map(|i| span((i % 250) as u8 + 1, 16))
            .collect();
        assert!(mapping_work(&request(spans.clone())) >= MAP_BLOCKING_THRESHOLD);
        ingest.export(request(spans)).await.unwrap();
        assert_eq!(ingest.stats().spans_accepted, MAP_BLOCKING_THRESHOLD as u64);
    }

    #[tokio::test]
    async fn write_failure_is_reported_and_counted() {
        let ingest = Ingest::new(Arc::new(Recorder {
            fail: true,
            ..Default::default()
        }));
        let err = ingest.export(request(vec![span(2, 16)])).await.unwrap_err();
        assert!(matches!(err, IngestError::Storage(StorageError::Retryable(_))));
        let stats = ingest.stats();
        assert_eq!(
            (stats.spans_failed, stats.write_errors, stats.spans_accepted),
            (1, 1, 0)
        );
    }

    mod with_log {
        use super::*;
        use crate::cloud::{CloudConfig, CloudRule};
        use crate::wal::{Wal, WalConfig};
        use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
        use opentelemetry_proto::tonic::resource::v1::Resource;
        use prost::Message;

        fn open() -> (tempfile::TempDir, Arc<Wal>, Ingest) {
            let dir = tempfile::tempdir().unwrap();
            let (wal, _) = Wal::open(dir.path(), WalConfig::default()).unwrap();
            let wal = Arc::new(wal);
            let log = Arc::new(WalWriter::new(Arc::clone(&wal), Arc::new(tokio::sync::Notify::new())));
            let ingest = Ingest::new(log.clone()).with_log(log);
            (dir, wal, ingest)
        }

        fn records(wal: &Arc<Wal>) -> Vec<Vec<u8>> {
            let mut reader = wal.reader(1);
            let mut out = Vec::new();
            while let Some((_, payload)) = reader.next_record().unwrap() {
                out.push(payload.to_vec());
            }
            out
        }

        fn with_host(mut request: ExportTraceServiceRequest, host: &str) -> ExportTraceServiceRequest {
            request.resource_spans[0].resource = Some(Resource {
                attributes: vec![KeyValue {
                    key: "host.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(host.into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            });
            request
        }

        #[tokio::test]
        async fn a_valid_protobuf_body_is_logged_exactly_as_received() {
            let (_dir, wal, ingest) = open();
            let request = request(vec![span(2, 16), span(3, 16)]);
            let body = Bytes::from(request.encode_to_vec());
            let response = ingest.export_body(request, Some(body.clone())).await.unwrap();
            assert_eq!(response.partial_success, None);
            assert_eq!(records(&wal), vec![body.to_vec()]);
            let stats = ingest.stats();
            assert_eq!((stats.spans_received, stats.spans_accepted), (2, 2));
        }

        #[tokio::test]
        async fn a_valid_request_without_a_body_is_logged_as_the_request() {
            let (_dir, wal, ingest) = open();
            let request = request(vec![span(2, 16)]);
            ingest.export(request.clone()).await.unwrap();
            let logged = records(&wal);
            assert_eq!(
                ExportTraceServiceRequest::decode(logged[0].as_slice()).unwrap(),
                request
            );
        }

        #[tokio::test]
        async fn invalid_spans_keep_the_mapping_path_and_only_valid_spans_are_logged() {
            let (_dir, wal, ingest) = open();
            let request = request(vec![span(2, 16), span(3, 5)]);
            let body = Bytes::from(request.encode_to_vec());
            let response = ingest.export_body(request, Some(body.clone())).await.unwrap();
            assert_eq!(response.partial_success.unwrap().rejected_spans, 1);
            let logged = records(&wal);
            assert_ne!(logged[0], body.to_vec());
            let back = spans_from_request(ExportTraceServiceRequest::decode(logged[0].as_slice()).unwrap());
            assert_eq!((back.spans.len(), back.rejected), (1, 0));
            assert_eq!(
                back.spans[0].span_id,
                hopscope_schemas::SpanId::from_slice(&[2; 8]).unwrap()
            );
        }

        #[tokio::test]
        async fn with_enrichment_rules_the_enriched_request_is_logged_not_the_body() {
            let (_dir, wal, ingest) = open();
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
            let ingest = ingest.with_cloud_rules(rules);
            let request = with_host(request(vec![span(2, 16)]), "dc1-web-3");
            let body = Bytes::from(request.encode_to_vec());
            ingest.export_body(request, Some(body.clone())).await.unwrap();
            let logged = ExportTraceServiceRequest::decode(records(&wal)[0].as_slice()).unwrap();
            let mapped = spans_from_request(logged);
            assert_eq!(
                mapped.spans[0].cloud().region.as_deref(),
                Some("ams"),
                "{:?}",
                mapped.spans[0].resource
            );
        }

        #[tokio::test]
        async fn a_valid_body_is_checked_not_decoded_and_logged_as_it_arrived() {
            let (_dir, wal, ingest) = open();
            let body = Bytes::from(request(vec![span(2, 16), span(3, 16)]).encode_to_vec());
            let received = ingest.receive_protobuf(body.clone()).unwrap();
            assert!(matches!(received, Received::Checked { spans: 2, .. }), "{received:?}");
            let response = ingest.export_received(received).await.unwrap();
            assert_eq!(response.partial_success, None);
            assert_eq!(records(&wal), vec![body.to_vec()]);
            let stats = ingest.stats();
            assert_eq!((stats.requests, stats.spans_received, stats.spans_accepted), (1, 2, 2));
        }

        #[tokio::test]
        async fn bodies_the_scan_cannot_vouch_for_are_decoded() {
            let (_dir, wal, ingest) = open();
            // An invalid span: decoded, so the client gets partial success naming it.
            let body = Bytes::from(request(vec![span(2, 16), span(3, 5)]).encode_to_vec());
            let received = ingest.receive_protobuf(body).unwrap();
            assert!(matches!(received, Received::Decoded { .. }));
            let response = ingest.export_received(received).await.unwrap();
            assert_eq!(response.partial_success.unwrap().rejected_spans, 1);
            assert_eq!(records(&wal).len(), 1);
            // Malformed protobuf: prost's error, as before.
            assert!(
                ingest
                    .receive_protobuf(Bytes::from_static(&[0x0a, 0x05, 0x01]))
                    .is_err()
            );
        }

        #[tokio::test]
        async fn without_a_log_or_with_rules_bodies_are_decoded() {
            let body = Bytes::from(request(vec![span(2, 16)]).encode_to_vec());
            let plain = Ingest::new(Arc::new(Recorder::default()));
            assert!(!plain.logs_bodies_unmapped());
            assert!(matches!(
                plain.receive_protobuf(body.clone()).unwrap(),
                Received::Decoded { .. }
            ));
            // A checked body handed to an ingest without a log still gets stored.
            let recorder = Arc::new(Recorder::default());
            let plain = Ingest::new(recorder.clone());
            plain
                .export_received(Received::Checked { body, spans: 1 })
                .await
                .unwrap();
            assert_eq!(recorder.batches.lock().unwrap().concat().len(), 1);
        }

        #[tokio::test]
        async fn an_empty_request_logs_nothing() {
            let (_dir, wal, ingest) = open();
            ingest
                .export_body(ExportTraceServiceRequest::default(), Some(Bytes::new()))
                .await
                .unwrap();
            assert!(records(&wal).is_empty());
        }
    }
}
