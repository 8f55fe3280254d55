//! `/services`: the dependency map (services and middleware instances, with call counts,
//! error rates and p99) as SVG, layering violations in red, and the same as a table.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use hopscope_analysis::rules::Violation;
use hopscope_storage::aggregates::{DependencyEdge, EdgeTarget};
use leptos::prelude::*;

use super::store_failed;
use crate::layout::{Nav, error_page, no_aggregates, notice, respond, window_fields};
use crate::params::{Params, query_string};
use crate::{Html, UiState, format};

const TITLE: &str = "Service map";
const NODE_W: f64 = 210.0;
const NODE_H: f64 = 46.0;
const COL_W: f64 = 300.0;
const ROW_H: f64 = 66.0;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct NodeId {
    middleware: bool,
    name: String,
    kind: String,
}

fn target(edge: &DependencyEdge) -> NodeId {
    match &edge.to {
        EdgeTarget::Service { name } => NodeId {
            middleware: false,
            name: name.clone(),
            kind: "service".to_owned(),
        },
        EdgeTarget::Middleware { hop_kind, peer } => NodeId {
            middleware: true,
            name: peer.clone(),
            kind: hop_kind.as_str().to_owned(),
        },
    }
}

fn service(name: &str) -> NodeId {
    NodeId {
        middleware: false,
        name: name.to_owned(),
        kind: "service".to_owned(),
    }
}

/// Which service → service edges break a rule.
fn bad_edges(violations: &[Violation], edges: &[DependencyEdge]) -> BTreeSet<(String, String)> {
    let mut bad = BTreeSet::new();
    for v in violations {
        match v {
            Violation::UpwardCall { from, to, .. } => {
                bad.insert((from.clone(), to.clone()));
            }
            Violation::Cycle { services } => {
                for e in edges {
                    if let EdgeTarget::Service { name } = &e.to
                        && services.contains(&e.from)
                        && services.contains(name)
                    {
                        bad.insert((e.from.clone(), name.clone()));
                    }
                }
            }
        }
    }
    bad
}

/// Column of every node: services by their shortest call distance from a service no
/// other service calls (so cycles do not stretch the map), middleware in the last column.
fn layout(edges: &[DependencyEdge]) -> BTreeMap<NodeId, (usize, usize)> {
    let mut callees: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut called: BTreeSet<&str> = BTreeSet::new();
    for e in edges {
        callees.entry(e.from.as_str()).or_default();
        if let EdgeTarget::Service { name } = &e.to {
            callees.entry(e.from.as_str()).or_default().insert(name.as_str());
            callees.entry(name.as_str()).or_default();
            if *name != e.from {
                called.insert(name.as_str());
            }
        }
    }
    let mut depth: BTreeMap<String, usize> = BTreeMap::new();
    let mut queue: std::collections::VecDeque<&str> = callees.keys().copied().filter(|s| !called.contains(s)).collect();
    for s in &queue {
        depth.insert((*s).to_owned(), 0);
    }
    loop {
        while let Some(s) = queue.pop_front() {
            let d = depth.get(s).copied().unwrap_or(0);
            for &c in callees.get(s).into_iter().flatten() {
                if !depth.contains_key(c) {
                    depth.insert(c.to_owned(), d + 1);
                    queue.push_back(c);
                }
            }
        }
        // Services only reachable through a cycle: start from the first one left.
        match callees.keys().find(|s| !depth.contains_key(**s)) {
            Some(s) => {
                depth.insert((*s).to_owned(), 0);
                queue.push_back(s);
            }
            None => break,
        }
    }
    let mw_col = depth.values().copied().max().map_or(0, |d| d + 1);
    let mut columns: BTreeMap<usize, Vec<NodeId>> = BTreeMap::new();
    for (name, d) in &depth {
        columns.entry(*d).or_default().push(service(name));
    }
    let mut mws: Vec<NodeId> = edges.iter().map(target).filter(|n| n.middleware).collect();
    mws.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
    mws.dedup();
    columns.entry(mw_col).or_default().extend(mws);
    let mut out = BTreeMap::new();
    for (col, nodes) in columns {
        for (row, node) in nodes.into_iter().enumerate() {
            out.insert(node, (col, row));
        }
    }
    out
}

