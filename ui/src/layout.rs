//! The page frame (head, navigation, footer) and small shared pieces.

use axum::http::StatusCode;
use leptos::prelude::*;

use hopscope_storage::aggregates::Window;

use crate::Html;
use crate::params::query_string;

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

/// The JSON endpoint behind a page, for its footer link: the page's own `/api/v1/...`
/// endpoint over `window` (the last hour when `None`), or for pages without one the API
/// index. Pages that know more (a service, a kind) pass a fuller link to [`respond_api`].
pub fn api_link(active: Nav, window: Option<&Window>) -> String {
    let path = match active {
        Nav::Overview | Nav::Sla => "/api/v1/sla",
        Nav::Services => "/api/v1/dependencies",
        Nav::Middleware => "/api/v1/middleware",
        Nav::Exceptions => "/api/v1/exceptions",
        Nav::Mismatches => "/api/v1/mismatches",
        Nav::Blame => "/api/v1/blame",
        Nav::Search => "/api/services",
        Nav::Trace => return "/api".to_owned(),
    };
    if active == Nav::Search {
        return path.to_owned();
    }
    format!("{path}{}", window_query(window, &[]))
}

/// `?start=..&end=..` in unix µs (the API's unit) for `window` (the last hour when
/// `None`), its cloud filter, then `extra`.
pub fn window_query(window: Option<&Window>, extra: &[(&str, &str)]) -> String {
    let (start_ns, end_ns, cloud) = match window {
        Some(w) => (w.start_ns, w.end_ns, w.cloud_kind),
        None => {
            let now = hopscope_query_api::params::now_ns();
            (now.saturating_sub(3_600_000_000_000), now, None)
        }
    };
    let (start, end) = ((start_ns / 1_000).to_string(), (end_ns / 1_000).to_string());
    let mut pairs: Vec<(&str, &str)> = extra.to_vec();
    pairs.push(("start", &start));
    pairs.push(("end", &end));
    if let Some(kind) = cloud {
        pairs.push(("cloud_kind", kind.as_str()));
    }
    query_string(pairs)
}

/// A whole HTML document: `title` in the tab and as the page heading, `body` below it.
pub fn page(title: &str, active: Nav, body: impl IntoView + 'static) -> String {
    page_api(title, active, api_link(active, None), body)
}

/// Like [`page`], with `api` as the footer's JSON link.
pub fn page_api(title: &str, active: Nav, api: String, body: impl IntoView + 'static) -> String {
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
                    "Times are UTC. Every view is in its URL: copy it into the incident ticket. This page as JSON: "
                    <a id="api-link" href=api.clone()>{api.clone()}</a>
                    " · all endpoints: "<a href="/api">"/api"</a>
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

/// A page with a status code and `api` as its footer's JSON link.
pub fn respond_api(status: StatusCode, title: &str, active: Nav, api: String, body: impl IntoView + 'static) -> Html {
    Html(status, page_api(title, active, api, body))
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
