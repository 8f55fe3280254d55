//! Test fixtures (feature `fixtures`, enabled only from dev-dependencies, so nothing
//! here is compiled into hopscope's binaries).
//!
//! Crafted traces with known analysis answers, shared by the pure analysis tests, the
//! HTTP tests on the embedded store and the same tests on ClickHouse: write [`all`] into
//! a store and every store must give the answers documented on each scenario. And
//! [`every_field`], one span with every field set, for mapping round trips.
//!
//! Times are offsets in microseconds from [`T0`]. Hop kind, peer and host are derived
//! with [`crate::derive`] exactly as the collector does.

use std::sync::Arc;

use crate::derive::{self, CLOUD_KIND_ATTR};
use crate::{
    AttrValue, Event, HopKind, KeyValue, Link, Resource, Scope, SpanId, SpanKind, SpanRecord, StatusCode, TraceId,
};

/// 2023-11-14T22:13:20Z, unix ns: every fixture time is an offset from it.
pub const T0: u64 = 1_700_000_000_000_000_000;
/// Microseconds → ns.
pub const US: u64 = 1_000;
/// Milliseconds → ns.
pub const MS: u64 = 1_000_000;

/// The trace id of fixture trace `n` (never zero).
pub fn trace_id(n: u64) -> TraceId {
    let mut bytes = [0u8; 16];
    bytes[0] = 0xa1;
    bytes[8..].copy_from_slice(&n.to_be_bytes());
    TraceId(bytes)
}

/// The span id of fixture span `n` (never zero).
pub fn span_id(n: u64) -> SpanId {
    let mut bytes = n.to_be_bytes();
    bytes[0] |= 0x10;
    SpanId(bytes)
}

fn s(key: &str, value: &str) -> KeyValue {
    KeyValue::new(key, AttrValue::String(value.to_owned()))
}

/// A resource of `service` on `host`, with `hopscope.cloud.kind` when `cloud` is set.
pub fn resource(service: &str, host: &str, cloud: Option<&str>) -> Arc<Resource> {
    let mut attributes = vec![s("service.name", service), s("host.name", host)];
    if let Some(kind) = cloud {
        attributes.push(s(CLOUD_KIND_ATTR, kind));
    }
    Arc::new(Resource {
        attributes,
        ..Default::default()
    })
}

/// A span under construction.
#[derive(Debug, Clone)]
pub struct Fx(SpanRecord);

