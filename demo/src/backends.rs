//! The middleware the demo services call: Redis shards, PostgreSQL, MariaDB and RabbitMQ,
//! each either real (when reachable) or simulated. Simulated hops produce the same spans
//! (names, kinds, attributes, context in message headers) with simulated latency.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hopscope_sdk::integrations::amqp::{self, Broker};
use hopscope_sdk::integrations::redis::TracedConnection;
use hopscope_sdk::integrations::semconv::*;
use hopscope_sdk::integrations::sql::DbPeer;
use hopscope_sdk::{FutureExt, Span, SpanKind, Tracer};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use rand::Rng;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Cmd, RedisFuture, Value};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::DemoError;

/// A latency in milliseconds, uniform in `lo..hi`.
pub(crate) fn ms(lo: u64, hi: u64) -> Duration {
    Duration::from_micros(rand::rng().random_range(lo * 1000..hi.max(lo + 1) * 1000))
}

/// Never returned: the error type of simulated calls.
#[derive(Debug, thiserror::Error)]
#[error("simulated failure")]
pub(crate) struct Simulated;

/// Adds latency before every command: the slow shard's "network".
#[derive(Clone)]
pub(crate) struct Delayed {
    inner: MultiplexedConnection,
    slow: bool,
}

impl ConnectionLike for Delayed {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            if self.slow {
                tokio::time::sleep(ms(60, 150)).await;
            }
            self.inner.req_packed_command(cmd).await
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        p: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move { self.inner.req_packed_commands(p, offset, count).await })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

struct Shard {
    name: String,
    db: i64,
    slow: bool,
    real: Option<Delayed>,
}

/// Three Redis shards, `redis-shard-1..3`. Real mode maps them to databases 1–3 of one
/// Redis server; spans name the shard as `server.address` so each is its own node.
pub(crate) struct RedisShards {
    shards: Vec<Shard>,
}

impl RedisShards {
    pub(crate) async fn connect(url: &str, simulate: bool, slow_shard: bool) -> RedisShards {
        let mut shards = Vec::new();
        for db in 1..=3i64 {
            let slow = slow_shard && db == 2;
            let real = if simulate {
                None
            } else {
                connect_redis(url, db).await.map(|d| Delayed { slow, ..d })
            };
            shards.push(Shard {
                name: format!("redis-shard-{db}"),
                db,
                slow,
                real,
            });
        }
        let mode = if shards.iter().all(|s| s.real.is_some()) {
            "real"
        } else {
            "simulated"
        };
        info!(mode, url, "redis shards");
        RedisShards { shards }
    }

    fn shard(&self, key: u64) -> &Shard {
        &self.shards[(key % self.shards.len() as u64) as usize]
    }

    /// GET on the key's shard.
    pub(crate) async fn get(&self, tracer: &Tracer, account: u64, key: &str) -> Result<Option<i64>, DemoError> {
        let shard = self.shard(account);
        match &shard.real {
            Some(conn) => {
                let mut c = TracedConnection::new(conn.clone(), tracer.clone(), shard.name.clone(), 6379);
                Ok(redis::cmd("GET").arg(key).query_async(&mut c).await?)
            }
            None => {
                simulated_redis(tracer, shard, "GET").await;
                Ok(rand::rng().random_bool(0.7).then_some(1000))
            }
        }
    }

    /// SET with a TTL on the key's shard.
    pub(crate) async fn set(&self, tracer: &Tracer, account: u64, key: &str, value: i64) -> Result<(), DemoError> {
        let shard = self.shard(account);
        match &shard.real {
            Some(conn) => {
                let mut c = TracedConnection::new(conn.clone(), tracer.clone(), shard.name.clone(), 6379);
                let () = redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("EX")
                    .arg(30)
                    .query_async(&mut c)
                    .await?;
                Ok(())
            }
            None => {
                simulated_redis(tracer, shard, "SET").await;
                Ok(())
            }
        }
    }
}

