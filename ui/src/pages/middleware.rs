//! `/middleware?kind=cache|db|mq|host|http|rpc[&group_by][&cloud_kind]`: instances side
//! by side (table) and over time (p99 and throughput charts).

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use hopscope_storage::aggregates::{GroupBy, MAX_SERIES_POINTS, MiddlewareKind, MiddlewareQuery};
use leptos::prelude::*;

use super::store_failed;
use crate::layout::{Nav, error_page, no_aggregates, notice, respond_api, window_fields, window_query};
use crate::params::{Params, query_string};
use crate::svg::{PALETTE, Series, lines};
use crate::{Html, UiState, format};

const TITLE: &str = "Middleware";
const KINDS: &[(&str, &str)] = &[
    ("cache", "Caches"),
    ("db", "Databases"),
    ("mq", "Queues"),
    ("host", "Hosts"),
    ("http", "HTTP peers"),
    ("rpc", "RPC peers"),
];
/// Most instances drawn in the charts (the table has them all).
const MAX_CHARTED: usize = 8;

pub async fn handler(State(state): State<UiState>, Query(params): Query<BTreeMap<String, String>>) -> Html {
    let params = Params(params);
    let Some(aggregates) = state.aggregates.clone() else {
        return no_aggregates(TITLE, Nav::Middleware);
    };
    let kind_text = params.get("kind").unwrap_or("cache").to_owned();
    let Some(kind) = MiddlewareKind::parse(&kind_text) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            TITLE,
            Nav::Middleware,
            format!("Unknown kind \"{kind_text}\": choose cache, db, mq, host, http or rpc."),
        );
    };
    let group_text = params.get("group_by").unwrap_or("peer").to_owned();
    let Some(group_by) = GroupBy::parse(&group_text) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            TITLE,
            Nav::Middleware,
            format!("Unknown grouping \"{group_text}\": choose peer, host or cloud_kind."),
        );
    };
    let window = match params.window("1h") {
        Ok(w) => w,
        Err(msg) => return error_page(StatusCode::BAD_REQUEST, TITLE, Nav::Middleware, msg),
    };
    let span_ns = window.end_ns - window.start_ns;
    let min_step = span_ns / (MAX_SERIES_POINTS - 1) + 1;
    let step_text = params.value("step");
    let step_ns = match step_text.as_str() {
        "" | "auto" => (span_ns / 60).max(1_000_000_000),
        text => match hopscope_query_api::params::duration::parse_go_duration(text) {
            Ok(ns) if ns > 0 => ns,
            _ => {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    TITLE,
                    Nav::Middleware,
                    format!("The resolution \"{text}\" is not a duration like 10s or 1m."),
                );
            }
        },
    }
    .max(min_step);
    let instances = match aggregates
        .middleware(&MiddlewareQuery {
            window,
            kind,
            group_by,
            step_ns,
        })
        .await
    {
        Ok(i) => i,
        Err(err) => return store_failed(TITLE, Nav::Middleware, &err),
    };

    let lookback = params.value("lookback");
    let cloud = params.value("cloud_kind");
    let start = params.value("start");
    let end = params.value("end");
    let tabs = KINDS
        .iter()
        .map(|&(k, label)| {
            let href = format!(
                "/middleware{}",
                query_string([
                    ("kind", k),
                    ("group_by", group_text.as_str()),
                    ("lookback", lookback.as_str()),
                    ("start", start.as_str()),
                    ("end", end.as_str()),
                    ("cloud_kind", cloud.as_str()),
                    ("step", step_text.as_str())
                ])
            );
            let current = (k == kind_text).then_some("page");
            view! { <li><a href=href aria-current=current>{label}</a></li> }
        })
        .collect_view();
    let steps = [
        ("auto", "auto"),
        ("1s", "1 s"),
        ("10s", "10 s"),
        ("1m", "1 min"),
        ("5m", "5 min"),
        ("1h", "1 h"),
    ]
    .iter()
    .map(|&(v, label)| {
        let selected = step_text == v || (step_text.is_empty() && v == "auto");
        view! { <option value=v selected=selected>{label}</option> }
    })
    .collect_view();
    let groups = [
        ("peer", "instance"),
        ("host", "host the caller runs on"),
        ("cloud_kind", "cloud kind"),
    ]
    .iter()
    .map(|&(v, label)| view! { <option value=v selected=group_text == v>{label}</option> })
    .collect_view();

    let content = if instances.is_empty() {
        notice(
            "info",
            "No spans of this kind in this time range".to_owned(),
            "Instances appear from client spans with db.system, messaging.system or server.address attributes (hosts from host.name). Try another kind or a longer time range.".to_owned(),
        )
        .into_any()
    } else {
        let mut by_load: Vec<usize> = (0..instances.len()).collect();
        by_load.sort_by(|&a, &b| instances[b].stats.count.cmp(&instances[a].stats.count));
        let charted: Vec<usize> = by_load.into_iter().take(MAX_CHARTED).collect();
        let mut colour: BTreeMap<usize, &str> = BTreeMap::new();
        for (n, &i) in charted.iter().enumerate() {
            colour.insert(i, PALETTE[n % PALETTE.len()]);
        }
        let name = |i: usize| {
            let inst = &instances[i];
            if inst.system.is_empty() {
                inst.peer.clone()
            } else {
                format!("{} ({})", inst.peer, inst.system)
            }
        };
        let p99: Vec<Series> = charted
            .iter()
            .map(|&i| Series {
                label: name(i),
                points: instances[i]
                    .series
                    .iter()
                    .map(|p| (p.start_ns, p.p99_ns as f64 / 1_000.0))
                    .collect(),
            })
            .collect();
        let step_s = step_ns as f64 / 1e9;
        let throughput: Vec<Series> = charted
            .iter()
            .map(|&i| Series {
                label: name(i),
                points: instances[i]
                    .series
                    .iter()
                    .map(|p| (p.start_ns, p.count as f64 / step_s))
                    .collect(),
            })
            .collect();
        let errors: Vec<Series> = charted
            .iter()
            .map(|&i| Series {
                label: name(i),
                points: instances[i]
                    .series
                    .iter()
                    .map(|p| {
                        (
                            p.start_ns,
                            if p.count == 0 {
                                0.0
                            } else {
                                p.errors as f64 / p.count as f64
                            },
                        )
                    })
                    .collect(),
            })
            .collect();
        let worst_p99 = instances.iter().map(|i| i.stats.p99_ns).max().unwrap_or(0);
        let rows = instances
            .iter()
            .enumerate()
            .map(|(i, inst)| {
                let s = inst.stats;
                let error_rate = if s.count == 0 {
                    0.0
                } else {
                    s.errors as f64 / s.count as f64
                };
                let swatch = colour
                    .get(&i)
                    .map(|c| view! { <span class="swatch" style=format!("background:{c}")></span> });
                let slowest = s.p99_ns == worst_p99 && instances.len() > 1;
                view! {
                    <tr>
                        <th scope="row">{swatch}{inst.peer.clone()}</th>
                        <td>{inst.system.clone()}</td>
                        <td class="num">{s.count}</td>
                        <td class="num">{s.max_qps}</td>
                        <td class="num" class:bad={s.errors > 0}>{format::percent(error_rate)}</td>
                        <td class="num">{format::duration_ns(s.p50_ns)}</td>
                        <td class="num">{format::duration_ns(s.p95_ns)}</td>
                        <td class="num" class:bad=slowest>{format::duration_ns(s.p99_ns)}</td>
                        <td class="num">{format::duration_ns(s.p999_ns)}</td>
                        <td class="num">{format::duration_ns(s.max_ns)}</td>
                    </tr>
                }
            })
            .collect_view();
        // The charts span the buckets that have data, not the whole window.
        let starts = instances.iter().flat_map(|i| i.series.iter().map(|p| p.start_ns));
        let t0 = starts.clone().min().unwrap_or(window.start_ns);
        let t1 = starts.max().map_or(window.end_ns, |t| t + step_ns);
        let caption = format!(
            "{} side by side, sorted by name; the slowest p99 in red",
            KINDS.iter().find(|k| k.0 == kind_text).map_or("Instances", |k| k.1)
        );
        view! {
            <table class="data" id="instances">
                <caption>{caption}</caption>
                <thead><tr>
                    <th scope="col">"Instance"</th><th scope="col">"System"</th>
                    <th scope="col" class="num">"Calls"</th><th scope="col" class="num">"Peak/s"</th>
                    <th scope="col" class="num">"Errors"</th><th scope="col" class="num">"p50"</th>
                    <th scope="col" class="num">"p95"</th><th scope="col" class="num">"p99"</th>
                    <th scope="col" class="num">"p99.9"</th><th scope="col" class="num">"Max"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
            <div class="charts">
                {lines("p99 latency over time", &p99, t0, t1, 1.0, |v| format::duration_us(v as u64))}
                {lines("Throughput (calls per second)", &throughput, t0, t1, 0.1, format::rate)}
                {lines("Error rate", &errors, t0, t1, 0.01, format::percent)}
            </div>
        }
        .into_any()
    };
    let body = view! {
        <ul class="tabs" aria-label="Kind of node">{tabs}</ul>
        <form class="filters" method="get" action="/middleware" aria-label="Comparison settings">
            <input type="hidden" name="kind" value=kind_text.clone()/>
            <label>"Group by"<select name="group_by">{groups}</select></label>
            <label>"Resolution"<select name="step">{steps}</select></label>
            {window_fields(&params, "1h")}
            <button type="submit">"Compare"</button>
        </form>
        {content}
    };
    let step_us = (step_ns / 1_000).to_string();
    let api = format!(
        "/api/v1/middleware{}",
        window_query(
            Some(&window),
            &[
                ("kind", kind_text.as_str()),
                ("group_by", group_text.as_str()),
                ("step", step_us.as_str())
            ]
        )
    );
    respond_api(StatusCode::OK, TITLE, Nav::Middleware, api, body)
}