/// Starts a span of trace `trace`, id `id`, child of `parent`, starting `start_us` after
/// [`T0`] and lasting `dur_us`.
#[allow(clippy::too_many_arguments)]
pub fn span(
    res: &Arc<Resource>,
    trace: u64,
    id: u64,
    parent: Option<u64>,
    name: &str,
    kind: SpanKind,
    start_us: u64,
    dur_us: u64,
) -> Fx {
    Fx(SpanRecord {
        trace_id: trace_id(trace),
        span_id: span_id(id),
        parent_span_id: parent.map(span_id),
        trace_state: String::new(),
        flags: 1,
        name: name.to_owned(),
        kind,
        start_time_unix_nano: T0 + start_us * US,
        end_time_unix_nano: T0 + (start_us + dur_us) * US,
        status_code: StatusCode::Unset,
        status_message: String::new(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        events: Vec::new(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        resource: Arc::clone(res),
        scope: Arc::new(Scope::default()),
        service_name: String::new(),
        hop_kind: Default::default(),
        peer: None,
        host: None,
    })
}

impl Fx {
    /// Adds a string attribute.
    pub fn attr(mut self, key: &str, value: &str) -> Self {
        self.0.attributes.push(s(key, value));
        self
    }

    /// Adds an integer attribute.
    pub fn int(mut self, key: &str, value: i64) -> Self {
        self.0.attributes.push(KeyValue::new(key, AttrValue::Int(value)));
        self
    }

    /// A Redis call to `host:6379`.
    pub fn redis(self, host: &str) -> Self {
        self.attr("db.system.name", "redis")
            .attr("server.address", host)
            .int("server.port", 6379)
    }

    /// A PostgreSQL call to `host:5432`.
    pub fn postgres(self, host: &str) -> Self {
        self.attr("db.system.name", "postgresql")
            .attr("server.address", host)
            .int("server.port", 5432)
    }

    /// An HTTP hop (client spans call `peer`).
    pub fn http(self, peer: &str) -> Self {
        self.attr("http.request.method", "POST").attr("server.address", peer)
    }

    /// A RabbitMQ hop on `queue`.
    pub fn rabbit(self, queue: &str) -> Self {
        self.attr("messaging.system", "rabbitmq")
            .attr("messaging.destination.name", queue)
    }

    /// ERROR status with `message`.
    pub fn error(mut self, message: &str) -> Self {
        self.0.status_code = StatusCode::Error;
        self.0.status_message = message.to_owned();
        self
    }

    /// An `exception` event of `exception_type` at the span's end.
    pub fn exception(mut self, exception_type: &str) -> Self {
        self.0.events.push(Event {
            time_unix_nano: self.0.end_time_unix_nano,
            name: "exception".to_owned(),
            attributes: vec![s("exception.type", exception_type)],
            dropped_attributes_count: 0,
        });
        self
    }

    /// The finished span with its derived fields.
    pub fn build(mut self) -> SpanRecord {
        let span = &mut self.0;
        span.service_name = derive::service_name(&span.resource.attributes);
        span.host = derive::host(&span.resource.attributes);
        span.hop_kind = derive::hop_kind(&span.attributes);
        span.peer = derive::peer(span.kind, span.hop_kind, &span.attributes);
        self.0
    }
}

/// First trace number of [`slow_redis_shard`].
pub const REDIS_TRACES: u64 = 100;
/// Baseline window of [`slow_redis_shard`] (µs offsets, inclusive): all shards fast.
pub const REDIS_BASELINE_US: (u64, u64) = (0, 59_999_999);
/// Incident window of [`slow_redis_shard`]: `redis-shard-2` is slow.
pub const REDIS_INCIDENT_US: (u64, u64) = (60_000_000, 119_999_999);

/// A slow Redis shard among healthy ones. Service `cart` (private DC, host `vm-cart-1`)
/// serves `GET /cart` and reads one of three shards per request, round robin. 30 traces
/// a minute apart in the baseline minute where every shard answers in 1 ms, then 30 in
/// the incident minute where `redis-shard-2:6379` answers in 40 ms.
///
/// Known answers: in the incident window `middleware?kind=cache` has three instances,
/// `redis-shard-2:6379` with `p99_us = 40000` and the others 1000; every incident trace
/// on shard 2 has that Redis span as culprit; blame of `cart GET /cart` incident vs
/// baseline ranks the peer `redis-shard-2:6379` first.
pub fn slow_redis_shard() -> Vec<SpanRecord> {
    let cart = resource("cart", "vm-cart-1", Some("private"));
    let mut spans = Vec::new();
    for n in 0..60u64 {
        let trace = REDIS_TRACES + n;
        let start = n * 2_000_000;
        let shard = n % 3 + 1;
        let incident = start >= REDIS_INCIDENT_US.0;
        let redis_us = if incident && shard == 2 { 40_000 } else { 1_000 };
        let root = trace * 10;
        spans.push(
            span(
                &cart,
                trace,
                root,
                None,
                "GET /cart",
                SpanKind::Server,
                start,
                2_000 + redis_us,
            )
            .http("cart")
            .build(),
        );
        spans.push(
            span(
                &cart,
                trace,
                root + 1,
                Some(root),
                "GET",
                SpanKind::Client,
                start + 500,
                redis_us,
            )
            .redis(&format!("redis-shard-{shard}"))
            .build(),
        );
    }
    spans
}

/// Trace of [`db_lock_wait`].
pub const LOCK_TRACE: u64 = 200;
/// The API's client span that times out in [`db_lock_wait`].
pub const LOCK_CLIENT_SPAN: u64 = 2002;
/// The database span waiting on a lock in [`db_lock_wait`].
pub const LOCK_DB_SPAN: u64 = 2004;

/// A database lock wait that surfaces as an upstream timeout. `api` (hosted, `vm-api-1`)
/// serves `POST /pay` [0, 1 020 ms] and calls `ledger` with a 1 s timeout: its client
/// span [10, 1 010 ms] ends in ERROR "timeout". `ledger` (private, `vm-ledger-1`) handles
/// `POST /ledger` [15, 2 600 ms] successfully; its `UPDATE accounts` span on
/// `ledger-db:5432` waits for a row lock [20, 2 550 ms].
///
/// Known answers: culprit is the database span; `errors` is the client span alone (the
/// deepest ERROR on its chain); `mismatches` reports the client/server pair with reason
/// `client_timeout`; the per-trace analysis clamps the ledger spans to the client's end.
pub fn db_lock_wait() -> Vec<SpanRecord> {
    let api = resource("api", "vm-api-1", Some("hosted"));
    let ledger = resource("ledger", "vm-ledger-1", Some("private"));
    let t = LOCK_TRACE;
    vec![
        span(&api, t, 2001, None, "POST /pay", SpanKind::Server, 0, 1_020_000)
            .http("api")
            .error("upstream timeout")
            .build(),
        span(
            &api,
            t,
            LOCK_CLIENT_SPAN,
            Some(2001),
            "POST /ledger",
            SpanKind::Client,
            10_000,
            1_000_000,
        )
        .http("ledger:8080")
        .error("timeout after 1s")
        .exception("TimeoutError")
        .build(),
        span(
            &ledger,
            t,
            2003,
            Some(LOCK_CLIENT_SPAN),
            "POST /ledger",
            SpanKind::Server,
            15_000,
            2_585_000,
        )
        .http("ledger")
        .build(),
        span(
            &ledger,
            t,
            LOCK_DB_SPAN,
            Some(2003),
            "UPDATE accounts",
            SpanKind::Client,
            20_000,
            2_530_000,
        )
        .postgres("ledger-db")
        .build(),
    ]
}

/// Trace of [`async_queue`].
pub const QUEUE_TRACE: u64 = 300;
/// The consumer span of [`async_queue`].
pub const QUEUE_CONSUMER_SPAN: u64 = 3003;

/// An asynchronous hop with queue delay. `orders` (public cloud, `vm-orders-1`) handles
/// `POST /order` [0, 20 ms] and publishes to queue `payments` [5, 8 ms]; `billing`
/// (public, `vm-billing-1`) consumes it [108, 130 ms] and inserts into `billing-db`
/// [110, 125 ms].
///
/// Known answers: nothing waits for the consumer (a fire-and-forget publish), so the
/// response is `POST /order` alone: `duration_us = 20000`, the critical path is
/// `POST /order` (17 ms of its own, the culprit, share 0.85) and the publish; the
/// consumer is background work whose critical path is a `queue wait` item (hop `mq`, peer
/// `payments`) of 100 000 µs (its culprit), the consumer and the insert.
pub fn async_queue() -> Vec<SpanRecord> {
    let orders = resource("orders", "vm-orders-1", Some("public"));
    let billing = resource("billing", "vm-billing-1", Some("public"));
    let t = QUEUE_TRACE;
    vec![
        span(&orders, t, 3001, None, "POST /order", SpanKind::Server, 0, 20_000)
            .http("orders")
            .build(),
        span(
            &orders,
            t,
            3002,
            Some(3001),
            "payments publish",
            SpanKind::Producer,
            5_000,
            3_000,
        )
        .rabbit("payments")
        .build(),
        span(
            &billing,
            t,
            QUEUE_CONSUMER_SPAN,
            Some(3002),
            "payments process",
            SpanKind::Consumer,
            108_000,
            22_000,
        )
        .rabbit("payments")
        .build(),
        span(
            &billing,
            t,
            3004,
            Some(QUEUE_CONSUMER_SPAN),
            "INSERT invoices",
            SpanKind::Client,
            110_000,
            15_000,
        )
        .postgres("billing-db")
        .build(),
    ]
}

/// Trace of [`request_reply`] (not part of [`all`]).
pub const REPLY_TRACE: u64 = 310;
/// The request's consumer span of [`request_reply`].
pub const REPLY_REQUEST_CONSUMER_SPAN: u64 = 3103;
/// The fire-and-forget consumer of [`request_reply`].
pub const REPLY_AUDIT_SPAN: u64 = 3108;

/// Request/reply over a queue, plus a fire-and-forget message. `orders` (public cloud,
/// `vm-orders-1`) handles `POST /order` [0, 140 ms]: it publishes the request to queue
/// `payments` [5, 8 ms]; `billing` (public, `vm-billing-1`) consumes it [108, 128 ms],
/// inserts into `billing-db` [110, 125 ms] and publishes the reply to `order-replies`
/// [126, 128 ms]; `orders` consumes the reply [130, 135 ms], publishes to `audit`
/// [136, 137 ms] and answers. `audit` (`vm-audit-1`) consumes that message long after
/// the response [400, 450 ms].
///
/// Known answers: `duration_us = 140000`; the critical path is `POST /order` (9 ms of its
/// own), the publish, a `queue wait` item (hop `mq`, peer `payments`) of 100 000 µs, the
/// consumer (3 ms of its own), the insert, the reply's publish, its 2 ms queue wait, the
/// reply's consumer and the audit publish; the culprit is the payments queue (its wait
/// and the publish to it) with share 103/140. The audit consumer is background work (its own queue wait of 263 ms
/// first), never on the critical path.
pub fn request_reply() -> Vec<SpanRecord> {
    let orders = resource("orders", "vm-orders-1", Some("public"));
    let billing = resource("billing", "vm-billing-1", Some("public"));
    let audit = resource("audit", "vm-audit-1", Some("public"));
    let t = REPLY_TRACE;
    let consumer = REPLY_REQUEST_CONSUMER_SPAN;
    vec![
        span(&orders, t, 3101, None, "POST /order", SpanKind::Server, 0, 140_000)
            .http("orders")
            .build(),
        span(
            &orders,
            t,
            3102,
            Some(3101),
            "payments publish",
            SpanKind::Producer,
            5_000,
            3_000,
        )
        .rabbit("payments")
        .build(),
        span(
            &billing,
            t,
            consumer,
            Some(3102),
            "payments process",
            SpanKind::Consumer,
            108_000,
            20_000,
        )
        .rabbit("payments")
        .build(),
        span(
            &billing,
            t,
            3104,
            Some(consumer),
            "INSERT invoices",
            SpanKind::Client,
            110_000,
            15_000,
        )
        .postgres("billing-db")
        .build(),
        span(
            &billing,
            t,
            3105,
            Some(consumer),
            "order-replies publish",
            SpanKind::Producer,
            126_000,
            2_000,
        )
        .rabbit("order-replies")
        .build(),
        span(
            &orders,
            t,
            3106,
            Some(3105),
            "order-replies process",
            SpanKind::Consumer,
            130_000,
            5_000,
        )
        .rabbit("order-replies")
        .build(),
        span(
            &orders,
            t,
            3107,
            Some(3101),
            "audit publish",
            SpanKind::Producer,
            136_000,
            1_000,
        )
        .rabbit("audit")
        .build(),
        span(
            &audit,
            t,
            REPLY_AUDIT_SPAN,
            Some(3107),
            "audit process",
            SpanKind::Consumer,
            400_000,
            50_000,
        )
        .rabbit("audit")
        .build(),
    ]
}

/// Trace of [`layering`].
pub const LAYER_TRACE: u64 = 400;

/// A layering violation and a cycle: `web` → `orders` → `inventory` → `orders`
/// (`inventory` calls back up into `orders`). With layers `edge` (`web`), `business`
/// (`orders`), `data` (`inventory`), the edge `inventory → orders` is a lower-to-upper
/// call and `orders ↔ inventory` a cycle. The inner `orders` handler throws
/// `StockError`.
pub fn layering() -> Vec<SpanRecord> {
    let web = resource("web", "vm-web-1", Some("public"));
    let orders = resource("orders", "vm-orders-1", Some("public"));
    let inventory = resource("inventory", "vm-inv-1", Some("private"));
    let t = LAYER_TRACE;
    vec![
        span(&web, t, 4001, None, "GET /", SpanKind::Server, 0, 10_000)
            .http("web")
            .build(),
        span(&web, t, 4002, Some(4001), "GET /order", SpanKind::Client, 1_000, 8_000)
            .http("orders:80")
            .build(),
        span(
            &orders,
            t,
            4003,
            Some(4002),
            "GET /order",
            SpanKind::Server,
            1_500,
            7_000,
        )
        .http("orders")
        .build(),
        span(
            &orders,
            t,
            4004,
            Some(4003),
            "GET /stock",
            SpanKind::Client,
            2_000,
            5_000,
        )
        .http("inventory:80")
        .build(),
        span(
            &inventory,
            t,
            4005,
            Some(4004),
            "GET /stock",
            SpanKind::Server,
            2_500,
            4_000,
        )
        .http("inventory")
        .build(),
        span(
            &inventory,
            t,
            4006,
            Some(4005),
            "GET /reserve",
            SpanKind::Client,
            3_000,
            2_000,
        )
        .http("orders:80")
        .build(),
        span(
            &orders,
            t,
            4007,
            Some(4006),
            "GET /reserve",
            SpanKind::Server,
            3_200,
            1_500,
        )
        .http("orders")
        .error("out of stock")
        .exception("StockError")
        .build(),
    ]
}

/// Every fixture scenario together (they use distinct traces and times).
pub fn all() -> Vec<SpanRecord> {
    let mut spans = slow_redis_shard();
    spans.extend(db_lock_wait());
    spans.extend(async_queue());
    spans.extend(layering());
    spans
}

/// One span with every field of [`SpanRecord`] set (a parent, trace state, flags, an
/// error status, scalar and array attributes, two events, a link, a resource with
/// `cloud.provider`, a scope with attributes, a peer and no host), at `5..9` ns: for
/// tests that a mapping keeps every field.
pub fn every_field() -> SpanRecord {
    SpanRecord {
        trace_id: TraceId([1; 16]),
        span_id: SpanId([2; 8]),
        parent_span_id: Some(SpanId([3; 8])),
        trace_state: "a=b".into(),
        flags: 257,
        name: "GET".into(),
        kind: SpanKind::Server,
        start_time_unix_nano: 5,
        end_time_unix_nano: 9,
        status_code: StatusCode::Error,
        status_message: "boom".into(),
        attributes: vec![
            KeyValue::new("n", AttrValue::Int(3)),
            KeyValue::new("l", AttrValue::Array(vec![AttrValue::Bool(true)])),
        ],
        dropped_attributes_count: 1,
        events: vec![
            Event {
                time_unix_nano: 6,
                name: "e".into(),
                attributes: vec![KeyValue::new("b", AttrValue::Bool(true))],
                dropped_attributes_count: 2,
            },
            Event {
                time_unix_nano: 7,
                name: "f".into(),
                attributes: vec![],
                dropped_attributes_count: 0,
            },
        ],
        dropped_events_count: 3,
        links: vec![Link {
            trace_id: TraceId([4; 16]),
            span_id: SpanId([5; 8]),
            trace_state: "x=y".into(),
            attributes: vec![KeyValue::new("k", AttrValue::Double(0.5))],
            dropped_attributes_count: 6,
            flags: 1,
        }],
        dropped_links_count: 4,
        resource: Arc::new(Resource {
            attributes: vec![KeyValue::new("cloud.provider", AttrValue::String("aws".into()))],
            dropped_attributes_count: 7,
            schema_url: "s".into(),
        }),
        scope: Arc::new(Scope {
            name: "lib".into(),
            version: "1".into(),
            attributes: vec![KeyValue::new("q", AttrValue::Empty)],
            dropped_attributes_count: 8,
            schema_url: "t".into(),
        }),
        service_name: "s".into(),
        hop_kind: HopKind::Http,
        peer: Some("p:1".into()),
        host: None,
    }
}
