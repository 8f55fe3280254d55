//! hopscope web UI: server-side rendered Leptos pages served under `/` by the query process.
//!
//! Every page is a plain HTML document rendered on the server with Leptos (`ssr` only, no
//! hydration, no wasm); charts are SVG drawn on the server; one small static script
//! (`/static/app.js`) collapses waterfall subtrees. Every view's state lives in its URL, so
//! any page can be pasted into an incident ticket.
//!
//! The pages read through the query API's data layer: [`SpanReader`] for traces,
//! [`AggregateReader`] for window aggregates and the analysis functions of
//! [`hopscope_analysis`] — the same calls the `/api/v1` handlers make. There is
//! no SQL here and no HTTP round trip to the API.
//!
//! Routes: `/`, `/search`, `/trace/{traceID}`, `/services`, `/middleware`, `/sla`,
//! `/blame`, `/exceptions`, `/mismatches`, `/static/*`.
//!
//! Escaping: all text and attribute values go through Leptos, which escapes them; nothing
//! built from stored data is ever injected as raw HTML (SVG labels included).

mod format;
mod layout;
mod pages;
mod params;
mod svg;
mod waterfall;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hopscope_query_api::AnalysisConfig;
use hopscope_storage::{AggregateReader, SpanReader};

/// What every page reads from.
#[derive(Clone)]
pub struct UiState {
    /// Traces.
    pub reader: Arc<dyn SpanReader>,
    /// Window aggregates; `None` when the store has none (the analysis pages say so).
    pub aggregates: Option<Arc<dyn AggregateReader>>,
    /// SLA levels and layer rules, as the query API has them.
    pub analysis: Arc<AnalysisConfig>,
}

impl UiState {
    /// A state over `reader`, with `aggregates` when the store has them.
    pub fn new(
        reader: Arc<dyn SpanReader>,
        aggregates: Option<Arc<dyn AggregateReader>>,
        analysis: AnalysisConfig,
    ) -> Self {
        Self {
            reader,
            aggregates,
            analysis: Arc::new(analysis),
        }
    }
}

/// The UI routes: `/`, the page paths and `/static/*`. Merge it with the query API router
/// (which owns `/api/*`, `/metrics`, `/health` and `/ready`).
pub fn router(state: UiState) -> Router {
    Router::new()
        .route("/", get(pages::overview::handler))
        .route("/search", get(pages::search::handler))
        .route("/trace/{trace_id}", get(pages::trace::handler))
        .route("/services", get(pages::services::handler))
        .route("/middleware", get(pages::middleware::handler))
        .route("/sla", get(pages::sla::handler))
        .route("/blame", get(pages::blame::handler))
        .route("/compare", get(pages::compare::handler))
        .route("/exceptions", get(pages::exceptions::handler))
        .route("/mismatches", get(pages::mismatches::handler))
        .route("/static/app.css", get(css))
        .route("/static/app.js", get(js))
        .with_state(state)
}

const APP_CSS: &str = include_str!("../static/app.css");
const APP_JS: &str = include_str!("../static/app.js");

async fn css() -> Response {
    asset(APP_CSS, "text/css; charset=utf-8")
}

async fn js() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        body,
    )
        .into_response()
}

/// A rendered page and its status.
pub(crate) struct Html(pub StatusCode, pub String);

impl IntoResponse for Html {
    fn into_response(self) -> Response {
        (
            self.0,
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
                // Pages never need inline scripts or third-party content.
                (
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(
                        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'",
                    ),
                ),
                (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            ],
            self.1,
        )
            .into_response()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod first_run_tests;
