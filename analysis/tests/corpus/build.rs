//! The trace builder under the scenarios: a fixed topology of services and hosts, and a
//! [`Tb`] that lays out one trace in true time (µs from the trace's start) and records each
//! span with its host's clock skew, as an SDK on that host would.

use std::collections::HashMap;
use std::sync::Arc;

use hopscope_schemas::fixtures::{self, Fx};
use hopscope_schemas::{HopKind, Resource, SpanKind, SpanRecord};
use rand::Rng;
use rand::rngs::StdRng;

/// (service, host prefix, hosts, cloud kind) of every service the scenarios use.
const SERVICES: &[(&str, &str, usize, &str)] = &[
    ("gateway", "gw", 3, "public"),
    ("bff", "bff", 2, "public"),
    ("edge-api", "edge", 2, "hosted"),
    ("accounts", "acct", 3, "private"),
    ("ledger", "ledger", 3, "private"),
    ("quote", "quote", 2, "public"),
    ("tax", "tax", 2, "public"),
    ("fx", "fx", 2, "public"),
    ("inventory", "inv", 3, "private"),
    ("shipping", "ship", 2, "hosted"),
    ("discount", "disc", 2, "public"),
    ("loyalty", "loyal", 2, "hosted"),
    ("risk", "risk", 3, "private"),
    ("catalog", "cat", 2, "public"),
    ("payments", "pay", 3, "hosted"),
    ("wallet", "wallet", 2, "private"),
    ("core", "core", 3, "private"),
    ("cards", "cards", 2, "private"),
    ("orders", "orders", 3, "public"),
    ("audit", "audit", 2, "private"),
    ("notifier", "notify", 2, "public"),
    ("pricing", "pricing", 2, "public"),
    ("portfolio", "pf", 3, "public"),
    ("positions", "pos", 3, "private"),
    ("quotes", "quotes", 2, "hosted"),
];

/// One instance of a service: the service on one host.
#[derive(Debug)]
pub struct Node {
    /// Service name.
    pub service: &'static str,
    /// `host.name`.
    pub host: String,
    res: Arc<Resource>,
}

/// Every service's instances.
#[derive(Debug)]
pub struct Topology {
    services: HashMap<&'static str, Vec<Node>>,
}

impl Topology {
    pub fn new() -> Self {
        let services = SERVICES
            .iter()
            .map(|&(service, prefix, hosts, cloud)| {
                let nodes = (1..=hosts)
                    .map(|i| {
                        let host = format!("{prefix}-vm-{i}");
                        Node {
                            service,
                            res: fixtures::resource(service, &host, Some(cloud)),
                            host,
                        }
                    })
                    .collect();
                (service, nodes)
            })
            .collect();
        Self { services }
    }

    /// The instances of `service` (panics on an unknown service: a typo in a scenario).
    pub fn nodes(&self, service: &str) -> &[Node] {
        self.services
            .get(service)
            .unwrap_or_else(|| panic!("unknown service {service}"))
    }
}

/// A database or cache instance a span calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// PostgreSQL on `host:5432`.
    Postgres(&'static str),
    /// MariaDB/MySQL on `host:3306`.
    Mysql(&'static str),
    /// Redis on `host:6379`.
    Redis(&'static str),
}

impl Store {
    /// The peer instance the collector derives for calls to it.
    pub fn peer(self) -> String {
        match self {
            Store::Postgres(h) => format!("{h}:5432"),
            Store::Mysql(h) => format!("{h}:3306"),
            Store::Redis(h) => format!("{h}:6379"),
        }
    }

    /// Its hop kind.
    pub fn hop_kind(self) -> HopKind {
        match self {
            Store::Redis(_) => HopKind::Cache,
            _ => HopKind::Db,
        }
    }

    fn decorate(self, fx: Fx, statement: &str) -> Fx {
        match self {
            Store::Postgres(h) => fx.postgres(h).attr("db.query.text", statement),
            Store::Mysql(h) => fx
                .attr("db.system.name", "mysql")
                .attr("server.address", h)
                .int("server.port", 3306)
                .attr("db.query.text", statement),
            Store::Redis(h) => fx.redis(h).attr("db.operation.name", statement),
        }
    }
}

/// A SQL span's name as the semantic conventions build it: `{operation} {table}`
/// (`SELECT accounts`, `INSERT journal`, `UPDATE accounts`).
fn sql_span_name(statement: &str) -> String {
    let words: Vec<&str> = statement.split_whitespace().collect();
    let operation = words.first().copied().unwrap_or("QUERY");
    let table = match operation {
        "UPDATE" => words.get(1),
        _ => words
            .iter()
            .position(|w| matches!(*w, "FROM" | "INTO"))
            .and_then(|i| words.get(i + 1)),
    };
    match table {
        Some(table) => format!("{operation} {table}"),
        None => operation.to_owned(),
    }
}

/// Semantic-convention attributes of the hop shapes the scenarios use.
pub trait FxExt: Sized {
    /// An HTTP server span of `method route`.
    fn http_server(self, method: &str, route: &str) -> Self;
    /// An HTTP client span to `host:port`.
    fn http_client(self, method: &str, host: &str, port: i64) -> Self;
    /// A RabbitMQ span on `queue` (`publish` or `process`).
    fn rabbit_op(self, queue: &str, operation: &str) -> Self;
    /// A client timeout: ERROR with a `TimeoutError` exception event.
    fn timed_out(self) -> Self;
}

impl FxExt for Fx {
    fn http_server(self, method: &str, route: &str) -> Self {
        self.attr("http.request.method", method).attr("http.route", route)
    }

    fn http_client(self, method: &str, host: &str, port: i64) -> Self {
        self.attr("http.request.method", method)
            .attr("server.address", host)
            .int("server.port", port)
    }

    fn rabbit_op(self, queue: &str, operation: &str) -> Self {
        self.rabbit(queue).attr("messaging.operation.type", operation)
    }

    fn timed_out(self) -> Self {
        self.error("request timed out").exception("TimeoutError")
    }
}

/// The entry span of a built trace.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// Its span number.
    pub id: u64,
    /// Where it ran.
    pub node: &'a Node,
    /// Its end, µs from the trace's start (true time).
    pub end: u64,
}

/// Lays out one trace. Times are µs from the trace's start in true time; [`Tb::open`]
/// records them shifted by the host's clock skew.
pub struct Tb<'a> {
    pub rng: &'a mut StdRng,
    topo: &'a Topology,
    skew: &'a HashMap<String, i64>,
    trace: u64,
    origin_us: u64,
    next: u64,
    pub spans: Vec<SpanRecord>,
    /// Span numbers of the spans that carry the fault.
    pub truth_spans: Vec<u64>,
    /// Time the fault added to the request, µs.
    pub added_us: u64,
}

