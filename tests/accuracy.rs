//! Accuracy of `culprit` and `blame` on the demo's injected faults (issue 6, "accuracy
//! report"). `#[ignore]`d: it runs for minutes and needs the local middleware (Redis,
//! PostgreSQL, MariaDB, RabbitMQ on loopback; simulated hops otherwise). Run it with
//! `scripts/accuracy.sh`.
//!
//! One hopscope all-in-one process (the real binary, embedded store) receives every
//! window. The demo workload (`hopscope_demo::run`) runs in this process against it:
//! first a baseline window without faults, then, for each round, one incident window per
//! fault with only that fault on. Afterwards, for each fault:
//! - **culprit**: every gateway-rooted trace of its incident windows that the fault
//!   affected (decided from the trace's spans by the fault's definition, see [`CASES`])
//!   gets `GET /api/v1/traces/{id}/analysis`; a hit is a `culprit` naming the fault's
//!   ground-truth node.
//! - **blame**: each incident window gets `GET /api/v1/blame` for the gateway's transfer
//!   operation against the baseline window; a hit is a top-ranked node equal to the
//!   ground-truth node.
//!
//! Knobs (environment): `ACCURACY_ROUNDS` (default 3), `ACCURACY_INCIDENT_SECS` (default
//! 10), `ACCURACY_BASELINE_SECS` (default 15), `ACCURACY_RATE` (requests/s, default 8),
//! `ACCURACY_SIMULATE=1` (simulate every hop), `ACCURACY_OUT` (also write the markdown
//! table there).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Hopscope, tag};
use hopscope_demo::{DemoConfig, Faults};
use serde_json::Value;

/// One labelled fault.
struct Case {
    /// Row label.
    name: &'static str,
    /// The demo flag.
    flag: &'static str,
    /// Ground truth, as written in the report.
    truth: &'static str,
    /// Turns the fault on.
    fault: fn(&mut Faults),
    /// Whether the fault affected this (Jaeger-shaped) trace.
    affected: fn(&Value) -> bool,
    /// Whether a trace's analysis names the ground truth.
    culprit_ok: fn(&Value) -> bool,
    /// Whether a blame node names the ground truth.
    blame_ok: fn(&Value) -> bool,
}

/// Whether the analysis' `culprit` satisfies `ok`.
fn culprit_is(analysis: &Value, ok: fn(&Value) -> bool) -> bool {
    ok(&analysis["culprit"])
}

fn spans(trace: &Value) -> impl Iterator<Item = &Value> {
    trace["spans"].as_array().into_iter().flatten()
}

fn str_tag<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    tag(&span["tags"], key).and_then(|t| t["value"].as_str())
}

fn name(span: &Value) -> &str {
    span["operationName"].as_str().unwrap_or_default()
}

fn field<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

const SLOW_SHARD: &str = "redis-shard-2:6379";
const NOISY_HOST: &str = "acct-gcp-02";

/// A MariaDB UPDATE that waited on the lock holder (healthy ones take ~1 ms).
fn waited_update(span: &Value) -> bool {
    name(span).starts_with("UPDATE") && span["duration"].as_u64().unwrap_or(0) >= 50_000
}

fn caller_timed_out(trace: &Value) -> bool {
    spans(trace).any(|s| {
        name(s).starts_with("POST /charge")
            && str_tag(s, "span.kind") == Some("client")
            && tag(&s["tags"], "error").is_some()
    })
}

/// The ledger's consumer span of the payments queue (the node the backlog fault slows).
fn is_ledger_consumer(v: &Value) -> bool {
    field(v, "service") == "demo-ledger" && field(v, "operation").starts_with("process ")
}

