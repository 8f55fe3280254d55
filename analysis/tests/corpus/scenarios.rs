//! The eight trace shapes, one per [`Fault`], each with its healthy form (the same shape,
//! fault off) and its ground truth. Every entry runs on a `gateway` instance, calls the
//! decoy first, then the scenario's work.

use hopscope_schemas::{HopKind, SpanKind};
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::build::{FxExt, Node, Store, Tb, Topology};
use super::{Fault, Incident, Mode, Setup, Truth};

/// Fan-out branches: (service, route, its store, the statement).
pub const BRANCHES: [(&str, &str, Store, &str); 8] = [
    ("tax", "/tax", Store::Postgres("tax-db"), "SELECT rates FROM tax_rules"),
    ("fx", "/fx-rate", Store::Redis("fx-cache"), "GET"),
    ("inventory", "/stock", Store::Mysql("stock-db"), "SELECT qty FROM stock"),
    (
        "shipping",
        "/shipping",
        Store::Postgres("shipping-db"),
        "SELECT zones FROM tariffs",
    ),
    ("discount", "/discount", Store::Redis("discount-cache"), "HGETALL"),
    (
        "loyalty",
        "/points",
        Store::Mysql("loyalty-db"),
        "SELECT points FROM members",
    ),
    (
        "risk",
        "/score",
        Store::Postgres("risk-db"),
        "SELECT score FROM profiles",
    ),
    ("catalog", "/item", Store::Redis("catalog-cache"), "GET"),
];

/// Lock-wait targets: (service, method, route, database).
pub const LOCK_TARGETS: [(&str, &str, &str, Store); 2] = [
    ("payments", "POST", "/charge", Store::Postgres("pay-db")),
    ("wallet", "POST", "/debit", Store::Mysql("wallet-db")),
];

/// Request/reply exchanges: (service, request queue, reply queue, its database).
pub const EXCHANGES: [(&str, &str, &str, Store); 2] = [
    ("core", "core.requests", "core.replies", Store::Postgres("core-db")),
    ("cards", "cards.requests", "cards.replies", Store::Mysql("cards-db")),
];

/// The order path's databases: (database, statement).
pub const ORDER_DBS: [(Store, &str); 2] = [
    (Store::Postgres("orders-db"), "INSERT INTO orders VALUES (?)"),
    (
        Store::Mysql("reservations-db"),
        "UPDATE reservations SET held = held + ?",
    ),
];

/// External providers called with retries: (host, method, route).
pub const PROVIDERS: [(&str, &str, &str); 2] = [
    ("fx-api.example.com", "GET", "/v1/fx"),
    ("rates.partner.net", "GET", "/v2/rates"),
];

/// Services whose hosts' clocks are off in [`Fault::ClockSkew`] incidents.
pub const SKEW_SERVICES: [&str; 4] = ["gateway", "portfolio", "positions", "quotes"];

/// The slow store of a [`Fault::ClockSkew`] incident: (store, statement).
pub const SKEW_SLOW: [(Store, &str); 2] = [
    (Store::Postgres("positions-db"), "SELECT * FROM positions"),
    (Store::Redis("quotes-cache"), "MGET"),
];

/// Services that can have a noisy host in [`Fault::NoisyVm`] incidents.
const NOISY_SERVICES: [&str; 2] = ["accounts", "ledger"];

/// Draws where an incident of `fault` strikes.
pub fn draw(fault: Fault, rng: &mut StdRng) -> Setup {
    match fault {
        Fault::SlowShard => Setup::SlowShard {
            shard: rng.random_range(1..=3),
        },
        Fault::SlowBranch => Setup::SlowBranch {
            branch: rng.random_range(0..BRANCHES.len()),
            in_store: rng.random_bool(0.5),
        },
        Fault::LockWait => Setup::LockWait {
            target: rng.random_range(0..LOCK_TARGETS.len()),
            timeout_us: rng.random_range(300_000..=800_000),
        },
        Fault::QueueBacklog => Setup::QueueBacklog {
            exchange: rng.random_range(0..EXCHANGES.len()),
        },
        Fault::BackgroundConsumer => Setup::BackgroundConsumer {
            db: rng.random_range(0..ORDER_DBS.len()),
        },
        Fault::NoisyVm => Setup::NoisyVm {
            service: NOISY_SERVICES[rng.random_range(0..NOISY_SERVICES.len())],
            host: rng.random_range(0..3),
        },
        Fault::Retries => Setup::Retries {
            provider: rng.random_range(0..PROVIDERS.len()),
            timeout_us: rng.random_range(60_000..=200_000),
        },
        Fault::ClockSkew => Setup::ClockSkew {
            slow: rng.random_range(0..SKEW_SLOW.len()),
        },
    }
}

