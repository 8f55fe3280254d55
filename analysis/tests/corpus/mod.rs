//! A labelled, randomised corpus of injected-fault traces (issue 19): realistic
//! multi-service traces (HTTP hops, Redis and SQL client spans, RabbitMQ producers and
//! consumers, several hosts per service) with healthy variation, a decoy node that is slow
//! all the time, and one injected fault per [`Incident`]. Every trace carries a [`Label`]:
//! the fault type, the ground-truth node and the spans that carry the fault.
//!
//! Deterministic: the same seed gives the same corpus ([`seed`] reads `CORPUS_SEED`).
//!
//! The ground truth is what made the trace slow in true time: the fault adds at least
//! [`MIN_FAULT_US`] to the request, more than the decoy (at most [`DECOY_MAX_US`]) and
//! more than any healthy node on the blocking path (a stretch of a service's own code,
//! with a rare hiccup, stays under 32 ms; a healthy call under 40 ms). Work that does not
//! block the response (fire-and-forget consumers) may take longer: it is never the truth.

#![allow(dead_code)] // each test binary uses a part

mod build;
mod scenarios;

use std::collections::HashMap;
use std::sync::Arc;

use hopscope_analysis::blame::{NodeKey, NodeType};
use hopscope_analysis::{ItemKind, PathItem};
use hopscope_schemas::fixtures;
use hopscope_schemas::{HopKind, SpanId, SpanKind, SpanRecord, TraceId};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

pub use build::Store;
use build::{Tb, Topology};

/// The decoy (one DB or cache instance called by the gateway on every request) answers in
/// `DECOY_MIN_US..=DECOY_MAX_US`, in baseline and incident windows alike.
pub const DECOY_MIN_US: u64 = 40_000;
/// See [`DECOY_MIN_US`].
pub const DECOY_MAX_US: u64 = 80_000;
/// The least time a fault adds to an affected request.
pub const MIN_FAULT_US: u64 = 140_000;
/// Trace number (`fixtures::trace_id`) of the first generated trace.
pub const FIRST_TRACE: u64 = 1_000_000;
/// Seed when `CORPUS_SEED` is unset.
pub const DEFAULT_SEED: u64 = 19;

/// The corpus seed: `CORPUS_SEED`, else [`DEFAULT_SEED`].
pub fn seed() -> u64 {
    env_or("CORPUS_SEED", DEFAULT_SEED)
}

/// An unsigned number from the environment, else `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// The fault types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// One Redis shard of three is slow.
    SlowShard,
    /// A parallel fan-out (3–8 branches) where one branch is slow: its own code or its store.
    SlowBranch,
    /// A DB `UPDATE` waits on a row lock; the caller's client span times out (ERROR) and
    /// the callee's server span outlives it.
    LockWait,
    /// Request/reply over RabbitMQ with a backlog in the request queue.
    QueueBacklog,
    /// A fire-and-forget consumer (audit, notification) outlives a request slowed by a DB.
    BackgroundConsumer,
    /// One VM of three: its service's own code is slow there, its calls are fast.
    NoisyVm,
    /// Several sequential attempts (timeouts, then success) against a slow dependency.
    Retries,
    /// A slow node while hosts' clocks are off by ± hundreds of ms.
    ClockSkew,
}

impl Fault {
    pub const ALL: [Fault; 8] = [
        Fault::SlowShard,
        Fault::SlowBranch,
        Fault::LockWait,
        Fault::QueueBacklog,
        Fault::BackgroundConsumer,
        Fault::NoisyVm,
        Fault::Retries,
        Fault::ClockSkew,
    ];

    /// Row label.
    pub fn name(self) -> &'static str {
        match self {
            Fault::SlowShard => "slow shard",
            Fault::SlowBranch => "fan-out, one slow branch",
            Fault::LockWait => "lock wait → upstream timeout",
            Fault::QueueBacklog => "request/reply, queue backlog",
            Fault::BackgroundConsumer => "background consumer outlives",
            Fault::NoisyVm => "noisy VM",
            Fault::Retries => "retries, slow dependency",
            Fault::ClockSkew => "clock skew + slow node",
        }
    }
}

/// The ground-truth node of an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Truth {
    /// A middleware or peer instance, or a queue (`hop_kind` mq, `peer` = the queue).
    Peer { hop_kind: HopKind, peer: String },
    /// A service operation's own code.
    Operation { service: String, operation: String },
    /// One VM/host (the own code of what runs on it).
    Host { host: String },
}

