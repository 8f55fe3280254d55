//! `/sla`: SLA health per service and level and per interface, misses first.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use leptos::prelude::*;

use super::store_failed;
use crate::layout::{Nav, error_page, no_aggregates, notice, respond, window_fields};
use crate::params::{Params, query_string};
use crate::{Html, UiState, format};

const TITLE: &str = "SLA health";

struct Row {
    service: String,
    operation: String,
    level: Option<String>,
    reasons: Vec<String>,
    stats: hopscope_storage::aggregates::LatencyStats,
}

impl Row {
    fn status(&self) -> &'static str {
        match (&self.level, self.reasons.is_empty()) {
            (None, _) => "unassigned",
            (Some(_), true) => "met",
            (Some(_), false) => "missed",
        }
    }
}

pub async fn handler(State(state): State<UiState>, Query(params): Query<BTreeMap<String, String>>) -> Html {
    let params = Params(params);
    let Some(aggregates) = state.aggregates.clone() else {
        return no_aggregates(TITLE, Nav::Sla);
    };
    let window = match params.window("1h") {
        Ok(w) => w,
        Err(msg) => return error_page(StatusCode::BAD_REQUEST, TITLE, Nav::Sla, msg),
    };
    let stats = match aggregates.interfaces(&window).await {
        Ok(s) => s,
        Err(err) => return store_failed(TITLE, Nav::Sla, &err),
    };
    let sla = &state.analysis.sla;
    let mut rows: Vec<Row> = stats
        .into_iter()
        .map(|i| {
            let (level, reasons) = sla.evaluate(&i);
            Row {
                service: i.service,
                operation: i.operation,
                level,
                reasons,
                stats: i.stats,
            }
        })
        .collect();
    let rank = |r: &Row| match r.status() {
        "missed" => 0,
        "met" => 1,
        _ => 2,
    };
    rows.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then(a.service.cmp(&b.service))
            .then(a.operation.cmp(&b.operation))
    });
    let mut per_service: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for r in &rows {
        let e = per_service
            .entry((r.service.clone(), r.level.clone().unwrap_or_else(|| "none".to_owned())))
            .or_default();
        e.0 += 1;
        e.1 += u64::from(r.status() == "missed");
    }
    let mut services: Vec<_> = per_service.into_iter().collect();
    services.sort_by(|a, b| b.1.1.cmp(&a.1.1).then(a.0.cmp(&b.0)));

    let config_note = sla.levels.is_empty().then(|| {
        notice(
            "info",
            "No SLA levels are configured".to_owned(),
            "Every interface is unassigned. Add levels (p95_ms, p99_ms, p999_ms, max_ms, max_error_rate) and rules to the [sla] section of the configuration to grade them.".to_owned(),
        )
    });
    let content = if rows.is_empty() {
        notice(
            "info",
            "No requests in this time range".to_owned(),
            "Choose a longer time range.".to_owned(),
        )
        .into_any()
    } else {
        let service_rows = services
            .into_iter()
            .map(|((service, level), (interfaces, missed))| {
                let status = if missed > 0 { "status-missed" } else { "status-met" };
                let text = if missed > 0 {
                    format!("{missed} of {interfaces} missed")
                } else {
                    format!("all {interfaces} met")
                };
                let text = if level == "none" {
                    format!("{interfaces} unassigned")
                } else {
                    text
                };
                view! {
                    <tr class:missed={missed > 0}>
                        <th scope="row">{service}</th><td>{level}</td><td class=status>{text}</td>
                    </tr>
                }
            })
            .collect_view();
        let interface_rows = rows
            .into_iter()
            .map(|r| {
                let status = r.status();
                let class = format!("status-{status}");
                let href = format!(
                    "/search{}",
                    query_string([("service", r.service.as_str()), ("operation", r.operation.as_str())])
                );
                let s = r.stats;
                let error_rate = if s.count == 0 {
                    0.0
                } else {
                    s.errors as f64 / s.count as f64
                };
                view! {
                    <tr class:missed={status == "missed"}>
                        <td><a href=href>{format!("{}: {}", r.service, r.operation)}</a></td>
                        <td>{r.level.unwrap_or_default()}</td>
                        <td class=class>{status}</td>
                        <td class="num">{s.count}</td>
                        <td class="num">{s.max_qps}</td>
                        <td class="num">{format::duration_ns(s.p95_ns)}</td>
                        <td class="num">{format::duration_ns(s.p99_ns)}</td>
                        <td class="num">{format::duration_ns(s.p999_ns)}</td>
                        <td class="num">{format::duration_ns(s.max_ns)}</td>
                        <td class="num">{format::percent(error_rate)}</td>
                        <td>{r.reasons.join("; ")}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <h2>"By service and level"</h2>
            <table class="data">
                <caption>"Services with misses first"</caption>
                <thead><tr><th scope="col">"Service"</th><th scope="col">"Level"</th><th scope="col">"Interfaces"</th></tr></thead>
                <tbody>{service_rows}</tbody>
            </table>
            <h2>"Interfaces"</h2>
            <table class="data">
                <caption>"Misses first, then met, then unassigned"</caption>
                <thead><tr>
                    <th scope="col">"Interface"</th><th scope="col">"Level"</th><th scope="col">"Status"</th>
                    <th scope="col" class="num">"Requests"</th><th scope="col" class="num">"Peak/s"</th>
                    <th scope="col" class="num">"p95"</th><th scope="col" class="num">"p99"</th>
                    <th scope="col" class="num">"p99.9"</th><th scope="col" class="num">"Max"</th>
                    <th scope="col" class="num">"Errors"</th><th scope="col">"Why missed"</th>
                </tr></thead>
                <tbody>{interface_rows}</tbody>
            </table>
        }
        .into_any()
    };
    let body = view! {
        <form class="filters" method="get" action="/sla" aria-label="Time range">
            {window_fields(&params, "1h")}
            <button type="submit">"Show"</button>
        </form>
        {config_note}
        {content}
    };
    respond(StatusCode::OK, TITLE, Nav::Sla, body)
}
