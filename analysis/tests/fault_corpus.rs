//! Top-1 accuracy of `culprit` and `blame` per fault type on the labelled, randomised
//! fault corpus ([`corpus`], issue 19). Run it with `scripts/accuracy-corpus.sh`, i.e.
//! `cargo test --release -p hopscope-analysis --test fault_corpus -- --nocapture`.
//!
//! - **culprit**: for each type, `CORPUS_TRACES` (default 200) affected traces, each from
//!   a freshly drawn incident; a hit is a `culprit` of `analyze(trace, spans, None)` that
//!   names the ground truth ([`corpus::Truth::named_by`]).
//! - **blame**: for each type, `CORPUS_WINDOWS` (default 20) incidents, each with a
//!   baseline window and an incident window of `CORPUS_WINDOW_TRACES` (default 60) traces
//!   of the same entry operation; the fault hits only some incident traces, as in a real
//!   incident, and the decoy is slow in both windows. A hit is `nodes[0]` of
//!   `blame_with_baseline(incident analyses, baseline analyses)` equal to the ground-truth
//!   node.
//!
//! Prints a markdown table (and the first misses of each type, saying what was named
//! instead), writes it to `CORPUS_OUT` when set (a path relative to the workspace root,
//! or absolute), and requires every type ≥ 0.95 on both.
//! `CORPUS_SEED` changes the corpus (default 19).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod corpus;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Instant;

use corpus::{Corpus, Fault, Incident, Labelled, MIN_FAULT_US, Mode, Truth, item_text, node_text};
use hopscope_analysis::blame::blame_with_baseline;
use hopscope_analysis::{TraceAnalysis, analyze};
use hopscope_schemas::fixtures;
use hopscope_schemas::{HopKind, SpanKind};

/// Required top-1 accuracy per type.
const REQUIRED: f64 = 0.95;
/// Misses listed per type and measure.
const SHOWN_MISSES: usize = 3;
/// The least affected traces in an incident window.
const MIN_AFFECTED: usize = 3;

fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1_000.0)
}

/// What the table says the truth is, per type.
fn truth_kind(fault: Fault) -> &'static str {
    match fault {
        Fault::SlowShard => "peer: the slow Redis shard",
        Fault::SlowBranch => "operation or peer: the slow branch's code or store",
        Fault::LockWait => "peer: the DB holding the lock",
        Fault::QueueBacklog => "peer (mq): the request queue",
        Fault::BackgroundConsumer => "peer: the slow DB (not the consumer)",
        Fault::NoisyVm => "host: the noisy VM",
        Fault::Retries => "peer: the slow provider",
        Fault::ClockSkew => "peer: the slow DB or cache",
    }
}

#[derive(Default)]
struct Row {
    culprit_hits: usize,
    culprit_traces: usize,
    blame_hits: usize,
    blame_windows: usize,
    misses: Vec<String>,
    culprit_missed: usize,
    blame_missed: usize,
}

impl Row {
    fn culprit(&self) -> f64 {
        self.culprit_hits as f64 / self.culprit_traces.max(1) as f64
    }

    fn blame(&self) -> f64 {
        self.blame_hits as f64 / self.blame_windows.max(1) as f64
    }
}

fn analysis(trace: &Labelled, from_entry: bool) -> TraceAnalysis {
    let root = from_entry.then_some(trace.entry);
    analyze(trace.trace_id, &trace.spans, root).expect("a non-empty trace")
}

fn culprit_run(corpus: &mut Corpus, fault: Fault, traces: usize, row: &mut Row) {
    for _ in 0..traces {
        let incident = corpus.incident(fault);
        let trace = corpus.trace(&incident, Mode::Affected);
        let a = analysis(&trace, false);
        row.culprit_traces += 1;
        let Some(culprit) = a.culprit.as_ref() else {
            row.culprit_missed += 1;
            if row.culprit_missed <= SHOWN_MISSES {
                row.misses.push(format!("culprit, trace {}: none", trace.trace_id));
            }
            continue;
        };
        if trace.label.truth.named_by(&culprit.item) {
            row.culprit_hits += 1;
            continue;
        }
        row.culprit_missed += 1;
        if row.culprit_missed <= SHOWN_MISSES {
            let item = &culprit.item;
            row.misses.push(format!(
                "culprit, trace {}: named the {} (self {}, share {:.2}) instead of {} (+{})",
                trace.trace_id,
                item_text(item),
                ms(item.self_time_us),
                culprit.share,
                trace.label.truth,
                ms(trace.label.added_us),
            ));
        }
    }
}

