//! One trace across every hop the SDK instruments, against the REAL RabbitMQ, Redis,
//! MariaDB and PostgreSQL on this machine, exported by hopscope-sdk over OTLP/gRPC to the
//! real `hopscope` binary and read back from its Jaeger API:
//!
//! gateway (server → HTTP client) → payment (axum server layer → Redis SET/GET,
//! PostgreSQL SELECT, RabbitMQ publish) → ledger (RabbitMQ consumer → MariaDB INSERT).
//!
//! Checks parentage (the consumer's span under the producer's), span kinds, hop kinds
//! and peer instances as hopscope stores and serves them. Fails with a clear message when
//! a service is unreachable; addresses can be overridden with HOPSCOPE_TEST_{REDIS,AMQP,
//! POSTGRES,MARIADB}_URL.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use axum::Router;
use axum::routing::post;
use common::{Hopscope, span_named, typed_tag};
use futures_util::StreamExt;
use hopscope_sdk::integrations::amqp::{self, Broker};
use hopscope_sdk::integrations::http::{HttpServerLayer, TracedClient};
use hopscope_sdk::integrations::redis::TracedConnection;
use hopscope_sdk::integrations::sql::DbPeer;
use hopscope_sdk::{
    BatchConfig, Cloud, CloudKind, FutureExt, OtlpConfig, OtlpGrpcExporter, Resource, SpanKind, Tracer, TracerProvider,
};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::Value;
use sqlx::ConnectOptions;

fn url(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// Whether `name` accepts connections at `addr`; `Err` names the service, the address
/// and how to get it.
async fn reachable(name: &str, addr: &str) -> Result<(), String> {
    let outcome = tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(addr)).await;
    let why = match outcome {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no connection within 3 s".to_owned(),
    };
    Err(format!(
        "{name} not reachable at {addr} ({why}); scripts/test.sh installs and starts it"
    ))
}

/// True when every service is reachable. Otherwise the test is skipped with a message
/// naming what is missing — unless `HOPSCOPE_REQUIRE_SERVICES` is set (scripts/test.sh
/// sets it once it has every service up), when a missing service fails the test.
async fn services_up(test: &str, services: &[(&str, &str)]) -> bool {
    let mut missing = Vec::new();
    for (name, addr) in services {
        if let Err(why) = reachable(name, addr).await {
            missing.push(why);
        }
    }
    if missing.is_empty() {
        return true;
    }
    let message = missing.join("; ");
    assert!(
        std::env::var_os("HOPSCOPE_REQUIRE_SERVICES").is_none(),
        "{test}: {message}"
    );
    eprintln!("skipping {test}: {message}");
    false
}

#[tokio::test]
async fn a_missing_service_is_named() {
    let closed = common::free_addr().to_string();
    let why = reachable("RabbitMQ", &closed).await.unwrap_err();
    assert!(
        why.starts_with("RabbitMQ not reachable at ") && why.contains(&closed),
        "{why}"
    );
    assert!(reachable("Nothing", "127.0.0.1:1").await.is_err());
}

fn provider(hopscope: &Hopscope, service: &'static str, host: &'static str, cloud: Cloud) -> TracerProvider {
    let exporter = OtlpGrpcExporter::new(OtlpConfig::with_endpoint(hopscope.grpc_endpoint())).unwrap();
    TracerProvider::builder()
        .with_resource(
            Resource::builder()
                .with_service_name(service)
                .with_host_name(host)
                .with_cloud(cloud)
                .build(),
        )
        .with_exporter(exporter)
        .with_batch_config(BatchConfig {
            scheduled_delay: Duration::from_millis(50),
            ..BatchConfig::default()
        })
        .build()
        .unwrap()
}

fn cloud(kind: CloudKind, provider: &'static str, region: &'static str, zone: &'static str) -> Cloud {
    Cloud {
        kind,
        provider: provider.into(),
        region: region.into(),
        zone: zone.into(),
    }
}

#[derive(Clone)]
struct Payment {
    tracer: Tracer,
    redis: TracedConnection<redis::aio::MultiplexedConnection>,
    pg: sqlx::PgPool,
    pg_peer: DbPeer,
    amqp: lapin::Channel,
    broker: Broker,
    queue: String,
}

async fn charge(axum::extract::State(mut p): axum::extract::State<Payment>) -> &'static str {
    let _: () = redis::cmd("SET")
        .arg("hopscope:sdk:balance")
        .arg(100)
        .query_async(&mut p.redis)
        .await
        .expect("redis SET");
    let _: i64 = redis::cmd("GET")
        .arg("hopscope:sdk:balance")
        .query_async(&mut p.redis)
        .await
        .expect("redis GET");
    let q = "SELECT $1::bigint";
    let _: i64 = p
        .pg_peer
        .instrument(
            &p.tracer,
            "SELECT",
            Some("accounts"),
            Some(q),
            sqlx::query_scalar(q).bind(7_i64).fetch_one(&p.pg),
        )
        .await
        .expect("postgres SELECT");
    amqp::publish(
        &p.tracer,
        &p.broker,
        &p.amqp,
        "",
        &p.queue,
        b"{\"amount\":42}",
        BasicProperties::default(),
    )
    .await
    .expect("rabbitmq publish");
    "charged"
}

