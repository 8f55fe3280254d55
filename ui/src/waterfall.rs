//! The trace waterfall: spans in tree order, positioned by time, with the critical path
//! highlighted, the culprit marked, self time, queue waits and collapsible details.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use hopscope_analysis::{Edge, ItemKind, TraceAnalysis};
use hopscope_schemas::{KeyValue, SpanId, SpanKind, SpanRecord};
use leptos::prelude::*;

use crate::format;

/// A span in tree order, at the times the analysis used.
pub struct Row {
    pub span: Arc<SpanRecord>,
    pub depth: usize,
    pub has_children: bool,
    /// Start and end as the analysis adjusted them (clock skew, timeouts), unix ns; the
    /// recorded times for spans outside the analysed tree.
    pub start_ns: u64,
    pub end_ns: u64,
    /// Clock-skew correction applied, ns (0: none).
    pub shift_ns: i64,
    /// Recorded time cut at the caller's end, ns (0: none).
    pub clamped_ns: u64,
    /// Own time: duration minus the union of what it waited for, ns.
    pub self_ns: u64,
    /// For an asynchronous span: the wait between its producer parent's end and its
    /// start, ns.
    pub queue_wait: Option<(u64, u64)>,
    /// Fire-and-forget work the response did not wait for.
    pub background: bool,
}

/// Orders spans depth-first (children by start time). With an analysis, the analysed tree
/// comes first at its adjusted times (see [`hopscope_analysis::TraceAnalysis::timeline`]),
/// then any spans outside it at their recorded times; orphans start their own subtree.
pub fn rows(spans: &[Arc<SpanRecord>], analysis: Option<&TraceAnalysis>) -> Vec<Row> {
    let Some(a) = analysis.filter(|a| !a.timeline.is_empty()) else {
        return recorded_rows(spans);
    };
    let tl = &a.timeline;
    let mut kids: Vec<Vec<usize>> = vec![Vec::new(); tl.len()];
    for (i, t) in tl.iter().enumerate() {
        if let Some(p) = t.parent {
            kids[p].push(i);
        }
    }
    for v in &mut kids {
        v.sort_by_key(|&i| (tl[i].start_ns, tl[i].span_id));
    }
    let mut out = Vec::with_capacity(spans.len());
    let mut stack = vec![0usize];
    while let Some(i) = stack.pop() {
        let t = &tl[i];
        let queue_wait = t
            .parent
            .map(|p| &tl[p])
            .filter(|p| t.edge != Edge::Sync && t.start_ns > p.end_ns)
            .map(|p| (p.end_ns, t.start_ns));
        out.push(Row {
            span: Arc::clone(&spans[t.index]),
            depth: t.depth as usize,
            has_children: !kids[i].is_empty(),
            start_ns: t.start_ns,
            end_ns: t.end_ns,
            shift_ns: t.shift_ns,
            clamped_ns: t.clamped_ns,
            self_ns: t.self_ns,
            queue_wait,
            background: t.background,
        });
        stack.extend(kids[i].iter().rev());
    }
    let analysed: HashSet<usize> = tl.iter().map(|t| t.index).collect();
    let rest: Vec<Arc<SpanRecord>> = spans
        .iter()
        .enumerate()
        .filter(|(i, _)| !analysed.contains(i))
        .map(|(_, s)| Arc::clone(s))
        .collect();
    out.extend(recorded_rows(&rest));
    out
}

fn is_async(child: &SpanRecord, parent: &SpanRecord) -> bool {
    child.kind == SpanKind::Consumer || parent.kind == SpanKind::Producer
}