/// One incident's baseline and incident windows, analysed from the entry span as blame
/// does; the incident window holds at least [`MIN_AFFECTED`] affected traces.
fn windows(corpus: &mut Corpus, incident: &Incident, traces: usize) -> (Vec<TraceAnalysis>, Vec<TraceAnalysis>, usize) {
    let baseline: Vec<TraceAnalysis> = (0..traces)
        .map(|_| analysis(&corpus.trace(incident, Mode::Healthy), true))
        .collect();
    let mut window: Vec<Labelled> = (0..traces).map(|_| corpus.trace(incident, Mode::Incident)).collect();
    let mut affected = window.iter().filter(|t| t.label.affected).count();
    for slot in window.iter_mut() {
        if affected >= MIN_AFFECTED.min(traces) {
            break;
        }
        if !slot.label.affected {
            *slot = corpus.trace(incident, Mode::Affected);
            affected += 1;
        }
    }
    let window = window.iter().map(|t| analysis(t, true)).collect();
    (baseline, window, affected)
}

fn blame_run(corpus: &mut Corpus, fault: Fault, windows_n: usize, traces: usize, row: &mut Row) {
    for k in 0..windows_n {
        let incident = corpus.incident(fault);
        let (baseline, window, affected) = windows(corpus, &incident, traces);
        let report = blame_with_baseline(&window, &baseline);
        let truth = &incident.truth;
        row.blame_windows += 1;
        if report.nodes.first().is_some_and(|n| truth.is_node(&n.node)) {
            row.blame_hits += 1;
            continue;
        }
        row.blame_missed += 1;
        if row.blame_missed <= SHOWN_MISSES {
            let top = report.nodes.first().map_or("nothing".to_owned(), |n| {
                format!("{} (excess {})", node_text(&n.node), ms(n.excess_us as u64))
            });
            let rank = report
                .nodes
                .iter()
                .position(|n| truth.is_node(&n.node))
                .map_or("not ranked".to_owned(), |i| {
                    format!("rank {}, excess {}", i + 1, ms(report.nodes[i].excess_us as u64))
                });
            row.misses.push(format!(
                "blame, window {k} ({affected}/{traces} affected): top {top} instead of {truth} ({rank})"
            ));
        }
    }
}

fn table(rows: &[(Fault, Row)], seed: u64) -> String {
    let mut out = String::new();
    writeln!(
        out,
        "| fault type | ground truth | culprit top-1 | culprit hits | blame top-1 | blame hits |"
    )
    .unwrap();
    writeln!(out, "|---|---|---|---|---|---|").unwrap();
    for (fault, row) in rows {
        let mark = |v: f64| {
            if v >= REQUIRED {
                format!("{v:.3}")
            } else {
                format!("**{v:.3}**")
            }
        };
        writeln!(
            out,
            "| {} | {} | {} | {}/{} | {} | {}/{} |",
            fault.name(),
            truth_kind(*fault),
            mark(row.culprit()),
            row.culprit_hits,
            row.culprit_traces,
            mark(row.blame()),
            row.blame_hits,
            row.blame_windows,
        )
        .unwrap();
    }
    writeln!(out, "\nSeed {seed}. First misses per type (what was named instead):\n").unwrap();
    for (fault, row) in rows {
        for miss in &row.misses {
            writeln!(out, "- {}: {miss}", fault.name()).unwrap();
        }
    }
    out
}