fn peer(store: Store) -> Truth {
    Truth::Peer {
        hop_kind: store.hop_kind(),
        peer: store.peer(),
    }
}

/// The ground-truth node of `setup`.
pub fn truth(setup: &Setup, topo: &Topology) -> Truth {
    match *setup {
        Setup::SlowShard { shard } => peer(Store::Redis(shard_host(shard))),
        Setup::SlowBranch { branch, in_store } => {
            let (service, route, store, _) = BRANCHES[branch];
            if in_store {
                peer(store)
            } else {
                Truth::Operation {
                    service: service.into(),
                    operation: format!("GET {route}"),
                }
            }
        }
        Setup::LockWait { target, .. } => peer(LOCK_TARGETS[target].3),
        Setup::QueueBacklog { exchange } => Truth::Peer {
            hop_kind: HopKind::Mq,
            peer: EXCHANGES[exchange].1.into(),
        },
        Setup::BackgroundConsumer { db } => peer(ORDER_DBS[db].0),
        Setup::NoisyVm { service, host } => Truth::Host {
            host: topo.nodes(service)[host].host.clone(),
        },
        Setup::Retries { provider, .. } => Truth::Peer {
            hop_kind: HopKind::Http,
            peer: format!("{}:443", PROVIDERS[provider].0),
        },
        Setup::ClockSkew { slow } => peer(SKEW_SLOW[slow].0),
    }
}

fn shard_host(shard: u64) -> &'static str {
    ["redis-shard-1", "redis-shard-2", "redis-shard-3"][(shard - 1) as usize]
}

/// Whether the fault hits this request where it can.
fn hits(tb: &mut Tb<'_>, incident: &Incident, mode: Mode) -> bool {
    match mode {
        Mode::Healthy => false,
        Mode::Incident => tb.chance(incident.hit_rate),
        Mode::Affected => true,
    }
}

/// One occurrence of the fault's delay, around the incident's typical one.
fn slow(tb: &mut Tb<'_>, incident: &Incident) -> u64 {
    let factor = tb.rng.random_range(0.85..=1.2);
    (incident.slow_us as f64 * factor) as u64
}

/// Builds one trace of `incident`; returns the entry span's number.
pub fn build(tb: &mut Tb<'_>, incident: &Incident, mode: Mode) -> u64 {
    match incident.setup.clone() {
        Setup::SlowShard { shard } => slow_shard(tb, incident, mode, shard),
        Setup::SlowBranch { branch, in_store } => slow_branch(tb, incident, mode, branch, in_store),
        Setup::LockWait { target, timeout_us } => lock_wait(tb, incident, mode, target, timeout_us),
        Setup::QueueBacklog { exchange } => queue_backlog(tb, incident, mode, exchange),
        Setup::BackgroundConsumer { db } => background(tb, incident, mode, db),
        Setup::NoisyVm { service, host } => noisy_vm(tb, incident, mode, service, host),
        Setup::Retries { provider, timeout_us } => retries(tb, incident, mode, provider, timeout_us),
        Setup::ClockSkew { slow } => clock_skew(tb, incident, mode, slow),
    }
}

/// `GET /balance` → (bff/edge) → accounts reads 1–3 keys from three Redis shards (cache
/// misses go to MariaDB). Natural hits: the reads that land on the slow shard.
fn slow_shard(tb: &mut Tb<'_>, incident: &Incident, mode: Mode, shard: u64) -> u64 {
    let route = "/balance";
    let entry = tb.entry(incident.decoy, "GET", route, |tb, gw, entry, t| {
        let end = tb.chain(gw, entry, t, route, &mut |tb, caller, parent, t| {
            let acct = tb.pick("accounts");
            tb.call(caller, parent, t, "GET", route, acct, |tb, server, s0| {
                let mut t = s0 + tb.own();
                let reads = tb.between(1, 3) as usize;
                let mut shards: Vec<u64> = (0..reads).map(|_| tb.between(1, 3)).collect();
                if mode == Mode::Affected && !shards.contains(&shard) {
                    let i = tb.between(0, reads as u64 - 1) as usize;
                    shards[i] = shard;
                }
                for s in shards {
                    let store = Store::Redis(shard_host(s));
                    if mode != Mode::Healthy && s == shard {
                        let dur = slow(tb, incident);
                        let id = tb.query(acct, server, t, store, "GET", dur);
                        tb.fault(id, dur);
                        t += dur;
                    } else {
                        t = tb.quick(acct, server, t, store, "GET");
                    }
                    t += tb.gap();
                    if tb.chance(0.2) {
                        t = tb.quick(acct, server, t, Store::Mysql("acct-db"), "SELECT balance FROM accounts")
                            + tb.gap();
                    }
                }
                t + tb.own()
            })
        });
        (end, None)
    });
    entry.id
}

