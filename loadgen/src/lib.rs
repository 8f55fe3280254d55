//! `hopscope loadgen`: drives any OTLP trace endpoint (hopscope, rotel, an OpenTelemetry
//! collector) with a seeded, realistic workload and reports acknowledged spans per second
//! and acknowledgement latency.
//!
//! ```text
//! workload::generate ─▶ pool of encoded bodies ─▶ N workers, one connection each
//!                                                  instantiate (new trace ids, now)
//!                                                  send, wait for the ack, record latency
//! reporter: one progress line per second on stderr; summary (text or JSON) on stdout
//! ```
//!
//! With `--rate` the workers send on a fixed schedule and latency is measured from the
//! scheduled send time (so a stalled server shows up as latency, not as fewer samples);
//! without it every worker sends its next request as soon as the previous one was acked.
//! `--watch-pid` adds the target process's CPU time (utime+stime from `/proc/<pid>/stat`)
//! and peak RSS (`VmHWM`) to the summary.

mod process;
mod sender;
pub mod workload;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use serde::Serialize;

pub use process::ProcessSample;
use sender::{Outcome, Sender};
pub use workload::{Body, WorkloadConfig};

/// Wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// OTLP/gRPC (`TraceService/Export`).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (`POST /v1/traces`).
    Http,
}

/// Summary format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable lines.
    Text,
    /// One JSON object.
    Json,
}

/// Options of `hopscope loadgen`.
#[derive(Debug, Clone, Args)]
pub struct LoadgenArgs {
    /// Target endpoint [default: http://127.0.0.1:4317 for grpc, http://127.0.0.1:4318
    /// for http]; for http, `/v1/traces` is appended unless present.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Wire protocol.
    #[arg(long, value_enum, default_value_t = Protocol::Grpc)]
    pub protocol: Protocol,
    /// Target spans per second over all connections; 0 sends flat out.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Connections (one worker, one request in flight each).
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds sent before measuring starts (not counted in the summary).
    #[arg(long, default_value_t = 0.0)]
    pub warmup: f64,
    /// Workload seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Spans per request (whole traces are added until this is reached).
    #[arg(long, default_value_t = 500)]
    pub spans_per_request: usize,
    /// Distinct pre-encoded bodies (each send still gets new trace ids and timestamps).
    #[arg(long, default_value_t = 64)]
    pub pool: usize,
    /// Report CPU time and peak RSS of this process (the target) in the summary.
    #[arg(long)]
    pub watch_pid: Option<u32>,
    /// After sending, poll this Prometheus URL until `hopscope_wal_backlog_records` is 0
    /// (at most 120 s) before taking the final CPU sample, so the CPU figure includes
    /// moving the spans into the store.
    #[arg(long)]
    pub drain_metrics_url: Option<String>,
    /// Summary format (on stdout).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
}

/// Latency percentiles, milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// CPU and memory of the watched process over the measured window.
#[derive(Debug, Clone, Serialize)]
pub struct TargetUsage {
    /// The process.
    pub pid: u32,
    /// CPU seconds (user + system) used while sending.
    pub cpu_seconds: f64,
    /// Average cores busy while sending.
    pub cores_busy: f64,
    /// Acknowledged spans per CPU second while sending.
    pub spans_per_cpu_second: f64,
    /// CPU seconds including the drain after sending (when `--drain-metrics-url` is set).
    pub cpu_seconds_with_drain: Option<f64>,
    /// Acknowledged spans per CPU second including the drain.
    pub spans_per_cpu_second_with_drain: Option<f64>,
    /// Seconds the drain took.
    pub drain_seconds: Option<f64>,
    /// Peak resident set size (VmHWM), MiB, at the end.
    pub peak_rss_mib: f64,
    /// Resident set size (VmRSS), MiB, at the end.
    pub rss_mib: f64,
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Protocol used.
    pub protocol: Protocol,
    /// Where the load went.
    pub endpoint: String,
    /// Connections.
    pub connections: usize,
    /// Requested spans/s (0: flat out).
    pub target_rate: u64,
    /// Measured seconds (after warm-up).
    pub seconds: f64,
    /// Requests acknowledged.
    pub requests: u64,
    /// Spans acknowledged (sent minus rejected, in acknowledged requests).
    pub acked_spans: u64,
    /// Spans the target rejected as invalid.
    pub rejected_spans: u64,
    /// Requests refused with back-pressure.
    pub throttled: u64,
    /// Requests that failed otherwise.
    pub errors: u64,
    /// The first error message, if any.
    pub first_error: Option<String>,
    /// Acknowledged spans per second.
    pub acked_spans_per_second: f64,
    /// Request bytes per second (acknowledged requests).
    pub bytes_per_second: f64,
    /// Average spans per request.
    pub spans_per_request: f64,
    /// Average request size, bytes.
    pub bytes_per_request: f64,
    /// Acknowledgement latency.
    pub latency_ms: Latency,
    /// The watched process, if any.
    pub target: Option<TargetUsage>,
}

