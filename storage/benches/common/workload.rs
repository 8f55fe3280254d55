//! A realistic span workload for the embedded store benches: traces of 5-50 spans over
//! a dozen services on several hosts, with HTTP, RPC, database, cache and queue hops and
//! 8-20 attributes per span (a few of them unique per span, like request ids and SQL).

use std::sync::Arc;

use hopscope_schemas::{
    AttrValue, Event, HopKind, KeyValue, Resource, Scope, SpanId, SpanKind, SpanRecord, StatusCode, TraceId,
};

pub const SERVICES: [&str; 12] = [
    "web",
    "api",
    "orders",
    "payments",
    "cart",
    "inventory",
    "ledger",
    "search",
    "users",
    "shipping",
    "notify",
    "billing",
];
const ROUTES: [&str; 8] = [
    "GET /cart",
    "POST /orders",
    "GET /orders/{id}",
    "POST /pay",
    "GET /search",
    "GET /users/{id}",
    "PUT /cart/items",
    "POST /ship",
];
const PEERS: [(&str, HopKind, &str); 8] = [
    ("redis-shard-1:6379", HopKind::Cache, "redis"),
    ("redis-shard-2:6379", HopKind::Cache, "redis"),
    ("redis-shard-3:6379", HopKind::Cache, "redis"),
    ("orders-db:5432", HopKind::Db, "postgresql"),
    ("ledger-db:5432", HopKind::Db, "postgresql"),
    ("users-db:3306", HopKind::Db, "mysql"),
    ("events:5672", HopKind::Mq, "rabbitmq"),
    ("search:9200", HopKind::Http, "http"),
];
/// Trace starts are this far apart.
pub const TRACE_GAP_NS: u64 = 1_000_000;
pub const T0: u64 = 1_750_000_000_000_000_000;

/// A small deterministic PRNG (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

pub struct Workload {
    rng: Rng,
    trace: u64,
    /// Resources of the current batch: a batch decoded from OTLP has its own `Arc`s.
    resources: Vec<Arc<Resource>>,
    scope: Arc<Scope>,
}

fn s(text: &str) -> AttrValue {
    AttrValue::String(text.to_owned())
}

impl Workload {
    pub fn new(seed: u64) -> Self {
        let mut w = Workload {
            rng: Rng::new(seed),
            trace: 0,
            resources: Vec::new(),
            scope: Arc::new(Scope {
                name: "io.opentelemetry.auto".into(),
                version: "2.1.0".into(),
                ..Default::default()
            }),
        };
        w.new_batch();
        w
    }

    /// New resource `Arc`s (same contents), as the next OTLP request would bring.
    fn new_batch(&mut self) {
        self.resources = (0..SERVICES.len() * 3)
            .map(|i| {
                let service = SERVICES[i % SERVICES.len()];
                let host = i / SERVICES.len();
                let cloud = ["private", "hosted", "public"][host];
                Arc::new(Resource {
                    attributes: vec![
                        KeyValue::new("service.name", s(service)),
                        KeyValue::new("service.version", s("1.4.2")),
                        KeyValue::new("host.name", s(&format!("{service}-vm-{host}"))),
                        KeyValue::new("cloud.provider", s(cloud)),
                        KeyValue::new("cloud.region", s("eu-west-1")),
                        KeyValue::new("deployment.environment", s("prod")),
                        KeyValue::new("telemetry.sdk.language", s("rust")),
                    ],
                    ..Default::default()
                })
            })
            .collect();
    }

    /// The trace id of trace number `n`.
    pub fn trace_id(n: u64) -> TraceId {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
        id[8..].copy_from_slice(&n.to_be_bytes());
        TraceId(id)
    }

    /// The next batch of at least `min` spans (whole traces).
    pub fn batch(&mut self, min: usize) -> Vec<SpanRecord> {
        self.new_batch();
        let mut out = Vec::with_capacity(min + 50);
        while out.len() < min {
            self.one_trace(&mut out);
        }
        out
    }

    /// Traces generated so far.
    pub fn traces(&self) -> u64 {
        self.trace
    }

