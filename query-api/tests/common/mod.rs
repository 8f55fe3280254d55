//! Fixtures shared by the HTTP tests: an embedded store holding two traces, a reader that
//! records what it was asked (and can fail), and a one-shot GET helper.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use hopscope_query_api::{QueryApiConfig, router};
use hopscope_schemas::TraceId;
use hopscope_schemas::otlp::spans_from_request;
use hopscope_storage::embedded::EmbeddedStore;
use hopscope_storage::{
    DependencyLink, Operation, OperationQuery, SpanReader, SpanWriter, StorageError, Trace, TraceQuery,
};
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use serde_json::Value;
use tower::ServiceExt;

/// 2023-11-14T22:13:20Z in unix ns.
pub const T0: u64 = 1_700_000_000_000_000_000;
pub const MS: u64 = 1_000_000;
pub const TRACE_A: &str = "0af7651916cd43dd8448eb211c80319c";
pub const TRACE_B: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub const ROOT: &str = "00f067aa0ba902b7";
pub const REDIS: &str = "00f067aa0ba902b8";
pub const PAY: &str = "00f067aa0ba902b9";
pub const HEALTH: &str = "b7ad6b7169203331";

pub fn attr(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

pub fn s(text: &str) -> any_value::Value {
    any_value::Value::StringValue(text.into())
}

pub fn i(n: i64) -> any_value::Value {
    any_value::Value::IntValue(n)
}

fn id(hex_text: &str) -> Vec<u8> {
    hex::decode(hex_text).unwrap()
}

fn span(
    trace: &str,
    span_id: &str,
    parent: Option<&str>,
    name: &str,
    kind: span::SpanKind,
    start: u64,
    dur: u64,
) -> Span {
    Span {
        trace_id: id(trace),
        span_id: id(span_id),
        parent_span_id: parent.map(id).unwrap_or_default(),
        name: name.into(),
        kind: kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + dur,
        flags: 0x301,
        ..Default::default()
    }
}

fn resource_spans(attrs: Vec<KeyValue>, scope: Option<InstrumentationScope>, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: attrs,
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            scope,
            spans,
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }
}

/// Trace A: frontend `GET /checkout` (server, ERROR, 120 ms) → frontend `redis GET`
/// (client to redis-shard-2:6379, 2 ms) and → checkout `POST /pay` (server, OK, 80 ms).
/// Trace B: frontend `GET /health` (server, 1 ms, one second later).
pub fn request() -> ExportTraceServiceRequest {
    use span::SpanKind::{Client, Server};
    let mut root = span(TRACE_A, ROOT, None, "GET /checkout", Server, T0, 120 * MS);
    root.attributes = vec![
        attr("http.request.method", s("GET")),
        attr("http.response.status_code", i(500)),
    ];
    root.status = Some(Status {
        code: 2,
        message: "boom".into(),
    });
    root.trace_state = "vendor=1".into();
    root.events = vec![span::Event {
        time_unix_nano: T0 + 10 * MS,
        name: "exception".into(),
        attributes: vec![attr("exception.message", s("card declined"))],
        dropped_attributes_count: 0,
    }];
    root.links = vec![span::Link {
        trace_id: id(TRACE_B),
        span_id: id(HEALTH),
        ..Default::default()
    }];
    let mut redis = span(TRACE_A, REDIS, Some(ROOT), "redis GET", Client, T0 + 5 * MS, 2 * MS);
    redis.attributes = vec![
        attr("db.system", s("redis")),
        attr("server.address", s("redis-shard-2")),
        attr("server.port", i(6379)),
    ];
    let mut pay = span(TRACE_A, PAY, Some(ROOT), "POST /pay", Server, T0 + 20 * MS, 80 * MS);
    pay.attributes = vec![
        attr("http.request.method", s("POST")),
        attr("payload", any_value::Value::BytesValue(vec![1, 2, 3])),
        attr("ratio", any_value::Value::DoubleValue(0.25)),
        attr("retry", any_value::Value::BoolValue(false)),
        attr(
            "items",
            any_value::Value::ArrayValue(ArrayValue {
                values: vec![AnyValue { value: Some(i(1)) }, AnyValue { value: Some(s("x")) }],
            }),
        ),
    ];
    pay.status = Some(Status {
        code: 1,
        message: String::new(),
    });
    let mut health = span(TRACE_B, HEALTH, None, "GET /health", Server, T0 + 1_000 * MS, MS);
    health.attributes = vec![
        attr("http.request.method", s("GET")),
        attr("http.response.status_code", i(200)),
    ];

    let frontend = vec![
        attr("service.name", s("frontend")),
        attr("host.name", s("web-1")),
        attr("deployment.environment", s("prod")),
    ];
    let scope = InstrumentationScope {
        name: "io.opentelemetry.http".into(),
        version: "1.2.0".into(),
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            resource_spans(frontend.clone(), Some(scope), vec![root, redis]),
            resource_spans(vec![attr("service.name", s("checkout"))], None, vec![pay]),
            resource_spans(frontend, None, vec![health]),
        ],
    }
}

pub async fn store() -> EmbeddedStore {
    let store = EmbeddedStore::new(Default::default());
    let batch = spans_from_request(request());
    assert_eq!(batch.rejected, 0, "{}", batch.error_message());
    store.write_spans(batch.spans).await.unwrap();
    store
}

pub async fn app() -> Router {
    router(Arc::new(store().await), &QueryApiConfig::default())
}

pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
}

pub async fn get(app: &Router, uri: &str) -> Response {
    let request = Request::get(uri).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|err| panic!("{uri}: body is not JSON ({err}): {}", String::from_utf8_lossy(&bytes)));
    Response { status, headers, json }
}

/// A reader that records the queries it gets and answers with nothing, or fails.
#[derive(Default)]
pub struct Recorder {
    pub trace_queries: Mutex<Vec<TraceQuery>>,
    pub operation_queries: Mutex<Vec<OperationQuery>>,
    pub dependency_ranges: Mutex<Vec<(u64, u64)>>,
    pub fail: Option<fn() -> StorageError>,
}

impl Recorder {
    fn check(&self) -> Result<(), StorageError> {
        self.fail.map_or(Ok(()), |f| Err(f()))
    }
}

#[async_trait]
impl SpanReader for Recorder {
    async fn services(&self) -> Result<Vec<String>, StorageError> {
        self.check()?;
        Ok(Vec::new())
    }

    async fn operations(&self, query: &OperationQuery) -> Result<Vec<Operation>, StorageError> {
        self.operation_queries.lock().unwrap().push(query.clone());
        self.check()?;
        Ok(Vec::new())
    }

    async fn trace(&self, _: TraceId) -> Result<Option<Trace>, StorageError> {
        self.check()?;
        Ok(None)
    }

    async fn find_traces(&self, query: &TraceQuery) -> Result<Vec<Trace>, StorageError> {
        self.trace_queries.lock().unwrap().push(query.clone());
        self.check()?;
        Ok(Vec::new())
    }

    async fn dependencies(&self, start_ns: u64, end_ns: u64) -> Result<Vec<DependencyLink>, StorageError> {
        self.dependency_ranges.lock().unwrap().push((start_ns, end_ns));
        self.check()?;
        Ok(Vec::new())
    }
}

pub fn recorder_app(recorder: Arc<Recorder>, config: &QueryApiConfig) -> Router {
    router(recorder, config)
}