const CASES: &[Case] = &[
    Case {
        name: "slow Redis shard",
        flag: "--fault-slow-redis-shard",
        truth: "peer redis-shard-2:6379",
        fault: |f| f.slow_redis_shard = true,
        affected: |t| spans(t).any(|s| str_tag(s, "hopscope.peer") == Some(SLOW_SHARD)),
        culprit_ok: |a| culprit_is(a, |c| field(c, "peer") == SLOW_SHARD),
        blame_ok: |n| field(n, "node_type") == "peer" && field(n, "peer") == SLOW_SHARD,
    },
    Case {
        name: "DB lock wait (MariaDB UPDATE waited ≥ 50 ms)",
        flag: "--fault-db-lock-wait",
        truth: "peer of the MariaDB UPDATE (db, :3306)",
        fault: |f| f.db_lock_wait = true,
        affected: |t| spans(t).any(waited_update),
        culprit_ok: |a| {
            culprit_is(a, |c| {
                field(c, "hop_kind") == "db" && field(c, "operation").starts_with("UPDATE")
            })
        },
        blame_ok: |n| {
            field(n, "node_type") == "peer" && field(n, "hop_kind") == "db" && field(n, "peer").ends_with(":3306")
        },
    },
    Case {
        name: "timeout on a call the callee completed",
        flag: "--fault-timeout",
        truth: "operation demo-payment fraud-check",
        fault: |f| f.timeout = true,
        affected: |t| {
            spans(t).any(|s| {
                name(s) == "fraud-check" && tag(&s["tags"], "fraud.slow_path").is_some_and(|v| v["value"] == true)
            })
        },
        culprit_ok: |a| {
            culprit_is(a, |c| {
                field(c, "service") == "demo-payment" && field(c, "operation") == "fraud-check"
            })
        },
        blame_ok: |n| {
            field(n, "node_type") == "operation"
                && field(n, "service") == "demo-payment"
                && field(n, "operation") == "fraud-check"
        },
    },
    Case {
        name: "queue backlog (slow ledger consumer)",
        flag: "--fault-queue-backlog",
        truth: "background work: the payments queue wait or the ledger consumer as the culprit of the trace's `background`; never blamed for the request",
        fault: |f| f.queue_backlog = true,
        affected: |t| spans(t).any(|s| str_tag(s, "span.kind") == Some("consumer")),
        // The ledger consumes fire-and-forget: the backlog never delays the request, so the
        // hit is the backlog named in `background` (its queue wait or consumer) and a blame
        // top node that is not the queue or the consumer.
        culprit_ok: |a| {
            a["background"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|b| field(&b["culprit"], "operation") == "queue wait" || is_ledger_consumer(&b["culprit"]))
        },
        blame_ok: |n| !((field(n, "node_type") == "peer" && field(n, "hop_kind") == "mq") || is_ledger_consumer(n)),
    },
    Case {
        name: "noisy host",
        flag: "--fault-noisy-host",
        truth: "host acct-gcp-02",
        fault: |f| f.noisy_host = true,
        affected: |t| spans(t).any(|s| str_tag(s, "hopscope.host") == Some(NOISY_HOST)),
        culprit_ok: |a| culprit_is(a, |c| field(c, "host") == NOISY_HOST),
        blame_ok: |n| field(n, "node_type") == "host" && field(n, "host") == NOISY_HOST,
    },
];

/// Unix µs now.
fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as u64
}

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs the demo workload for `secs` with `faults`, exporting to `hopscope`; returns the
/// window (unix µs).
async fn window(hopscope: &Hopscope, faults: Faults, secs: u64, rate: f64, n: usize) -> (u64, u64) {
    let config = DemoConfig {
        otlp_endpoint: hopscope.grpc_endpoint(),
        rate,
        duration: Some(Duration::from_secs(secs)),
        simulate: std::env::var("ACCURACY_SIMULATE").is_ok_and(|v| v == "1"),
        faults,
        redis_url: "redis://127.0.0.1:6379".into(),
        amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
        // A queue per window, so no backlog carries over into the next window.
        queue: format!("hopscope-accuracy-{}-{n}", std::process::id()),
        postgres_url: "postgres://postgres@127.0.0.1:5432/test".into(),
        mariadb_url: "mysql://root@127.0.0.1:3306/test".into(),
    };
    // The demo connects to the middleware before the load starts: the window opens at the
    // first request, near enough (traces are selected by their start time).
    let start = now_us();
    hopscope_demo::run(config, std::future::pending())
        .await
        .expect("demo workload");
    (start, now_us())
}