/// Counters and histograms the workers share with the reporter.
struct Shared {
    seq: AtomicU64,
    requests: AtomicU64,
    acked: AtomicU64,
    rejected: AtomicU64,
    bytes: AtomicU64,
    throttled: AtomicU64,
    errors: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
    /// Per worker: (since the last progress line, since measuring started).
    histograms: Vec<std::sync::Mutex<(Histogram<u64>, Histogram<u64>)>>,
    measuring: std::sync::atomic::AtomicBool,
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 10 min, 3 significant digits; values above are clamped.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant, valid histogram bounds")
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Runs the load and returns (and prints) the summary.
pub async fn run(args: LoadgenArgs) -> anyhow::Result<Summary> {
    let endpoint = args.endpoint.clone().unwrap_or_else(|| match args.protocol {
        Protocol::Grpc => "http://127.0.0.1:4317".to_owned(),
        Protocol::Http => "http://127.0.0.1:4318".to_owned(),
    });
    anyhow::ensure!(args.connections > 0, "--connections must be at least 1");
    anyhow::ensure!(args.duration > 0.0, "--duration must be positive");
    let config = WorkloadConfig {
        seed: args.seed,
        pool: args.pool,
        spans_per_request: args.spans_per_request,
    };
    let pool = Arc::new(tokio::task::spawn_blocking(move || workload::generate(&config)).await?);
    let avg_bytes = pool.iter().map(|b| b.bytes.len()).sum::<usize>() / pool.len();
    if !args.quiet {
        eprintln!(
            "loadgen: {} bodies, ~{} spans and ~{} KiB each; {:?} to {endpoint}, {} connection(s), {}",
            pool.len(),
            pool.iter().map(|b| b.spans).sum::<u64>() / pool.len() as u64,
            avg_bytes / 1024,
            args.protocol,
            args.connections,
            if args.rate == 0 {
                "flat out".to_owned()
            } else {
                format!("{} spans/s", args.rate)
            },
        );
    }
    let mut senders = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        senders.push(Sender::connect(args.protocol, &endpoint).await?);
    }
    let shared = Arc::new(Shared {
        // Sequence numbers (the high half of every trace id) start at the clock in
        // microseconds, so that runs one after another (e.g. `scripts/bench-query.sh`
        // loading in rounds) never reuse a trace id: a run sends far fewer than one
        // request per microsecond.
        seq: AtomicU64::new(now_ns() / 1_000),
        requests: AtomicU64::new(0),
        acked: AtomicU64::new(0),
        rejected: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        throttled: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        first_error: std::sync::Mutex::new(None),
        histograms: (0..args.connections)
            .map(|_| std::sync::Mutex::new((histogram(), histogram())))
            .collect(),
        measuring: std::sync::atomic::AtomicBool::new(args.warmup <= 0.0),
    });

    let started = Instant::now();
    let measure_from = started + Duration::from_secs_f64(args.warmup.max(0.0));
    let deadline = measure_from + Duration::from_secs_f64(args.duration);
    let per_worker_rate = (args.rate > 0).then(|| args.rate as f64 / args.connections as f64);
    let mut workers = tokio::task::JoinSet::new();
    for (index, sender) in senders.into_iter().enumerate() {
        let (pool, shared) = (Arc::clone(&pool), Arc::clone(&shared));
        let stride = args.connections;
        workers.spawn(worker(index, stride, sender, pool, shared, deadline, per_worker_rate));
    }

