//! `/blame`: incident review. For an entry operation and a window (and optionally a
//! baseline window), the nodes ranked by their extra self time per trace, with example
//! traces — the same computation as `/api/v1/blame`.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use hopscope_analysis::TraceAnalysis;
use hopscope_analysis::blame::blame_report;
use hopscope_analysis::blame::{BlameNode, BlameReport, NodeType, analyze_entries, entry_traces};
use hopscope_schemas::SpanKind;
use hopscope_storage::aggregates::Window;
use hopscope_storage::{AggregateReader, OperationQuery, SpanReader, StorageError};
use leptos::prelude::*;

use super::{blocking, store_failed};
use crate::layout::{Nav, api_link, error_page, no_aggregates, notice, respond_api, window_fields, window_query};
use crate::params::Params;
use crate::{Html, UiState, format};

const TITLE: &str = "Blame";
const DEFAULT_TRACES: usize = 300;
/// The window when none is chosen: the last hour, like every other page.
const DEFAULT_LOOKBACK: &str = "1h";

async fn analyses(
    aggregates: &dyn AggregateReader,
    reader: &dyn SpanReader,
    service: &str,
    operation: &str,
    window: Window,
    limit: usize,
) -> Result<Vec<TraceAnalysis>, StorageError> {
    let traces = entry_traces(aggregates, reader, service, operation, window, limit).await?;
    Ok(blocking(move || analyze_entries(&traces)).await.unwrap_or_default())
}

fn node_name(n: &BlameNode) -> (String, &'static str) {
    let k = &n.node;
    match k.node_type {
        NodeType::Peer => (
            format!(
                "{} ({})",
                k.peer.clone().unwrap_or_default(),
                k.hop_kind.map(|h| h.as_str()).unwrap_or("peer")
            ),
            "instance",
        ),
        NodeType::Operation => (
            format!(
                "{}: {}",
                k.service.clone().unwrap_or_default(),
                k.operation.clone().unwrap_or_default()
            ),
            "operation",
        ),
        NodeType::Host => (k.host.clone().unwrap_or_default(), "host"),
    }
}

