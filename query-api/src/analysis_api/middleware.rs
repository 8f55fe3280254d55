//! `GET /api/v1/middleware?kind=cache|db|mq|http|rpc|host&start&end[&group_by=peer|host|cloud_kind][&step][&cloud_kind]`:
//! instances side by side with percentiles, peak QPS and a time series each
//! ([`hopscope_storage::AggregateReader::middleware`]). `step` is the series bucket in
//! µs (default: the window in 60 buckets, at least 1 s); at most
//! [`MAX_SERIES_POINTS`] buckets.

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use hopscope_storage::aggregates::{GroupBy, MAX_SERIES_POINTS, MiddlewareInstance, MiddlewareKind, MiddlewareQuery};
use serde::Serialize;

use super::params::{aggregates, us, window};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::params::{QueryParams, parse_u64};

#[derive(Serialize)]
pub(super) struct Answer {
    kind: MiddlewareKind,
    group_by: GroupBy,
    start: u64,
    end: u64,
    step: u64,
    instances: Vec<Instance>,
}

#[derive(Serialize)]
struct Instance {
    system: String,
    peer: String,
    count: u64,
    errors: u64,
    p50_us: u64,
    p95_us: u64,
    p99_us: u64,
    p999_us: u64,
    max_us: u64,
    max_qps: u64,
    series: Vec<Point>,
}

#[derive(Serialize)]
struct Point {
    start: u64,
    count: u64,
    errors: u64,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
}

impl From<MiddlewareInstance> for Instance {
    fn from(i: MiddlewareInstance) -> Self {
        let s = i.stats;
        Self {
            system: i.system,
            peer: i.peer,
            count: s.count,
            errors: s.errors,
            p50_us: us(s.p50_ns),
            p95_us: us(s.p95_ns),
            p99_us: us(s.p99_ns),
            p999_us: us(s.p999_ns),
            max_us: us(s.max_ns),
            max_qps: s.max_qps,
            series: i
                .series
                .into_iter()
                .map(|p| Point {
                    start: us(p.start_ns),
                    count: p.count,
                    errors: p.errors,
                    p50_us: us(p.p50_ns),
                    p99_us: us(p.p99_ns),
                    max_us: us(p.max_ns),
                })
                .collect(),
        }
    }
}

pub(super) async fn handler(State(state): State<AppState>, uri: Uri) -> ApiResult<Json<Answer>> {
    let params = QueryParams::from_uri(&uri)?;
    let text = params.get("kind").ok_or_else(|| ApiError::missing_param("kind"))?;
    let kind = MiddlewareKind::parse(text).ok_or_else(|| {
        ApiError::bad_param(
            "kind",
            format!("unknown kind {text:?}; expected cache, db, mq, http, rpc or host"),
        )
    })?;
    let group_by = match params.get("group_by") {
        None => GroupBy::Peer,
        Some(text) => GroupBy::parse(text).ok_or_else(|| {
            ApiError::bad_param(
                "group_by",
                format!("unknown grouping {text:?}; expected peer, host or cloud_kind"),
            )
        })?,
    };
    let window = window(&params)?;
    let span_ns = window.end_ns - window.start_ns;
    let step_ns = match params.get("step") {
        Some(text) => {
            let step = parse_u64("step", text)?.saturating_mul(1_000);
            if step == 0 {
                return Err(ApiError::bad_param("step", "must be at least 1 µs"));
            }
            step
        }
        None => (span_ns / 60).max(1_000_000_000),
    };
    if span_ns / step_ns >= MAX_SERIES_POINTS {
        return Err(ApiError::bad_param(
            "step",
            format!("too small: the window would have more than {MAX_SERIES_POINTS} points"),
        ));
    }
    let instances = aggregates(&state)?
        .middleware(&MiddlewareQuery {
            window,
            kind,
            group_by,
            step_ns,
        })
        .await?;
    Ok(Json(Answer {
        kind,
        group_by,
        start: us(window.start_ns),
        end: us(window.end_ns),
        step: us(step_ns),
        instances: instances.into_iter().map(Instance::from).collect(),
    }))
}