/// Rows at the recorded times, self time against synchronous children.
fn recorded_rows(spans: &[Arc<SpanRecord>]) -> Vec<Row> {
    let ids: HashSet<SpanId> = spans.iter().map(|s| s.span_id).collect();
    let mut children: HashMap<SpanId, Vec<usize>> = HashMap::new();
    let mut tops = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        match s.parent_span_id.filter(|p| ids.contains(p) && *p != s.span_id) {
            Some(p) => children.entry(p).or_default().push(i),
            None => tops.push(i),
        }
    }
    let by_start = |v: &mut Vec<usize>| v.sort_by_key(|&i| (spans[i].start_time_unix_nano, spans[i].span_id));
    by_start(&mut tops);
    for v in children.values_mut() {
        by_start(v);
    }
    let by_id: HashMap<SpanId, usize> = spans.iter().enumerate().map(|(i, s)| (s.span_id, i)).collect();
    let mut out = Vec::with_capacity(spans.len());
    let mut seen = vec![false; spans.len()];
    let mut stack: Vec<(usize, usize)> = tops.iter().rev().map(|&i| (i, 0)).collect();
    while let Some((i, depth)) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        let span = &spans[i];
        let kids = children.get(&span.span_id).map(Vec::as_slice).unwrap_or_default();
        let (s0, s1) = (
            span.start_time_unix_nano,
            span.end_time_unix_nano.max(span.start_time_unix_nano),
        );
        let mut intervals: Vec<(u64, u64)> = kids
            .iter()
            .map(|&k| &spans[k])
            .filter(|k| !is_async(k, span))
            .map(|k| (k.start_time_unix_nano.clamp(s0, s1), k.end_time_unix_nano.clamp(s0, s1)))
            .collect();
        intervals.sort_unstable();
        let mut covered = 0;
        let mut cur: Option<(u64, u64)> = None;
        for (a, b) in intervals {
            cur = match cur {
                Some((ca, cb)) if a <= cb => Some((ca, cb.max(b))),
                Some((ca, cb)) => {
                    covered += cb - ca;
                    Some((a, b))
                }
                None => Some((a, b)),
            };
        }
        if let Some((ca, cb)) = cur {
            covered += cb - ca;
        }
        let queue_wait = span
            .parent_span_id
            .and_then(|p| by_id.get(&p))
            .map(|&p| &spans[p])
            .filter(|p| is_async(span, p) && span.start_time_unix_nano > p.end_time_unix_nano)
            .map(|p| (p.end_time_unix_nano, span.start_time_unix_nano));
        out.push(Row {
            span: Arc::clone(span),
            depth,
            has_children: !kids.is_empty(),
            start_ns: s0,
            end_ns: s1,
            shift_ns: 0,
            clamped_ns: 0,
            self_ns: (s1 - s0).saturating_sub(covered),
            queue_wait,
            background: false,
        });
        for &k in kids.iter().rev() {
            stack.push((k, depth + 1));
        }
    }
    out
}

fn kv_table(caption: &'static str, attrs: &[KeyValue]) -> impl IntoView + use<> {
    if attrs.is_empty() {
        return None;
    }
    let rows = attrs
        .iter()
        .map(|kv| {
            let key = kv.key.clone();
            view! { <tr><th scope="row">{key}</th><td>{kv.value.to_text()}</td></tr> }
        })
        .collect_view();
    Some(view! {
        <table class="kv"><caption>{caption}</caption><tbody>{rows}</tbody></table>
    })
}

fn details(span: &SpanRecord, self_ns: u64) -> impl IntoView + use<> {
    let cloud = span.cloud();
    let mut facts: Vec<(&'static str, String)> = vec![
        ("Span id", span.span_id.to_hex()),
        (
            "Parent",
            span.parent_span_id
                .map(|p| p.to_hex())
                .unwrap_or_else(|| "none (root)".to_owned()),
        ),
        ("Service", span.service_name.clone()),
        (
            "Kind",
            format!("{} · hop {}", span.kind.as_str(), span.hop_kind.as_str()),
        ),
        ("Start", format!("{} UTC", format::time_ns(span.start_time_unix_nano))),
        ("Duration", format::duration_ns(span.duration_nanos())),
        ("Self time", format::duration_ns(self_ns)),
        (
            "Status",
            format!("{} {}", span.status_code.as_str(), span.status_message)
                .trim()
                .to_owned(),
        ),
    ];
    if let Some(peer) = &span.peer {
        facts.push(("Peer instance", peer.clone()));
    }
    if let Some(host) = &span.host {
        facts.push(("Host", host.clone()));
    }
    facts.push(("Cloud kind", cloud.kind.as_str().to_owned()));
    for (label, value) in [
        ("Provider", &cloud.provider),
        ("Region", &cloud.region),
        ("Zone", &cloud.zone),
    ] {
        if let Some(v) = value {
            facts.push((label, v.clone()));
        }
    }
    if !span.scope.name.is_empty() {
        facts.push((
            "Scope",
            format!("{} {}", span.scope.name, span.scope.version).trim().to_owned(),
        ));
    }
    let fact_rows = facts
        .into_iter()
        .map(|(k, v)| view! { <tr><th scope="row">{k}</th><td>{v}</td></tr> })
        .collect_view();
    let events = if span.events.is_empty() {
        None
    } else {
        let items = span
            .events
            .iter()
            .map(|e| {
                let offset = e.time_unix_nano.saturating_sub(span.start_time_unix_nano);
                let head = format!("+{} {}", format::duration_ns(offset), e.name);
                let attrs = e
                    .attributes
                    .iter()
                    .map(|kv| {
                        let key = kv.key.clone();
                        view! { <tr><th scope="row">{key}</th><td>{kv.value.to_text()}</td></tr> }
                    })
                    .collect_view();
                view! { <li><p class="event">{head}</p><table class="kv"><tbody>{attrs}</tbody></table></li> }
            })
            .collect_view();
        Some(view! { <div class="events"><p class="sub">"Events"</p><ul class="plain">{items}</ul></div> })
    };
    view! {
        <div class="span-details">
            <table class="kv"><caption>"Span"</caption><tbody>{fact_rows}</tbody></table>
            {kv_table("Attributes", &span.attributes)}
            {events}
            {kv_table("Resource", &span.resource.attributes)}
        </div>
    }
}

