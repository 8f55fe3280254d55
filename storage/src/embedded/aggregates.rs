//! [`AggregateReader`] for the embedded store: exact aggregates over the spans of a
//! window.
//!
//! Every method walks the blocks overlapping the window in chunks of
//! [`planner::CHUNK`] rows, taking the read lock once per chunk, on the blocking pool. A
//! cheap test on the hot row (kind, hop kind, parent, cloud of the resource, exception
//! flag) runs first; only rows that pass are decoded. The middleware and dependency
//! aggregates decode nothing: peer, host and system come from the block's node table.
//! The work is bounded by the spans in the window, which the store's `max_spans` bounds;
//! durations are kept per group to compute exact percentiles, so memory is about 24
//! bytes per matching span while a call runs.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;

use async_trait::async_trait;
use hopscope_schemas::{CloudKind, HopKind, SpanKind, SpanRecord, StatusCode, TraceId};
use parking_lot::RwLock;
use rustc_hash::FxHashMap;

use super::EmbeddedStore;
use super::block::{Block, Node, Row};
use super::planner::{find_span, scan_rows};
use super::state::State;
use crate::aggregates::{
    AggregateReader, DependencyEdge, EdgeTarget, EntryTrace, EntryTraceQuery, ExceptionGroup, GroupBy, InterfaceStats,
    LatencyStats, MiddlewareInstance, MiddlewareKind, MiddlewareQuery, Mismatch, MismatchReason, SeriesPoint, Window,
    mentions_timeout,
};
use crate::error::Result;

/// A span's trace, to look up its parent and children.
struct TraceView<'a> {
    state: &'a State,
    trace_id: TraceId,
}

impl TraceView<'_> {
    /// Every stored span of the trace.
    fn spans(&self) -> Vec<Arc<SpanRecord>> {
        self.state
            .trace_locs(&self.trace_id)
            .unwrap_or_default()
            .iter()
            .filter_map(|loc| self.state.decode(*loc).map(Arc::new))
            .collect()
    }
}

/// True when the row's resource is in the window's cloud kind (see [`Window::cloud_ok`]).
fn cloud_ok(window: &Window, block: &Block, row: &Row) -> bool {
    window.cloud_kind.is_none_or(|kind| {
        block
            .resource(row)
            .is_some_and(|r| hopscope_schemas::derive::cloud(&r.attributes).kind == kind)
    })
}