impl<'a> Tb<'a> {
    pub fn new(
        rng: &'a mut StdRng,
        topo: &'a Topology,
        skew: &'a HashMap<String, i64>,
        trace: u64,
        origin_us: u64,
    ) -> Self {
        Self {
            rng,
            topo,
            skew,
            trace,
            origin_us,
            next: 0,
            spans: Vec::new(),
            truth_spans: Vec::new(),
            added_us: 0,
        }
    }

    /// A fresh span number, unique in the corpus.
    pub fn id(&mut self) -> u64 {
        self.next += 1;
        assert!(self.next < 1_000, "too many spans in one trace");
        self.trace * 1_000 + self.next
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        self.rng.random_range(lo..=hi)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    /// Log-normal around `median_us` (σ = `sigma`), at most `max_us`.
    pub fn lat(&mut self, median_us: u64, sigma: f64, max_us: u64) -> u64 {
        let u1 = 1.0 - self.rng.random::<f64>();
        let u2 = self.rng.random::<f64>();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        ((median_us as f64 * (sigma * z).exp()) as u64).clamp(median_us / 5 + 1, max_us)
    }

    /// A stretch of a service's own code: usually sub-millisecond to a few ms, now and then
    /// a healthy hiccup (GC pause, scheduling) of 5–25 ms.
    pub fn own(&mut self) -> u64 {
        let base = self.lat(700, 0.6, 6_000);
        if self.chance(0.02) {
            base + self.between(5_000, 25_000)
        } else {
            base
        }
    }

    /// One network leg.
    pub fn net(&mut self) -> u64 {
        self.lat(300, 0.5, 2_000)
    }

    /// A gap between two calls in the same code.
    pub fn gap(&mut self) -> u64 {
        self.lat(80, 0.5, 500)
    }

    /// A random instance of `service`.
    pub fn pick(&mut self, service: &str) -> &'a Node {
        let topo: &'a Topology = self.topo;
        let nodes = topo.nodes(service);
        &nodes[self.rng.random_range(0..nodes.len())]
    }

