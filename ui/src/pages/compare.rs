//! `/compare?trace=ID[&with=ID | &baseline_start&baseline_end]`: one trace against another,
//! or against the typical trace of its entry operation (by default over the hour before
//! it), both waterfalls aligned node by node, the change in self time coloured, and the
//! one-line verdict ([`hopscope_analysis::compare`], the same as the API's).

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use hopscope_analysis::analyze;
use hopscope_analysis::blame::entry_traces;
use hopscope_analysis::compare::{
    Baseline, ComparedNode, Comparison, analyze_baseline, compare_with_trace, compare_with_typical, entry,
};
use hopscope_storage::aggregates::Window;
use leptos::prelude::*;

use super::{blocking, load_trace, store_failed};
use crate::layout::{Nav, error_page, notice, respond, respond_api};
use crate::params::{Params, query_string};
use crate::{Html, UiState, format};

const TITLE: &str = "Compare traces";

/// Baseline traces read for the typical trace.
pub const BASELINE_TRACES: usize = 200;

/// The default baseline: the hour before the trace started.
const DEFAULT_BASELINE_NS: u64 = 3_600_000_000_000;

pub async fn handler(State(state): State<UiState>, Query(params): Query<BTreeMap<String, String>>) -> Html {
    let params = Params(params);
    let text = params.value("trace");
    if text.is_empty() {
        return respond(StatusCode::OK, TITLE, Nav::Trace, form(&params, "", None, None));
    }
    let trace = match load_trace(&state, &text, TITLE).await {
        Ok(t) => t,
        Err(page) => return page,
    };
    let id = trace.trace_id;
    let with = params.value("with");
    let mut used_window = None;
    let comparison: Result<Comparison, String> = if !with.is_empty() {
        let other = match load_trace(&state, &with, TITLE).await {
            Ok(t) => t,
            Err(page) => return page,
        };
        let other_id = other.trace_id;
        blocking(move || {
            let a = analyze(id, &trace.spans, None)?;
            let b = analyze(other_id, &other.spans, None)?;
            Some(compare_with_trace(&a, &trace.spans, &b, &other.spans))
        })
        .await
        .flatten()
        .ok_or_else(|| "The traces could not be analysed.".to_owned())
    } else {
        let Some(aggregates) = state.aggregates.clone() else {
            return crate::layout::no_aggregates(TITLE, Nav::Trace);
        };
        let Some((service, operation)) = entry(&trace.spans) else {
            return error_page(
                StatusCode::NOT_FOUND,
                TITLE,
                Nav::Trace,
                "The trace has no entry span.".to_owned(),
            );
        };
        let window = if params.get("baseline_start").is_some() || params.get("baseline_end").is_some() {
            match params.window_named("baseline_start", "baseline_end", "1h") {
                Ok(w) => w,
                Err(msg) => return error_page(StatusCode::BAD_REQUEST, TITLE, Nav::Trace, msg),
            }
        } else {
            let start = trace.spans.iter().map(|s| s.start_time_unix_nano).min().unwrap_or(0);
            Window {
                start_ns: start.saturating_sub(DEFAULT_BASELINE_NS),
                end_ns: start.saturating_sub(1),
                cloud_kind: None,
            }
        };
        used_window = Some(window);
        let baseline = match entry_traces(
            &*aggregates,
            &*state.reader,
            &service,
            &operation,
            window,
            BASELINE_TRACES,
        )
        .await
        {
            Ok(b) => b,
            Err(err) => return store_failed(TITLE, Nav::Trace, &err),
        };
        let spans = trace.spans.clone();
        blocking(move || {
            let analysis = analyze(id, &spans, None)?;
            compare_with_typical(&analysis, &spans, &analyze_baseline(baseline, id))
        })
            .await
            .flatten()
            .ok_or_else(|| {
                format!(
                    "No other trace of {service}: {operation} started between {} and {} UTC. Widen the baseline window or compare with one trace.",
                    format::time_ns(window.start_ns),
                    format::time_ns(window.end_ns)
                )
            })
    };
    let body = match comparison {
        Ok(c) => view! { {form(&params, &text, Some(&c), used_window.as_ref())} {report(&c)} }.into_any(),
        Err(msg) => view! {
            {form(&params, &text, None, used_window.as_ref())}
            {notice("info", "Nothing to compare with".to_owned(), msg)}
        }
        .into_any(),
    };
    let api = format!(
        "/api/v1/traces/{text}/compare{}",
        compare_query(&params, used_window.as_ref())
    );
    respond_api(StatusCode::OK, TITLE, Nav::Trace, api, body)
}

/// The API query that answers the same comparison as the page: the other trace, or the
/// baseline window the page used (unix µs).
fn compare_query(params: &Params, window: Option<&Window>) -> String {
    match window {
        Some(w) => {
            let (start, end) = ((w.start_ns / 1_000).to_string(), (w.end_ns / 1_000).to_string());
            query_string([("baseline_start", start.as_str()), ("baseline_end", end.as_str())])
        }
        None => query_string([("with", params.value("with").as_str())]),
    }
}