/// Calls `f` with every span starting in `[start_ns, end_ns]` whose row passes `pre`,
/// and its trace.
fn scan(
    lock: &RwLock<State>,
    start_ns: u64,
    end_ns: u64,
    pre: impl Fn(&State, &Block, &Row) -> bool,
    mut f: impl FnMut(&TraceView<'_>, &Arc<SpanRecord>),
) {
    scan_rows(
        lock,
        start_ns,
        end_ns,
        |state, block, i| {
            let Some(row) = block.rows.get(i) else { return };
            if !pre(state, block, row) {
                return;
            }
            let Some(span) = block.decode(i, &state.catalog) else {
                return;
            };
            let view = TraceView {
                state,
                trace_id: row.trace_id,
            };
            f(&view, &Arc::new(span));
        },
        |_| {},
    );
}

type Sample = (u64, u64, bool);

fn sample(span: &SpanRecord) -> Sample {
    (span.start_time_unix_nano, span.duration_nanos(), span.is_error())
}

fn entry_traces(lock: &RwLock<State>, query: &EntryTraceQuery) -> Vec<EntryTrace> {
    let window = &query.window;
    if window.start_ns > window.end_ns || query.limit == 0 {
        return Vec::new();
    }
    let mut found = Vec::new();
    scan_rows(
        lock,
        window.start_ns,
        window.end_ns,
        |state, block, i| {
            if let Some(row) = block.rows.get(i)
                && state.catalog.op_name(row.op) == query.operation
                && state.catalog.service_name(row.service) == query.service
                && cloud_ok(window, block, row)
            {
                found.push(EntryTrace {
                    trace_id: row.trace_id,
                    span_id: row.span_id,
                    start_ns: row.start_ns,
                    duration_ns: row.duration(),
                });
            }
        },
        |_| {},
    );
    found.sort_by_key(|a| (a.start_ns, a.trace_id, a.span_id));
    let n = found.len();
    if n <= query.limit {
        return found;
    }
    (0..query.limit)
        .filter_map(|k| found.get(k * n / query.limit).cloned())
        .collect()
}

#[derive(Default)]
struct Group {
    system: Option<String>,
    samples: Vec<Sample>,
}

fn middleware(lock: &RwLock<State>, query: &MiddlewareQuery) -> Vec<MiddlewareInstance> {
    let window = query.window;
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let selected = |row: &Row| match query.kind.hop_kind() {
        None => matches!(row.kind, SpanKind::Server | SpanKind::Consumer),
        Some(HopKind::Mq) => {
            row.hop == HopKind::Mq && matches!(row.kind, SpanKind::Producer | SpanKind::Consumer | SpanKind::Client)
        }
        Some(hop) => row.hop == hop && row.kind == SpanKind::Client,
    };
    // Hot rows and the block's node table hold all it takes: no span is decoded. The
    // cloud kind of each resource is derived once per chunk (the read lock is held).
    let clouds: RefCell<HashMap<usize, CloudKind>> = RefCell::default();
    let per_row = |_: &State, block: &Block, i: usize| {
        let Some(row) = block.rows.get(i).filter(|r| selected(r)) else {
            return;
        };
        let Some(resource) = block.resource(row) else {
            return;
        };
        let cloud = *clouds
            .borrow_mut()
            .entry(Arc::as_ptr(resource) as usize)
            .or_insert_with(|| hopscope_schemas::derive::cloud(&resource.attributes).kind);
        if window.cloud_kind.is_some_and(|kind| kind != cloud) {
            return;
        }
        let node = block.node(row);
        let key = match (query.group_by, query.kind) {
            (GroupBy::Peer, MiddlewareKind::Host) | (GroupBy::Host, _) => node.and_then(|n| n.host.as_deref()),
            (GroupBy::Peer, _) => node.and_then(|n| n.peer.as_deref()),
            (GroupBy::CloudKind, _) => Some(cloud.as_str()),
        }
        .unwrap_or("unknown");
        let system = match query.kind {
            MiddlewareKind::Host => cloud.as_str(),
            _ => node.map_or("", |n| &n.system),
        };
        let group = match groups.get_mut(key) {
            Some(group) => group,
            None => groups.entry(key.to_owned()).or_default(),
        };
        if group.system.as_deref().is_none_or(|s| system < s) {
            group.system = Some(system.to_owned());
        }
        group
            .samples
            .push((row.start_ns, row.duration(), row.status == StatusCode::Error));
    };
    scan_rows(lock, window.start_ns, window.end_ns, per_row, |_| {
        clouds.borrow_mut().clear()
    });
    let step = query.step_ns.max(1);
    groups
        .into_iter()
        .map(|(peer, group)| {
            let mut buckets: BTreeMap<u64, Vec<Sample>> = BTreeMap::new();
            for s in &group.samples {
                buckets.entry((s.0 - window.start_ns) / step).or_default().push(*s);
            }
            let series = buckets
                .into_iter()
                .map(|(bucket, samples)| {
                    let stats = LatencyStats::from_samples(&samples);
                    SeriesPoint {
                        start_ns: window.start_ns + bucket * step,
                        count: stats.count,
                        errors: stats.errors,
                        p50_ns: stats.p50_ns,
                        p99_ns: stats.p99_ns,
                        max_ns: stats.max_ns,
                    }
                })
                .collect();
            MiddlewareInstance {
                system: group.system.unwrap_or_default(),
                peer,
                stats: LatencyStats::from_samples(&group.samples),
                series,
            }
        })
        .collect()
}

fn interfaces(lock: &RwLock<State>, window: &Window) -> Vec<InterfaceStats> {
    let mut groups: BTreeMap<(String, String), Vec<Sample>> = BTreeMap::new();
    let pre = |_: &State, block: &Block, row: &Row| {
        (matches!(row.kind, SpanKind::Server | SpanKind::Consumer) || row.parent().is_none())
            && cloud_ok(window, block, row)
    };
    scan(lock, window.start_ns, window.end_ns, pre, |_, span| {
        groups
            .entry((span.service_name.clone(), span.name.clone()))
            .or_default()
            .push(sample(span));
    });
    groups
        .into_iter()
        .map(|((service, operation), samples)| InterfaceStats {
            service,
            operation,
            stats: LatencyStats::from_samples(&samples),
        })
        .collect()
}

fn exceptions(lock: &RwLock<State>, window: &Window, examples: usize) -> Vec<ExceptionGroup> {
    #[derive(Default)]
    struct Acc {
        count: u64,
        seen: Vec<(u64, hopscope_schemas::TraceId)>,
    }
    let mut groups: HashMap<(String, String), Acc> = HashMap::new();
    let pre = |_: &State, block: &Block, row: &Row| row.has_exception() && cloud_ok(window, block, row);
    scan(lock, window.start_ns, window.end_ns, pre, |_, span| {
        for event in span.events.iter().filter(|e| e.name == "exception") {
            let ty = hopscope_schemas::find_str(&event.attributes, "exception.type")
                .filter(|t| !t.is_empty())
                .unwrap_or("unknown");
            let acc = groups.entry((span.service_name.clone(), ty.to_owned())).or_default();
            acc.count += 1;
            acc.seen.push((event.time_unix_nano, span.trace_id));
        }
    });
    let mut out: Vec<ExceptionGroup> = groups
        .into_iter()
        .map(|((service, exception_type), mut acc)| {
            acc.seen.sort_by(|a, b| b.cmp(a));
            let last_seen_ns = acc.seen.first().map_or(0, |s| s.0);
            let mut example_trace_ids = Vec::new();
            for (_, trace) in acc.seen {
                if example_trace_ids.len() >= examples {
                    break;
                }
                if !example_trace_ids.contains(&trace) {
                    example_trace_ids.push(trace);
                }
            }
            ExceptionGroup {
                service,
                exception_type,
                count: acc.count,
                last_seen_ns,
                example_trace_ids,
            }
        })
        .collect();
    out.sort_by(|a, b| (b.count, &a.service, &a.exception_type).cmp(&(a.count, &b.service, &b.exception_type)));
    out
}

/// One call along an edge: how it travelled and its sample.
struct EdgeSample {
    hop: HopKind,
    sample: Sample,
}

/// The hop kind of most calls; ties go to the kind whose name sorts last (the rule
/// [`DependencyEdge::hop_kind`] states, which the ClickHouse query follows too).
fn majority_hop(calls: &[EdgeSample]) -> HopKind {
    let mut counts: BTreeMap<&'static str, (u64, HopKind)> = BTreeMap::new();
    for c in calls {
        counts.entry(c.hop.as_str()).or_insert((0, c.hop)).0 += 1;
    }
    counts
        .into_iter()
        .max_by_key(|&(name, (n, _))| (n, name))
        .map_or(HopKind::Internal, |(_, (_, hop))| hop)
}

/// Where an edge goes, with names shared (`Rc`) so that a sample costs no allocation.
#[derive(PartialEq, Eq, Hash)]
enum EdgeKey {
    Service(Rc<str>),
    Middleware(HopKind, Rc<str>),
}

/// Calls between services (child span under a parent of another service; the caller's
/// duration and status when the parent is a client or producer span, else the callee's)
/// and from services to middleware instances (client/producer spans of a db, cache or mq
/// hop, by peer). Everything comes from hot rows and the block's node table; no span is
/// decoded. Names are resolved per chunk, while the read lock is held, since an interned
/// id can be reused once its last span is evicted.
fn dependency_edges(lock: &RwLock<State>, window: &Window) -> Vec<DependencyEdge> {
    let mut edges: FxHashMap<(Rc<str>, EdgeKey), Vec<EdgeSample>> = FxHashMap::default();
    let names: RefCell<FxHashMap<u32, Rc<str>>> = RefCell::default();
    let name = |state: &State, id: u32| -> Rc<str> {
        let mut names = names.borrow_mut();
        Rc::clone(
            names
                .entry(id)
                .or_insert_with(|| Rc::from(state.catalog.service_name(id))),
        )
    };
    // Peers by node address, valid while the chunk's read lock is held.
    let peers: RefCell<FxHashMap<usize, Rc<str>>> = RefCell::default();
    let peer_of = |node: &Node, peer: &str| -> Rc<str> {
        let mut peers = peers.borrow_mut();
        Rc::clone(
            peers
                .entry(std::ptr::from_ref(node) as usize)
                .or_insert_with(|| Rc::from(peer)),
        )
    };
    let per_row = |state: &State, block: &Block, i: usize| {
        let Some(row) = block.rows.get(i) else { return };
        let middleware = matches!(row.kind, SpanKind::Client | SpanKind::Producer)
            && matches!(row.hop, HopKind::Db | HopKind::Cache | HopKind::Mq);
        let parent = row
            .parent()
            .and_then(|p| find_span(state, &row.trace_id, p))
            .map(|(_, parent)| parent)
            .filter(|parent| parent.service != row.service);
        if !(middleware || parent.is_some()) || !cloud_ok(window, block, row) {
            return;
        }
        if let Some(parent) = parent {
            let caller_view = matches!(parent.kind, SpanKind::Client | SpanKind::Producer);
            let timed = if caller_view { parent } else { row };
            let key = (name(state, parent.service), EdgeKey::Service(name(state, row.service)));
            edges.entry(key).or_default().push(EdgeSample {
                hop: timed.hop,
                sample: (row.start_ns, timed.duration(), timed.status == StatusCode::Error),
            });
        }
        if middleware
            && let Some(node) = block.node(row)
            && let Some(peer) = node.peer.as_deref()
        {
            let key = (
                name(state, row.service),
                EdgeKey::Middleware(row.hop, peer_of(node, peer)),
            );
            edges.entry(key).or_default().push(EdgeSample {
                hop: row.hop,
                sample: (row.start_ns, row.duration(), row.status == StatusCode::Error),
            });
        }
    };
    let flush = |_: &State| {
        names.borrow_mut().clear();
        peers.borrow_mut().clear();
    };
    scan_rows(lock, window.start_ns, window.end_ns, per_row, flush);
    let mut sorted: BTreeMap<(String, EdgeTarget), Vec<EdgeSample>> = BTreeMap::new();
    for ((from, to), samples) in edges {
        let to = match to {
            EdgeKey::Service(name) => EdgeTarget::Service { name: name.to_string() },
            EdgeKey::Middleware(hop_kind, peer) => EdgeTarget::Middleware {
                hop_kind,
                peer: peer.to_string(),
            },
        };
        sorted.entry((from.to_string(), to)).or_default().extend(samples);
    }
    sorted
        .into_iter()
        .map(|((from, to), calls)| {
            let samples: Vec<Sample> = calls.iter().map(|c| c.sample).collect();
            let stats = LatencyStats::from_samples(&samples);
            DependencyEdge {
                from,
                to,
                hop_kind: majority_hop(&calls),
                call_count: stats.count,
                error_count: stats.errors,
                p95_ns: stats.p95_ns,
                p99_ns: stats.p99_ns,
            }
        })
        .collect()
}

fn mismatches(lock: &RwLock<State>, window: &Window, limit: usize) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let pre = |_: &State, block: &Block, row: &Row| row.kind == SpanKind::Client && cloud_ok(window, block, row);
    scan(lock, window.start_ns, window.end_ns, pre, |entry, span| {
        let timeout = mentions_timeout(span);
        if !timeout && !span.is_error() {
            return;
        }
        let reason = if timeout {
            MismatchReason::ClientTimeout
        } else {
            MismatchReason::ClientError
        };
        for child in &entry.spans() {
            if child.parent_span_id == Some(span.span_id) && child.kind == SpanKind::Server && !child.is_error() {
                out.push(Mismatch {
                    reason,
                    client: Arc::clone(span),
                    server: Arc::clone(child),
                });
            }
        }
    });
    out.sort_by(|a, b| {
        (b.client.start_time_unix_nano, b.client.trace_id, b.client.span_id).cmp(&(
            a.client.start_time_unix_nano,
            a.client.trace_id,
            a.client.span_id,
        ))
    });
    out.truncate(limit);
    out
}

