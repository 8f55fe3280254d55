//! `hopscope demo`: a small banking system, instrumented with hopscope-sdk, that sends
//! real multi-hop traces to hopscope — like Jaeger's HotROD.
//!
//! ```text
//! load → gateway ──HTTP──▶ account (×2: hosted, public cloud) ──HTTP──▶ payment
//!                            │ Redis shard GET/SET, PostgreSQL SELECT    │ MariaDB UPDATE
//!                            ▼                                           ▼ RabbitMQ publish
//!                                                        ledger consumer ◀┘ PostgreSQL INSERT, Redis SET
//! ```
//!
//! Every middleware hop is real when the service is reachable (RabbitMQ, Redis, MariaDB,
//! PostgreSQL on their default local ports) and simulated otherwise — same span names,
//! kinds and attributes, context carried in message headers, simulated latency — so the
//! demo works on any machine. HTTP hops are always real (loopback), and so is account's
//! gRPC call to the risk service before each transfer (`risk.rs`). Faults (slow Redis
//! shard, DB lock wait, a timeout on a call the callee completed, queue backlog, a noisy
//! host) give every analysis feature something to find.

mod backends;
mod config;
mod risk;
mod services;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use hopscope_sdk::integrations::http::TracedClient;
use hopscope_sdk::{BatchConfig, Cloud, CloudKind, OtlpConfig, OtlpGrpcExporter, Resource, TracerProvider};
use tokio::net::TcpListener;
use tracing::{info, warn};

pub use config::{DemoArgs, DemoConfig, Faults};

use crate::backends::{Db, Mq, RedisShards};
use crate::services::{Account, Gateway, Ledger, Payment};

