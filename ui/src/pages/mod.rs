//! One module per page.

pub mod blame;
pub mod compare;
pub mod exceptions;
pub mod middleware;
pub mod mismatches;
pub mod overview;
pub mod search;
pub mod services;
pub mod sla;
pub mod trace;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use hopscope_analysis::{Culprit, TraceAnalysis, analyze};
use hopscope_schemas::SpanRecord;
use hopscope_storage::aggregates::InterfaceStats;
use hopscope_storage::{StorageError, Trace};
use leptos::prelude::*;

use crate::Html;
use crate::format;
use crate::layout::{Nav, error_page};

/// The store failed: say so in words (the detail is logged).
pub fn store_failed(title: &str, active: Nav, err: &StorageError) -> Html {
    tracing::warn!(error = %err, page = title, "ui page: store read failed");
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        title,
        active,
        format!("The store could not answer ({err}). Try again in a moment; if it persists, check the hopscope log."),
    )
}

/// One service's requests as it served them: its own entry spans (server, consumer and
/// root spans), summed over its operations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServiceStats {
    /// Entry spans.
    pub count: u64,
    /// Of which ERROR.
    pub errors: u64,
    /// p99 of its slowest operation, ns.
    pub worst_p99_ns: u64,
    /// Busiest second of its busiest operation (a lower bound of the service's own).
    pub peak_qps: u64,
}

impl ServiceStats {
    /// Errors over requests (0 without requests).
    pub fn error_rate(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.errors as f64 / self.count as f64
        }
    }
}

/// Per-service totals of interface stats, by service name.
pub fn service_stats(interfaces: &[InterfaceStats]) -> BTreeMap<String, ServiceStats> {
    let mut out: BTreeMap<String, ServiceStats> = BTreeMap::new();
    for i in interfaces {
        let row = out.entry(i.service.clone()).or_default();
        row.count += i.stats.count;
        row.errors += i.stats.errors;
        row.worst_p99_ns = row.worst_p99_ns.max(i.stats.p99_ns);
        row.peak_qps = row.peak_qps.max(i.stats.max_qps);
    }
    out
}

/// Runs CPU-heavy work (trace analysis) off the async reactor.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => Some(value),
        Err(err) => {
            tracing::error!(error = %err, "ui analysis task failed");
            None
        }
    }
}

/// What a result list shows of one trace.
pub struct TraceSummary {
    pub trace_id: String,
    pub root_service: String,
    pub root_operation: String,
    pub start_ns: u64,
    pub duration_us: u64,
    pub spans: usize,
    pub services: Vec<String>,
    pub errors: usize,
    pub culprit: Option<Culprit>,
}

/// The root span: the earliest without a parent, else the earliest.
pub fn root_span(spans: &[Arc<SpanRecord>]) -> Option<&Arc<SpanRecord>> {
    spans
        .iter()
        .filter(|s| s.parent_span_id.is_none())
        .min_by_key(|s| (s.start_time_unix_nano, std::cmp::Reverse(s.duration_nanos())))
        .or_else(|| spans.iter().min_by_key(|s| s.start_time_unix_nano))
}

/// Summarises (and analyses) a trace.
pub fn summarize(trace: &Trace) -> Option<TraceSummary> {
    let root = root_span(&trace.spans)?;
    let analysis: Option<TraceAnalysis> = analyze(trace.trace_id, &trace.spans, None);
    let mut services: Vec<String> = trace.spans.iter().map(|s| s.service_name.clone()).collect();
    services.sort();
    services.dedup();
    Some(TraceSummary {
        trace_id: trace.trace_id.to_hex(),
        root_service: root.service_name.clone(),
        root_operation: root.name.clone(),
        start_ns: root.start_time_unix_nano,
        duration_us: analysis
            .as_ref()
            .map_or(root.duration_nanos() / 1_000, |a| a.duration_us),
        spans: trace.spans.len(),
        services,
        errors: trace.spans.iter().filter(|s| s.is_error()).count(),
        culprit: analysis.and_then(|a| a.culprit),
    })
}

/// A culprit as a short node name: `GET on redis-shard-2:6379` or `payment: POST /pay`.
pub fn culprit_node(c: &Culprit) -> String {
    let item = &c.item;
    match &item.peer {
        Some(peer) if item.operation == hopscope_analysis::QUEUE_WAIT => format!("queue wait on {peer}"),
        Some(peer) => format!("{} on {peer}", item.operation),
        None => format!("{}: {}", item.service, item.operation),
    }
}

/// The trace list shared by search and the overview.
pub fn trace_table(rows: &[TraceSummary], caption: &'static str) -> impl IntoView + use<> {
    let body = rows
        .iter()
        .map(|t| {
            let href = format!("/trace/{}", t.trace_id);
            let label = format!("{}: {}", t.root_service, t.root_operation);
            let culprit = t.culprit.as_ref().map(|c| format!("{} ({})", culprit_node(c), format::percent(c.share)));
            let errors = t.errors;
            view! {
                <tr class:failed={errors > 0}>
                    <td><a href=href>{label}</a><br/><span class="muted mono">{t.trace_id.get(..16).unwrap_or_default().to_owned()}</span></td>
                    <td>{format::time_ns(t.start_ns)}</td>
                    <td class="num">{format::duration_us(t.duration_us)}</td>
                    <td class="num">{t.spans}</td>
                    <td>{t.services.join(", ")}</td>
                    <td class="num">{if errors > 0 { format!("{errors} ✖") } else { "0".to_owned() }}</td>
                    <td>{culprit.unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="data">
            <caption>{caption}</caption>
            <thead><tr>
                <th scope="col">"Root operation"</th>
                <th scope="col">"Start (UTC)"</th>
                <th scope="col" class="num">"Duration"</th>
                <th scope="col" class="num">"Spans"</th>
                <th scope="col">"Services"</th>
                <th scope="col" class="num">"Errors"</th>
                <th scope="col">"Culprit node"</th>
            </tr></thead>
            <tbody>{body}</tbody>
        </table>
    }
}

/// Reads the trace whose id is `text` for a page titled `title`, or the error page to
/// answer instead: 400 for text that is not a trace id, 404 for an unknown trace, the
/// store's failure otherwise.
pub async fn load_trace(state: &crate::UiState, text: &str, title: &str) -> Result<Trace, Html> {
    let Ok(id) = text.parse::<hopscope_schemas::TraceId>() else {
        return Err(crate::layout::error_page(
            axum::http::StatusCode::BAD_REQUEST,
            title,
            Nav::Trace,
            format!("\"{text}\" is not a trace id: a trace id is 32 hexadecimal characters."),
        ));
    };
    match state.reader.trace(id).await {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(crate::layout::error_page(
            axum::http::StatusCode::NOT_FOUND,
            "Trace not found",
            Nav::Trace,
            format!(
                "No trace with id {} is stored. It may not have arrived yet (spans are searchable a moment after they are sent), or it is older than the store keeps.",
                id.to_hex()
            ),
        )),
        Err(err) => Err(store_failed(title, Nav::Trace, &err)),
    }
}