async fn connect_redis(url: &str, db: i64) -> Option<Delayed> {
    let attempt = async {
        let info: redis::ConnectionInfo = redis::IntoConnectionInfo::into_connection_info(url)?;
        let settings = info.redis_settings().clone().set_db(db);
        let info = info.set_redis_settings(settings);
        redis::Client::open(info)?.get_multiplexed_async_connection().await
    };
    match tokio::time::timeout(Duration::from_secs(2), attempt).await {
        Ok(Ok(conn)) => Some(Delayed {
            inner: conn,
            slow: false,
        }),
        Ok(Err(e)) => {
            warn!(error = %e, url, "redis unreachable; simulating the redis hops");
            None
        }
        Err(_) => {
            warn!(url, "redis did not answer within 2 s; simulating the redis hops");
            None
        }
    }
}

async fn simulated_redis(tracer: &Tracer, shard: &Shard, op: &'static str) {
    let span = tracer
        .span(op)
        .kind(SpanKind::Client)
        .attribute(DB_SYSTEM_NAME, "redis")
        .attribute(DB_OPERATION_NAME, op)
        .attribute(DB_NAMESPACE, shard.db.to_string())
        .attribute(SERVER_ADDRESS, shard.name.clone())
        .attribute(SERVER_PORT, 6379)
        .start();
    let delay = if shard.slow { ms(60, 150) } else { ms(0, 2) };
    tokio::time::sleep(delay).await;
    span.end();
}

enum SqlPool {
    Pg(sqlx::PgPool),
    Maria(sqlx::MySqlPool),
    Sim,
}

/// The node names spans give the middleware (`server.address`), real or simulated: what
/// DNS would call them in a real deployment rather than `127.0.0.1`, so the middleware
/// pages read like a real system. The port stays the real one.
pub(crate) const POSTGRES_NODE: &str = "postgres-main";
/// See [`POSTGRES_NODE`].
pub(crate) const MARIADB_NODE: &str = "mariadb-core";
/// See [`POSTGRES_NODE`].
pub(crate) const RABBITMQ_NODE: &str = "rabbitmq";

/// One database: PostgreSQL (accounts, ledger) or MariaDB (payments).
pub(crate) struct Db {
    peer: DbPeer,
    pool: SqlPool,
}