    // Progress once per second; the measured window starts after warm-up.
    let mut cpu_start = None;
    if args.warmup <= 0.0 {
        cpu_start = args.watch_pid.and_then(process::sample);
    }
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let mut last_acked = 0u64;
    let mut last_tick = Instant::now();
    let mut measured_start = if args.warmup <= 0.0 { Some(started) } else { None };
    while !workers.is_empty() {
        tokio::select! {
            _ = ticker.tick() => {
                if measured_start.is_none() && Instant::now() >= measure_from {
                    reset_totals(&shared);
                    shared.measuring.store(true, Ordering::Relaxed);
                    cpu_start = args.watch_pid.and_then(process::sample);
                    measured_start = Some(Instant::now());
                    last_acked = 0;
                }
                let acked = shared.acked.load(Ordering::Relaxed);
                let elapsed = last_tick.elapsed().as_secs_f64();
                last_tick = Instant::now();
                let interval = take_interval(&shared);
                if !args.quiet {
                    let q = |p: f64| interval.value_at_quantile(p) as f64 / 1000.0;
                    eprintln!(
                        "[{:>5.0}s{}] {:>9.0} spans/s acked  {:>6} reqs  p50 {:>7.2} ms  p99 {:>7.2} ms  throttled {}  errors {}",
                        started.elapsed().as_secs_f64(),
                        if measured_start.is_none() { " warm-up" } else { "" },
                        acked.saturating_sub(last_acked) as f64 / elapsed,
                        interval.len(),
                        q(0.5),
                        q(0.99),
                        shared.throttled.load(Ordering::Relaxed),
                        shared.errors.load(Ordering::Relaxed),
                    );
                }
                last_acked = acked;
            }
            joined = workers.join_next() => {
                if let Some(Err(err)) = joined {
                    anyhow::bail!("a loadgen worker failed: {err}");
                }
            }
        }
    }
    let seconds = measured_start.map_or(args.duration, |s| s.elapsed().as_secs_f64());
    let cpu_end = args.watch_pid.and_then(process::sample);

    let mut total = histogram();
    for cell in &shared.histograms {
        if let Ok(guard) = cell.lock() {
            total.add(&guard.1).ok();
        }
    }
    let requests = shared.requests.load(Ordering::Relaxed);
    let acked = shared.acked.load(Ordering::Relaxed);
    let bytes = shared.bytes.load(Ordering::Relaxed);
    let q = |p: f64| total.value_at_quantile(p) as f64 / 1000.0;
    let mut target = None;
    if let (Some(pid), Some(start), Some(end)) = (args.watch_pid, cpu_start, cpu_end) {
        let cpu = end.cpu_seconds - start.cpu_seconds;
        let mut usage = TargetUsage {
            pid,
            cpu_seconds: cpu,
            cores_busy: cpu / seconds,
            spans_per_cpu_second: acked as f64 / cpu.max(1e-9),
            cpu_seconds_with_drain: None,
            spans_per_cpu_second_with_drain: None,
            drain_seconds: None,
            peak_rss_mib: end.peak_rss_kib as f64 / 1024.0,
            rss_mib: end.rss_kib as f64 / 1024.0,
        };
        if let Some(url) = &args.drain_metrics_url {
            let drain_started = Instant::now();
            process::wait_drained(url, Duration::from_secs(120)).await;
            if let Some(drained) = process::sample(pid) {
                let cpu = drained.cpu_seconds - start.cpu_seconds;
                usage.cpu_seconds_with_drain = Some(cpu);
                usage.spans_per_cpu_second_with_drain = Some(acked as f64 / cpu.max(1e-9));
                usage.drain_seconds = Some(drain_started.elapsed().as_secs_f64());
                usage.peak_rss_mib = drained.peak_rss_kib as f64 / 1024.0;
                usage.rss_mib = drained.rss_kib as f64 / 1024.0;
            }
        }
        target = Some(usage);
    }
    let summary = Summary {
        protocol: args.protocol,
        endpoint,
        connections: args.connections,
        target_rate: args.rate,
        seconds,
        requests,
        acked_spans: acked,
        rejected_spans: shared.rejected.load(Ordering::Relaxed),
        throttled: shared.throttled.load(Ordering::Relaxed),
        errors: shared.errors.load(Ordering::Relaxed),
        first_error: shared.first_error.lock().ok().and_then(|e| e.clone()),
        acked_spans_per_second: acked as f64 / seconds,
        bytes_per_second: bytes as f64 / seconds,
        spans_per_request: acked as f64 / requests.max(1) as f64,
        bytes_per_request: bytes as f64 / requests.max(1) as f64,
        latency_ms: Latency {
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: total.max() as f64 / 1000.0,
            mean: total.mean() / 1000.0,
        },
        target,
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
        Format::Text => print!("{}", summary.to_text()),
    }
    Ok(summary)
}