fn tag_str<'a>(span: &'a Value, key: &str) -> &'a str {
    typed_tag(&span["tags"], key, "string").as_str().unwrap()
}

fn parent_id(span: &Value) -> Option<&str> {
    span["references"]
        .as_array()?
        .iter()
        .find(|r| r["refType"] == "CHILD_OF")
        .and_then(|r| r["spanID"].as_str())
}

fn assert_child(trace: &Value, child: &str, parent: &str) {
    let (c, p) = (span_named(trace, child), span_named(trace, parent));
    assert_eq!(
        parent_id(c),
        p["spanID"].as_str(),
        "{child:?} should be a child of {parent:?}: {c}"
    );
}

fn service_of<'a>(trace: &'a Value, span: &Value) -> &'a str {
    let pid = span["processID"].as_str().unwrap();
    trace["processes"][pid]["serviceName"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_spans_http_redis_postgres_rabbitmq_and_mariadb() {
    let redis_url = url("HOPSCOPE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0");
    let amqp_url = url("HOPSCOPE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f");
    let pg_url = url("HOPSCOPE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test");
    let maria_url = url("HOPSCOPE_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/test");
    let needed = [
        ("Redis", "127.0.0.1:6379"),
        ("RabbitMQ", "127.0.0.1:5672"),
        ("PostgreSQL", "127.0.0.1:5432"),
        ("MariaDB", "127.0.0.1:3306"),
    ];
    if !services_up("one_trace_spans_http_redis_postgres_rabbitmq_and_mariadb", &needed).await {
        return;
    }

    let hopscope = Hopscope::start(&[]).await;
    let gateway = provider(
        &hopscope,
        "sdk-gateway",
        "vm-gw-1",
        cloud(CloudKind::Public, "aws", "eu-west-1", "eu-west-1a"),
    );
    let payment = provider(
        &hopscope,
        "sdk-payment",
        "rack-pay-2",
        cloud(CloudKind::Hosted, "hetzner", "fsn1", "fsn1-dc14"),
    );
    let ledger = provider(
        &hopscope,
        "sdk-ledger",
        "dc1-ledger-1",
        cloud(CloudKind::Private, "onprem", "dc1", "rack-3"),
    );

    // Real clients.
    let redis_client = redis::Client::open(redis_url.as_str()).expect("redis url");
    let redis_conn = redis_client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to Redis");
    let pg_opts: sqlx::postgres::PgConnectOptions = pg_url.parse().expect("postgres url");
    let pg = sqlx::PgPool::connect_with(pg_opts.clone())
        .await
        .expect("connect to PostgreSQL");
    let maria_opts: sqlx::mysql::MySqlConnectOptions = maria_url.parse().expect("mariadb url");
    let mut maria = maria_opts.connect().await.expect("connect to MariaDB");
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS hopscope_sdk_ledger (id BIGINT AUTO_INCREMENT PRIMARY KEY, trace_id VARCHAR(32))",
    )
    .execute(&mut maria)
    .await
    .expect("create MariaDB table");
    let amqp_conn = Connection::connect(&amqp_url, ConnectionProperties::default())
        .await
        .expect("connect to RabbitMQ");
    let channel = amqp_conn.create_channel().await.expect("amqp channel");
    let queue = format!("hopscope-sdk-{}", hopscope_sdk::TraceId::random());
    let declare = QueueDeclareOptions {
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(queue.as_str().into(), declare, FieldTable::default())
        .await
        .expect("declare queue");
    let broker = Broker::new("127.0.0.1", 5672);

    // ledger: consumes one message and writes it to MariaDB inside the consumer span.
    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            "ledger".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let ledger_tracer = ledger.tracer("ledger");
    let maria_peer = DbPeer::mariadb(&maria_opts);
    let (consumer_queue, consumer_broker) = (queue.clone(), broker.clone());
    let ledger_task = tokio::spawn(async move {
        let delivery = tokio::time::timeout(Duration::from_secs(20), consumer.next())
            .await
            .expect("a message within 20 s")
            .expect("consumer stream open")
            .expect("delivery");
        let span = amqp::process_span(&ledger_tracer, &consumer_broker, &consumer_queue, &delivery);
        let trace_id = span.context().trace_id.to_string();
        async {
            let q = "INSERT INTO hopscope_sdk_ledger (trace_id) VALUES (?)";
            maria_peer
                .instrument(
                    &ledger_tracer,
                    "INSERT",
                    Some("hopscope_sdk_ledger"),
                    Some(q),
                    sqlx::query(q).bind(&trace_id).execute(&mut maria),
                )
                .await
                .expect("mariadb INSERT");
        }
        .in_span(span)
        .await;
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
    });

    // payment: an axum server with the hopscope layer.
    let state = Payment {
        tracer: payment.tracer("payment"),
        redis: TracedConnection::new(redis_conn, payment.tracer("payment"), "127.0.0.1", 6379),
        pg,
        pg_peer: DbPeer::postgres(&pg_opts),
        amqp: channel.clone(),
        broker: broker.clone(),
        queue: queue.clone(),
    };
    let app = Router::new()
        .route("/charge", post(charge))
        .route_layer(HttpServerLayer::new(payment.tracer("payment")))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let payment_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    // gateway: a server span calling payment over HTTP.
    let gw_tracer = gateway.tracer("gateway");
    let root = gw_tracer
        .span("POST /transfer")
        .kind(SpanKind::Server)
        .attribute("http.request.method", "POST")
        .start();
    let trace_id = root.context().trace_id.to_string();
    let client = TracedClient::new(reqwest::Client::new(), gw_tracer.clone());
    let response = async {
        let request = client
            .client()
            .post(format!("http://{payment_addr}/charge"))
            .build()
            .unwrap();
        client.execute_named(request, Some("/charge")).await
    }
    .in_span(root)
    .await
    .expect("payment call");
    assert_eq!(response.status(), 200);
    ledger_task.await.expect("ledger consumer");

    for p in [&gateway, &payment, &ledger] {
        p.flush().await.unwrap();
        let stats = p.stats();
        assert_eq!((stats.dropped, stats.failed), (0, 0), "{stats:?}");
    }

    let trace = hopscope.wait_for_trace(&trace_id, 9).await;
    // Parentage across processes and hops.
    assert_eq!(parent_id(span_named(&trace, "POST /transfer")), None);
    assert_child(&trace, "POST /charge", "POST /transfer"); // gateway's HTTP client span
    let client_span = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["operationName"] == "POST /charge" && service_of(&trace, s) == "sdk-gateway")
        .unwrap();
    let server_span = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["operationName"] == "POST /charge" && service_of(&trace, s) == "sdk-payment")
        .unwrap();
    assert_eq!(
        parent_id(server_span),
        client_span["spanID"].as_str(),
        "payment's server span is under gateway's client span"
    );
    for hop in ["SET", "GET", "SELECT accounts", &format!("publish {queue}")] {
        assert_eq!(
            parent_id(span_named(&trace, hop)),
            server_span["spanID"].as_str(),
            "{hop} is under payment's server span"
        );
    }
    assert_child(&trace, &format!("process {queue}"), &format!("publish {queue}"));
    assert_child(&trace, "INSERT hopscope_sdk_ledger", &format!("process {queue}"));

    // Kinds, hop kinds and peers as hopscope derived and serves them.
    let expect = |name: &str, kind: &str, hop: &str, peer: Option<&str>, service: &str| {
        let span = span_named(&trace, name);
        assert_eq!(tag_str(span, "span.kind"), kind, "{name}");
        assert_eq!(tag_str(span, "hopscope.hop_kind"), hop, "{name}");
        if let Some(peer) = peer {
            assert_eq!(tag_str(span, "hopscope.peer"), peer, "{name}");
        }
        assert_eq!(service_of(&trace, span), service, "{name}");
    };
    expect("SET", "client", "cache", Some("127.0.0.1:6379"), "sdk-payment");
    expect("GET", "client", "cache", Some("127.0.0.1:6379"), "sdk-payment");
    expect("SELECT accounts", "client", "db", Some("127.0.0.1:5432"), "sdk-payment");
    expect(
        &format!("publish {queue}"),
        "producer",
        "mq",
        Some(&queue),
        "sdk-payment",
    );
    expect(
        &format!("process {queue}"),
        "consumer",
        "mq",
        Some(&queue),
        "sdk-ledger",
    );
    expect(
        "INSERT hopscope_sdk_ledger",
        "client",
        "db",
        Some("127.0.0.1:3306"),
        "sdk-ledger",
    );
    assert_eq!(tag_str(server_span, "hopscope.hop_kind"), "http");
    assert_eq!(tag_str(server_span, "http.route"), "/charge");
    assert_eq!(
        tag_str(client_span, "hopscope.peer"),
        format!("127.0.0.1:{}", payment_addr.port())
    );
    assert_eq!(
        tag_str(span_named(&trace, "SELECT accounts"), "db.system.name"),
        "postgresql"
    );
    assert_eq!(
        tag_str(span_named(&trace, "INSERT hopscope_sdk_ledger"), "db.system.name"),
        "mariadb"
    );
    assert_eq!(tag_str(span_named(&trace, "GET"), "db.system.name"), "redis");
    assert_eq!(
        tag_str(
            span_named(&trace, &format!("process {queue}")),
            "messaging.operation.type"
        ),
        "process"
    );
    assert_eq!(tag_str(server_span, "hopscope.host"), "rack-pay-2");

    for p in [gateway, payment, ledger] {
        p.shutdown().await.unwrap();
    }
}