fn map_view(edges: &[DependencyEdge], bad: &BTreeSet<(String, String)>) -> impl IntoView + use<> {
    let positions = layout(edges);
    let cols = positions.values().map(|p| p.0).max().unwrap_or(0) + 1;
    let rows = positions.values().map(|p| p.1).max().unwrap_or(0) + 1;
    let width = 20.0 + cols as f64 * COL_W;
    let height = 20.0 + rows as f64 * ROW_H;
    let xy = |n: &NodeId| {
        positions
            .get(n)
            .map(|&(c, r)| (20.0 + c as f64 * COL_W, 10.0 + r as f64 * ROW_H))
    };
    // Incoming totals per node.
    let mut incoming: HashMap<NodeId, (u64, u64, u64)> = HashMap::new();
    for e in edges {
        let t = incoming.entry(target(e)).or_default();
        t.0 += e.call_count;
        t.1 += e.error_count;
        t.2 = t.2.max(e.p99_ns);
    }
    let bad_nodes: BTreeSet<&String> = bad.iter().flat_map(|(a, b)| [a, b]).collect();
    let lines = edges
        .iter()
        .filter_map(|e| {
            let to = target(e);
            let (x1, y1) = xy(&service(&e.from))?;
            let (x2, y2) = xy(&to)?;
            let (sx, sy) = (x1 + NODE_W, y1 + NODE_H / 2.0);
            let (ex, ey) = (x2, y2 + NODE_H / 2.0);
            let violation = !to.middleware && bad.contains(&(e.from.clone(), to.name.clone()));
            let d = if ex > sx {
                let mid = (sx + ex) / 2.0;
                format!("M{sx:.0},{sy:.0} C{mid:.0},{sy:.0} {mid:.0},{ey:.0} {ex:.0},{ey:.0}")
            } else {
                // A call back to an earlier column: loop below the nodes.
                let low = sy.max(ey) + NODE_H;
                format!(
                    "M{:.0},{:.0} C{:.0},{low:.0} {:.0},{low:.0} {:.0},{:.0}",
                    x1 + NODE_W / 2.0,
                    y1 + NODE_H,
                    x1,
                    x2 + NODE_W,
                    x2 + NODE_W / 2.0,
                    y2 + NODE_H
                )
            };
            let error_rate = if e.call_count == 0 {
                0.0
            } else {
                e.error_count as f64 / e.call_count as f64
            };
            let class = if violation {
                "edge violation"
            } else if e.error_count > 0 {
                "edge err"
            } else {
                "edge"
            };
            let tip = format!(
                "{} → {}: {} calls, {} errors, p99 {}{}",
                e.from,
                to.name,
                e.call_count,
                format::percent(error_rate),
                format::duration_ns(e.p99_ns),
                if violation { " — layering violation" } else { "" }
            );
            let label = format!(
                "{}{}",
                e.call_count,
                if e.error_count > 0 {
                    format!(" · {} err", format::percent(error_rate))
                } else {
                    String::new()
                }
            );
            let lx = if ex > sx { ex - 8.0 } else { x2 + NODE_W + 4.0 };
            let ly = if ex > sx { ey - 5.0 } else { y2 + NODE_H + 12.0 };
            let label_class = if violation { "elabel violation" } else { "elabel" };
            let anchor = if ex > sx { "end" } else { "start" };
            Some(view! {
                <g>
                    <path class=class d=d marker-end="url(#arrow)"><title>{tip}</title></path>
                    <text class=label_class x=format!("{lx:.0}") y=format!("{ly:.0}") text-anchor=anchor>{label}</text>
                </g>
            })
        })
        .collect_view();
    let nodes = positions
        .iter()
        .map(|(n, &(c, r))| {
            let (x, y) = (20.0 + c as f64 * COL_W, 10.0 + r as f64 * ROW_H);
            let (calls, errors, p99) = incoming.get(n).copied().unwrap_or_default();
            let sub = if calls == 0 {
                "entry".to_owned()
            } else {
                format!(
                    "{calls} calls · {} err · p99 {}",
                    format::percent(errors as f64 / calls as f64),
                    format::duration_ns(p99)
                )
            };
            let class = format!(
                "node{}{}",
                if n.middleware { " mw" } else { "" },
                if !n.middleware && bad_nodes.contains(&n.name) {
                    " bad"
                } else {
                    ""
                }
            );
            let title = if n.middleware {
                format!("{} ({})", n.name, n.kind)
            } else {
                n.name.clone()
            };
            let mut label = title.clone();
            if label.chars().count() > 30 {
                label = format!("{}…", label.chars().take(29).collect::<String>());
            }
            let href = if n.middleware {
                let kind = match n.kind.as_str() {
                    "db" => "db",
                    "mq" => "mq",
                    _ => "cache",
                };
                format!("/middleware?kind={kind}")
            } else {
                format!("/search{}", query_string([("service", n.name.as_str())]))
            };
            let rect_x = format!("{x:.0}");
            let rect_y = format!("{y:.0}");
            view! {
                <a href=href>
                    <g class=class>
                        <title>{title}</title>
                        <rect x=rect_x y=rect_y width=NODE_W height=NODE_H rx="6"></rect>
                        <text x=format!("{:.0}", x + 8.0) y=format!("{:.0}", y + 18.0)>{label}</text>
                        <text class="sub" x=format!("{:.0}", x + 8.0) y=format!("{:.0}", y + 36.0)>{sub}</text>
                    </g>
                </a>
            }
        })
        .collect_view();
    let view_box = format!("0 0 {width:.0} {:.0}", height + NODE_H);
    view! {
        <svg class="map chart" viewBox=view_box role="img" aria-label="Dependency map: services call services and middleware instances; red dashed edges break the layering rules">
            <defs>
                <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse">
                    <path d="M 0 0 L 10 5 L 0 10 z" fill="#9aa6b8"></path>
                </marker>
            </defs>
            {lines}
            {nodes}
        </svg>
    }
}