fn reset_totals(shared: &Shared) {
    for counter in [
        &shared.requests,
        &shared.acked,
        &shared.rejected,
        &shared.bytes,
        &shared.throttled,
        &shared.errors,
    ] {
        counter.store(0, Ordering::Relaxed);
    }
    for cell in &shared.histograms {
        if let Ok(mut guard) = cell.lock() {
            guard.1.reset();
        }
    }
}

fn take_interval(shared: &Shared) -> Histogram<u64> {
    let mut merged = histogram();
    for cell in &shared.histograms {
        if let Ok(mut guard) = cell.lock() {
            merged.add(&guard.0).ok();
            guard.0.reset();
        }
    }
    merged
}

async fn worker(
    index: usize,
    stride: usize,
    mut sender: Sender,
    pool: Arc<Vec<Body>>,
    shared: Arc<Shared>,
    deadline: Instant,
    per_worker_rate: Option<f64>,
) {
    let mut next = Instant::now();
    let mut k = index;
    loop {
        let body = &pool[k % pool.len()];
        k += stride;
        let intended = match per_worker_rate {
            Some(rate) => {
                let at = next;
                next += Duration::from_secs_f64(body.spans as f64 / rate);
                tokio::time::sleep_until(at.into()).await;
                at
            }
            None => Instant::now(),
        };
        if intended >= deadline {
            return;
        }
        let seq = shared.seq.fetch_add(1, Ordering::Relaxed);
        let payload = body.instantiate(seq, now_ns());
        let size = payload.len() as u64;
        let outcome = sender.send(payload).await;
        let micros = intended.elapsed().as_micros() as u64;
        match outcome {
            Outcome::Acked { rejected } => {
                shared.requests.fetch_add(1, Ordering::Relaxed);
                shared
                    .acked
                    .fetch_add(body.spans.saturating_sub(rejected), Ordering::Relaxed);
                shared.rejected.fetch_add(rejected, Ordering::Relaxed);
                shared.bytes.fetch_add(size, Ordering::Relaxed);
                if let Ok(mut guard) = shared.histograms[index].lock() {
                    let value = micros.clamp(1, 600_000_000);
                    guard.0.record(value).ok();
                    if shared.measuring.load(Ordering::Relaxed) {
                        guard.1.record(value).ok();
                    }
                }
            }
            Outcome::Throttled => {
                shared.throttled.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Outcome::Failed(message) => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = shared.first_error.lock() {
                    first.get_or_insert(message);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

impl Summary {
    /// The human-readable summary.
    pub fn to_text(&self) -> String {
        let l = &self.latency_ms;
        let mut out = format!(
            "protocol {:?}, endpoint {}, {} connection(s), rate {}\n\
             measured {:.1} s: {} requests, {} spans acked ({:.0} spans/s, {:.1} MiB/s), {} rejected, {} throttled, {} errors\n\
             ack latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  mean {:.2}\n",
            self.protocol,
            self.endpoint,
            self.connections,
            if self.target_rate == 0 {
                "flat out".to_owned()
            } else {
                format!("{} spans/s", self.target_rate)
            },
            self.seconds,
            self.requests,
            self.acked_spans,
            self.acked_spans_per_second,
            self.bytes_per_second / (1024.0 * 1024.0),
            self.rejected_spans,
            self.throttled,
            self.errors,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            l.mean,
        );
        if let Some(error) = &self.first_error {
            out.push_str(&format!("first error: {error}\n"));
        }
        if let Some(t) = &self.target {
            out.push_str(&format!(
                "target pid {}: {:.2} CPU s ({:.2} cores), {:.0} spans per CPU second, peak RSS {:.1} MiB, RSS {:.1} MiB\n",
                t.pid, t.cpu_seconds, t.cores_busy, t.spans_per_cpu_second, t.peak_rss_mib, t.rss_mib
            ));
            if let (Some(cpu), Some(rate), Some(drain)) = (
                t.cpu_seconds_with_drain,
                t.spans_per_cpu_second_with_drain,
                t.drain_seconds,
            ) {
                out.push_str(&format!("  including the drain into the store ({drain:.1} s): {cpu:.2} CPU s, {rate:.0} spans per CPU second\n"));
            }
        }
        out
    }
}