/// What can stop the demo.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// The SDK could not be set up.
    #[error("sdk: {0}")]
    Sdk(#[from] hopscope_sdk::Error),
    /// A listener could not be bound.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A Redis call failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A SQL call failed.
    #[error("sql: {0}")]
    Sql(#[from] sqlx::Error),
    /// A RabbitMQ call failed.
    #[error("rabbitmq: {0}")]
    Amqp(#[from] lapin::Error),
}

/// One demo service instance: name, host and where it runs.
struct Instance {
    service: &'static str,
    host: &'static str,
    kind: CloudKind,
    provider: &'static str,
    region: &'static str,
    zone: &'static str,
}

const INSTANCES: [Instance; 5] = [
    Instance {
        service: "demo-gateway",
        host: "gw-i-0f3a9c",
        kind: CloudKind::Public,
        provider: "aws",
        region: "eu-west-1",
        zone: "eu-west-1b",
    },
    Instance {
        service: "demo-account",
        host: "acct-hz-01",
        kind: CloudKind::Hosted,
        provider: "hetzner",
        region: "fsn1",
        zone: "fsn1-dc14",
    },
    Instance {
        service: "demo-account",
        host: "acct-gcp-02",
        kind: CloudKind::Public,
        provider: "gcp",
        region: "europe-west3",
        zone: "europe-west3-a",
    },
    Instance {
        service: "demo-payment",
        host: "pay-dc1-01",
        kind: CloudKind::Private,
        provider: "onprem",
        region: "dc1",
        zone: "rack-07",
    },
    Instance {
        service: "demo-ledger",
        host: "ledger-dc1-01",
        kind: CloudKind::Private,
        provider: "onprem",
        region: "dc1",
        zone: "rack-09",
    },
];

fn provider(endpoint: &str, i: &Instance) -> Result<TracerProvider, DemoError> {
    let exporter = OtlpGrpcExporter::new(OtlpConfig::with_endpoint(endpoint))?;
    let resource = Resource::builder()
        .with_service_name(i.service)
        .with_service_version("1.4.2")
        .with_service_namespace("demo-bank")
        .with_host_name(i.host)
        .with_cloud(Cloud {
            kind: i.kind,
            provider: i.provider.into(),
            region: i.region.into(),
            zone: i.zone.into(),
        })
        .with_attribute("deployment.environment", "demo")
        .build();
    Ok(TracerProvider::builder()
        .with_resource(resource)
        .with_exporter(exporter)
        .with_batch_config(BatchConfig {
            scheduled_delay: Duration::from_millis(500),
            max_queue_size: 8192,
            shutdown_timeout: Duration::from_secs(2),
            ..BatchConfig::default()
        })
        .build()?)
}

/// Names the demo's HTTP services go by. Each service listens on a random loopback port,
/// and the demo's HTTP client resolves these names to those ports, so client spans name
/// their peer `payment:80` rather than `127.0.0.1:41633`, like a real deployment's DNS.
const PAYMENT_HOST: &str = "payment";
/// See [`PAYMENT_HOST`]; one name per account instance, so each is its own node.
const ACCOUNT_HOSTS: [&str; 2] = ["account-1", "account-2"];
/// See [`PAYMENT_HOST`].
const GATEWAY_HOST: &str = "gateway";

/// A listener on a free loopback port, and the name clients call it by.
struct Listener {
    host: &'static str,
    listener: TcpListener,
}

impl Listener {
    async fn bind(host: &'static str) -> Result<Self, DemoError> {
        Ok(Self {
            host,
            listener: TcpListener::bind("127.0.0.1:0").await?,
        })
    }

    /// The URL clients use: the name, no port (the client resolves both).
    fn url(&self) -> String {
        format!("http://{}", self.host)
    }

    fn serve(self, router: axum::Router) {
        tokio::spawn(async move {
            if let Err(e) = axum::serve(self.listener, router).await {
                warn!(error = %e, "demo service stopped");
            }
        });
    }
}

/// An HTTP client that resolves every listener's name to its loopback address.
fn resolving_client(listeners: &[&Listener]) -> Result<reqwest::Client, DemoError> {
    let mut builder = reqwest::Client::builder();
    for l in listeners {
        builder = builder.resolve(l.host, l.listener.local_addr()?);
    }
    builder.build().map_err(|e| DemoError::Io(std::io::Error::other(e)))
}

/// Runs the workload until `shutdown` completes (or `config.duration` passes), then
/// flushes every service's spans. Middleware that is unreachable is simulated.
pub async fn run(config: DemoConfig, shutdown: impl Future<Output = ()> + Send) -> Result<(), DemoError> {
    let mut providers = INSTANCES
        .iter()
        .map(|i| provider(&config.otlp_endpoint, i))
        .collect::<Result<Vec<_>, _>>()?;
    let [gw_p, acct1_p, acct2_p, pay_p, ledger_p] = [0, 1, 2, 3, 4].map(|i| providers[i].clone());

    let faults = config.faults;
    let shards = Arc::new(RedisShards::connect(&config.redis_url, config.simulate, faults.slow_redis_shard).await);
    let pg = Arc::new(Db::postgres(&config.postgres_url, config.simulate).await);
    let maria = Arc::new(Db::mariadb(&config.mariadb_url, config.simulate).await);
    let mq = Arc::new(Mq::connect(&config.amqp_url, &config.queue, config.simulate).await);

    let mut background = tokio::task::JoinSet::new();
    if faults.db_lock_wait {
        background.spawn(maria.clone().hold_locks_forever());
    }
    let ledger = Ledger {
        tracer: ledger_p.tracer("ledger"),
        pg: pg.clone(),
        shards: shards.clone(),
        mq: mq.clone(),
        faults,
    };
    background.spawn(ledger.run());

    let payment = Listener::bind(PAYMENT_HOST).await?;
    let accounts = [
        Listener::bind(ACCOUNT_HOSTS[0]).await?,
        Listener::bind(ACCOUNT_HOSTS[1]).await?,
    ];
    let gateway = Listener::bind(GATEWAY_HOST).await?;
    let http = resolving_client(&[&payment, &accounts[0], &accounts[1], &gateway])?;
    let gateway_url = gateway.url();
    let account_urls: Vec<String> = accounts.iter().map(Listener::url).collect();
    let payment_url = payment.url();

    let pay_t = pay_p.tracer("payment");
    payment.serve(services::payment_router(
        pay_t.clone(),
        Payment {
            tracer: pay_t,
            maria,
            mq,
            faults,
        },
    ));
    let (risk_p, risk_addr) = risk::serve(&config.otlp_endpoint).await?;
    providers.push(risk_p);
    for (listener, (p, noisy)) in accounts
        .into_iter()
        .zip([(&acct1_p, false), (&acct2_p, faults.noisy_host)])
    {
        let t = p.tracer("account");
        let state = Account {
            tracer: t.clone(),
            client: TracedClient::new(http.clone(), t.clone()),
            payment_url: payment_url.clone(),
            risk: risk::RiskClient::new(risk_addr, t.clone())?,
            shards: shards.clone(),
            pg: pg.clone(),
            noisy,
        };
        listener.serve(services::account_router(t, state));
    }
    let gw_t = gw_p.tracer("gateway");
    let gateway_state = Gateway {
        client: TracedClient::new(http.clone(), gw_t.clone()),
        accounts: Arc::new(account_urls),
        next: Arc::new(AtomicUsize::new(0)),
    };
    gateway.serve(services::gateway_router(gw_t, gateway_state));
    info!(
        rate = config.rate,
        faults = %faults,
        "demo workload running: gateway, account-1, account-2, payment, ledger"
    );

    // Load: fixed rate, each request on its own task so slow ones do not slow the rate.
    let period = Duration::from_secs_f64(1.0 / config.rate.clamp(0.1, 1000.0));
    let load = async {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            let (method, url) = services::next_request(&gateway_url);
            let client = http.clone();
            tokio::spawn(async move {
                let _ = client.request(method, url).timeout(Duration::from_secs(5)).send().await;
            });
        }
    };
    let until = async {
        match config.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = load => {}
        () = shutdown => info!("demo stopping"),
        () = until => info!("demo duration reached; stopping the load"),
    }
    // Let in-flight requests and queued messages finish, then flush.
    tokio::time::sleep(Duration::from_millis(600)).await;
    background.abort_all();
    for p in &providers {
        if let Err(e) = p.shutdown().await {
            warn!(error = %e, "flushing demo spans failed");
        }
        let stats = p.stats();
        info!(service = %p.resource().get("service.name").and_then(|v| v.as_str()).unwrap_or("?"), exported = stats.exported, dropped = stats.dropped, failed = stats.failed, "demo spans");
    }
    Ok(())
}