    /// Instance `i` of `service`.
    pub fn node(&self, service: &str, i: usize) -> &'a Node {
        let topo: &'a Topology = self.topo;
        &topo.nodes(service)[i]
    }

    /// Starts span `id` on `node`, recorded with the node's clock skew.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        &self,
        id: u64,
        node: &Node,
        parent: Option<u64>,
        name: &str,
        kind: SpanKind,
        start: u64,
        dur: u64,
    ) -> Fx {
        let skew = self.skew.get(&node.host).copied().unwrap_or(0);
        let recorded = (self.origin_us + start) as i64 + skew;
        let recorded = u64::try_from(recorded).expect("the trace origin leaves room for clock skew");
        fixtures::span(&node.res, self.trace, id, parent, name, kind, recorded, dur)
    }

    /// Finishes a span.
    pub fn put(&mut self, fx: Fx) {
        self.spans.push(fx.build());
    }

    /// Marks span `id` as carrying the fault, which added `added_us` to the request.
    pub fn fault(&mut self, id: u64, added_us: u64) {
        self.truth_spans.push(id);
        self.added_us += added_us;
    }

    /// A database or cache call from `node` (span `parent`) at `t` lasting `dur`; returns
    /// its span number.
    #[allow(clippy::too_many_arguments)]
    pub fn query(&mut self, node: &Node, parent: u64, t: u64, store: Store, statement: &str, dur: u64) -> u64 {
        let id = self.id();
        let name = match store {
            Store::Redis(_) => statement.to_owned(),
            _ => sql_span_name(statement),
        };
        let fx = self.open(id, node, Some(parent), &name, SpanKind::Client, t, dur);
        let fx = store.decorate(fx, statement);
        self.put(fx);
        id
    }

    /// A healthy call to `store`: returns its end.
    pub fn quick(&mut self, node: &Node, parent: u64, t: u64, store: Store, statement: &str) -> u64 {
        let dur = match store {
            Store::Redis(_) => self.lat(400, 0.5, 3_000),
            _ => self.lat(1_500, 0.6, 12_000),
        };
        self.query(node, parent, t, store, statement, dur);
        t + dur
    }

    /// A synchronous HTTP call from `caller` (span `parent`) at `t` to `callee`, which
    /// serves `method route`: `serve(tb, server span, server start)` builds the server's
    /// children and returns where its work ends. Returns the client span's end.
    #[allow(clippy::too_many_arguments)]
    pub fn call(
        &mut self,
        caller: &Node,
        parent: u64,
        t: u64,
        method: &str,
        route: &str,
        callee: &'a Node,
        serve: impl FnOnce(&mut Self, u64, u64) -> u64,
    ) -> u64 {
        let client = self.id();
        let server = self.id();
        let s0 = t + self.net();
        let s_end = serve(self, server, s0).max(s0);
        let c_end = s_end + self.net();
        let name = format!("{method} {route}");
        let fx = self
            .open(client, caller, Some(parent), &name, SpanKind::Client, t, c_end - t)
            .http_client(method, callee.service, 8080);
        self.put(fx);
        let fx = self
            .open(server, callee, Some(client), &name, SpanKind::Server, s0, s_end - s0)
            .http_server(method, route);
        self.put(fx);
        c_end
    }

    /// The path from the caller through 0–2 pass-through services (`bff`, `edge-api`,
    /// each with an occasional cache read) to `last(tb, caller, parent, t)`, which makes
    /// the final call and returns its end. Returns the end of the first call.
    pub fn chain(
        &mut self,
        caller: &'a Node,
        parent: u64,
        t: u64,
        route: &str,
        last: &mut dyn FnMut(&mut Self, &'a Node, u64, u64) -> u64,
    ) -> u64 {
        let depth = self.between(0, 2) as usize;
        self.hops(caller, parent, t, route, depth, last)
    }

    fn hops(
        &mut self,
        caller: &'a Node,
        parent: u64,
        t: u64,
        route: &str,
        depth: usize,
        last: &mut dyn FnMut(&mut Self, &'a Node, u64, u64) -> u64,
    ) -> u64 {
        if depth == 0 {
            return last(self, caller, parent, t);
        }
        let (service, prefix) = if depth == 2 {
            ("edge-api", "/edge")
        } else {
            ("bff", "/bff")
        };
        let node = self.pick(service);
        let proxied = format!("{prefix}{route}");
        self.call(caller, parent, t, "GET", &proxied, node, |tb, server, s0| {
            let mut t = s0 + tb.own();
            if tb.chance(0.5) {
                t = tb.quick(node, server, t, Store::Redis("edge-cache"), "GET") + tb.gap();
            }
            let t = tb.hops(node, server, t, route, depth - 1, last);
            t + tb.own()
        })
    }

    /// The entry span on a gateway instance: its own code, the decoy call (slow all the
    /// time), then `body(tb, gateway, entry span, t)` which returns where the work ends
    /// and the entry's error, if any.
    pub fn entry(
        &mut self,
        decoy: Store,
        method: &str,
        route: &str,
        body: impl FnOnce(&mut Self, &'a Node, u64, u64) -> (u64, Option<&'static str>),
    ) -> Entry<'a> {
        let gw = self.pick("gateway");
        let id = self.id();
        let mut t = self.own();
        let decoy_us = self.between(super::DECOY_MIN_US, super::DECOY_MAX_US);
        let statement = match decoy {
            Store::Redis(_) => "GET",
            _ => "SELECT * FROM sessions WHERE token = ?",
        };
        self.query(gw, id, t, decoy, statement, decoy_us);
        t += decoy_us + self.gap();
        let (t, error) = body(self, gw, id, t);
        let end = t + self.own();
        let fx = self
            .open(id, gw, None, &format!("{method} {route}"), SpanKind::Server, 0, end)
            .http_server(method, route);
        self.put(match error {
            Some(message) => fx.error(message),
            None => fx,
        });
        Entry { id, node: gw, end }
    }
}