fn form(params: &Params, trace: &str, done: Option<&Comparison>, window: Option<&Window>) -> impl IntoView + use<> {
    let with = params.value("with");
    let start = params.value("baseline_start");
    let end = params.value("baseline_end");
    let back = (!trace.is_empty()).then(|| {
        let href = format!("/trace/{trace}");
        view! { <p><a href=href>"← back to the trace"</a></p> }
    });
    let api = done.map(|c| {
        let href = format!(
            "/api/v1/traces/{}/compare{}",
            c.trace_id.to_hex(),
            compare_query(params, window)
        );
        view! { <p class="hint">"JSON: "<a href=href.clone()>{href.clone()}</a></p> }
    });
    view! {
        {back}
        <form class="filters" method="get" action="/compare">
            <label>"Trace "<input name="trace" value=trace.to_owned() size="34" required/></label>
            <label>"with trace "<input name="with" value=with.clone() size="34" placeholder="another trace id"/></label>
            <span class="muted">" or with the typical trace between "</span>
            <label>"start "<input name="baseline_start" value=start.clone() placeholder="YYYY-MM-DDTHH:MM"/></label>
            <label>"end "<input name="baseline_end" value=end.clone() placeholder="YYYY-MM-DDTHH:MM"/></label>
            <button type="submit">"Compare"</button>
        </form>
        <p class="hint">"Nodes are matched by their path of service, operation and peer from the entry. Without another trace or a window, the typical trace is the median of the same entry operation over the hour before this trace."</p>
        {api}
    }
}

fn report(c: &Comparison) -> impl IntoView + use<> {
    let (other_label, other_link) = match &c.baseline {
        Baseline::Trace { trace_id } => {
            let hex = trace_id.to_hex();
            (
                format!("trace {}", hex.get(..8).unwrap_or_default()),
                Some(format!("/trace/{hex}")),
            )
        }
        Baseline::Typical { traces: 1 } => ("typical (1 trace)".to_owned(), None),
        Baseline::Typical { traces } => (format!("typical (median of {traces} traces)"), None),
    };
    let summary = format!(
        "This trace took {}, {} took {} ({}{}).",
        format::duration_us(c.duration_us),
        other_label,
        format::duration_us(c.baseline_duration_us),
        if c.delta_us >= 0 { "+" } else { "−" },
        format::duration_us(c.delta_us.unsigned_abs())
    );
    let other_link = other_link.map(|href| view! { " "<a href=href>"Open the other trace"</a> });
    let scale = c.duration_us.max(c.baseline_duration_us).max(1) as f64;
    let mut nodes: Vec<&ComparedNode> = c.nodes.iter().collect();
    let top = c.nodes.first().filter(|n| n.delta_us > 0).map(|n| n.path.clone());
    nodes.sort_by_key(|n| {
        let offset = if n.only_in == Some("baseline") {
            n.baseline_start_offset_us
        } else {
            n.this.start_offset_us
        };
        (offset, n.depth)
    });
    let bar = |offset: u64, duration: u64, present: bool, class: &'static str| {
        present.then(|| {
            let left = offset as f64 / scale * 100.0;
            let width = (duration as f64 / scale * 100.0).max(0.3);
            let style = format!("left:{left:.3}%;width:{width:.3}%");
            view! { <span class="track"><span class=class style=style></span></span> }
        })
    };
    let rows = nodes
        .into_iter()
        .map(|n| {
            let name = match &n.peer {
                Some(peer) => format!("{}: {} → {peer}", n.service, n.operation),
                None => format!("{}: {}", n.service, n.operation),
            };
            let indent = format!("padding-left:{}rem", n.depth as f64 * 0.9);
            let in_this = n.only_in != Some("baseline");
            let in_other = n.only_in != Some("trace");
            let delta_class = if n.delta_us > 0 { "num slower" } else if n.delta_us < 0 { "num faster" } else { "num" };
            let sign = if n.delta_us > 0 { "+" } else if n.delta_us < 0 { "−" } else { "" };
            let row_class = match (top.as_ref() == Some(&n.path), n.only_in.is_some()) {
                (true, _) => "slower-row",
                (false, true) => "only-row",
                _ => "",
            };
            let only = n.only_in.map(|side| if side == "trace" { " (only in this trace)" } else { " (only in the baseline)" });
            let this_self = if in_this { format::duration_us(n.this.self_time_us) } else { "—".to_owned() };
            let other_self = if in_other { format::duration_us(n.baseline_self_time_us) } else { "—".to_owned() };
            let anchor = n.span_id.map(|id| format!("/trace/{}#span-{}", c.trace_id.to_hex(), id.to_hex()));
            view! {
                <tr class=row_class>
                    <td><span style=indent><a href=anchor>{name}</a>{only}</span></td>
                    <td class="track-cell">{bar(n.this.start_offset_us, n.this.duration_us, in_this, "bar")}</td>
                    <td class="track-cell">{bar(n.baseline_start_offset_us, n.baseline_duration_us, in_other, "bar other")}</td>
                    <td class="num">{this_self}</td>
                    <td class="num">{other_self}</td>
                    <td class=delta_class>{format!("{sign}{}", format::duration_us(n.delta_us.unsigned_abs()))}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section aria-labelledby="h-verdict" class="headline">
            <p id="h-verdict" class="verdict">{c.verdict.clone()}</p>
            <p class="muted">{summary}{other_link}</p>
        </section>
        <table class="data compare" id="compare-table">
            <caption>"Both waterfalls on one time scale, node by node (self time: time not spent waiting on a child or a reply); red took longer here, green less"</caption>
            <thead><tr>
                <th scope="col">"Node"</th><th scope="col">"This trace"</th><th scope="col">{other_label.clone()}</th>
                <th scope="col" class="num">"Self here"</th><th scope="col" class="num">"Self there"</th>
                <th scope="col" class="num">"Change"</th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}
