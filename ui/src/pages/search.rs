//! `/search`: find traces by service, operation, tags, duration, time range, cloud kind
//! and failure; a result table and a duration-over-time scatter plot.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use hopscope_query_api::params::duration::parse_go_duration;
use hopscope_query_api::params::tags::{merge, parse_tags};
use hopscope_storage::{OperationQuery, TagFilter, TraceQuery};
use leptos::prelude::*;

use super::{TraceSummary, blocking, store_failed, summarize, trace_table};
use crate::layout::{Nav, api_link, no_data, notice, respond, respond_api, window_fields};
use crate::params::{Params, query_string};
use crate::svg::{Dot, scatter};
use crate::{Html, UiState};

const TITLE: &str = "Search traces";
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 500;

/// The validated search, or the first problem with the form in words.
fn build_query(params: &Params) -> Result<(TraceQuery, Option<hopscope_schemas::CloudKind>), String> {
    let window = params.window("1h")?;
    let mut tags = match params.get("tags") {
        Some(text) => parse_tags(text).map_err(|err| {
            format!("The tags \"{text}\" cannot be read: {err}. Write key=value pairs separated by spaces.")
        })?,
        None => Vec::new(),
    };
    if params.flag("errors") {
        tags.push(TagFilter {
            key: "error".to_owned(),
            value: "true".to_owned(),
        });
    }
    let duration = |name: &str, label: &str| -> Result<Option<u64>, String> {
        params
            .get(name)
            .map(|text| {
                parse_go_duration(text)
                    .map_err(|err| format!("The {label} \"{text}\" is not a duration like 250ms or 1.5s ({err})."))
            })
            .transpose()
    };
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("The limit \"{text}\" is not a positive number."))?
            .min(MAX_LIMIT),
    };
    Ok((
        TraceQuery {
            service: params.get("service").map(str::to_owned),
            operation: params.get("operation").map(str::to_owned),
            span_kind: None,
            tags: merge(tags),
            min_duration_ns: duration("min_duration", "minimum duration")?,
            max_duration_ns: duration("max_duration", "maximum duration")?,
            start_ns: Some(window.start_ns),
            end_ns: Some(window.end_ns),
            limit,
        },
        window.cloud_kind,
    ))
}

pub async fn handler(State(state): State<UiState>, Query(params): Query<BTreeMap<String, String>>) -> Html {
    let params = Params(params);
    let services = match state.reader.services().await {
        Ok(s) => s,
        Err(err) => return store_failed(TITLE, Nav::Search, &err),
    };
    if services.is_empty() {
        return respond(StatusCode::OK, TITLE, Nav::Search, no_data());
    }
    let operations = match params.get("service") {
        Some(service) => match state
            .reader
            .operations(&OperationQuery {
                service: service.to_owned(),
                span_kind: None,
            })
            .await
        {
            Ok(ops) => {
                let mut names: Vec<String> = ops.into_iter().map(|o| o.name).collect();
                names.dedup();
                names
            }
            Err(err) => return store_failed(TITLE, Nav::Search, &err),
        },
        None => Vec::new(),
    };

    let results = match build_query(&params) {
        Err(msg) => notice("error", "Check the search form".to_owned(), msg).into_any(),
        Ok((mut query, cloud)) => {
            let limit = query.limit;
            if cloud.is_some() {
                // The cloud filter is applied to whole traces after the search.
                query.limit = (limit * 4).min(MAX_LIMIT * 4);
            }
            let traces = match state.reader.find_traces(&query).await {
                Ok(t) => t,
                Err(err) => return store_failed(TITLE, Nav::Search, &err),
            };
            let summaries: Option<Vec<TraceSummary>> = blocking(move || {
                traces
                    .iter()
                    .filter(|t| cloud.is_none_or(|kind| t.spans.iter().any(|s| s.cloud().kind == kind)))
                    .take(limit)
                    .filter_map(summarize)
                    .collect()
            })
            .await;
            match summaries {
                None => notice(
                    "error",
                    "The search failed".to_owned(),
                    "The analysis of the results failed; see the log.".to_owned(),
                )
                .into_any(),
                Some(rows) if rows.is_empty() => notice(
                    "info",
                    "No traces match".to_owned(),
                    "Nothing matches every filter in this time range. Widen the time range, or remove a filter."
                        .to_owned(),
                )
                .into_any(),
                Some(rows) => {
                    let dots: Vec<Dot> = rows
                        .iter()
                        .map(|t| Dot {
                            start_ns: t.start_ns,
                            duration_us: t.duration_us,
                            error: t.errors > 0,
                            href: format!("/trace/{}", t.trace_id),
                            label: format!("{}: {}", t.root_service, t.root_operation),
                        })
                        .collect();
                    let count = format!("{} traces, most recent first.", rows.len());
                    view! {
                        <section aria-labelledby="h-results">
                            <h2 id="h-results">"Results"</h2>
                            <p class="muted" id="result-count">{count}</p>
                            <figure class="chart">
                                <figcaption>"Duration over time (click a dot to open its trace)"</figcaption>
                                {scatter(&dots)}
                            </figure>
                            {trace_table(&rows, "Matching traces")}
                        </section>
                    }
                    .into_any()
                }
            }
        }
    };

    let selected_service = params.value("service");
    let service_options = services
        .into_iter()
        .map(|s| {
            let selected = s == selected_service;
            let value = s.clone();
            view! { <option value=value selected=selected>{s}</option> }
        })
        .collect_view();
    let selected_op = params.value("operation");
    let op_options = operations
        .into_iter()
        .map(|o| {
            let selected = o == selected_op;
            let value = o.clone();
            view! { <option value=value selected=selected>{o}</option> }
        })
        .collect_view();
    let body = view! {
        <form class="filters" method="get" action="/search" aria-label="Trace search">
            <label>"Service"
                <select name="service" id="f-service">
                    <option value="">"any"</option>
                    {service_options}
                </select>
            </label>
            <label>"Operation"
                <select name="operation" id="f-operation">
                    <option value="">"any"</option>
                    {op_options}
                </select>
            </label>
            <label>"Tags"<input type="text" name="tags" id="f-tags" placeholder="http.response.status_code=500 db.system=redis" value=params.value("tags")/></label>
            <label>"Min duration"<input type="text" name="min_duration" id="f-min" size="8" placeholder="100ms" value=params.value("min_duration")/></label>
            <label>"Max duration"<input type="text" name="max_duration" id="f-max" size="8" placeholder="2s" value=params.value("max_duration")/></label>
            {window_fields(&params, "1h")}
            <label class="check"><input type="checkbox" name="errors" id="f-errors" value="1" checked=params.flag("errors")/>"Errors only"</label>
            <label>"Limit"<input type="number" name="limit" min="1" max="500" size="4" value=params.get("limit").unwrap_or("20").to_owned()/></label>
            <button type="submit" id="f-submit">"Find traces"</button>
        </form>
        <p class="hint">"Filters hold for one and the same span; the cloud kind keeps traces with at least one span there. Choose a service and press Find to list its operations."</p>
        {results}
    };
    let api = match params.get("service") {
        Some(service) => format!(
            "/api/traces{}",
            query_string([
                ("service", service),
                ("lookback", params.get("lookback").unwrap_or("1h")),
                ("limit", "20")
            ])
        ),
        None => api_link(Nav::Search, None),
    };
    respond_api(StatusCode::OK, TITLE, Nav::Search, api, body)
}