/// The waterfall of a trace, with the analysis' critical path and culprit marked.
pub fn waterfall(spans: &[Arc<SpanRecord>], analysis: Option<&TraceAnalysis>) -> impl IntoView + use<> {
    let rows = rows(spans, analysis);
    let t0 = rows.iter().map(|r| r.start_ns).min().unwrap_or(0);
    let t1 = rows.iter().map(|r| r.end_ns).max().unwrap_or(0).max(t0 + 1);
    let total = (t1 - t0) as f64;
    let pct = |t: u64| (t.saturating_sub(t0)) as f64 / total * 100.0;
    let on_path: HashSet<SpanId> = analysis
        .map(|a| {
            a.critical_path
                .iter()
                .filter(|i| i.item == ItemKind::Span)
                .map(|i| i.span_id)
                .collect()
        })
        .unwrap_or_default();
    let waits_on_path: HashSet<SpanId> = analysis
        .map(|a| {
            a.critical_path
                .iter()
                .filter(|i| i.item == ItemKind::QueueWait)
                .map(|i| i.span_id)
                .collect()
        })
        .unwrap_or_default();
    let culprit = analysis
        .and_then(|a| a.culprit.as_ref())
        .map(|c| (c.item.span_id, c.item.item));
    let items = rows
        .into_iter()
        .map(|row| {
            let s = &row.span;
            let id = s.span_id;
            let crit = on_path.contains(&id);
            let is_culprit = culprit == Some((id, ItemKind::Span));
            let wait_culprit = culprit == Some((id, ItemKind::QueueWait));
            let left = pct(row.start_ns);
            let width = (pct(row.end_ns) - left).max(0.2);
            let bar_style = format!("left:{left:.3}%;width:{width:.3}%");
            let wait = row.queue_wait.map(|(a, b)| {
                let l = pct(a);
                let w = (pct(b) - l).max(0.2);
                let class = if wait_culprit {
                    "wait culprit-mark"
                } else if waits_on_path.contains(&id) {
                    "wait crit-wait"
                } else {
                    "wait"
                };
                let tip = format!("queue wait {}", format::duration_ns(b - a));
                let text = tip.clone();
                view! { <span class=class style=format!("left:{l:.3}%;width:{w:.3}%") title=tip><span class="sr">{text}</span></span> }
            });
            let indent = format!("padding-left:{}rem", row.depth as f64 * 0.9);
            let toggle = row.has_children.then(|| {
                let label = format!("Collapse the subtree under {}", s.name);
                view! { <button type="button" class="toggle" aria-expanded="true" aria-label=label>"▾"</button> }
            });
            let mut badges = Vec::new();
            if is_culprit || wait_culprit {
                badges.push((
                    "badge culprit-badge",
                    if wait_culprit { "culprit: queue wait" } else { "culprit" }.to_owned(),
                ));
            }
            if crit {
                badges.push(("badge crit-badge", "critical path".to_owned()));
            }
            if s.is_error() {
                badges.push(("badge error-badge", "error".to_owned()));
            }
            if row.background {
                badges.push(("badge background-badge", "background".to_owned()));
            }
            if row.shift_ns != 0 {
                let sign = if row.shift_ns > 0 { "+" } else { "−" };
                badges.push((
                    "badge adjusted-badge",
                    format!("clock skew: shifted {sign}{}", format::duration_ns(row.shift_ns.unsigned_abs())),
                ));
            }
            if row.clamped_ns > 0 {
                badges.push((
                    "badge adjusted-badge",
                    format!("cut at the caller's end: ran {} longer", format::duration_ns(row.clamped_ns)),
                ));
            }
            let badges = badges.into_iter().map(|(c, t)| view! { <span class=c>{t}</span> }).collect_view();
            let where_ = match (&s.peer, &s.host) {
                (Some(peer), _) if matches!(s.kind, SpanKind::Client | SpanKind::Producer) => format!("→ {peer}"),
                (_, Some(host)) => format!("@ {host}"),
                _ => String::new(),
            };
            let bar_title = format!("{} {}: {}", s.service_name, s.name, format::duration_ns(row.end_ns - row.start_ns));
            let class = format!(
                "span{}{}{}{}",
                if crit { " crit" } else { "" },
                if is_culprit || wait_culprit { " culprit" } else { "" },
                if s.is_error() { " error" } else { "" },
                if row.background { " background" } else { "" }
            );
            view! {
                <li class=class data-depth=row.depth.to_string() id=format!("span-{}", id.to_hex())>
                    <details>
                        <summary>
                            <span class="name" style=indent>
                                {toggle}
                                <span class="svc">{s.service_name.clone()}</span>" "
                                <span class="op">{s.name.clone()}</span>" "
                                <span class="where muted">{where_}</span>" "
                                {badges}
                            </span>
                            <span class="track" aria-hidden="true">
                                {wait}
                                <span class="bar" style=bar_style title=bar_title></span>
                            </span>
                            <span class="num">{format::duration_ns(row.end_ns - row.start_ns)}</span>
                            <span class="num self">{format::duration_ns(row.self_ns)}</span>
                        </summary>
                        {details(s, row.self_ns)}
                    </details>
                </li>
            }
        })
        .collect_view();
    let scale = (0..=4)
        .map(|k| {
            let label = format::duration_ns((t1 - t0) * k / 4);
            let style = format!("left:{}%", k * 25);
            view! { <span style=style>{label}</span> }
        })
        .collect_view();
    view! {
        <div class="waterfall-head" aria-hidden="true">
            <span>"Span (click for details)"</span>
            <span class="scale">{scale}</span>
            <span class="num">"Duration"</span>
            <span class="num">"Self"</span>
        </div>
        <ol class="waterfall" aria-label="Spans in call order">{items}</ol>
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_depth_first_with_self_time() {
        let spans = hopscope_schemas::fixtures::slow_redis_shard();
        let id = spans[0].trace_id;
        let trace: Vec<Arc<SpanRecord>> = spans.into_iter().filter(|s| s.trace_id == id).map(Arc::new).collect();
        let rows = rows(&trace, None);
        assert_eq!(rows.len(), trace.len());
        assert_eq!(rows[0].depth, 0);
        assert!(rows.iter().skip(1).all(|r| r.depth > 0));
        let root = &rows[0];
        assert!(root.self_ns <= root.span.duration_nanos());
    }

    #[test]
    fn rows_use_the_adjusted_times_and_show_the_adjustment() {
        use hopscope_schemas::SpanKind;
        use hopscope_schemas::fixtures::{resource, span, trace_id};
        let web = resource("web", "h1", None);
        let db = resource("db-svc", "h2", None);
        // The child's host runs 50 ms ahead; the analysis shifts it into its caller.
        let trace: Vec<Arc<SpanRecord>> = vec![
            span(&web, 1, 1, None, "GET /", SpanKind::Server, 0, 10_000).build(),
            span(&web, 1, 2, Some(1), "call", SpanKind::Client, 1_000, 8_000)
                .http("db-svc")
                .build(),
            span(&db, 1, 3, Some(2), "handle", SpanKind::Server, 60_000, 6_000).build(),
        ]
        .into_iter()
        .map(Arc::new)
        .collect();
        let analysis = hopscope_analysis::analyze(trace_id(1), &trace, None).unwrap();
        let rows = rows(&trace, Some(&analysis));
        let handle = rows.iter().find(|r| r.span.name == "handle").unwrap();
        assert_eq!(handle.start_ns - rows[0].start_ns, 3_000_000);
        assert_eq!(handle.shift_ns, -57_000_000);
        let html = waterfall(&trace, Some(&analysis)).to_html();
        assert!(html.contains("clock skew: shifted −57"), "{html}");
    }
}
