//! `/`: services with their request rate over the last minute of the time range and
//! their peak rate (both per second), requests, error rate and p99; recent slow and failed
//! traces.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use hopscope_storage::aggregates::Window;
use hopscope_storage::{TagFilter, TraceQuery};
use leptos::prelude::*;

use super::{ServiceStats, TraceSummary, blocking, service_stats, store_failed, summarize, trace_table};
use crate::layout::{Nav, api_link, error_page, no_data, notice, respond, respond_api, window_fields};
use crate::params::{Params, query_string};
use crate::{Html, UiState, format};

const TITLE: &str = "Overview";

/// The recent rate is over this much time at the end of the window.
const RECENT_NS: u64 = 60_000_000_000;

pub async fn handler(State(state): State<UiState>, Query(params): Query<BTreeMap<String, String>>) -> Html {
    let params = Params(params);
    let window = match params.window("1h") {
        Ok(w) => w,
        Err(msg) => return error_page(StatusCode::BAD_REQUEST, TITLE, Nav::Overview, msg),
    };
    let services = match state.reader.services().await {
        Ok(s) => s,
        Err(err) => return store_failed(TITLE, Nav::Overview, &err),
    };
    if services.is_empty() {
        return respond(StatusCode::OK, TITLE, Nav::Overview, no_data());
    }
    // The rate now (the window's last minute) says more than an average over the window,
    // which a burst or an idle stretch drags anywhere.
    let last_minute = Window {
        start_ns: window.end_ns.saturating_sub(RECENT_NS).max(window.start_ns),
        ..window
    };
    let recent_seconds = ((last_minute.end_ns - last_minute.start_ns) as f64 / 1e9).max(1.0);
    let service_rows: Option<Vec<(String, ServiceStats, u64)>> = match &state.aggregates {
        Some(aggregates) => match (
            aggregates.interfaces(&window).await,
            aggregates.interfaces(&last_minute).await,
        ) {
            (Ok(whole), Ok(recent)) => {
                let recent = service_stats(&recent);
                Some(
                    service_stats(&whole)
                        .into_iter()
                        .map(|(name, stats)| {
                            let recent_count = recent.get(&name).map_or(0, |r| r.count);
                            (name, stats, recent_count)
                        })
                        .collect(),
                )
            }
            (Err(err), _) | (_, Err(err)) => return store_failed(TITLE, Nav::Overview, &err),
        },
        None => None,
    };

    let recent = TraceQuery {
        start_ns: Some(window.start_ns),
        end_ns: Some(window.end_ns),
        limit: 200,
        ..TraceQuery::default()
    };
    let failed_query = TraceQuery {
        tags: vec![TagFilter {
            key: "error".to_owned(),
            value: "true".to_owned(),
        }],
        limit: 10,
        ..recent.clone()
    };
    let (recent, failed) = match (
        state.reader.find_traces(&recent).await,
        state.reader.find_traces(&failed_query).await,
    ) {
        (Ok(r), Ok(f)) => (r, f),
        (Err(err), _) | (_, Err(err)) => return store_failed(TITLE, Nav::Overview, &err),
    };
    let Some((slow, failed)) = blocking(move || {
        let mut slow: Vec<TraceSummary> = recent.iter().filter_map(summarize).collect();
        slow.sort_by_key(|t| std::cmp::Reverse(t.duration_us));
        slow.truncate(10);
        let failed: Vec<TraceSummary> = failed.iter().filter_map(summarize).collect();
        (slow, failed)
    })
    .await
    else {
        return error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            TITLE,
            Nav::Overview,
            "The analysis failed.".to_owned(),
        );
    };

    let lookback = params.value("lookback");
    let services_view = match service_rows {
        Some(rows) if !rows.is_empty() => {
            let body = rows
                .into_iter()
                .map(|(name, r, recent_count)| {
                    let search = format!(
                        "/search{}",
                        query_string([("service", name.as_str()), ("lookback", lookback.as_str())])
                    );
                    let errors_href = format!(
                        "/search{}",
                        query_string([
                            ("service", name.as_str()),
                            ("errors", "1"),
                            ("lookback", lookback.as_str())
                        ])
                    );
                    view! {
                        <tr class:failed={r.errors > 0}>
                            <th scope="row"><a href=search>{name}</a></th>
                            <td class="num">{format::rate(recent_count as f64 / recent_seconds)}</td>
                            <td class="num">{format::rate(r.peak_qps as f64)}</td>
                            <td class="num">{r.count}</td>
                            <td class="num"><a href=errors_href>{format::percent(r.error_rate())}</a></td>
                            <td class="num">{format::duration_ns(r.worst_p99_ns)}</td>
                        </tr>
                    }
                })
                .collect_view();
            view! {
                <table class="data">
                    <caption>"Services (entry spans: server, consumer and root spans)"</caption>
                    <thead><tr>
                        <th scope="col">"Service"</th>
                        <th scope="col" class="num">"Rate, last minute"</th>
                        <th scope="col" class="num" title="The busiest second of the service's busiest operation in the time range">"Peak rate"</th>
                        <th scope="col" class="num">"Requests in range"</th>
                        <th scope="col" class="num">"Error rate"</th>
                        <th scope="col" class="num">"p99 (slowest operation)"</th>
                    </tr></thead>
                    <tbody>{body}</tbody>
                </table>
            }
            .into_any()
        }
        Some(_) => notice(
            "info",
            "No requests in this time range".to_owned(),
            "Choose a longer time range.".to_owned(),
        )
        .into_any(),
        None => {
            let list = services
                .into_iter()
                .map(|s| {
                    let href = format!("/search{}", query_string([("service", s.as_str())]));
                    view! { <li><a href=href>{s}</a></li> }
                })
                .collect_view();
            view! {
                {notice("warn", "Rates need the analysis aggregates".to_owned(),
                    "This store does not provide them yet; the services are listed without rates.".to_owned())}
                <ul class="plain">{list}</ul>
            }
            .into_any()
        }
    };
    let slow_view = if slow.is_empty() {
        view! { <p class="muted">"No traces in this time range."</p> }.into_any()
    } else {
        trace_table(&slow, "Slowest recent traces (of the latest 200)").into_any()
    };
    let failed_view = if failed.is_empty() {
        view! { <p class="muted">"No failed traces in this time range."</p> }.into_any()
    } else {
        trace_table(&failed, "Latest failed traces").into_any()
    };
    let body = view! {
        <form class="filters" method="get" action="/" aria-label="Overview time range">
            {window_fields(&params, "1h")}
            <button type="submit">"Show"</button>
        </form>
        <section aria-labelledby="h-services">
            <h2 id="h-services">"Services"</h2>
            {services_view}
        </section>
        <section aria-labelledby="h-slow">
            <h2 id="h-slow">"Recent slow traces"</h2>
            {slow_view}
        </section>
        <section aria-labelledby="h-failed">
            <h2 id="h-failed">"Recent failed traces"</h2>
            {failed_view}
        </section>
        <section aria-labelledby="h-more">
            <h2 id="h-more">"Go further"</h2>
            <ul class="plain links">
                <li><a href="/services">"Dependency map"</a>" — who calls whom, with layering violations"</li>
                <li><a href="/middleware?kind=cache">"Middleware"</a>" — every cache shard, database, queue and host side by side"</li>
                <li><a href="/blame">"Blame"</a>" — rank the nodes behind an incident's extra latency"</li>
                <li><a href="/sla">"SLA"</a>", "<a href="/exceptions">"exceptions"</a>", "<a href="/mismatches">"outcome mismatches"</a></li>
            </ul>
        </section>
    };
    respond_api(
        StatusCode::OK,
        TITLE,
        Nav::Overview,
        api_link(Nav::Overview, Some(&window)),
        body,
    )
}
