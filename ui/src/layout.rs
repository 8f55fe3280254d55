//! The page frame (head, navigation, footer) and small shared pieces.

use axum::http::StatusCode;
use leptos::prelude::*;

use crate::Html;

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Search,
    Trace,
    Services,
    Middleware,
    Sla,
    Blame,
    Exceptions,
    Mismatches,
}

const ENTRIES: &[(Nav, &str, &str)] = &[
    (Nav::Overview, "/", "Overview"),
    (Nav::Search, "/search", "Search"),
    (Nav::Services, "/services", "Services"),
    (Nav::Middleware, "/middleware", "Middleware"),
    (Nav::Sla, "/sla", "SLA"),
    (Nav::Blame, "/blame", "Blame"),
    (Nav::Exceptions, "/exceptions", "Exceptions"),
    (Nav::Mismatches, "/mismatches", "Mismatches"),
];

/// A whole HTML document: `title` in the tab and as the page heading, `body` below it.
pub fn page(title: &str, active: Nav, body: impl IntoView + 'static) -> String {
    let tab = format!("{title} · hopscope");
    let heading = title.to_owned();
    let nav = ENTRIES
        .iter()
        .map(|&(entry, href, label)| {
            let current = (entry == active).then_some("page");
            view! { <li><a href=href aria-current=current>{label}</a></li> }
        })
        .collect_view();
    let html = view! {
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <title>{tab}</title>
                <link rel="stylesheet" href="/static/app.css"/>
                <script src="/static/app.js" defer=true></script>
            </head>
            <body>
                <a class="skip" href="#main">"Skip to content"</a>
                <header class="top">
                    <a class="brand" href="/">"hopscope"</a>
                    <nav aria-label="Main"><ul>{nav}</ul></nav>
                </header>
                <main id="main">
                    <h1>{heading}</h1>
                    {body}
                </main>
                <footer>
                    "Times are UTC. Every view is in its URL: copy it into the incident ticket. JSON: "
                    <a href="/api/services">"/api"</a>
                </footer>
            </body>
        </html>
    }
    .to_html();
    format!("<!DOCTYPE html>{html}")
}

/// A page with a status code.
pub fn respond(status: StatusCode, title: &str, active: Nav, body: impl IntoView + 'static) -> Html {
    Html(status, page(title, active, body))
}

/// A boxed message: `kind` is `info`, `warn` or `error`.
pub fn notice(kind: &'static str, title: String, text: String) -> impl IntoView {
    let role = if kind == "error" { "alert" } else { "status" };
    view! {
        <div class=format!("notice {kind}") role=role>
            <p class="notice-title">{title}</p>
            <p>{text}</p>
        </div>
    }
}

/// A page explaining an error in words.
pub fn error_page(status: StatusCode, title: &str, active: Nav, message: String) -> Html {
    respond(status, title, active, notice("error", title.to_owned(), message))
}

/// What the analysis pages show when the store has no aggregates.
pub fn no_aggregates(title: &str, active: Nav) -> Html {
    respond(
        StatusCode::OK,
        title,
        active,
        notice(
            "warn",
            "Not available on this store".to_owned(),
            "The configured store does not provide the analysis aggregates, so this report \
             cannot be computed. Search and the trace view work on every store."
                .to_owned(),
        ),
    )
}

/// The "no data yet" explanation.
pub fn no_data() -> impl IntoView {
    view! {
        <div class="notice info" role="status">
            <p class="notice-title">"No traces yet"</p>
            <p>
                "hopscope has not received any spans. Point an OpenTelemetry SDK at the collector — "
                <code>"OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317"</code>
                " (gRPC) or "<code>"http://localhost:4318"</code>" (HTTP) — or run "
                <code>"hopscope demo"</code>" to see a banking workload with faults."
            </p>
        </div>
    }
}

/// A time-window form section: lookback select plus optional start/end.
pub fn window_fields(params: &crate::params::Params, default_lookback: &'static str) -> impl IntoView + use<> {
    let lookback = params.get("lookback").unwrap_or(default_lookback).to_owned();
    let options = crate::params::LOOKBACKS
        .iter()
        .map(|&(value, label)| view! { <option value=value selected=lookback == value>{label}</option> })
        .collect_view();
    let cloud = params.value("cloud_kind");
    let clouds = crate::params::CLOUD_KINDS
        .iter()
        .map(|&(value, label)| view! { <option value=value selected=cloud == value>{label}</option> })
        .collect_view();
    view! {
        <label>"Time range"<select name="lookback">{options}</select></label>
        <label>"or from (UTC)"<input type="datetime-local" step="1" name="start" value=params.value("start")/></label>
        <label>"to (UTC)"<input type="datetime-local" step="1" name="end" value=params.value("end")/></label>
        <label>"Cloud kind"<select name="cloud_kind">{clouds}</select></label>
    }
}
