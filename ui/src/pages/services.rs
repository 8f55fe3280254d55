//! `/services`: the dependency map (services and middleware instances, with call counts,
//! error rates and p99) as SVG, layering violations in red, and the same as a table.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use hopscope_analysis::rules::Violation;
use hopscope_storage::aggregates::{DependencyEdge, EdgeTarget};
use leptos::prelude::*;

use super::{ServiceStats, service_stats, store_failed};
use crate::layout::{Nav, api_link, error_page, no_aggregates, notice, respond_api, window_fields};
use crate::params::{Params, query_string};
use crate::{Html, UiState, format};

const TITLE: &str = "Service map";
const NODE_W: f64 = 210.0;
const NODE_H: f64 = 46.0;
const COL_W: f64 = 330.0;
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

/// Where a node's box is drawn.
fn node_xy(col: usize, row: usize) -> (f64, f64) {
    (20.0 + col as f64 * COL_W, 10.0 + row as f64 * ROW_H)
}

/// The y of the empty lane just below row `row` (between its boxes and the next row's).
fn lane_below(row: usize) -> f64 {
    node_xy(0, row).1 + NODE_H + (ROW_H - NODE_H) / 2.0
}

/// An edge's path as SVG path data, and where its label goes (`x`, `y`, anchor). Every
/// part of it runs through the empty space between boxes, never under one:
/// - to the next column: one curve across the gap between the columns;
/// - further right: into the lane below the caller's row, along it, and out of it in the
///   gap before the callee's column;
/// - back to the same or an earlier column: down into the lane below the caller's row,
///   along it to the gap right of the callee's column, and into the callee's right side.
fn route(from: (usize, usize), to: (usize, usize)) -> (String, (f64, f64, &'static str)) {
    let (x1, y1) = node_xy(from.0, from.1);
    let (x2, y2) = node_xy(to.0, to.1);
    let (sy, ey) = (y1 + NODE_H / 2.0, y2 + NODE_H / 2.0);
    let gap = COL_W - NODE_W;
    if to.0 == from.0 + 1 {
        let (sx, ex) = (x1 + NODE_W, x2);
        let mid = (sx + ex) / 2.0;
        let d = format!("M{sx:.0},{sy:.0} C{mid:.0},{sy:.0} {mid:.0},{ey:.0} {ex:.0},{ey:.0}");
        return (d, (mid, (sy + ey) / 2.0 - 4.0, "middle"));
    }
    let lane = lane_below(from.1);
    if to.0 > from.0 {
        let sx = x1 + NODE_W;
        let (a, b) = (sx + gap / 4.0, sx + gap / 2.0);
        let (c, e) = (x2 - gap / 2.0, x2 - gap / 4.0);
        let d = format!(
            "M{sx:.0},{sy:.0} C{a:.0},{sy:.0} {a:.0},{lane:.0} {b:.0},{lane:.0} L{c:.0},{lane:.0} \
             C{e:.0},{lane:.0} {e:.0},{ey:.0} {x2:.0},{ey:.0}"
        );
        return (d, ((b + c) / 2.0, lane - 3.0, "middle"));
    }
    let (bx, by) = (x1 + NODE_W / 2.0, y1 + NODE_H);
    let back = x2 + NODE_W + gap / 2.0;
    let end = x2 + NODE_W;
    let d = format!("M{bx:.0},{by:.0} L{bx:.0},{lane:.0} L{back:.0},{lane:.0} L{back:.0},{ey:.0} L{end:.0},{ey:.0}");
    (d, ((bx + back) / 2.0, lane - 3.0, "middle"))
}

/// Label boxes already placed (`x0`, `y0`, `x1`, `y1`); [`place_label`] moves a new label
/// down until it overlaps none of them.
fn place_label(placed: &mut Vec<(f64, f64, f64, f64)>, x: f64, y: f64, anchor: &str, text: &str) -> f64 {
    // A generous estimate of the rendered width (11 px text, ~6.6 px a character, plus
    // a margin): browsers' fonts differ, and an overlap is worse than a gap.
    let width = text.chars().count() as f64 * 7.0 + 6.0;
    let x0 = match anchor {
        "middle" => x - width / 2.0,
        "end" => x - width,
        _ => x,
    };
    let mut y = y;
    for _ in 0..60 {
        let (top, bottom) = (y - 11.0, y + 3.0);
        let clash = placed
            .iter()
            .any(|&(a, b, c, d)| x0 < c && x0 + width > a && top < d && bottom > b);
        if !clash {
            break;
        }
        y += 14.0;
    }
    placed.push((x0, y - 11.0, x0 + width, y + 3.0));
    y
}

/// The map. Service nodes show the service's own requests (its entry spans: what
/// Overview and SLA count); middleware nodes show the calls they receive (the callers'
/// view: they send no spans of their own). Service → service edges are labelled with
/// their calls and errors (the caller's view); service → middleware edges are not (the
/// middleware node carries the totals, the tooltip and the table below the numbers), so
/// labels do not pile up before the middleware column.
fn map_view(
    edges: &[DependencyEdge],
    bad: &BTreeSet<(String, String)>,
    own: &BTreeMap<String, ServiceStats>,
) -> impl IntoView + use<> {
    let positions = layout(edges);
    let cols = positions.values().map(|p| p.0).max().unwrap_or(0) + 1;
    let rows = positions.values().map(|p| p.1).max().unwrap_or(0) + 1;
    let width = 20.0 + cols as f64 * COL_W;
    let height = 20.0 + rows as f64 * ROW_H;
    // Calls received per middleware node.
    let mut incoming: HashMap<NodeId, (u64, u64, u64)> = HashMap::new();
    for e in edges {
        let t = incoming.entry(target(e)).or_default();
        t.0 += e.call_count;
        t.1 += e.error_count;
        t.2 = t.2.max(e.p99_ns);
    }
    let bad_nodes: BTreeSet<&String> = bad.iter().flat_map(|(a, b)| [a, b]).collect();
    let mut placed: Vec<(f64, f64, f64, f64)> = Vec::new();
    let lines = edges
        .iter()
        .filter_map(|e| {
            let to = target(e);
            let from = *positions.get(&service(&e.from))?;
            let to_pos = *positions.get(&to)?;
            let (d, (lx, ly, anchor)) = route(from, to_pos);
            let violation = !to.middleware && bad.contains(&(e.from.clone(), to.name.clone()));
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
                "{} → {} ({}): {} calls, {} errors (caller's view), p99 {}{}",
                e.from,
                to.name,
                e.hop_kind.as_str(),
                e.call_count,
                format::percent(error_rate),
                format::duration_ns(e.p99_ns),
                if violation { " — layering violation" } else { "" }
            );
            let label = (!to.middleware).then(|| {
                let text = format!(
                    "{} {}{}",
                    e.hop_kind.as_str(),
                    e.call_count,
                    if e.error_count > 0 {
                        format!(" · {} err", format::percent(error_rate))
                    } else {
                        String::new()
                    }
                );
                let y = place_label(&mut placed, lx, ly, anchor, &text);
                let label_class = if violation { "elabel violation" } else { "elabel" };
                view! { <text class=label_class x=format!("{lx:.0}") y=format!("{y:.0}") text-anchor=anchor>{text}</text> }
            });
            Some(view! {
                <g>
                    <path class=class d=d marker-end="url(#arrow)"><title>{tip}</title></path>
                    {label}
                </g>
            })
        })
        .collect_view();
    let nodes = positions
        .iter()
        .map(|(n, &(c, r))| {
            let (x, y) = node_xy(c, r);
            let sub = if n.middleware {
                let (calls, errors, p99) = incoming.get(n).copied().unwrap_or_default();
                format!(
                    "{calls} calls · {} err · p99 {}",
                    format::percent(if calls == 0 { 0.0 } else { errors as f64 / calls as f64 }),
                    format::duration_ns(p99)
                )
            } else {
                match own.get(&n.name) {
                    Some(s) if s.count > 0 => format!(
                        "{} req · {} err · p99 {}",
                        s.count,
                        format::percent(s.error_rate()),
                        format::duration_ns(s.worst_p99_ns)
                    ),
                    _ => "no requests served".to_owned(),
                }
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
                format!("{} ({}): calls received, callers' view", n.name, n.kind)
            } else {
                format!("{}: requests it served, its own spans", n.name)
            };
            let mut label = if n.middleware {
                format!("{} ({})", n.name, n.kind)
            } else {
                n.name.clone()
            };
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
        <p class="hint" id="map-legend">
            "Services (blue) show the requests they served, from their own spans — the figures Overview and SLA show. "
            "Middleware (purple) shows the calls it received, as the callers saw them. "
            "Edges between services are labelled with hop kind, calls and the caller's error rate; hover any edge for its numbers."
        </p>
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
    let (edges, own) = match (
        aggregates.dependency_edges(&window).await,
        aggregates.interfaces(&window).await,
    ) {
        (Ok(e), Ok(i)) => (e, service_stats(&i)),
        (Err(err), _) | (_, Err(err)) => return store_failed(TITLE, Nav::Services, &err),
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
                        <td>{e.hop_kind.as_str()}</td>
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
            {map_view(&edges, &bad, &own)}
            <h2>"Rule violations"</h2>
            {violation_view}
            <h2>"Calls"</h2>
            <table class="data">
                <caption>"Every edge of the map (caller's view of latency and errors)"</caption>
                <thead><tr>
                    <th scope="col">"Caller"</th><th scope="col">"Callee"</th><th scope="col">"Callee kind"</th><th scope="col">"Hop"</th>
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
    respond_api(
        StatusCode::OK,
        TITLE,
        Nav::Services,
        api_link(Nav::Services, Some(&window)),
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The points of path data made of M/C/L commands.
    fn points(d: &str) -> Vec<(f64, f64)> {
        d.split(|c: char| c.is_ascii_alphabetic() || c == ' ')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap_or(("nan", "nan"));
                (x.parse().unwrap_or(f64::NAN), y.parse().unwrap_or(f64::NAN))
            })
            .collect()
    }

    /// True when the segment a–b passes through the inside of the box at (x, y).
    fn crosses_box(a: (f64, f64), b: (f64, f64), (x, y): (f64, f64)) -> bool {
        (0..=100).any(|i| {
            let t = f64::from(i) / 100.0;
            let (px, py) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
            px > x + 1.0 && px < x + NODE_W - 1.0 && py > y + 1.0 && py < y + NODE_H - 1.0
        })
    }

    #[test]
    fn edges_never_run_under_a_box() {
        let grid: Vec<(usize, usize)> = (0..5).flat_map(|c| (0..6).map(move |r| (c, r))).collect();
        for &from in &grid {
            for &to in &grid {
                if from == to {
                    continue;
                }
                let (d, _) = route(from, to);
                let pts = points(&d);
                assert!(pts.iter().all(|p| p.0.is_finite() && p.1.is_finite()), "{d}");
                // A curve stays inside its control polygon's hull, which here lies in the
                // gaps, so checking the control polygon's segments is enough.
                for pair in pts.windows(2) {
                    for &(c, r) in &grid {
                        if (c, r) == from || (c, r) == to {
                            continue;
                        }
                        assert!(
                            !crosses_box(pair[0], pair[1], node_xy(c, r)),
                            "edge {from:?} → {to:?} ({d}) runs under the box at {:?}",
                            (c, r)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn labels_do_not_overlap() {
        let mut placed = Vec::new();
        let ys: Vec<f64> = (0..4)
            .map(|_| place_label(&mut placed, 100.0, 50.0, "middle", "http 212 · 11% err"))
            .collect();
        for (i, a) in placed.iter().enumerate() {
            for b in &placed[i + 1..] {
                assert!(!(a.0 < b.2 && a.2 > b.0 && a.1 < b.3 && a.3 > b.1), "{placed:?}");
            }
        }
        assert_eq!(ys, [50.0, 64.0, 78.0, 92.0]);
    }
}