#[async_trait]
impl AggregateReader for EmbeddedStore {
    async fn entry_traces(&self, query: &EntryTraceQuery) -> Result<Vec<EntryTrace>> {
        let query = query.clone();
        self.blocking(move |shared| entry_traces(&shared.state, &query)).await
    }

    async fn middleware(&self, query: &MiddlewareQuery) -> Result<Vec<MiddlewareInstance>> {
        let query = query.clone();
        self.blocking(move |shared| middleware(&shared.state, &query)).await
    }

    async fn interfaces(&self, window: &Window) -> Result<Vec<InterfaceStats>> {
        let window = *window;
        self.blocking(move |shared| interfaces(&shared.state, &window)).await
    }

    async fn exceptions(&self, window: &Window, examples: usize) -> Result<Vec<ExceptionGroup>> {
        let window = *window;
        self.blocking(move |shared| exceptions(&shared.state, &window, examples))
            .await
    }

    async fn dependency_edges(&self, window: &Window) -> Result<Vec<DependencyEdge>> {
        let window = *window;
        self.blocking(move |shared| dependency_edges(&shared.state, &window))
            .await
    }

    async fn mismatches(&self, window: &Window, limit: usize) -> Result<Vec<Mismatch>> {
        let window = *window;
        self.blocking(move |shared| mismatches(&shared.state, &window, limit))
            .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::SpanWriter;
    use hopscope_schemas::fixtures::{self, MS, T0, US};

    async fn store() -> EmbeddedStore {
        let store = EmbeddedStore::default();
        store.write_spans(fixtures::all()).await.unwrap();
        store
    }

    fn window(from_us: u64, to_us: u64) -> Window {
        Window {
            start_ns: T0 + from_us * US,
            end_ns: T0 + to_us * US,
            cloud_kind: None,
        }
    }

    #[tokio::test]
    async fn slow_shard_stands_out() {
        let store = store().await;
        let (a, b) = fixtures::REDIS_INCIDENT_US;
        let instances = store
            .middleware(&MiddlewareQuery {
                window: window(a, b),
                kind: MiddlewareKind::Cache,
                group_by: GroupBy::Peer,
                step_ns: 10_000 * MS,
            })
            .await
            .unwrap();
        let p99: Vec<(&str, u64, &str)> = instances
            .iter()
            .map(|i| (i.peer.as_str(), i.stats.p99_ns / US, i.system.as_str()))
            .collect();
        assert_eq!(
            p99,
            [
                ("redis-shard-1:6379", 1_000, "redis"),
                ("redis-shard-2:6379", 40_000, "redis"),
                ("redis-shard-3:6379", 1_000, "redis")
            ]
        );
        assert_eq!(instances[1].stats.count, 10);
        assert_eq!(instances[1].series.len(), 6);
    }

    #[tokio::test]
    async fn entry_traces_sample_evenly() {
        let store = store().await;
        let query = EntryTraceQuery {
            window: window(0, 200_000_000),
            service: "cart".into(),
            operation: "GET /cart".into(),
            limit: 6,
        };
        let entries = store.entry_traces(&query).await.unwrap();
        let ids: Vec<_> = entries.iter().map(|e| e.trace_id).collect();
        let expected: Vec<_> = (0..6)
            .map(|k| fixtures::trace_id(fixtures::REDIS_TRACES + k * 10))
            .collect();
        assert_eq!(ids, expected);
    }

    #[tokio::test]
    async fn edges_mismatches_exceptions_interfaces() {
        let store = store().await;
        let all = window(0, 200_000_000);
        let edges = store.dependency_edges(&all).await.unwrap();
        let names: Vec<String> = edges
            .iter()
            .map(|e| match &e.to {
                EdgeTarget::Service { name } => format!("{}>{}", e.from, name),
                EdgeTarget::Middleware { peer, .. } => format!("{}>{}", e.from, peer),
            })
            .collect();
        assert_eq!(
            names,
            [
                "api>ledger",
                "billing>billing-db:5432",
                "cart>redis-shard-1:6379",
                "cart>redis-shard-2:6379",
                "cart>redis-shard-3:6379",
                "inventory>orders",
                "ledger>ledger-db:5432",
                "orders>billing",
                "orders>inventory",
                "orders>payments",
                "web>orders"
            ]
        );
        let mismatches = store.mismatches(&all, 10).await.unwrap();
        assert_eq!(mismatches.len(), 1);
        assert_eq!(mismatches[0].reason, MismatchReason::ClientTimeout);
        assert_eq!(
            mismatches[0].client.span_id,
            fixtures::span_id(fixtures::LOCK_CLIENT_SPAN)
        );
        let exceptions = store.exceptions(&all, 3).await.unwrap();
        let types: Vec<_> = exceptions
            .iter()
            .map(|e| (e.service.as_str(), e.exception_type.as_str(), e.count))
            .collect();
        assert_eq!(types, [("api", "TimeoutError", 1), ("orders", "StockError", 1)]);
        let public = Window {
            cloud_kind: Some(hopscope_schemas::CloudKind::Hosted),
            ..all
        };
        let interfaces = store.interfaces(&public).await.unwrap();
        assert_eq!(interfaces.len(), 1);
        assert_eq!((interfaces[0].service.as_str(), interfaces[0].stats.errors), ("api", 1));
    }
}