fn report_view(report: BlameReport) -> impl IntoView {
    let summary = if report.mode == "baseline" {
        format!(
            "{} traces in the window against {} in the baseline; {} of extra time per trace in total.",
            report.traces,
            report.baseline_traces,
            format::duration_us(report.total_excess_us as u64)
        )
    } else {
        format!(
            "The slow tail — {} of {} traces at or above the p99 — against the other {}; {} of extra time per tail trace in total.",
            report.tail_traces,
            report.traces,
            report.baseline_traces,
            format::duration_us(report.total_excess_us as u64)
        )
    };
    if report.nodes.is_empty() {
        return view! {
            <p>{summary}</p>
            {notice("info", "Nothing to blame".to_owned(), "No node has more self time than in the baseline, and none failed.".to_owned())}
        }
        .into_any();
    }
    let baseline = report.mode == "baseline";
    let rows = report
        .nodes
        .into_iter()
        .take(50)
        .enumerate()
        .map(|(i, n)| {
            let (name, kind) = node_name(&n);
            let width = format!("width:{:.1}%", n.share * 100.0);
            let examples = n
                .example_trace_ids
                .iter()
                .map(|id| {
                    let hex = id.to_hex();
                    let href = format!("/trace/{hex}");
                    view! { <a class="mono" href=href>{hex.get(..8).unwrap_or_default().to_owned()}</a>" " }
                })
                .collect_view();
            let before = n
                .baseline_self_time_us
                .map(|b| format::duration_us(b as u64))
                .unwrap_or_else(|| "—".to_owned());
            let errors = if baseline {
                format!("{} (before {})", n.error_root_causes, n.baseline_error_root_causes)
            } else {
                n.error_root_causes.to_string()
            };
            view! {
                <tr>
                    <td class="num">{i + 1}</td>
                    <th scope="row">{name}</th>
                    <td>{kind}</td>
                    <td class="num">{format::duration_us(n.excess_us as u64)}</td>
                    <td class="bar-cell"><span class="fill" style=width></span>{format::percent(n.share)}</td>
                    <td class="num">{format::duration_us(n.self_time_us as u64)}</td>
                    <td class="num">{before}</td>
                    <td class="num">{errors}</td>
                    <td>{examples}</td>
                    <td class="reason">{n.reason.clone()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <p>{summary}</p>
        <table class="data" id="blame-table">
            <caption>"Nodes ranked by extra self time per trace; each unit of time is charged to one node (the instance over its callers, one host of several over the operation), so shares add up"</caption>
            <thead><tr>
                <th scope="col" class="num">"#"</th><th scope="col">"Node"</th><th scope="col">"Kind"</th>
                <th scope="col" class="num">"Excess / trace"</th><th scope="col">"Share"</th>
                <th scope="col" class="num">"Self time / trace"</th><th scope="col" class="num">"Baseline"</th>
                <th scope="col" class="num">"Root-cause errors"</th><th scope="col">"Example traces"</th><th scope="col">"Why this node"</th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

pub async fn handler(State(state): State<UiState>, Query(params): Query<BTreeMap<String, String>>) -> Html {
    let params = Params(params);
    let Some(aggregates) = state.aggregates.clone() else {
        return no_aggregates(TITLE, Nav::Blame);
    };
    let services = match state.reader.services().await {
        Ok(s) => s,
        Err(err) => return store_failed(TITLE, Nav::Blame, &err),
    };
    let service = params.value("service");
    let operation = params.value("operation");
    let operations: Vec<String> = if service.is_empty() {
        Vec::new()
    } else {
        match state
            .reader
            .operations(&OperationQuery {
                service: service.clone(),
                span_kind: None,
            })
            .await
        {
            Ok(ops) => {
                let mut names: Vec<String> = ops
                    .into_iter()
                    .filter(|o| matches!(o.span_kind, SpanKind::Server | SpanKind::Consumer))
                    .map(|o| o.name)
                    .collect();
                names.dedup();
                names
            }
            Err(err) => return store_failed(TITLE, Nav::Blame, &err),
        }
    };

    let mut api = api_link(Nav::Blame, None);
    let content = if service.is_empty() || operation.is_empty() {
        notice(
            "info",
            "Choose the entry operation of the incident".to_owned(),
            "Pick a service, press Analyse to list its entry operations, choose one, set the incident window and, for a comparison, a baseline window from before the incident. Without a baseline the slowest 1% of the window is ranked.".to_owned(),
        )
        .into_any()
    } else {
        let window = match params.window(DEFAULT_LOOKBACK) {
            Ok(w) => w,
            Err(msg) => return error_page(StatusCode::BAD_REQUEST, TITLE, Nav::Blame, msg),
        };
        let baseline = if params.flag("previous") {
            let len = window.end_ns - window.start_ns;
            Some(Window {
                start_ns: window.start_ns.saturating_sub(len + 1),
                end_ns: window.start_ns.saturating_sub(1),
                cloud_kind: window.cloud_kind,
            })
        } else if params.get("baseline_start").is_some() || params.get("baseline_end").is_some() {
            match params.window_named("baseline_start", "baseline_end", DEFAULT_LOOKBACK) {
                Ok(w) => Some(w),
                Err(msg) => return error_page(StatusCode::BAD_REQUEST, TITLE, Nav::Blame, msg),
            }
        } else {
            None
        };
        let (baseline_start, baseline_end) = baseline.map_or((String::new(), String::new()), |b| {
            ((b.start_ns / 1_000).to_string(), (b.end_ns / 1_000).to_string())
        });
        let mut extra = vec![("service", service.as_str()), ("operation", operation.as_str())];
        if baseline.is_some() {
            extra.push(("baseline_start", baseline_start.as_str()));
            extra.push(("baseline_end", baseline_end.as_str()));
        }
        api = format!("/api/v1/blame{}", window_query(Some(&window), &extra));
        let now = match analyses(
            &*aggregates,
            &*state.reader,
            &service,
            &operation,
            window,
            DEFAULT_TRACES,
        )
        .await
        {
            Ok(a) => a,
            Err(err) => return store_failed(TITLE, Nav::Blame, &err),
        };
        let before = match baseline {
            Some(b) => match analyses(&*aggregates, &*state.reader, &service, &operation, b, DEFAULT_TRACES).await {
                Ok(a) => Some(a),
                Err(err) => return store_failed(TITLE, Nav::Blame, &err),
            },
            None => None,
        };
        if now.is_empty() {
            notice(
                "info",
                "No traces of this operation in the window".to_owned(),
                format!(
                    "{service}: {operation} has no entry spans between {} and {} UTC.",
                    format::time_ns(window.start_ns),
                    format::time_ns(window.end_ns)
                ),
            )
            .into_any()
        } else {
            let report = blocking(move || blame_report(&now, before.as_deref())).await;
            match report {
                Some((r, None)) => report_view(r).into_any(),
                Some((r, Some(why))) => view! {
                    <div id="blame-notice">
                        {notice("warn", "No baseline traces: showing the slow tail instead".to_owned(), why.to_owned())}
                    </div>
                    {report_view(r)}
                }
                .into_any(),
                None => notice(
                    "error",
                    "The analysis failed".to_owned(),
                    "See the hopscope log.".to_owned(),
                )
                .into_any(),
            }
        }
    };

    let service_options = services
        .into_iter()
        .map(|s| {
            let selected = s == service;
            let value = s.clone();
            view! { <option value=value selected=selected>{s}</option> }
        })
        .collect_view();
    let mut op_names = operations;
    if !operation.is_empty() && !op_names.contains(&operation) {
        op_names.push(operation.clone());
    }
    let op_options = op_names
        .into_iter()
        .map(|o| {
            let selected = o == operation;
            let value = o.clone();
            view! { <option value=value selected=selected>{o}</option> }
        })
        .collect_view();
    let body = view! {
        <form class="filters" method="get" action="/blame" aria-label="Blame window and baseline">
            <label>"Service"<select name="service"><option value="">"choose…"</option>{service_options}</select></label>
            <label>"Entry operation"<select name="operation"><option value="">"choose…"</option>{op_options}</select></label>
            {window_fields(&params, DEFAULT_LOOKBACK)}
            <label>"Baseline from (UTC)"<input type="datetime-local" step="1" name="baseline_start" value=params.value("baseline_start")/></label>
            <label>"Baseline to (UTC)"<input type="datetime-local" step="1" name="baseline_end" value=params.value("baseline_end")/></label>
            <label class="check"><input type="checkbox" name="previous" value="1" checked=params.flag("previous")/>"Baseline: the period just before"</label>
            <button type="submit">"Analyse"</button>
        </form>
        {content}
    };
    respond_api(StatusCode::OK, TITLE, Nav::Blame, api, body)
}
