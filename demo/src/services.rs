//! The banking services: gateway → account → payment → (RabbitMQ) → ledger. Each runs
//! its own axum server on loopback with its own tracer provider (service name, host and
//! cloud tags), so the traces look like a real multi-host deployment.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use hopscope_sdk::integrations::http::{HttpServerLayer, TracedClient};
use hopscope_sdk::{FutureExt, SpanKind, Tracer};
use rand::Rng;
use tracing::warn;

use crate::Faults;
use crate::backends::{ACCOUNTS, Db, HOT_ACCOUNTS, Mq, PaymentEvent, RedisShards, ms};

/// Account's client timeout towards payment (the timeout fault outlasts it).
pub(crate) const PAYMENT_TIMEOUT: Duration = Duration::from_millis(300);
/// The gateway's client timeout towards account.
pub(crate) const ACCOUNT_TIMEOUT: Duration = Duration::from_secs(2);

type Reply = Result<String, StatusCode>;

fn fail(e: impl std::fmt::Display) -> StatusCode {
    warn!(error = %e, "demo request failed");
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn call(client: &TracedClient, request: reqwest::RequestBuilder, template: &str, timeout: Duration) -> Reply {
    let request = request.timeout(timeout).build().map_err(fail)?;
    match client.execute_named(request, Some(template)).await {
        Ok(r) if r.status().is_success() => r.text().await.map_err(fail),
        Ok(r) => Err(r.status()),
        Err(e) if e.is_timeout() => Err(StatusCode::GATEWAY_TIMEOUT),
        Err(e) => Err(fail(e)),
    }
}

// ---- gateway ----

#[derive(Clone)]
pub(crate) struct Gateway {
    pub client: TracedClient,
    pub accounts: Arc<Vec<String>>,
    pub next: Arc<AtomicUsize>,
}

impl Gateway {
    fn account_url(&self) -> &str {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.accounts.len();
        &self.accounts[i]
    }
}

async fn gw_transfer(State(g): State<Gateway>, Path((from, amount)): Path<(u64, i64)>) -> Reply {
    let url = format!("{}/transfer/{from}/{amount}", g.account_url());
    call(
        &g.client,
        g.client.client().post(url),
        "/transfer/{from}/{amount}",
        ACCOUNT_TIMEOUT,
    )
    .await
}

async fn gw_balance(State(g): State<Gateway>, Path(account): Path<u64>) -> Reply {
    let url = format!("{}/accounts/{account}", g.account_url());
    call(
        &g.client,
        g.client.client().get(url),
        "/accounts/{account}",
        ACCOUNT_TIMEOUT,
    )
    .await
}

pub(crate) fn gateway_router(tracer: Tracer, state: Gateway) -> Router {
    Router::new()
        .route("/transfer/{from}/{amount}", post(gw_transfer))
        .route("/balance/{account}", get(gw_balance))
        .route_layer(HttpServerLayer::new(tracer))
        .with_state(state)
}

// ---- account ----

#[derive(Clone)]
pub(crate) struct Account {
    pub tracer: Tracer,
    pub client: TracedClient,
    pub payment_url: String,
    /// The risk service (gRPC), asked before each transfer.
    pub risk: crate::risk::RiskClient,
    pub shards: Arc<RedisShards>,
    pub pg: Arc<Db>,
    /// This instance's host is noisy: its own work takes longer (CPU steal).
    pub noisy: bool,
}

async fn balance_of(a: &Account, account: u64) -> Result<i64, StatusCode> {
    if a.noisy {
        // Stolen CPU: the request's own code runs late, outside any client call.
        tokio::time::sleep(ms(40, 120)).await;
    }
    let key = format!("balance:{account}");
    if let Some(cached) = a.shards.get(&a.tracer, account, &key).await.map_err(fail)? {
        return Ok(cached);
    }
    let balance = a.pg.balance(&a.tracer, account).await.map_err(fail)?;
    a.shards.set(&a.tracer, account, &key, balance).await.map_err(fail)?;
    Ok(balance)
}

async fn acct_balance(State(a): State<Account>, Path(account): Path<u64>) -> Reply {
    Ok(balance_of(&a, account).await?.to_string())
}

async fn acct_transfer(State(a): State<Account>, Path((from, amount)): Path<(u64, i64)>) -> Reply {
    let balance = balance_of(&a, from).await?;
    if balance < amount {
        return Err(StatusCode::PAYMENT_REQUIRED);
    }
    a.risk.score(from, amount).await.map_err(fail)?;
    let url = format!("{}/charge/{from}/{amount}", a.payment_url);
    call(
        &a.client,
        a.client.client().post(url),
        "/charge/{account}/{amount}",
        PAYMENT_TIMEOUT,
    )
    .await
}

pub(crate) fn account_router(tracer: Tracer, state: Account) -> Router {
    Router::new()
        .route("/accounts/{account}", get(acct_balance))
        .route("/transfer/{from}/{amount}", post(acct_transfer))
        .route_layer(HttpServerLayer::new(tracer))
        .with_state(state)
}

// ---- payment ----

#[derive(Clone)]
pub(crate) struct Payment {
    pub tracer: Tracer,
    pub maria: Arc<Db>,
    pub mq: Arc<Mq>,
    pub faults: Faults,
}

async fn pay_charge(State(p): State<Payment>, Path((account, amount)): Path<(u64, i64)>) -> Reply {
    // Fraud scoring: an internal step; with the timeout fault, one call in five takes
    // longer than the caller waits (and still completes here).
    let slow = p.faults.timeout && rand::rng().random_bool(0.2);
    let mut check = p
        .tracer
        .span("fraud-check")
        .kind(SpanKind::Internal)
        .attribute("fraud.model", "gbm-v7")
        .start();
    check.set_attribute("fraud.slow_path", slow);
    let cx = check.context().clone();
    async { tokio::time::sleep(if slow { ms(350, 500) } else { ms(2, 8) }).await }
        .with_context(cx)
        .await;
    check.end();
    p.maria
        .debit(&p.tracer, account, amount, p.faults.db_lock_wait)
        .await
        .map_err(fail)?;
    p.mq.publish(&p.tracer, PaymentEvent { account, amount })
        .await
        .map_err(fail)?;
    Ok("charged".into())
}

pub(crate) fn payment_router(tracer: Tracer, state: Payment) -> Router {
    Router::new()
        .route("/charge/{account}/{amount}", post(pay_charge))
        .route_layer(HttpServerLayer::new(tracer))
        .with_state(state)
}

// ---- ledger ----

pub(crate) struct Ledger {
    pub tracer: Tracer,
    pub pg: Arc<Db>,
    pub shards: Arc<RedisShards>,
    pub mq: Arc<Mq>,
    pub faults: Faults,
}

impl Ledger {
    pub(crate) async fn run(self) {
        let prefetch = if self.faults.queue_backlog { 1 } else { 20 };
        let (tracer, pg, shards, backlog) = (
            self.tracer.clone(),
            self.pg.clone(),
            self.shards.clone(),
            self.faults.queue_backlog,
        );
        let handle = move |event: PaymentEvent| {
            let (tracer, pg, shards) = (tracer.clone(), pg.clone(), shards.clone());
            async move {
                if backlog {
                    // The consumer is slower than the publish rate: messages queue up.
                    tokio::time::sleep(ms(250, 400)).await;
                }
                if let Err(e) = pg.record(&tracer, event.account, event.amount).await {
                    warn!(error = %e, "ledger insert failed");
                }
                if let Err(e) = shards
                    .set(
                        &tracer,
                        event.account,
                        &format!("ledger:last:{}", event.account),
                        event.amount,
                    )
                    .await
                {
                    warn!(error = %e, "ledger cache update failed");
                }
            }
        };
        if let Err(e) = self.mq.consume(self.tracer.clone(), prefetch, handle).await {
            warn!(error = %e, "ledger consumer stopped");
        }
    }
}

/// Picks the next request: mostly transfers, some balance checks; hot accounts are
/// picked often, so the lock fault has something to hit.
pub(crate) fn next_request(gateway: &str) -> (reqwest::Method, String) {
    let mut rng = rand::rng();
    let account = if rng.random_bool(0.4) {
        rng.random_range(1..=HOT_ACCOUNTS)
    } else {
        rng.random_range(1..=ACCOUNTS)
    };
    if rng.random_bool(0.7) {
        let amount = rng.random_range(1..=200);
        (reqwest::Method::POST, format!("{gateway}/transfer/{account}/{amount}"))
    } else {
        (reqwest::Method::GET, format!("{gateway}/balance/{account}"))
    }
}