impl Db {
    pub(crate) async fn postgres(url: &str, simulate: bool) -> Db {
        let opts: Result<sqlx::postgres::PgConnectOptions, _> = url.parse();
        let fallback = DbPeer::new("postgresql", "test", POSTGRES_NODE, 5432);
        let (peer, pool) = match (simulate, opts) {
            (false, Ok(opts)) => {
                let peer = DbPeer {
                    address: POSTGRES_NODE.to_owned(),
                    ..DbPeer::postgres(&opts)
                };
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(2))
                    .connect_with(opts);
                match tokio::time::timeout(Duration::from_secs(3), pool).await {
                    Ok(Ok(pool)) => match setup_pg(&pool).await {
                        Ok(()) => (peer, SqlPool::Pg(pool)),
                        Err(e) => {
                            warn!(error = %e, "postgresql schema setup failed; simulating");
                            (fallback, SqlPool::Sim)
                        }
                    },
                    _ => {
                        warn!(url, "postgresql unreachable; simulating the postgresql hops");
                        (fallback, SqlPool::Sim)
                    }
                }
            }
            _ => (fallback, SqlPool::Sim),
        };
        info!(
            mode = if matches!(pool, SqlPool::Sim) {
                "simulated"
            } else {
                "real"
            },
            "postgresql"
        );
        Db { peer, pool }
    }

    pub(crate) async fn mariadb(url: &str, simulate: bool) -> Db {
        let opts: Result<sqlx::mysql::MySqlConnectOptions, _> = url.parse();
        let fallback = DbPeer::new("mariadb", "test", MARIADB_NODE, 3306);
        let (peer, pool) = match (simulate, opts) {
            (false, Ok(opts)) => {
                let peer = DbPeer {
                    address: MARIADB_NODE.to_owned(),
                    ..DbPeer::mariadb(&opts)
                };
                let pool = sqlx::mysql::MySqlPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(2))
                    .connect_with(opts);
                match tokio::time::timeout(Duration::from_secs(3), pool).await {
                    Ok(Ok(pool)) => match setup_maria(&pool).await {
                        Ok(()) => (peer, SqlPool::Maria(pool)),
                        Err(e) => {
                            warn!(error = %e, "mariadb schema setup failed; simulating");
                            (fallback, SqlPool::Sim)
                        }
                    },
                    _ => {
                        warn!(url, "mariadb unreachable; simulating the mariadb hops");
                        (fallback, SqlPool::Sim)
                    }
                }
            }
            _ => (fallback, SqlPool::Sim),
        };
        info!(
            mode = if matches!(pool, SqlPool::Sim) {
                "simulated"
            } else {
                "real"
            },
            "mariadb"
        );
        Db { peer, pool }
    }

    /// Account balance (PostgreSQL).
    pub(crate) async fn balance(&self, tracer: &Tracer, account: u64) -> Result<i64, DemoError> {
        const Q: &str = "SELECT balance FROM demo_accounts WHERE id = $1";
        match &self.pool {
            SqlPool::Pg(pool) => {
                let q = sqlx::query_scalar::<_, i64>(Q)
                    .bind(account as i64)
                    .fetch_optional(pool);
                Ok(self
                    .peer
                    .instrument(tracer, "SELECT", Some("demo_accounts"), Some(Q), q)
                    .await?
                    .unwrap_or(0))
            }
            _ => Ok(self.simulate(tracer, "SELECT", "demo_accounts", Q, ms(1, 6)).await),
        }
    }

    /// Debit (MariaDB); waits on a row lock while the lock-holder job runs.
    pub(crate) async fn debit(
        &self,
        tracer: &Tracer,
        account: u64,
        amount: i64,
        lock_fault: bool,
    ) -> Result<(), DemoError> {
        const Q: &str = "UPDATE demo_accounts SET balance = balance - ? WHERE id = ?";
        match &self.pool {
            SqlPool::Maria(pool) => {
                let q = sqlx::query(Q).bind(amount).bind(account as i64).execute(pool);
                self.peer
                    .instrument(tracer, "UPDATE", Some("demo_accounts"), Some(Q), q)
                    .await?;
                Ok(())
            }
            _ => {
                let hot = account <= HOT_ACCOUNTS;
                let wait = if lock_fault && hot && rand::rng().random_bool(0.5) {
                    ms(150, 450)
                } else {
                    ms(1, 5)
                };
                self.simulate(tracer, "UPDATE", "demo_accounts", Q, wait).await;
                Ok(())
            }
        }
    }

    /// Ledger entry (PostgreSQL).
    pub(crate) async fn record(&self, tracer: &Tracer, account: u64, amount: i64) -> Result<(), DemoError> {
        const Q: &str = "INSERT INTO demo_ledger (account, amount) VALUES ($1, $2)";
        match &self.pool {
            SqlPool::Pg(pool) => {
                let q = sqlx::query(Q).bind(account as i64).bind(amount).execute(pool);
                self.peer
                    .instrument(tracer, "INSERT", Some("demo_ledger"), Some(Q), q)
                    .await?;
                Ok(())
            }
            _ => {
                self.simulate(tracer, "INSERT", "demo_ledger", Q, ms(1, 4)).await;
                Ok(())
            }
        }
    }

    async fn simulate(
        &self,
        tracer: &Tracer,
        op: &'static str,
        table: &'static str,
        q: &str,
        latency: Duration,
    ) -> i64 {
        let sleep = async {
            tokio::time::sleep(latency).await;
            Ok::<_, Simulated>(1000)
        };
        self.peer
            .instrument(tracer, op, Some(table), Some(q), sleep)
            .await
            .unwrap_or(0)
    }

    /// The lock-wait fault on a real MariaDB: a "batch job" repeatedly holds row locks on
    /// the hot accounts for 300 ms, so concurrent debits really wait.
    pub(crate) async fn hold_locks_forever(self: Arc<Self>) {
        let SqlPool::Maria(pool) = &self.pool else { return };
        loop {
            let round = async {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT balance FROM demo_accounts WHERE id <= ? FOR UPDATE")
                    .bind(HOT_ACCOUNTS as i64)
                    .fetch_all(&mut *tx)
                    .await?;
                tokio::time::sleep(Duration::from_millis(300)).await;
                tx.commit().await
            };
            if let Err(e) = round.await {
                warn!(error = %e, "lock-holder round failed");
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    }
}

/// Accounts 1..=HOT_ACCOUNTS are the busy ones the lock fault hits.
pub(crate) const HOT_ACCOUNTS: u64 = 4;
/// Accounts are 1..=ACCOUNTS.
pub(crate) const ACCOUNTS: u64 = 40;

async fn setup_pg(pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("CREATE TABLE IF NOT EXISTS demo_accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)")
        .execute(pool)
        .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS demo_ledger (id BIGSERIAL PRIMARY KEY, account BIGINT NOT NULL, amount BIGINT NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT now())")
        .execute(pool)
        .await?;
    sqlx::query(
        "INSERT INTO demo_accounts (id, balance) SELECT g, 100000 FROM generate_series(1, $1) g ON CONFLICT DO NOTHING",
    )
    .bind(ACCOUNTS as i64)
    .execute(pool)
    .await?;
    Ok(())
}

async fn setup_maria(pool: &sqlx::MySqlPool) -> Result<(), sqlx::Error> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS demo_accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB",
    )
    .execute(pool)
    .await?;
    for id in 1..=ACCOUNTS {
        sqlx::query("INSERT IGNORE INTO demo_accounts (id, balance) VALUES (?, 100000)")
            .bind(id as i64)
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// A payment event on the queue.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct PaymentEvent {
    pub account: u64,
    pub amount: i64,
}

