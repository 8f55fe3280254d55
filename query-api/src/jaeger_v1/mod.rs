//! Jaeger's v1 HTTP API (`/api/...`): the JSON the Jaeger UI and Grafana's Jaeger data
//! source read. [`model`] holds the shapes, [`convert`] maps hopscope spans to them,
//! [`search`] parses search parameters, [`handlers`] serves the routes.

pub mod convert;
mod handlers;
pub mod model;
pub mod search;

use axum::Router;
use axum::routing::get;

use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/services", get(handlers::services))
        .route("/api/services/{service}/operations", get(handlers::service_operations))
        .route("/api/operations", get(handlers::operations))
        .route("/api/traces", get(handlers::search))
        .route("/api/traces/{trace_id}", get(handlers::trace))
        .route("/api/dependencies", get(handlers::dependencies))
}
