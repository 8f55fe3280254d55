//! `GET /api/v1/sla?start&end[&cloud_kind]`: SLA health per service and level and per
//! interface, from the configured levels and rules ([`hopscope_analysis::rules::SlaConfig`])
//! and the store's interface stats ([`hopscope_storage::AggregateReader::interfaces`]).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use serde::Serialize;

use super::params::{aggregates, us, window};
use crate::AppState;
use crate::error::ApiResult;
use crate::params::QueryParams;

#[derive(Serialize)]
pub(super) struct Answer {
    services: Vec<ServiceLevel>,
    interfaces: Vec<Interface>,
}

#[derive(Serialize)]
struct ServiceLevel {
    service: String,
    level: Option<String>,
    interfaces: u64,
    missed: u64,
}

#[derive(Serialize)]
struct Interface {
    service: String,
    operation: String,
    level: Option<String>,
    count: u64,
    max_qps: u64,
    max_us: u64,
    p999_us: u64,
    p99_us: u64,
    p95_us: u64,
    fail_count: u64,
    error_rate: f64,
    /// `met`, `missed` or `unassigned`.
    status: &'static str,
    reasons: Vec<String>,
}

pub(super) async fn handler(State(state): State<AppState>, uri: Uri) -> ApiResult<Json<Answer>> {
    let params = QueryParams::from_uri(&uri)?;
    let window = window(&params)?;
    let stats = aggregates(&state)?.interfaces(&window).await?;
    let sla = &state.analysis.sla;
    let mut per_service: BTreeMap<(String, Option<String>), (u64, u64)> = BTreeMap::new();
    let interfaces: Vec<Interface> = stats
        .into_iter()
        .map(|i| {
            let (level, reasons) = sla.evaluate(&i);
            let status = match (&level, reasons.is_empty()) {
                (None, _) => "unassigned",
                (Some(_), true) => "met",
                (Some(_), false) => "missed",
            };
            let counts = per_service.entry((i.service.clone(), level.clone())).or_default();
            counts.0 += 1;
            counts.1 += u64::from(status == "missed");
            let s = i.stats;
            Interface {
                service: i.service,
                operation: i.operation,
                level,
                count: s.count,
                max_qps: s.max_qps,
                max_us: us(s.max_ns),
                p999_us: us(s.p999_ns),
                p99_us: us(s.p99_ns),
                p95_us: us(s.p95_ns),
                fail_count: s.errors,
                error_rate: if s.count == 0 {
                    0.0
                } else {
                    s.errors as f64 / s.count as f64
                },
                status,
                reasons,
            }
        })
        .collect();
    let services = per_service
        .into_iter()
        .map(|((service, level), (interfaces, missed))| ServiceLevel {
            service,
            level,
            interfaces,
            missed,
        })
        .collect();
    Ok(Json(Answer { services, interfaces }))
}