#[test]
fn culprit_and_blame_accuracy_per_fault_type() {
    let seed = corpus::seed();
    let traces = corpus::env_or("CORPUS_TRACES", 200) as usize;
    let windows_n = corpus::env_or("CORPUS_WINDOWS", 20) as usize;
    let window_traces = corpus::env_or("CORPUS_WINDOW_TRACES", 60) as usize;
    let started = Instant::now();
    let mut corpus = Corpus::new(seed);
    let mut rows = Vec::new();
    for fault in Fault::ALL {
        let mut row = Row::default();
        culprit_run(&mut corpus, fault, traces, &mut row);
        blame_run(&mut corpus, fault, windows_n, window_traces, &mut row);
        rows.push((fault, row));
    }
    let report = table(&rows, seed);
    println!(
        "\n{report}\n{traces} culprit traces and {windows_n} × 2 × {window_traces} blame traces per type in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Ok(path) = std::env::var("CORPUS_OUT") {
        // Relative to the workspace root (cargo runs tests in the crate's directory).
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
        std::fs::write(&path, &report).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
    let below: Vec<String> = rows
        .iter()
        .filter(|(_, r)| r.culprit() < REQUIRED || r.blame() < REQUIRED)
        .map(|(f, r)| format!("{} (culprit {:.3}, blame {:.3})", f.name(), r.culprit(), r.blame()))
        .collect();
    assert!(
        below.is_empty(),
        "below {REQUIRED} top-1 accuracy: {}",
        below.join("; ")
    );
}

// ---------------------------------------------------------------------------------------
// The generator itself

/// Checks one generated trace's shape and label; returns a description of the first
/// problem.
fn check(t: &Labelled, mode: Mode) -> Result<(), String> {
    let by_id: HashMap<_, _> = t.spans.iter().map(|s| (s.span_id, s)).collect();
    if by_id.len() != t.spans.len() {
        return Err("duplicate span ids".into());
    }
    if t.spans.iter().any(|s| s.trace_id != t.trace_id) {
        return Err("a span of another trace".into());
    }
    let roots: Vec<_> = t.spans.iter().filter(|s| s.parent_span_id.is_none()).collect();
    if roots.len() != 1 || roots[0].span_id != t.entry {
        return Err(format!("{} roots, entry not the root", roots.len()));
    }
    let entry = roots[0];
    if entry.service_name != "gateway" || entry.kind != SpanKind::Server {
        return Err("the entry is not a gateway server span".into());
    }
    for s in &t.spans {
        if s.end_time_unix_nano < s.start_time_unix_nano {
            return Err(format!("span {} ends before it starts", s.span_id));
        }
        // Every span reaches the root through existing parents, without a cycle.
        let mut at = s;
        for _ in 0..=t.spans.len() {
            match at.parent_span_id {
                None => break,
                Some(p) => {
                    at = by_id
                        .get(&p)
                        .copied()
                        .ok_or_else(|| format!("missing parent of {}", at.span_id))?
                }
            }
        }
        if at.span_id != t.entry {
            return Err(format!("span {} does not reach the entry", s.span_id));
        }
        if s.host.is_none() || s.service_name.is_empty() {
            return Err(format!("span {} without host or service", s.span_id));
        }
        let client_hop = matches!(s.kind, SpanKind::Client | SpanKind::Producer | SpanKind::Consumer);
        if client_hop && s.peer.is_none() {
            return Err(format!("{:?} span {} `{}` without a peer", s.kind, s.span_id, s.name));
        }
        if matches!(s.kind, SpanKind::Producer | SpanKind::Consumer) && s.hop_kind != HopKind::Mq {
            return Err(format!("messaging span {} is not an mq hop", s.span_id));
        }
    }
    let label = &t.label;
    match mode {
        Mode::Healthy if label.affected || label.added_us != 0 => return Err("a healthy trace is affected".into()),
        Mode::Affected if !label.affected => return Err("an affected trace without fault".into()),
        _ => {}
    }
    if label.affected && label.added_us < MIN_FAULT_US {
        return Err(format!("the fault added only {}", ms(label.added_us)));
    }
    for id in &label.truth_spans {
        let span = by_id
            .get(id)
            .ok_or_else(|| format!("label points at missing span {id}"))?;
        if !label.truth.marks(span) {
            return Err(format!(
                "labelled span `{}` does not carry {:?}",
                span.name, label.truth
            ));
        }
    }
    Ok(())
}

#[test]
fn generated_traces_are_well_formed_and_labelled() {
    let mut corpus = Corpus::new(corpus::seed());
    for fault in Fault::ALL {
        let mut truths = HashSet::new();
        let mut services = HashSet::new();
        for n in 0..40 {
            let incident = corpus.incident(fault);
            truths.insert(format!("{:?}", incident.truth));
            if fault == Fault::ClockSkew {
                assert!(incident.skew.len() >= 2, "clock skew on at least two hosts");
            } else {
                assert!(incident.skew.is_empty());
            }
            for mode in [Mode::Healthy, Mode::Incident, Mode::Affected] {
                let t = corpus.trace(&incident, mode);
                if let Err(problem) = check(&t, mode) {
                    panic!("{} trace {n} ({mode:?}): {problem}", fault.name());
                }
                services.extend(t.spans.iter().map(|s| s.service_name.clone()));
                let in_trace: HashSet<_> = t.spans.iter().map(|s| &s.service_name).collect();
                assert!(in_trace.len() >= 2, "{}: a multi-service trace", fault.name());
            }
        }
        assert!(
            truths.len() >= 2,
            "{}: the faulty node varies between incidents",
            fault.name()
        );
        assert!(services.len() >= 2, "{}: several services", fault.name());
    }
}

#[test]
fn each_fault_type_has_its_kind_of_truth() {
    let mut corpus = Corpus::new(corpus::seed());
    let mut seen = HashSet::new();
    for fault in Fault::ALL {
        for _ in 0..20 {
            let truth = corpus.incident(fault).truth;
            let kind = match (&truth, fault) {
                (Truth::Host { .. }, Fault::NoisyVm) => "host",
                (
                    Truth::Peer {
                        hop_kind: HopKind::Mq, ..
                    },
                    Fault::QueueBacklog,
                ) => "queue",
                (Truth::Operation { .. }, Fault::SlowBranch) => "operation",
                (Truth::Peer { hop_kind, .. }, _) if *hop_kind != HopKind::Mq && fault != Fault::NoisyVm => "peer",
                other => panic!("unexpected truth {other:?}"),
            };
            seen.insert(kind);
        }
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
}

/// The oracle on the storage fixtures with documented answers.
#[test]
fn truth_is_named_by_the_items_that_stand_for_it() {
    let trace = |spans: Vec<hopscope_schemas::SpanRecord>| {
        let id = spans[0].trace_id;
        let spans: Vec<_> = spans.into_iter().map(std::sync::Arc::new).collect();
        analyze(id, &spans, None).unwrap()
    };
    let peer = |hop_kind, peer: &str| Truth::Peer {
        hop_kind,
        peer: peer.into(),
    };
    let host = |h: &str| Truth::Host { host: h.into() };
    let op = |service: &str, operation: &str| Truth::Operation {
        service: service.into(),
        operation: operation.into(),
    };

    // The queue wait names the queue; the consumer's own span names its operation and host.
    let queue = trace(fixtures::request_reply());
    let item = |name: &str| queue.critical_path.iter().find(|i| i.operation == name).unwrap();
    assert!(peer(HopKind::Mq, "payments").named_by(item("queue wait")));
    assert!(!op("orders", "POST /order").named_by(item("queue wait")));
    assert!(op("billing", "payments process").named_by(item("payments process")));
    assert!(host("vm-billing-1").named_by(item("payments process")));
    // A producer span names its queue, never its host.
    assert!(peer(HopKind::Mq, "payments").named_by(item("payments publish")));
    assert!(!host("vm-orders-1").named_by(item("payments publish")));
    assert!(host("vm-orders-1").named_by(item("POST /order")));

    // A database call names the instance, not the caller's operation or host.
    let lock = trace(fixtures::db_lock_wait());
    let db = lock
        .critical_path
        .iter()
        .find(|i| i.operation == "UPDATE accounts")
        .unwrap();
    assert!(peer(HopKind::Db, "ledger-db:5432").named_by(db));
    assert!(!peer(HopKind::Cache, "ledger-db:5432").named_by(db));
    assert!(!op("ledger", "UPDATE accounts").named_by(db));
    assert!(!host("vm-ledger-1").named_by(db));
}

#[test]
fn same_seed_same_corpus() {
    let sample = |seed| {
        let mut corpus = Corpus::new(seed);
        Fault::ALL
            .iter()
            .flat_map(|&f| {
                let incident = corpus.incident(f);
                (0..3)
                    .map(|_| corpus.trace(&incident, Mode::Incident).spans)
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(sample(7), sample(7));
    assert_ne!(sample(7), sample(8));
}
