//! `/mismatches`: calls the caller saw fail (or time out) while the callee succeeded.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use hopscope_storage::aggregates::MismatchReason;
use leptos::prelude::*;

use super::store_failed;
use crate::layout::{Nav, error_page, no_aggregates, notice, respond, window_fields};
use crate::params::Params;
use crate::{Html, UiState, format};

const TITLE: &str = "Outcome mismatches";

pub async fn handler(State(state): State<UiState>, Query(params): Query<BTreeMap<String, String>>) -> Html {
    let params = Params(params);
    let Some(aggregates) = state.aggregates.clone() else {
        return no_aggregates(TITLE, Nav::Mismatches);
    };
    let window = match params.window("1h") {
        Ok(w) => w,
        Err(msg) => return error_page(StatusCode::BAD_REQUEST, TITLE, Nav::Mismatches, msg),
    };
    let found = match aggregates.mismatches(&window, 200).await {
        Ok(m) => m,
        Err(err) => return store_failed(TITLE, Nav::Mismatches, &err),
    };
    let content = if found.is_empty() {
        notice(
            "info",
            "No mismatches in this time range".to_owned(),
            "Every call that failed on the caller's side also failed on the callee's side (or was not traced there)."
                .to_owned(),
        )
        .into_any()
    } else {
        let rows = found
            .iter()
            .map(|m| {
                let href = format!(
                    "/trace/{}#span-{}",
                    m.client.trace_id.to_hex(),
                    m.client.span_id.to_hex()
                );
                let reason = match m.reason {
                    MismatchReason::ClientTimeout => "caller timed out",
                    MismatchReason::ClientError => "caller failed",
                };
                let caller = format!("{}: {}", m.client.service_name, m.client.name);
                let callee = format!("{}: {}", m.server.service_name, m.server.name);
                let client_says = format!("{} {}", m.client.status_code.as_str(), m.client.status_message);
                let server_status = match m.server.status_code.as_str() {
                    "" | "STATUS_CODE_UNSET" | "UNSET" => "no error",
                    other => other,
                };
                let server_says = format!("{server_status} in {}", format::duration_ns(m.server.duration_nanos()));
                view! {
                    <tr>
                        <td><a href=href>{format::time_ns(m.client.start_time_unix_nano)}</a></td>
                        <td class="bad">{reason}</td>
                        <td>{caller}</td>
                        <td>{client_says}" after "{format::duration_ns(m.client.duration_nanos())}</td>
                        <td>{callee}</td>
                        <td>{server_says}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table class="data">
                <caption>"Newest first: the caller gave up or failed, the callee answered without error"</caption>
                <thead><tr>
                    <th scope="col">"When (UTC)"</th><th scope="col">"Reason"</th><th scope="col">"Caller"</th>
                    <th scope="col">"Caller saw"</th><th scope="col">"Callee"</th><th scope="col">"Callee status"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    let body = view! {
        <form class="filters" method="get" action="/mismatches" aria-label="Time range">
            {window_fields(&params, "1h")}
            <button type="submit">"Show"</button>
        </form>
        {content}
    };
    respond(StatusCode::OK, TITLE, Nav::Mismatches, body)
}
