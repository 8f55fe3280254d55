//! `/`: services with request rate, error rate and p99; recent slow and failed traces.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use hopscope_storage::{TagFilter, TraceQuery};
use leptos::prelude::*;

use super::{TraceSummary, blocking, store_failed, summarize, trace_table};
use crate::layout::{Nav, error_page, no_data, notice, respond, window_fields};
use crate::params::{Params, query_string};
use crate::{Html, UiState, format};

const TITLE: &str = "Overview";

struct ServiceRow {
    name: String,
    count: u64,
    errors: u64,
    worst_p99_ns: u64,
}

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
    let seconds = ((window.end_ns - window.start_ns) as f64 / 1e9).max(1.0);
    let service_rows: Option<Vec<ServiceRow>> = match &state.aggregates {
        Some(aggregates) => match aggregates.interfaces(&window).await {
            Ok(interfaces) => {
                let mut rows: BTreeMap<String, ServiceRow> = BTreeMap::new();
                for i in interfaces {
                    let row = rows.entry(i.service.clone()).or_insert_with(|| ServiceRow {
                        name: i.service.clone(),
                        count: 0,
                        errors: 0,
                        worst_p99_ns: 0,
                    });
                    row.count += i.stats.count;
                    row.errors += i.stats.errors;
                    row.worst_p99_ns = row.worst_p99_ns.max(i.stats.p99_ns);
                }
                Some(rows.into_values().collect())
            }
            Err(err) => return store_failed(TITLE, Nav::Overview, &err),
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
                .map(|r| {
                    let search = format!(
                        "/search{}",
                        query_string([("service", r.name.as_str()), ("lookback", lookback.as_str())])
                    );
                    let errors_href = format!(
                        "/search{}",
                        query_string([
                            ("service", r.name.as_str()),
                            ("errors", "1"),
                            ("lookback", lookback.as_str())
                        ])
                    );
                    let error_rate = if r.count == 0 {
                        0.0
                    } else {
                        r.errors as f64 / r.count as f64
                    };
                    view! {
                        <tr class:failed={r.errors > 0}>
                            <th scope="row"><a href=search>{r.name}</a></th>
                            <td class="num">{format::rate(r.count as f64 / seconds)}</td>
                            <td class="num">{r.count}</td>
                            <td class="num"><a href=errors_href>{format::percent(error_rate)}</a></td>
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
                        <th scope="col" class="num">"Request rate (window average)"</th>
                        <th scope="col" class="num">"Requests"</th>
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
    respond(StatusCode::OK, TITLE, Nav::Overview, body)
}