fn describe(node: &Value) -> String {
    match field(node, "node_type") {
        "peer" => format!("peer {} {}", field(node, "hop_kind"), field(node, "peer")),
        "operation" => format!("op {}/{}", field(node, "service"), field(node, "operation")),
        "host" => format!("host {}", field(node, "host")),
        other => other.to_owned(),
    }
}

fn describe_culprit(c: &Value) -> String {
    if c.is_null() {
        return "none".into();
    }
    match c["peer"].as_str() {
        Some(peer)
            if field(c, "hop_kind") != "internal"
                && field(c, "operation") != "queue wait"
                && matches!(field(c, "hop_kind"), "cache" | "db") =>
        {
            format!("peer {peer} ({})", field(c, "operation"))
        }
        _ => {
            // One queue per window: name it once.
            let op = field(c, "operation");
            let op = if op.starts_with("process ") {
                "process <queue>"
            } else {
                op
            };
            format!("{}/{op} @{}", field(c, "service"), c["host"].as_str().unwrap_or("-"))
        }
    }
}

#[derive(Default)]
struct Tally {
    windows: usize,
    blame_hits: usize,
    traces: usize,
    affected: usize,
    culprit_hits: usize,
    /// Right culprits by what they named.
    hits: BTreeMap<String, usize>,
    /// Wrong culprits by what they named.
    misses: BTreeMap<String, usize>,
    /// The closest runner-up of a right top blame node: (top excess / runner-up excess, runner-up).
    closest: Option<(f64, String)>,
    /// Top blame nodes of the windows that missed.
    blame_misses: Vec<String>,
    /// Affected traces whose caller (account → payment) timed out, and hits among them.
    timed_out: usize,
    timed_out_hits: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long; needs the local middleware; run scripts/accuracy.sh"]
async fn culprit_and_blame_accuracy_on_demo_faults() {
    let rounds = env_u64("ACCURACY_ROUNDS", 3);
    let incident_secs = env_u64("ACCURACY_INCIDENT_SECS", 10);
    let baseline_secs = env_u64("ACCURACY_BASELINE_SECS", 15);
    let rate = env_u64("ACCURACY_RATE", 8) as f64;
    let hopscope = Hopscope::start(&[]).await;

    let mut n = 0;
    let baseline = window(&hopscope, Faults::default(), baseline_secs, rate, n).await;
    let mut incidents: Vec<(usize, (u64, u64))> = Vec::new();
    for round in 0..rounds {
        for (i, case) in CASES.iter().enumerate() {
            n += 1;
            let mut faults = Faults::default();
            (case.fault)(&mut faults);
            let w = window(&hopscope, faults, incident_secs, rate, n).await;
            eprintln!("round {round}: {} window {:?}", case.name, w);
            incidents.push((i, w));
        }
    }
    // Everything the demo flushed is acknowledged; let the store catch up.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let ops = hopscope.get_ok("/api/services/demo-gateway/operations").await;
    let transfer = ops["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find(|o| o.contains("transfer"))
        .expect("the gateway's transfer operation")
        .to_owned();
    let encode = |s: &str| {
        s.replace('/', "%2F")
            .replace('{', "%7B")
            .replace('}', "%7D")
            .replace(' ', "%20")
    };

    let mut tallies: Vec<Tally> = CASES.iter().map(|_| Tally::default()).collect();
    for &(i, (start, end)) in &incidents {
        let case = &CASES[i];
        let tally = &mut tallies[i];
        tally.windows += 1;
        let blame = hopscope
            .get_ok(&format!(
                "/api/v1/blame?service=demo-gateway&operation={}&start={start}&end={end}&baseline_start={}&baseline_end={}&limit=5000",
                encode(&transfer),
                baseline.0,
                baseline.1
            ))
            .await;
        let top = &blame["nodes"][0];
        let second = &blame["nodes"][1];
        if (case.blame_ok)(top) {
            tally.blame_hits += 1;
            let excess = |n: &Value| n["excess_us"].as_f64().unwrap_or(0.0);
            let margin = excess(top) / excess(second).max(1.0);
            if tally.closest.as_ref().is_none_or(|(m, _)| margin < *m) {
                tally.closest = Some((
                    margin,
                    format!(
                        "{} ({:.0} µs vs {:.0} µs)",
                        describe(second),
                        excess(top),
                        excess(second)
                    ),
                ));
            }
        } else {
            tally.blame_misses.push(format!(
                "top {} ({:.0} µs) over {} ({:.0} µs)",
                describe(top),
                top["excess_us"].as_f64().unwrap_or(0.0),
                describe(second),
                second["excess_us"].as_f64().unwrap_or(0.0)
            ));
        }

        let found = hopscope
            .get_ok(&format!(
                "/api/traces?service=demo-gateway&start={start}&end={end}&limit=100000"
            ))
            .await;
        for trace in found["data"].as_array().into_iter().flatten() {
            tally.traces += 1;
            if !(case.affected)(trace) {
                continue;
            }
            tally.affected += 1;
            let id = field(trace, "traceID");
            let analysis = hopscope.get_ok(&format!("/api/v1/traces/{id}/analysis")).await;
            let ok = (case.culprit_ok)(&analysis);
            let timed_out = caller_timed_out(trace);
            tally.timed_out += usize::from(timed_out);
            if ok {
                tally.culprit_hits += 1;
                *tally.hits.entry(describe_culprit(&analysis["culprit"])).or_default() += 1;
                tally.timed_out_hits += usize::from(timed_out);
            } else {
                *tally.misses.entry(describe_culprit(&analysis["culprit"])).or_default() += 1;
                if std::env::var("ACCURACY_VERBOSE").is_ok() {
                    eprintln!("miss {}: {id}: {}", case.name, analysis);
                }
            }
        }
    }

    let ratio = |a: usize, b: usize| {
        if b == 0 {
            "n/a".to_owned()
        } else {
            format!("{:.2} ({a}/{b})", a as f64 / b as f64)
        }
    };
    let mut table = String::from(
        "| fault | ground truth | incident windows | affected traces | culprit top-1 | blame top-1 |\n|---|---|---|---|---|---|\n",
    );
    for (case, t) in CASES.iter().zip(&tallies) {
        table.push_str(&format!(
            "| {} (`{}`) | {} | {} | {} of {} | {} | {} |\n",
            case.name,
            case.flag,
            case.truth,
            t.windows,
            t.affected,
            t.traces,
            ratio(t.culprit_hits, t.affected),
            ratio(t.blame_hits, t.windows)
        ));
    }
    let mut notes = String::new();
    for (case, t) in CASES.iter().zip(&tallies) {
        if t.timed_out > 0 {
            notes.push_str(&format!(
                "- {}: affected traces whose caller timed out: culprit top-1 {}\n",
                case.name,
                ratio(t.timed_out_hits, t.timed_out)
            ));
        }
        if t.hits.len() > 1 {
            let hits: Vec<String> = t.hits.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
            notes.push_str(&format!("- {}: right culprits: {}\n", case.name, hits.join("; ")));
        }
        if !t.misses.is_empty() {
            let misses: Vec<String> = t.misses.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
            notes.push_str(&format!("- {}: wrong culprits: {}\n", case.name, misses.join("; ")));
        }
        if let Some((margin, runner_up)) = &t.closest {
            notes.push_str(&format!(
                "- {}: closest blame runner-up: {runner_up}, top ahead ×{margin:.2}\n",
                case.name
            ));
        }
        for m in &t.blame_misses {
            notes.push_str(&format!("- {}: blame miss: {m}\n", case.name));
        }
    }
    let report = format!(
        "{table}\nrounds {rounds}, incident windows {incident_secs} s, baseline {baseline_secs} s, {rate} requests/s, blame entry operation demo-gateway `{transfer}`\n\n{notes}"
    );
    println!("\n{report}");
    if let Ok(path) = std::env::var("ACCURACY_OUT") {
        std::fs::write(path, &report).expect("write the report");
    }
}
