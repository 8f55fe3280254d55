//! `/trace/{traceID}`: the culprit in words, the blocking critical path, root-cause
//! errors, background work and the waterfall at the analysis' adjusted times, with a link
//! to the comparison with the typical trace.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use hopscope_analysis::{Culprit, ItemKind, TraceAnalysis, analyze};
use hopscope_schemas::{CloudKind, SpanRecord, TraceId};
use leptos::prelude::*;

use super::{blocking, culprit_node, load_trace, root_span};
use crate::layout::{Nav, error_page, respond_api};
use crate::waterfall::waterfall;
use crate::{Html, UiState, format};

const TITLE: &str = "Trace";

/// Where a span ran, in words: `private DC`, `public cloud (aws eu-west-1)`.
fn location(kind: CloudKind, span: Option<&SpanRecord>) -> Option<String> {
    if kind == CloudKind::Unknown {
        return None;
    }
    let mut words = format::cloud_words(kind).to_owned();
    if let Some(span) = span {
        let cloud = span.cloud();
        let extra: Vec<String> = [cloud.provider, cloud.region].into_iter().flatten().collect();
        if !extra.is_empty() {
            words.push_str(&format!(" ({})", extra.join(" ")));
        }
    }
    Some(words)
}

/// The headline: which node took the time, in one sentence.
pub fn headline(culprit: &Culprit, span: Option<&SpanRecord>) -> String {
    let item = &culprit.item;
    let share = format::percent(culprit.share);
    if item.item == ItemKind::QueueWait {
        let queue = item.peer.as_deref().unwrap_or("a queue");
        let consumer = span
            .map(|s| format!(" before {} picked the message up", s.service_name))
            .unwrap_or_default();
        return format!(
            "{share} of this request was spent waiting in the queue {queue} ({}){consumer}",
            item.service
        );
    }
    let mut text = match &item.peer {
        Some(peer)
            if span.is_some_and(|s| {
                matches!(
                    s.kind,
                    hopscope_schemas::SpanKind::Client | hopscope_schemas::SpanKind::Producer
                )
            }) =>
        {
            format!(
                "{share} of this request was spent in {} on {peer} ({}), from {}",
                item.operation,
                item.hop_kind.as_str(),
                item.service
            )
        }
        _ => format!(
            "{share} of this request was spent in {} of {} (its own work)",
            item.operation, item.service
        ),
    };
    if let Some(host) = &item.host {
        text.push_str(&format!(" on {host}"));
    }
    if let Some(place) = location(item.cloud_kind, span) {
        text.push_str(&format!(", {place}"));
    }
    text
}

pub async fn handler(State(state): State<UiState>, Path(text): Path<String>) -> Html {
    let trace = match load_trace(&state, &text, TITLE).await {
        Ok(t) => t,
        Err(page) => return page,
    };
    let id = trace.trace_id;
    let Some(page) = blocking(move || render(&trace.spans, id)).await else {
        return error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            TITLE,
            Nav::Trace,
            "The analysis of this trace failed.".to_owned(),
        );
    };
    page
}