/// `GET /quote` → (bff/edge) → quote fans out to 3–8 branch services in parallel; each
/// branch runs its own code and reads its store. The slow branch is slow in its own code
/// or in its store.
fn slow_branch(tb: &mut Tb<'_>, incident: &Incident, mode: Mode, slow_branch: usize, in_store: bool) -> u64 {
    let route = "/quote";
    let entry = tb.entry(incident.decoy, "GET", route, |tb, gw, entry, t| {
        let end = tb.chain(gw, entry, t, route, &mut |tb, caller, parent, t| {
            let quote = tb.pick("quote");
            tb.call(caller, parent, t, "POST", route, quote, |tb, server, s0| {
                let t = s0 + tb.own();
                let width = tb.between(3, 8) as usize;
                let mut branches: Vec<usize> = (0..BRANCHES.len()).collect();
                branches.shuffle(tb.rng);
                branches.truncate(width);
                if mode == Mode::Affected && !branches.contains(&slow_branch) {
                    branches[0] = slow_branch;
                }
                let mut end = t;
                for b in branches {
                    let (service, branch_route, store, statement) = BRANCHES[b];
                    let hit = b == slow_branch && hits(tb, incident, mode);
                    let node = tb.pick(service);
                    let start = t + tb.between(0, 300);
                    let done = tb.call(quote, server, start, "GET", branch_route, node, |tb, bs, b0| {
                        let mut t = b0 + tb.own();
                        if hit && !in_store {
                            let extra = slow(tb, incident);
                            tb.fault(bs, extra);
                            t += extra;
                        }
                        if hit && in_store {
                            let dur = slow(tb, incident);
                            let id = tb.query(node, bs, t, store, statement, dur);
                            tb.fault(id, dur);
                            t += dur;
                        } else {
                            t = tb.quick(node, bs, t, store, statement);
                        }
                        t + tb.own()
                    });
                    end = end.max(done);
                }
                end + tb.own()
            })
        });
        (end, None)
    });
    entry.id
}

/// `POST /pay` → payments `POST /charge` then wallet `POST /debit`, each with a client
/// timeout (a SELECT, the UPDATE, half the time a journal INSERT). In the faulty target the `UPDATE` waits on a row lock beyond the timeout: the
/// gateway's client span ends in ERROR at the timeout, the gateway answers 504 at once,
/// and the callee's server span (OK once the lock is granted) outlives the caller.
fn lock_wait(tb: &mut Tb<'_>, incident: &Incident, mode: Mode, faulty: usize, timeout_us: u64) -> u64 {
    let entry = tb.entry(incident.decoy, "POST", "/pay", |tb, gw, entry, mut t| {
        for (i, &(service, method, route, db)) in LOCK_TARGETS.iter().enumerate() {
            let hit = i == faulty && hits(tb, incident, mode);
            let node = tb.pick(service);
            let (client, server) = (tb.id(), tb.id());
            let s0 = t + tb.net();
            let mut u = s0 + tb.own();
            u = tb.quick(node, server, u, db, "SELECT balance FROM accounts WHERE id = ?") + tb.gap();
            let update_start = u;
            let (update, update_us) = if hit {
                let wait = timeout_us + tb.between(100_000, 1_500_000);
                let id = tb.query(node, server, u, db, "UPDATE accounts SET balance = ?", wait);
                (Some(id), wait)
            } else {
                let dur = tb.lat(2_000, 0.5, 10_000);
                tb.query(node, server, u, db, "UPDATE accounts SET balance = ?", dur);
                (None, dur)
            };
            u += update_us + tb.gap();
            // Half the handlers journal the change once the row is theirs: work after the
            // caller gave up.
            if tb.chance(0.5) {
                u = tb.quick(node, server, u, db, "INSERT INTO journal VALUES (?)");
            }
            let s_end = u + tb.own();
            let natural_end = s_end + tb.net();
            let timed_out = natural_end - t > timeout_us;
            let c_end = if timed_out { t + timeout_us } else { natural_end };
            if let Some(id) = update {
                assert!(timed_out, "a lock wait longer than the timeout times the caller out");
                tb.fault(id, c_end - update_start);
            }
            let name = format!("{method} {route}");
            let fx = tb
                .open(client, gw, Some(entry), &name, SpanKind::Client, t, c_end - t)
                .http_client(method, service, 8080);
            tb.put(if timed_out { fx.timed_out() } else { fx });
            let fx = tb
                .open(server, node, Some(client), &name, SpanKind::Server, s0, s_end - s0)
                .http_server(method, route);
            tb.put(fx);
            t = c_end + tb.gap();
            if timed_out {
                return (t, Some("504 upstream timeout"));
            }
        }
        (t, None)
    });
    entry.id
}