struct SimMessage {
    headers: HashMap<String, String>,
    event: PaymentEvent,
}

enum Queue {
    Real {
        _connection: Box<lapin::Connection>,
        channel: lapin::Channel,
    },
    Sim {
        tx: mpsc::Sender<SimMessage>,
        rx: tokio::sync::Mutex<Option<mpsc::Receiver<SimMessage>>>,
    },
}

/// The payments queue on RabbitMQ (or an in-process simulation with the same spans and
/// the context in message headers).
pub(crate) struct Mq {
    queue_name: String,
    broker: Broker,
    queue: Queue,
}

impl Mq {
    pub(crate) async fn connect(url: &str, queue_name: &str, simulate: bool) -> Mq {
        let real = if simulate {
            None
        } else {
            connect_amqp(url, queue_name).await
        };
        match real {
            Some((connection, channel)) => {
                info!(mode = "real", queue = queue_name, "rabbitmq");
                Mq {
                    queue_name: queue_name.to_owned(),
                    broker: Broker::new(RABBITMQ_NODE, 5672),
                    queue: Queue::Real {
                        _connection: Box::new(connection),
                        channel,
                    },
                }
            }
            None => {
                info!(mode = "simulated", queue = queue_name, "rabbitmq");
                let (tx, rx) = mpsc::channel(100_000);
                Mq {
                    queue_name: queue_name.to_owned(),
                    broker: Broker::new(RABBITMQ_NODE, 5672),
                    queue: Queue::Sim {
                        tx,
                        rx: tokio::sync::Mutex::new(Some(rx)),
                    },
                }
            }
        }
    }

