//! hopscope query API: the Jaeger-compatible HTTP API (v1 JSON, what Grafana's Jaeger
//! data source and Jaeger UI call) and its api_v3 forms (OTLP JSON).
//!
//! [`router`] builds an axum [`Router`] over any [`SpanReader`]; the binary merges it with
//! the UI and serves it on [`QueryApiConfig::listen`].
//!
//! Routes:
//! - `GET /api/services`, `GET /api/services/{service}/operations`, `GET /api/operations`
//! - `GET /api/traces` (search, or `traceID=` lookups), `GET /api/traces/{traceID}`
//! - `GET /api/dependencies`
//! - `GET /api/v3/services`, `GET /api/v3/operations`, `GET /api/v3/traces`,
//!   `GET /api/v3/traces/{trace_id}`
//! - the analysis API ([`analysis_api`], over [`hopscope_analysis`]): `GET /api/v1/traces/{traceID}/analysis`,
//!   `/api/v1/blame`, `/api/v1/middleware`, `/api/v1/sla`, `/api/v1/exceptions`,
//!   `/api/v1/dependencies`, `/api/v1/mismatches`
//! - `GET /api`: an index of all of the above ([`index::ENDPOINTS`])

pub mod analysis_api;
pub mod error;
pub mod index;
pub mod jaeger_v1;
pub mod jaeger_v3;
pub mod params;
mod respond;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use hopscope_storage::{AggregateReader, SpanReader};
use serde::{Deserialize, Serialize};

pub use error::ApiError;

/// Configuration of the query API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryApiConfig {
    /// Address the HTTP server listens on (query API and UI). Default `0.0.0.0:16686`.
    pub listen: SocketAddr,
    /// Traces returned by a search that sets no `limit`. Default 20.
    pub default_search_limit: usize,
    /// Upper bound on a search's `limit`; larger values are lowered to it. Default 1500.
    pub max_search_limit: usize,
}

impl Default for QueryApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 16686)),
            default_search_limit: 20,
            max_search_limit: 1500,
        }
    }
}

impl QueryApiConfig {
    /// The limit a search runs with: `requested` (0 or absent means the default), capped
    /// at [`QueryApiConfig::max_search_limit`].
    pub fn effective_limit(&self, requested: Option<usize>) -> usize {
        let limit = match requested {
            Some(n) if n > 0 => n,
            _ => self.default_search_limit,
        };
        limit.min(self.max_search_limit).max(1)
    }
}

/// Rules of the analysis API, from the `[sla]` and `[layers]` configuration sections.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnalysisConfig {
    /// SLA levels and interface rules.
    pub sla: hopscope_analysis::rules::SlaConfig,
    /// Service layers.
    pub layers: hopscope_analysis::rules::LayersConfig,
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) reader: Arc<dyn SpanReader>,
    pub(crate) config: Arc<QueryApiConfig>,
    /// `None` when the store has no aggregates: the window endpoints answer 501.
    pub(crate) aggregates: Option<Arc<dyn AggregateReader>>,
    pub(crate) analysis: Arc<AnalysisConfig>,
}

/// Builds the query API routes over `reader`. The analysis window endpoints answer 501
/// (use [`router_with_aggregates`]); the per-trace analysis works.
pub fn router(reader: Arc<dyn SpanReader>, config: &QueryApiConfig) -> Router {
    build(reader, None, config, &AnalysisConfig::default())
}

/// Builds the query API routes over `reader`, with the analysis window endpoints over
/// `aggregates` (normally the same store) when given.
pub fn router_with_aggregates(
    reader: Arc<dyn SpanReader>,
    aggregates: Option<Arc<dyn AggregateReader>>,
    config: &QueryApiConfig,
    analysis: &AnalysisConfig,
) -> Router {
    build(reader, aggregates, config, analysis)
}

fn build(
    reader: Arc<dyn SpanReader>,
    aggregates: Option<Arc<dyn AggregateReader>>,
    config: &QueryApiConfig,
    analysis: &AnalysisConfig,
) -> Router {
    let state = AppState {
        reader,
        config: Arc::new(config.clone()),
        aggregates,
        analysis: Arc::new(analysis.clone()),
    };
    Router::new()
        .route("/api", axum::routing::get(index::handler))
        .route("/api/", axum::routing::get(index::handler))
        .merge(jaeger_v1::routes())
        .merge(jaeger_v3::routes())
        .merge(analysis_api::routes())
        .with_state(state)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_limits() {
        let config: QueryApiConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, QueryApiConfig::default());
        assert_eq!(config.listen.port(), 16686);
        assert_eq!(config.effective_limit(None), 20);
        assert_eq!(config.effective_limit(Some(0)), 20);
        assert_eq!(config.effective_limit(Some(7)), 7);
        assert_eq!(config.effective_limit(Some(100_000)), 1500);
        assert!(serde_json::from_str::<QueryApiConfig>(r#"{"bogus": 1}"#).is_err());
    }
}