/// `POST /transfer` → for each exchange (core always, cards half the time): the entry
/// publishes a request, the service's consumer handles it after a wait in the queue and
/// publishes a reply, a consumer on the entry's instance takes the reply; the entry ends
/// right after the last reply. The backlog is a long wait in the faulty request queue.
fn queue_backlog(tb: &mut Tb<'_>, incident: &Incident, mode: Mode, faulty: usize) -> u64 {
    let entry = tb.entry(incident.decoy, "POST", "/transfer", |tb, gw, entry, mut t| {
        let cards = tb.chance(0.5) || (mode == Mode::Affected && faulty == 1);
        for (i, &(service, requests, replies, db)) in EXCHANGES.iter().enumerate() {
            if i == 1 && !cards {
                continue;
            }
            let hit = i == faulty && hits(tb, incident, mode);
            let publish = tb.id();
            let publish_us = tb.lat(400, 0.4, 2_000);
            let fx = tb
                .open(
                    publish,
                    gw,
                    Some(entry),
                    &format!("{requests} publish"),
                    SpanKind::Producer,
                    t,
                    publish_us,
                )
                .rabbit_op(requests, "publish");
            tb.put(fx);
            let wait = if hit {
                slow(tb, incident)
            } else {
                tb.lat(2_000, 0.8, 15_000)
            };
            let node = tb.pick(service);
            let consumer = tb.id();
            if hit {
                tb.fault(consumer, wait);
            }
            let c0 = t + publish_us + wait;
            let mut u = c0 + tb.own();
            u = tb.quick(node, consumer, u, db, "SELECT * FROM accounts WHERE id = ?") + tb.gap();
            u = tb.quick(node, consumer, u, db, "UPDATE accounts SET balance = ?") + tb.own();
            let reply = tb.id();
            let reply_us = tb.lat(400, 0.4, 2_000);
            let fx = tb
                .open(
                    reply,
                    node,
                    Some(consumer),
                    &format!("{replies} publish"),
                    SpanKind::Producer,
                    u,
                    reply_us,
                )
                .rabbit_op(replies, "publish");
            tb.put(fx);
            let c_end = u + reply_us + tb.gap();
            let fx = tb
                .open(
                    consumer,
                    node,
                    Some(publish),
                    &format!("{requests} process"),
                    SpanKind::Consumer,
                    c0,
                    c_end - c0,
                )
                .rabbit_op(requests, "process");
            tb.put(fx);
            let r0 = u + reply_us + tb.lat(1_000, 0.6, 5_000);
            let taken_us = tb.lat(300, 0.5, 2_000);
            let taken = tb.id();
            let fx = tb
                .open(
                    taken,
                    gw,
                    Some(reply),
                    &format!("{replies} process"),
                    SpanKind::Consumer,
                    r0,
                    taken_us,
                )
                .rabbit_op(replies, "process");
            tb.put(fx);
            t = r0 + taken_us + tb.gap();
        }
        (t, None)
    });
    entry.id
}