fn render(spans: &[std::sync::Arc<SpanRecord>], id: TraceId) -> Html {
    let analysis: Option<TraceAnalysis> = analyze(id, spans, None);
    let root = root_span(spans);
    let title = root.map_or_else(|| "Trace".to_owned(), |r| format!("{}: {}", r.service_name, r.name));
    let find = |span_id| spans.iter().find(|s| s.span_id == span_id).map(|s| s.as_ref());
    let headline_view = match analysis.as_ref().and_then(|a| a.culprit.as_ref()) {
        Some(c) => {
            let text = headline(c, find(c.item.span_id));
            let anchor = format!("#span-{}", c.item.span_id.to_hex());
            let times = if c.node_items > 1 {
                format!(" over {} visits", c.node_items)
            } else {
                String::new()
            };
            let detail = format!(
                "Self time {}{times} of the {} response, on the path the response waited for.",
                format::duration_us(c.node_self_time_us),
                format::duration_us(analysis.as_ref().map_or(0, |a| a.duration_us))
            );
            view! {
                <section class="headline" aria-labelledby="culprit">
                    <p id="culprit" class="culprit-text">{text}</p>
                    <p class="muted">{detail}" "<a href=anchor>"Show the span"</a></p>
                </section>
            }
            .into_any()
        }
        None => view! { <p class="muted">"No culprit: the trace has no spans on a critical path."</p> }.into_any(),
    };
    let mut services: Vec<&str> = spans.iter().map(|s| s.service_name.as_str()).collect();
    services.sort_unstable();
    services.dedup();
    let facts = format!(
        "{} · {} spans · {} services · {} with errors · started {} UTC",
        format::duration_us(analysis.as_ref().map_or(0, |a| a.duration_us)),
        spans.len(),
        services.len(),
        spans.iter().filter(|s| s.is_error()).count(),
        root.map(|r| format::time_ns(r.start_time_unix_nano))
            .unwrap_or_default()
    );
    let errors_view = analysis.as_ref().filter(|a| !a.errors.is_empty()).map(|a| {
        let items = a
            .errors
            .iter()
            .map(|e| {
                let mut text = format!("{}: {}", e.service, e.operation);
                if let Some(peer) = &e.peer {
                    text.push_str(&format!(" on {peer}"));
                }
                if let Some(host) = &e.host {
                    text.push_str(&format!(" (host {host})"));
                }
                let mut why = e.status_message.clone();
                if let Some(t) = &e.exception_type {
                    why = if why.is_empty() { t.clone() } else { format!("{why} ({t})") };
                }
                let anchor = format!("#span-{}", e.span_id.to_hex());
                view! { <li><a href=anchor>{text}</a>" — "{if why.is_empty() { "failed".to_owned() } else { why }}</li> }
            })
            .collect_view();
        view! {
            <section aria-labelledby="h-errors">
                <h2 id="h-errors">"Root-cause errors"</h2>
                <p class="muted">"The deepest failing span of each failing chain."</p>
                <ul class="errors">{items}</ul>
            </section>
        }
    });
    let path_view = analysis.as_ref().map(|a| {
        let culprit = a.culprit.as_ref().map(|c| (c.item.span_id, c.item.item));
        let duration = a.duration_us.max(1) as f64;
        let rows = a
            .critical_path
            .iter()
            .map(|i| {
                let is_culprit = culprit == Some((i.span_id, i.item));
                let node = match &i.peer {
                    Some(peer) => format!("{} → {peer}", i.service),
                    None => i.service.clone(),
                };
                let anchor = format!("#span-{}", i.span_id.to_hex());
                view! {
                    <tr class:culprit=is_culprit>
                        <td><a href=anchor>{i.operation.clone()}</a>{is_culprit.then_some(" ◆ culprit")}</td>
                        <td>{node}</td>
                        <td>{i.hop_kind.as_str()}</td>
                        <td>{i.host.clone().unwrap_or_default()}</td>
                        <td class="num">{format::duration_us(i.duration_us)}</td>
                        <td class="num">{format::duration_us(i.self_time_us)}</td>
                        <td class="num">{format::percent(i.self_time_us as f64 / duration)}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <section aria-labelledby="h-path">
                <h2 id="h-path">"Critical path"</h2>
                <table class="data" id="critical-path">
                    <caption>"The chain of work the response waited for, root first: synchronous calls, and replies over queues with their waits. Fire-and-forget work is below, under Background work."</caption>
                    <thead><tr>
                        <th scope="col">"Operation"</th><th scope="col">"Node"</th><th scope="col">"Hop"</th>
                        <th scope="col">"Host"</th><th scope="col" class="num">"Duration"</th>
                        <th scope="col" class="num">"Self time"</th><th scope="col" class="num">"Share"</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </section>
        }
    });
    let background_view = analysis.as_ref().filter(|a| !a.background.is_empty()).map(|a| {
        let root_start = root.map_or(0, |r| r.start_time_unix_nano / 1_000);
        let rows = a
            .background
            .iter()
            .map(|b| {
                let anchor = format!("#span-{}", b.span_id.to_hex());
                let culprit = b
                    .culprit
                    .as_ref()
                    .map(|c| format!("{} ({})", culprit_node(c), format::percent(c.share)))
                    .unwrap_or_default();
                view! {
                    <tr>
                        <td><a href=anchor>{format!("{}: {}", b.service, b.operation)}</a></td>
                        <td>{b.queue.clone().unwrap_or_default()}</td>
                        <td class="num">{format!("+{}", format::duration_us(b.start_us.saturating_sub(root_start)))}</td>
                        <td class="num">{format::duration_us(b.duration_us)}</td>
                        <td>{culprit}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <section aria-labelledby="h-background">
                <h2 id="h-background">"Background work"</h2>
                <table class="data" id="background">
                    <caption>"Fire-and-forget work the response did not wait for (consumers nobody on the request's side waited on): shown with its own culprit, never blamed for this request's time"</caption>
                    <thead><tr>
                        <th scope="col">"Work"</th><th scope="col">"Queue"</th>
                        <th scope="col" class="num">"Started after the request"</th>
                        <th scope="col" class="num">"Took (queue wait included)"</th>
                        <th scope="col">"Its culprit"</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </section>
        }
    });
    let json = format!("/api/v1/traces/{}/analysis", id.to_hex());
    let compare = format!("/compare?trace={}", id.to_hex());
    let body = view! {
        <p class="trace-title"><span class="op">{title}</span></p>
        <p class="muted">{facts}" · "<span class="mono">{id.to_hex()}</span>" · "<a href=json>"JSON"</a></p>
        <p><a class="button" id="compare-typical" href=compare>"Compare with typical"</a>
           " "<span class="muted">"(the median trace of the same entry operation in the hour before this one)"</span></p>
        {headline_view}
        {errors_view}
        {path_view}
        {background_view}
        <section aria-labelledby="h-waterfall">
            <h2 id="h-waterfall">"Waterfall"</h2>
            <p class="muted legend-line">
                <span class="key crit-key"></span>" critical path "
                <span class="key culprit-key"></span>" culprit "
                <span class="key wait-key"></span>" queue wait "
                <span class="key background-key"></span>" background "
                <span class="key error-key"></span>" error · ▾ collapses a subtree"
            </p>
            {waterfall(spans, analysis.as_ref())}
        </section>
    };
    let api = format!("/api/v1/traces/{}/analysis", id.to_hex());
    respond_api(StatusCode::OK, TITLE, Nav::Trace, api, body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn headline_names_the_slow_shard() {
        let spans = hopscope_schemas::fixtures::slow_redis_shard();
        // A trace that hits the slow shard: its culprit is the GET on redis-shard-2.
        let mut by_trace: std::collections::BTreeMap<TraceId, Vec<Arc<SpanRecord>>> = Default::default();
        for s in spans {
            by_trace.entry(s.trace_id).or_default().push(Arc::new(s));
        }
        let found = by_trace.iter().find_map(|(id, spans)| {
            let a = analyze(*id, spans, None)?;
            let c = a.culprit?;
            (c.item.peer.as_deref() == Some("redis-shard-2:6379") && c.share > 0.5).then(|| {
                let span = spans.iter().find(|s| s.span_id == c.item.span_id).map(|s| s.as_ref());
                headline(&c, span)
            })
        });
        let text = found.unwrap();
        assert!(text.contains("of this request was spent in"), "{text}");
        assert!(text.contains("on redis-shard-2:6379 (cache)"), "{text}");
    }
}