impl Truth {
    /// Whether a blame node is this truth (compared field by field: a peer node with the
    /// hop kind and peer, an operation node with the service and operation, a host node
    /// with the host).
    pub fn is_node(&self, node: &NodeKey) -> bool {
        match self {
            Truth::Peer { hop_kind, peer } => {
                node.node_type == NodeType::Peer
                    && node.hop_kind == Some(*hop_kind)
                    && node.peer.as_deref() == Some(peer.as_str())
            }
            Truth::Operation { service, operation } => {
                node.node_type == NodeType::Operation
                    && node.service.as_deref() == Some(service.as_str())
                    && node.operation.as_deref() == Some(operation.as_str())
            }
            Truth::Host { host } => node.node_type == NodeType::Host && node.host.as_deref() == Some(host.as_str()),
        }
    }

    /// Whether a culprit item names it: a peer by the wait in it (queue) or by a client or
    /// producer span to it; an operation by its own span (not a call it makes); a host by
    /// the own code of a span that ran on it.
    pub fn named_by(&self, item: &PathItem) -> bool {
        let calls_out = item.item == ItemKind::Span && matches!(item.span_kind, SpanKind::Client | SpanKind::Producer);
        let own_code = item.item == ItemKind::Span && !calls_out;
        match self {
            Truth::Peer { hop_kind, peer } => {
                (item.item == ItemKind::QueueWait || calls_out)
                    && item.hop_kind == *hop_kind
                    && item.peer.as_deref() == Some(peer.as_str())
            }
            Truth::Operation { service, operation } => {
                own_code && item.service == *service && item.operation == *operation
            }
            Truth::Host { host } => own_code && item.host.as_deref() == Some(host.as_str()),
        }
    }

    /// Whether `span` carries this truth (a label check).
    pub fn marks(&self, span: &SpanRecord) -> bool {
        match self {
            Truth::Peer { hop_kind, peer } => span.hop_kind == *hop_kind && span.peer.as_deref() == Some(peer.as_str()),
            Truth::Operation { service, operation } => {
                span.kind == SpanKind::Server && span.service_name == *service && span.name == *operation
            }
            Truth::Host { host } => span.host.as_deref() == Some(host.as_str()),
        }
    }
}

impl std::fmt::Display for Truth {
    /// `peer cache redis-shard-2:6379`, `operation tax GET /tax`, `host acct-vm-2`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Truth::Peer { hop_kind, peer } => write!(f, "peer {} {peer}", hop_kind.as_str()),
            Truth::Operation { service, operation } => write!(f, "operation {service} {operation}"),
            Truth::Host { host } => write!(f, "host {host}"),
        }
    }
}

/// A blame node as text, in [`Truth`]'s form.
pub fn node_text(node: &NodeKey) -> String {
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    match node.node_type {
        NodeType::Peer => format!("peer {} {}", node.hop_kind.map_or("?", |h| h.as_str()), s(&node.peer)),
        NodeType::Operation => format!("operation {} {}", s(&node.service), s(&node.operation)),
        NodeType::Host => format!("host {}", s(&node.host)),
    }
}

/// A critical-path item as text: what it is, where it ran and what it calls.
pub fn item_text(item: &PathItem) -> String {
    let what = match item.item {
        ItemKind::QueueWait => "queue wait".to_owned(),
        ItemKind::Span => format!("{} span `{}`", item.span_kind.as_str(), item.operation),
    };
    format!(
        "{what} of {} on {} → {} {}",
        item.service,
        item.host.as_deref().unwrap_or("-"),
        item.hop_kind.as_str(),
        item.peer.as_deref().unwrap_or("-")
    )
}