pub async fn handler(State(state): State<UiState>, Query(params): Query<BTreeMap<String, String>>) -> Html {
    let params = Params(params);
    let Some(aggregates) = state.aggregates.clone() else {
        return no_aggregates(TITLE, Nav::Services);
    };
    let window = match params.window("1h") {
        Ok(w) => w,
        Err(msg) => return error_page(StatusCode::BAD_REQUEST, TITLE, Nav::Services, msg),
    };
    let edges = match aggregates.dependency_edges(&window).await {
        Ok(e) => e,
        Err(err) => return store_failed(TITLE, Nav::Services, &err),
    };
    let violations = state.analysis.layers.violations(&edges);
    let bad = bad_edges(&violations, &edges);
    let content = if edges.is_empty() {
        notice(
            "info",
            "No calls in this time range".to_owned(),
            "The map is drawn from parent/child spans across services and from client spans to caches, databases and queues. Choose a longer time range, or send traces that cross services.".to_owned(),
        )
        .into_any()
    } else {
        let violation_view = if violations.is_empty() {
            let text = if state.analysis.layers.order.is_empty() {
                "No cycles between services. Configure [layers] (order and rules) to check calls against your layering too."
            } else {
                "No calls break the layering rules, and no cycles."
            };
            view! { <p class="muted">{text}</p> }.into_any()
        } else {
            let items = violations
                .iter()
                .map(|v| {
                    let text = match v {
                        Violation::UpwardCall {
                            from,
                            to,
                            from_layer,
                            to_layer,
                            call_count,
                        } => {
                            format!(
                                "{from} ({from_layer}) calls {to} ({to_layer}), an upper layer — {call_count} calls"
                            )
                        }
                        Violation::Cycle { services } => {
                            format!("Services call each other in a cycle: {}", services.join(", "))
                        }
                    };
                    view! { <li>{text}</li> }
                })
                .collect_view();
            view! { <ul class="errors" id="violations">{items}</ul> }.into_any()
        };
        let rows = edges
            .iter()
            .map(|e| {
                let to = target(e);
                let violation = !to.middleware && bad.contains(&(e.from.clone(), to.name.clone()));
                let error_rate = if e.call_count == 0 {
                    0.0
                } else {
                    e.error_count as f64 / e.call_count as f64
                };
                view! {
                    <tr class:missed=violation>
                        <td>{e.from.clone()}</td>
                        <td>{to.name.clone()}</td>
                        <td>{to.kind.clone()}</td>
                        <td class="num">{e.call_count}</td>
                        <td class="num">{format::percent(error_rate)}</td>
                        <td class="num">{format::duration_ns(e.p95_ns)}</td>
                        <td class="num">{format::duration_ns(e.p99_ns)}</td>
                        <td>{if violation { "layering violation" } else { "" }}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            {map_view(&edges, &bad)}
            <h2>"Rule violations"</h2>
            {violation_view}
            <h2>"Calls"</h2>
            <table class="data">
                <caption>"Every edge of the map (caller's view of latency and errors)"</caption>
                <thead><tr>
                    <th scope="col">"Caller"</th><th scope="col">"Callee"</th><th scope="col">"Kind"</th>
                    <th scope="col" class="num">"Calls"</th><th scope="col" class="num">"Error rate"</th>
                    <th scope="col" class="num">"p95"</th><th scope="col" class="num">"p99"</th><th scope="col">"Rules"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    let body = view! {
        <form class="filters" method="get" action="/services" aria-label="Time range">
            {window_fields(&params, "1h")}
            <button type="submit">"Show"</button>
        </form>
        {content}
    };
    respond(StatusCode::OK, TITLE, Nav::Services, body)
}
