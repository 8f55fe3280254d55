//! `/exceptions`: exception events per service and type, with example traces.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use leptos::prelude::*;

use super::store_failed;
use crate::layout::{Nav, error_page, no_aggregates, notice, respond, window_fields};
use crate::params::{Params, query_string};
use crate::{Html, UiState, format};

const TITLE: &str = "Exceptions";

pub async fn handler(State(state): State<UiState>, Query(params): Query<BTreeMap<String, String>>) -> Html {
    let params = Params(params);
    let Some(aggregates) = state.aggregates.clone() else {
        return no_aggregates(TITLE, Nav::Exceptions);
    };
    let window = match params.window("1h") {
        Ok(w) => w,
        Err(msg) => return error_page(StatusCode::BAD_REQUEST, TITLE, Nav::Exceptions, msg),
    };
    let groups = match aggregates.exceptions(&window, 3).await {
        Ok(g) => g,
        Err(err) => return store_failed(TITLE, Nav::Exceptions, &err),
    };
    let content = if groups.is_empty() {
        notice(
            "info",
            "No exceptions in this time range".to_owned(),
            "No span recorded an exception event. Exceptions come from span events named \"exception\" (OpenTelemetry's record_exception).".to_owned(),
        )
        .into_any()
    } else {
        let rows = groups
            .into_iter()
            .map(|g| {
                let search = format!(
                    "/search{}",
                    query_string([("service", g.service.as_str()), ("errors", "1")])
                );
                let examples = g
                    .example_trace_ids
                    .iter()
                    .map(|id| {
                        let hex = id.to_hex();
                        let href = format!("/trace/{hex}");
                        view! { <a class="mono" href=href>{hex.get(..8).unwrap_or_default().to_owned()}</a>" " }
                    })
                    .collect_view();
                view! {
                    <tr>
                        <td><a href=search>{g.service}</a></td>
                        <td>{g.exception_type}</td>
                        <td class="num">{g.count}</td>
                        <td>{format::time_ns(g.last_seen_ns)}</td>
                        <td>{examples}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table class="data">
                <caption>"Exception events by service and type, most frequent first"</caption>
                <thead><tr>
                    <th scope="col">"Service"</th><th scope="col">"Exception type"</th>
                    <th scope="col" class="num">"Count"</th><th scope="col">"Last seen (UTC)"</th>
                    <th scope="col">"Example traces"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    let body = view! {
        <form class="filters" method="get" action="/exceptions" aria-label="Time range">
            {window_fields(&params, "1h")}
            <button type="submit">"Show"</button>
        </form>
        {content}
    };
    respond(StatusCode::OK, TITLE, Nav::Exceptions, body)
}