    /// Publishes a payment event inside a producer span.
    pub(crate) async fn publish(&self, tracer: &Tracer, event: PaymentEvent) -> Result<(), DemoError> {
        let body = format!("{{\"account\":{},\"amount\":{}}}", event.account, event.amount);
        match &self.queue {
            Queue::Real { channel, .. } => {
                amqp::publish(
                    tracer,
                    &self.broker,
                    channel,
                    "",
                    &self.queue_name,
                    body.as_bytes(),
                    lapin::BasicProperties::default(),
                )
                .await?;
            }
            Queue::Sim { tx, .. } => {
                let span = self.span(
                    tracer,
                    SpanKind::Producer,
                    format!("publish {}", self.queue_name),
                    "send",
                    "publish",
                    body.len(),
                    None,
                );
                let mut headers = HashMap::new();
                tracer.inject(span.context(), &mut headers);
                tokio::time::sleep(ms(0, 2)).await;
                if tx.try_send(SimMessage { headers, event }).is_err() {
                    warn!("simulated queue full; message dropped");
                }
                span.end();
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn span(
        &self,
        tracer: &Tracer,
        kind: SpanKind,
        name: String,
        op_type: &'static str,
        op: &'static str,
        size: usize,
        parent: Option<&hopscope_sdk::SpanContext>,
    ) -> Span {
        let mut b = tracer.span(name).kind(kind);
        if kind == SpanKind::Consumer {
            b = b.parent(parent);
        }
        b.attribute(MESSAGING_SYSTEM, "rabbitmq")
            .attribute(MESSAGING_DESTINATION_NAME, self.queue_name.clone())
            .attribute(MESSAGING_RABBITMQ_ROUTING_KEY, self.queue_name.clone())
            .attribute(MESSAGING_OPERATION_TYPE, op_type)
            .attribute(MESSAGING_OPERATION_NAME, op)
            .attribute(MESSAGING_MESSAGE_BODY_SIZE, size as i64)
            .attribute(SERVER_ADDRESS, self.broker.address.clone())
            .attribute(SERVER_PORT, self.broker.port)
            .start()
    }

    /// Consumes forever, running `handle` inside each message's consumer span.
    pub(crate) async fn consume<F, Fut>(&self, tracer: Tracer, prefetch: u16, handle: F) -> Result<(), DemoError>
    where
        F: Fn(PaymentEvent) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        match &self.queue {
            Queue::Real { channel, .. } => {
                channel.basic_qos(prefetch, BasicQosOptions::default()).await?;
                let mut consumer = channel
                    .basic_consume(
                        self.queue_name.as_str().into(),
                        "demo-ledger".into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
                while let Some(delivery) = consumer.next().await {
                    let delivery = delivery?;
                    let span = amqp::process_span(&tracer, &self.broker, &self.queue_name, &delivery);
                    if let Some(event) = parse_event(&delivery.data) {
                        handle(event).in_span(span).await;
                    }
                    delivery.ack(BasicAckOptions::default()).await?;
                }
                Ok(())
            }
            Queue::Sim { rx, .. } => {
                let Some(mut rx) = rx.lock().await.take() else {
                    return Ok(());
                };
                while let Some(msg) = rx.recv().await {
                    let parent = tracer.extract(&msg.headers);
                    let span = self.span(
                        &tracer,
                        SpanKind::Consumer,
                        format!("process {}", self.queue_name),
                        "process",
                        "deliver",
                        32,
                        parent.as_ref(),
                    );
                    handle(msg.event).in_span(span).await;
                }
                Ok(())
            }
        }
    }
}

fn parse_event(data: &[u8]) -> Option<PaymentEvent> {
    let text = std::str::from_utf8(data).ok()?;
    let num = |key: &str| -> Option<i64> {
        let rest = &text[text.find(key)? + key.len()..];
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        rest[..end].trim().parse().ok()
    };
    Some(PaymentEvent {
        account: num("\"account\":")? as u64,
        amount: num("\"amount\":")?,
    })
}

async fn connect_amqp(url: &str, queue: &str) -> Option<(lapin::Connection, lapin::Channel)> {
    let attempt = async {
        let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await?;
        let channel = conn.create_channel().await?;
        // Auto-delete: the queue goes away when the demo (its only consumer) stops.
        let options = QueueDeclareOptions {
            auto_delete: true,
            ..QueueDeclareOptions::default()
        };
        channel
            .queue_declare(queue.into(), options, FieldTable::default())
            .await?;
        Ok::<_, lapin::Error>((conn, channel))
    };
    match tokio::time::timeout(Duration::from_secs(3), attempt).await {
        Ok(Ok(pair)) => Some(pair),
        Ok(Err(e)) => {
            warn!(error = %e, url, "rabbitmq unreachable; simulating the queue hops");
            None
        }
        Err(_) => {
            warn!(url, "rabbitmq did not answer within 3 s; simulating the queue hops");
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn parses_events() {
        let e = super::parse_event(b"{\"account\":7,\"amount\":42}").unwrap();
        assert_eq!((e.account, e.amount), (7, 42));
    }
}