/// `POST /order` → orders writes the order (orders-db) and holds stock (reservations-db);
/// the gateway publishes an audit event (and, half the time, a notification) fire-and-
/// forget, before or after the call. The consumers run long after the response is sent.
fn background(tb: &mut Tb<'_>, incident: &Incident, mode: Mode, faulty: usize) -> u64 {
    let mut published: Vec<(&str, u64, u64)> = Vec::new();
    let early = tb.chance(0.5);
    let notify = tb.chance(0.5);
    let entry = tb.entry(incident.decoy, "POST", "/order", |tb, gw, entry, mut t| {
        let mut publish = |tb: &mut Tb<'_>, queue: &'static str, t: u64| {
            let id = tb.id();
            let dur = tb.lat(400, 0.4, 2_000);
            let fx = tb
                .open(
                    id,
                    gw,
                    Some(entry),
                    &format!("{queue} publish"),
                    SpanKind::Producer,
                    t,
                    dur,
                )
                .rabbit_op(queue, "publish");
            tb.put(fx);
            published.push((queue, id, t + dur));
            t + dur + tb.gap()
        };
        if early {
            t = publish(tb, "audit.events", t);
        }
        let orders = tb.pick("orders");
        let hit = hits(tb, incident, mode);
        t = tb.call(gw, entry, t, "POST", "/orders", orders, |tb, server, s0| {
            let mut t = s0 + tb.own();
            for (i, &(db, statement)) in ORDER_DBS.iter().enumerate() {
                if hit && i == faulty {
                    let dur = slow(tb, incident);
                    let id = tb.query(orders, server, t, db, statement, dur);
                    tb.fault(id, dur);
                    t += dur;
                } else {
                    t = tb.quick(orders, server, t, db, statement);
                }
                t += tb.own();
            }
            t
        }) + tb.gap();
        if !early {
            t = publish(tb, "audit.events", t);
        }
        if notify {
            t = publish(tb, "notify.events", t);
        }
        (t, None)
    });
    for (queue, producer, ready) in published {
        // Each consumer ends 0.1–2 s after the response was sent.
        let c0 = ready + tb.lat(3_000, 0.8, 40_000);
        let finish = entry.end.max(c0) + tb.between(100_000, 2_000_000);
        let consumer = tb.id();
        let (service, work) = if queue == "audit.events" {
            ("audit", "audit")
        } else {
            ("notifier", "notify")
        };
        let node = tb.pick(service);
        let t = c0 + tb.own();
        let call_end = finish - tb.own();
        if work == "audit" {
            tb.query(
                node,
                consumer,
                t,
                Store::Postgres("audit-db"),
                "INSERT INTO audit_log VALUES (?)",
                call_end - t,
            );
        } else {
            let id = tb.id();
            let fx = tb
                .open(
                    id,
                    node,
                    Some(consumer),
                    "POST /v3/mail/send",
                    SpanKind::Client,
                    t,
                    call_end - t,
                )
                .http_client("POST", "mail-api.example.com", 443);
            tb.put(fx);
        }
        let fx = tb
            .open(
                consumer,
                node,
                Some(producer),
                &format!("{queue} process"),
                SpanKind::Consumer,
                c0,
                finish - c0,
            )
            .rabbit_op(queue, "process");
        tb.put(fx);
    }
    entry.id
}

/// The instance of `service` this request lands on: the noisy host when forced.
fn instance<'a>(tb: &mut Tb<'a>, mode: Mode, service: &str, noisy: (&str, usize)) -> &'a Node {
    if mode == Mode::Affected && service == noisy.0 {
        tb.node(service, noisy.1)
    } else {
        tb.pick(service)
    }
}

/// `GET /statement` → (bff/edge) → accounts (cache read, SQL read) → ledger (SQL read).
/// On the noisy host the service's own code is slow; its calls are not.
fn noisy_vm(tb: &mut Tb<'_>, incident: &Incident, mode: Mode, service: &'static str, host: usize) -> u64 {
    let route = "/statement";
    let noisy = (service, host);
    let noisy_host = tb.node(service, host);
    // The own code of a server span on the noisy host while the incident is on.
    let own = move |tb: &mut Tb<'_>, node: &Node, server: u64, share: f64| -> u64 {
        let base = tb.own();
        if mode != Mode::Healthy && std::ptr::eq(node, noisy_host) {
            let extra = (slow(tb, incident) as f64 * share) as u64;
            if !tb.truth_spans.contains(&server) {
                tb.truth_spans.push(server);
            }
            tb.added_us += extra;
            base + extra
        } else {
            base
        }
    };
    let entry = tb.entry(incident.decoy, "GET", route, |tb, gw, entry, t| {
        let end = tb.chain(gw, entry, t, route, &mut |tb, caller, parent, t| {
            let acct = instance(tb, mode, "accounts", noisy);
            tb.call(caller, parent, t, "GET", route, acct, |tb, server, s0| {
                let mut t = s0 + own(tb, acct, server, 0.6);
                t = tb.quick(acct, server, t, Store::Redis("statements-cache"), "GET") + tb.gap();
                t = tb.quick(acct, server, t, Store::Mysql("acct-db"), "SELECT * FROM statements") + tb.gap();
                let ledger = instance(tb, mode, "ledger", noisy);
                t = tb.call(acct, server, t, "GET", "/entries", ledger, |tb, ls, l0| {
                    let mut t = l0 + own(tb, ledger, ls, 0.5);
                    t = tb.quick(ledger, ls, t, Store::Postgres("ledger-db"), "SELECT * FROM entries");
                    t + own(tb, ledger, ls, 0.5)
                });
                t + own(tb, acct, server, 0.4)
            })
        });
        (end, None)
    });
    entry.id
}