    fn one_trace(&mut self, out: &mut Vec<SpanRecord>) {
        let n = self.trace;
        self.trace += 1;
        let trace_id = Self::trace_id(n);
        let spans = 5 + self.rng.below(46) as usize;
        let start = T0 + n * TRACE_GAP_NS;
        let root_duration = 5_000_000 + self.rng.below(200_000_000);
        let route = ROUTES[self.rng.below(ROUTES.len() as u64) as usize];
        let error = self.rng.below(50) == 0;
        let first = out.len();
        for i in 0..spans {
            let span_id = SpanId(((n << 8) | (i as u64 + 1)).to_be_bytes());
            let service_ix = if i == 0 { 0 } else { 1 + self.rng.below(11) as usize };
            let resource = Arc::clone(&self.resources[service_ix + SERVICES.len() * self.rng.below(3) as usize]);
            let parent = if i == 0 {
                None
            } else {
                Some(out[first + self.rng.below(i as u64) as usize].span_id)
            };
            let offset = if i == 0 { 0 } else { self.rng.below(root_duration / 2) };
            let duration = if i == 0 {
                root_duration
            } else {
                100_000 + self.rng.below(root_duration / 2)
            };
            let mut attrs = vec![
                KeyValue::new("thread.id", AttrValue::Int(self.rng.below(64) as i64)),
                KeyValue::new("request.id", s(&format!("{:016x}", self.rng.next()))),
                KeyValue::new("user.id", s(&format!("u{}", self.rng.below(100_000)))),
                KeyValue::new("code.namespace", s(&format!("{}::handlers", SERVICES[service_ix]))),
            ];
            let (name, kind, hop, peer) = match (i, self.rng.below(4)) {
                (0, _) => {
                    attrs.push(KeyValue::new(
                        "http.request.method",
                        s(&route[..route.find(' ').unwrap_or(0)]),
                    ));
                    attrs.push(KeyValue::new("http.route", s(route)));
                    attrs.push(KeyValue::new(
                        "url.path",
                        s(&format!("{}/{}", route, self.rng.below(1_000_000))),
                    ));
                    attrs.push(KeyValue::new(
                        "http.response.status_code",
                        AttrValue::Int(if error { 500 } else { 200 }),
                    ));
                    (route.to_owned(), SpanKind::Server, HopKind::Http, None)
                }
                (_, 0) => {
                    let (peer, hop, system) = PEERS[self.rng.below(PEERS.len() as u64) as usize];
                    let op = match hop {
                        HopKind::Cache => "GET",
                        HopKind::Db => "SELECT",
                        HopKind::Mq => "publish",
                        _ => "POST /search",
                    };
                    attrs.push(KeyValue::new(
                        if hop == HopKind::Mq {
                            "messaging.system"
                        } else {
                            "db.system"
                        },
                        s(system),
                    ));
                    attrs.push(KeyValue::new("server.address", s(&peer[..peer.find(':').unwrap_or(0)])));
                    attrs.push(KeyValue::new(
                        "server.port",
                        AttrValue::Int(peer[peer.find(':').unwrap_or(0) + 1..].parse().unwrap_or(0)),
                    ));
                    if hop == HopKind::Db {
                        attrs.push(KeyValue::new(
                            "db.statement",
                            s(&format!("SELECT * FROM items WHERE id = {}", self.rng.below(1_000_000))),
                        ));
                    }
                    let kind = if hop == HopKind::Mq {
                        SpanKind::Producer
                    } else {
                        SpanKind::Client
                    };
                    (op.to_owned(), kind, hop, Some(peer.to_owned()))
                }
                (_, 1) => {
                    attrs.push(KeyValue::new("rpc.system", s("grpc")));
                    attrs.push(KeyValue::new("rpc.method", s(&format!("Get{}", self.rng.below(6)))));
                    attrs.push(KeyValue::new("rpc.grpc.status_code", AttrValue::Int(0)));
                    (
                        format!("{}.Get{}", SERVICES[service_ix], self.rng.below(6)),
                        SpanKind::Server,
                        HopKind::Rpc,
                        None,
                    )
                }
                _ => (
                    format!("process-{}", self.rng.below(5)),
                    SpanKind::Internal,
                    HopKind::Internal,
                    None,
                ),
            };
            for k in 0..self.rng.below(7) {
                attrs.push(KeyValue::new(
                    format!("app.attr{k}"),
                    s(&format!("value-{}", self.rng.below(20))),
                ));
            }
            let span_error = error && (i == 0 || self.rng.below(4) == 0);
            let mut events = Vec::new();
            if span_error && i > 0 {
                events.push(Event {
                    time_unix_nano: start + offset + duration / 2,
                    name: "exception".into(),
                    attributes: vec![
                        KeyValue::new("exception.type", s("TimeoutError")),
                        KeyValue::new("exception.message", s("deadline exceeded after 2s")),
                    ],
                    dropped_attributes_count: 0,
                });
            }
            out.push(SpanRecord {
                trace_id,
                span_id,
                parent_span_id: parent,
                trace_state: String::new(),
                flags: 1,
                name,
                kind,
                start_time_unix_nano: start + offset,
                end_time_unix_nano: start + offset + duration,
                status_code: if span_error {
                    StatusCode::Error
                } else {
                    StatusCode::Unset
                },
                status_message: String::new(),
                attributes: attrs,
                dropped_attributes_count: 0,
                events,
                dropped_events_count: 0,
                links: vec![],
                dropped_links_count: 0,
                host: resource.attributes.get(2).map(|kv| kv.value.to_text()),
                resource,
                scope: Arc::clone(&self.scope),
                service_name: SERVICES[service_ix].to_owned(),
                hop_kind: hop,
                peer,
            });
        }
    }
}

/// `(VmRSS, VmHWM)` of this process in bytes, from /proc/self/status (0 elsewhere).
pub fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// `(p50, p99)` of durations in µs.
pub fn percentiles(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(i).copied().unwrap_or(0.0)
    };
    (at(0.5), at(0.99))
}

/// CPU time of all this process's threads so far, ns (from /proc/self/task/*/schedstat;
/// 0 elsewhere). Unlike wall time it is not inflated by other processes on the machine.
pub fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}