/// Which instance of a fault's shape is faulty (drawn per incident).
#[derive(Debug, Clone, PartialEq)]
pub enum Setup {
    /// `redis-shard-{shard}` is slow.
    SlowShard { shard: u64 },
    /// Branch `branch` of [`scenarios::BRANCHES`]; its store is slow when `in_store`, else
    /// its own code.
    SlowBranch { branch: usize, in_store: bool },
    /// Target `target` of [`scenarios::LOCK_TARGETS`]; the caller times out after
    /// `timeout_us`.
    LockWait { target: usize, timeout_us: u64 },
    /// Exchange `exchange` of [`scenarios::EXCHANGES`] has the backlog.
    QueueBacklog { exchange: usize },
    /// Database `db` of [`scenarios::ORDER_DBS`] is slow.
    BackgroundConsumer { db: usize },
    /// Host `host` (index) of `service` is noisy.
    NoisyVm { service: &'static str, host: usize },
    /// Provider `provider` of [`scenarios::PROVIDERS`] is slow; attempts time out after
    /// `timeout_us`.
    Retries { provider: usize, timeout_us: u64 },
    /// Store `slow` of [`scenarios::SKEW_SLOW`] is slow.
    ClockSkew { slow: usize },
}

/// One incident: the faulty node and how the fault behaves, plus what is the same in its
/// baseline (the decoy, clock skews).
#[derive(Debug, Clone)]
pub struct Incident {
    pub fault: Fault,
    pub setup: Setup,
    /// The ground-truth node.
    pub truth: Truth,
    /// The decoy, slow all the time.
    pub decoy: Store,
    /// Typical time the fault adds, µs (each occurrence varies around it).
    pub slow_us: u64,
    /// Share of requests the fault hits where it can (incident windows).
    pub hit_rate: f64,
    /// Clock skew by host, µs.
    pub skew: HashMap<String, i64>,
}

/// How a trace is generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The fault is off (a baseline trace).
    Healthy,
    /// The fault is on and hits this request or not, as in a real incident.
    Incident,
    /// The fault is on and hits this request.
    Affected,
}

/// A trace's label.
#[derive(Debug, Clone)]
pub struct Label {
    pub fault: Fault,
    /// The incident's ground-truth node.
    pub truth: Truth,
    /// Whether the fault hit this trace.
    pub affected: bool,
    /// The spans that carry the fault (empty when not affected).
    pub truth_spans: Vec<SpanId>,
    /// Time the fault added to the request, µs (0 when not affected).
    pub added_us: u64,
}

/// A generated trace.
#[derive(Debug, Clone)]
pub struct Labelled {
    pub trace_id: TraceId,
    /// The entry span (the root).
    pub entry: SpanId,
    /// Its spans, in random order.
    pub spans: Vec<Arc<SpanRecord>>,
    pub label: Label,
}

/// The generator.
pub struct Corpus {
    rng: StdRng,
    topo: Topology,
    next_trace: u64,
}

impl Corpus {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            topo: Topology::new(),
            // Clear of the storage fixtures' trace numbers, should both share a store.
            next_trace: FIRST_TRACE,
        }
    }

    /// Draws an incident of `fault`.
    pub fn incident(&mut self, fault: Fault) -> Incident {
        let rng = &mut self.rng;
        let setup = scenarios::draw(fault, rng);
        let truth = scenarios::truth(&setup, &self.topo);
        let decoy = if rng.random_bool(0.5) {
            Store::Postgres("sessions-db")
        } else {
            Store::Redis("session-cache")
        };
        let mut skew = HashMap::new();
        if fault == Fault::ClockSkew {
            let mut hosts: Vec<&str> = scenarios::SKEW_SERVICES
                .iter()
                .flat_map(|s| self.topo.nodes(s))
                .map(|n| n.host.as_str())
                .collect();
            hosts.shuffle(rng);
            // Between two of them and all of them off.
            let off = rng.random_range(2..=hosts.len());
            for host in &hosts[..off] {
                let ms = rng.random_range(100..=700) as i64;
                let sign = if rng.random_bool(0.5) { 1 } else { -1 };
                skew.insert((*host).to_owned(), sign * ms * 1_000);
            }
        }
        Incident {
            fault,
            setup,
            truth,
            decoy,
            slow_us: rng.random_range(170_000..=500_000),
            hit_rate: rng.random_range(0.3..=0.7),
            skew,
        }
    }

    /// Generates one trace of `incident`.
    pub fn trace(&mut self, incident: &Incident, mode: Mode) -> Labelled {
        let trace = self.next_trace;
        self.next_trace += 1;
        // 20 ms apart, after a margin that clock skew cannot cross.
        let origin_us = 10_000_000 + (trace - FIRST_TRACE) * 20_000;
        let mut tb = Tb::new(&mut self.rng, &self.topo, &incident.skew, trace, origin_us);
        let entry = scenarios::build(&mut tb, incident, mode);
        let truth_spans: Vec<SpanId> = tb.truth_spans.iter().map(|&n| fixtures::span_id(n)).collect();
        let added_us = tb.added_us;
        let mut spans: Vec<Arc<SpanRecord>> = std::mem::take(&mut tb.spans).into_iter().map(Arc::new).collect();
        spans.shuffle(tb.rng);
        Labelled {
            trace_id: fixtures::trace_id(trace),
            entry: fixtures::span_id(entry),
            spans,
            label: Label {
                fault: incident.fault,
                truth: incident.truth.clone(),
                affected: !truth_spans.is_empty(),
                truth_spans,
                added_us,
            },
        }
    }
}