/// `GET /rates` → pricing calls two external providers in turn. Against the slow one, the
/// first 2–4 attempts time out (ERROR) with a short backoff between them, and the last
/// one succeeds slowly.
fn retries(tb: &mut Tb<'_>, incident: &Incident, mode: Mode, faulty: usize, timeout_us: u64) -> u64 {
    let entry = tb.entry(incident.decoy, "GET", "/rates", |tb, gw, entry, t| {
        let pricing = tb.pick("pricing");
        let end = tb.call(gw, entry, t, "GET", "/rates", pricing, |tb, server, s0| {
            let mut t = s0 + tb.own();
            for (i, &(host, method, route)) in PROVIDERS.iter().enumerate() {
                let hit = i == faulty && hits(tb, incident, mode);
                let attempts = if hit { tb.between(3, 5) } else { 1 };
                for attempt in 0..attempts {
                    let last = attempt + 1 == attempts;
                    let dur = match (hit, last) {
                        (false, _) => tb.lat(12_000, 0.5, 40_000),
                        (true, false) => timeout_us,
                        (true, true) => tb.between(30_000, 100_000),
                    };
                    let id = tb.id();
                    let mut fx = tb
                        .open(
                            id,
                            pricing,
                            Some(server),
                            &format!("{method} {route}"),
                            SpanKind::Client,
                            t,
                            dur,
                        )
                        .http_client(method, host, 443);
                    if attempt > 0 {
                        fx = fx.int("http.request.resend_count", attempt as i64);
                    }
                    tb.put(if hit && !last { fx.timed_out() } else { fx });
                    if hit {
                        tb.fault(id, dur);
                    }
                    t += dur;
                    if !last {
                        t += tb.between(2_000, 15_000);
                    }
                }
                t += tb.own();
            }
            t
        });
        (end, None)
    });
    entry.id
}

/// `GET /portfolio` → portfolio (cache read) → positions (SQL) and quotes (Redis MGET), in
/// turn or in parallel, while the incident's hosts' clocks are off.
fn clock_skew(tb: &mut Tb<'_>, incident: &Incident, mode: Mode, faulty: usize) -> u64 {
    let entry = tb.entry(incident.decoy, "GET", "/portfolio", |tb, gw, entry, t| {
        let portfolio = tb.pick("portfolio");
        let parallel = tb.chance(0.5);
        let hit = hits(tb, incident, mode);
        let end = tb.call(gw, entry, t, "GET", "/portfolio", portfolio, |tb, server, s0| {
            let mut t = s0 + tb.own();
            t = tb.quick(portfolio, server, t, Store::Redis("portfolio-cache"), "GET") + tb.gap();
            let mut ends = Vec::new();
            for (i, (service, route)) in [("positions", "/positions"), ("quotes", "/quotes")]
                .into_iter()
                .enumerate()
            {
                let node = tb.pick(service);
                let (store, statement) = SKEW_SLOW[i];
                let done = tb.call(portfolio, server, t, "GET", route, node, |tb, ds, d0| {
                    let t = d0 + tb.own();
                    let t = if hit && i == faulty {
                        let dur = slow(tb, incident);
                        let id = tb.query(node, ds, t, store, statement, dur);
                        tb.fault(id, dur);
                        t + dur
                    } else {
                        tb.quick(node, ds, t, store, statement)
                    };
                    t + tb.own()
                });
                ends.push(done);
                if !parallel {
                    t = done + tb.gap();
                }
            }
            ends.into_iter().max().unwrap_or(t).max(t) + tb.own()
        });
        (end, None)
    });
    entry.id
}
