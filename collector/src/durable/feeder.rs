//! Stage 4 of the collector: moves records from the write-ahead log into the store, in
//! order, committing the log position after each successful write.
//!
//! The feeder is the only place on the way to a store that batches and retries: it cuts a
//! batch of records (up to `max_batch_spans` worth of payload, or exactly the range of a
//! recorded intent after a crash), decodes it on the blocking pool (or hands the encoded
//! records to a store that reads them in place), makes one
//! [`SpanWriter`](hopscope_storage::SpanWriter) call per batch, retries a retryable
//! failure of that call with capped exponential backoff for as long as it takes (the log
//! holds the spans meanwhile), and commits the log only after success. Stores do not
//! batch or retry behind it (the trait's contract).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hopscope_schemas::SpanRecord;
use hopscope_storage::otlp_bodies::decode_all;
use hopscope_storage::{OtlpWrite, SpanWriter};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tracing::{error, info, warn};

use crate::wal::{Wal, WalReader};

/// How the feeder batches and retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeederConfig {
    /// Most spans handed to the store in one `write_spans` call (several log records are
    /// merged up to this).
    pub max_batch_spans: usize,
    /// First retry delay after a retryable store error, in milliseconds; doubles per
    /// attempt.
    pub retry_initial_ms: u64,
    /// Longest retry delay, in milliseconds. Retries never stop: acknowledged spans are
    /// not given up while the store may come back.
    pub retry_max_ms: u64,
    /// Once the feeder has caught up with the log, how long it waits after new records
    /// arrive before reading them, in milliseconds, so that a steady trickle of requests
    /// reaches the store as a few larger writes rather than one write per request (each
    /// write records its intent and commit, and a store works faster on a batch). Spans
    /// become queryable up to this much later. 0 reads at once.
    pub linger_ms: u64,
}

impl Default for FeederConfig {
    fn default() -> Self {
        Self {
            max_batch_spans: 10_000,
            retry_initial_ms: 100,
            retry_max_ms: 5_000,
            linger_ms: 20,
        }
    }
}

/// Upper bounds (seconds) of the insert latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// A Prometheus-style cumulative histogram of store write latency.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl LatencyHistogram {
    fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// `(upper bound in seconds, cumulative count)` per bucket, then the total count and
    /// the sum in seconds.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let buckets = LATENCY_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(bound, count)| (*bound, count.load(Ordering::Relaxed)))
            .collect();
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (buckets, self.count.load(Ordering::Relaxed), sum)
    }
}

/// Counters shared between the feeder task and `/metrics`.
#[derive(Debug, Default)]
pub struct FeederStats {
    /// Log records written to the store.
    pub records_written: AtomicU64,
    /// Spans written to the store.
    pub spans_written: AtomicU64,
    /// Store writes retried after a retryable error.
    pub retries: AtomicU64,
    /// Spans the store refused permanently (bad data or schema): the only spans that can
    /// be lost after acknowledgement, each logged as an error.
    pub spans_dropped: AtomicU64,
    /// Records whose payload failed to decode (damage the checksum did not catch).
    pub records_undecodable: AtomicU64,
    /// True once everything that was in the log at start-up has been written.
    pub caught_up: AtomicBool,
    /// Store write latency.
    pub insert_latency: LatencyHistogram,
}

/// The feeder task; see the module doc.
pub struct StoreFeeder {
    wal: Arc<Wal>,
    store: Arc<dyn SpanWriter>,
    appended: Arc<Notify>,
    config: FeederConfig,
    stats: Arc<FeederStats>,
}

impl StoreFeeder {
    /// A feeder from `wal` into `store`, woken by `appended`.
    pub fn new(wal: Arc<Wal>, store: Arc<dyn SpanWriter>, appended: Arc<Notify>, config: FeederConfig) -> Self {
        Self {
            wal,
            store,
            appended,
            config,
            stats: Arc::new(FeederStats::default()),
        }
    }

    /// The counters, for monitoring.
    pub fn stats(&self) -> Arc<FeederStats> {
        Arc::clone(&self.stats)
    }

    /// Runs from log position `from` until `shutdown` completes; then writes whatever is
    /// already in the log (the receivers have stopped by then) and returns. The caller
    /// bounds how long that final drain may take.
    ///
    /// Two stages overlap: while one batch is written to the store, the next one is read
    /// from the log and decoded on the blocking pool. Only the written batch has an intent
    /// recorded and is committed, strictly in log order.
    pub async fn run(self, from: u64, shutdown: impl Future<Output = ()> + Send) {
        let startup_end = self.wal.stats().next_seq;
        // A batch that was being written when the process stopped is replayed exactly as
        // it was cut, so a store deduplicating whole batches recognises it.
        let replay_until = self
            .wal
            .intent()
            .filter(|(first, _)| *first == from)
            .map(|(_, last)| last);
        let mut next = self.prepare(self.wal.reader(from), replay_until);
        let mut stopping = false;
        tokio::pin!(shutdown);
        info!(from, startup_end, "store feeder started");
        loop {
            let batch = match next.await {
                Ok(Ok(batch)) => batch,
                Ok(Err(err)) => {
                    error!(error = %err, "store feeder cannot read the write-ahead log; stopping");
                    return;
                }
                Err(err) => {
                    error!(error = %err, "store feeder read task failed; stopping");
                    return;
                }
            };
            let Prepared {
                reader,
                seqs,
                bodies,
                decoded,
            } = batch;
            let position = reader.position();
            if position >= startup_end && !self.stats.caught_up.swap(true, Ordering::Relaxed) {
                info!(position, "store feeder caught up with the log found at start-up");
            }
            if seqs.is_empty() {
                if stopping {
                    info!("store feeder drained the log");
                    return;
                }
                let appended = tokio::select! {
                    () = self.appended.notified() => true,
                    () = tokio::time::sleep(Duration::from_millis(250)) => false,
                    () = &mut shutdown, if !stopping => {
                        stopping = true;
                        false
                    }
                };
                if appended && self.config.linger_ms > 0 {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(self.config.linger_ms)) => {}
                        () = &mut shutdown, if !stopping => stopping = true,
                    }
                }
                next = self.prepare(reader, None);
                continue;
            }
            next = self.prepare(reader, None);
            let first_seq = seqs.first().copied().unwrap_or(0);
            let last_seq = seqs.last().copied().unwrap_or(0);
            let wal = Arc::clone(&self.wal);
            match tokio::task::spawn_blocking(move || wal.set_intent(first_seq, last_seq)).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    warn!(error = %err, "cannot record the batch intent; a crash now may duplicate it in a batch-deduplicating store")
                }
                Err(err) => warn!(error = %err, "intent task failed"),
            }
            self.write_with_retry(&seqs, &bodies, decoded).await;
            let wal = Arc::clone(&self.wal);
            match tokio::task::spawn_blocking(move || wal.commit(last_seq)).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    warn!(error = %err, last_seq, "cannot commit the log position; records will be replayed")
                }
                Err(err) => warn!(error = %err, "commit task failed"),
            }
        }
    }

    /// Starts reading the next batch ([`read_batch`]) on the blocking pool, and decoding
    /// it there too unless the store reads encoded requests itself
    /// ([`SpanWriter::reads_otlp`]).
    fn prepare(&self, reader: WalReader, until: Option<u64>) -> tokio::task::JoinHandle<Result<Prepared, String>> {
        let max_bytes = self.config.max_batch_spans.max(1) * 512;
        let decode = !self.store.reads_otlp();
        tokio::task::spawn_blocking(move || {
            let (reader, records) = read_batch(reader, until, max_bytes)?;
            let (seqs, bodies): (Vec<u64>, Vec<Bytes>) = records.into_iter().unzip();
            let decoded = decode.then(|| decode_all(&bodies));
            Ok(Prepared {
                reader,
                seqs,
                bodies: bodies.into(),
                decoded,
            })
        })
    }

    /// One attempt: the decoded spans when given, else the encoded bodies.
    async fn write_once(&self, bodies: &Arc<[Bytes]>, decoded: Option<Decoded>) -> hopscope_storage::Result<OtlpWrite> {
        let Some((spans, undecodable)) = decoded else {
            return self.store.write_otlp(Arc::clone(bodies)).await;
        };
        let count = spans.len() as u64;
        if count > 0 {
            self.store.write_spans(spans).await?;
        }
        Ok(OtlpWrite {
            spans: count,
            undecodable,
        })
    }

    /// Writes the records' spans, retrying retryable errors with capped exponential
    /// backoff for as long as it takes; a permanent refusal is logged and counted.
    /// `decoded` are the records' spans (and undecodable records) for the first attempt,
    /// when the store takes decoded spans; otherwise, and on retries, the store gets the
    /// encoded bodies ([`SpanWriter::write_otlp`], which decodes for stores that do not
    /// read them in place).
    async fn write_with_retry(&self, seqs: &[u64], bodies: &Arc<[Bytes]>, mut decoded: Option<Decoded>) {
        let mut delay = Duration::from_millis(self.config.retry_initial_ms.max(1));
        let max_delay = Duration::from_millis(self.config.retry_max_ms.max(1));
        for attempt in 1u64.. {
            let started = Instant::now();
            match self.write_once(bodies, decoded.take()).await {
                Ok(written) => {
                    self.stats.insert_latency.observe(started.elapsed());
                    self.stats
                        .records_written
                        .fetch_add(seqs.len() as u64, Ordering::Relaxed);
                    self.stats.spans_written.fetch_add(written.spans, Ordering::Relaxed);
                    for (i, err) in written.undecodable {
                        self.stats.records_undecodable.fetch_add(1, Ordering::Relaxed);
                        let seq = seqs.get(i).copied().unwrap_or_default();
                        error!(seq, error = %err, "write-ahead log record does not decode; skipped");
                    }
                    return;
                }
                Err(err) if err.is_retryable() => {
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    warn!(attempt, error = %err, delay_ms = delay.as_millis() as u64, "store write failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(max_delay);
                }
                Err(err) => {
                    // Rare: count what was refused by decoding the bodies once more.
                    let count = decode_all(bodies).0.len() as u64;
                    self.stats.spans_dropped.fetch_add(count, Ordering::Relaxed);
                    error!(spans = count, error = %err, "store refused spans permanently; they are dropped");
                    return;
                }
            }
        }
    }
}

/// A record read from the log: its sequence number and payload.
type LogRecord = (u64, Bytes);

/// Decoded spans of a batch and its undecodable records (index, error).
type Decoded = (Vec<SpanRecord>, Vec<(usize, String)>);

/// A batch read from the log (and decoded, for a store that takes decoded spans), with
/// the reader positioned after it.
struct Prepared {
    reader: WalReader,
    seqs: Vec<u64>,
    bodies: Arc<[Bytes]>,
    decoded: Option<Decoded>,
}

/// Reads records until about `max_bytes` of payload or the end of the log; with `until`,
/// exactly the records up to that sequence number (the replay of a recorded intent).
/// Blocking.
fn read_batch(
    mut reader: WalReader,
    until: Option<u64>,
    max_bytes: usize,
) -> Result<(WalReader, Vec<LogRecord>), String> {
    let mut records = Vec::new();
    let mut bytes = 0;
    loop {
        let more = match until {
            Some(last) => reader.position() <= last,
            None => bytes < max_bytes,
        };
        if !more {
            break;
        }
        match reader.next_record() {
            Ok(Some((seq, payload))) => {
                bytes += payload.len();
                records.push((seq, payload));
            }
            Ok(None) => break,
            Err(err) => return Err(err.to_string()),
        }
    }
    Ok((reader, records))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use hopscope_storage::Result;

    use super::*;
    use crate::wal::WalConfig;

    /// Records how many log records each store write carried.
    #[derive(Default)]
    struct Recorder {
        writes: Mutex<Vec<usize>>,
    }

    #[async_trait]
    impl SpanWriter for Recorder {
        async fn write_spans(&self, _spans: Vec<SpanRecord>) -> Result<()> {
            Ok(())
        }

        async fn write_otlp(&self, bodies: Arc<[Bytes]>) -> Result<OtlpWrite> {
            self.writes.lock().unwrap().push(bodies.len());
            Ok(OtlpWrite::default())
        }

        fn reads_otlp(&self) -> bool {
            true
        }
    }

    /// Appends two records `gap` apart once the feeder has caught up; returns the
    /// records of each store write.
    async fn writes_for(linger_ms: u64, gap: Duration) -> Vec<usize> {
        let dir = tempfile::tempdir().unwrap();
        let wal = Arc::new(Wal::open(dir.path(), WalConfig::default()).unwrap().0);
        let store = Arc::new(Recorder::default());
        let appended = Arc::new(Notify::new());
        let config = FeederConfig {
            linger_ms,
            ..FeederConfig::default()
        };
        let feeder = StoreFeeder::new(Arc::clone(&wal), store.clone(), Arc::clone(&appended), config);
        let stats = feeder.stats();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(feeder.run(1, async {
            let _ = stopped.await;
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
        for _ in 0..2 {
            wal.append(b"not a request; the recorder does not read it").unwrap();
            appended.notify_one();
            tokio::time::sleep(gap).await;
        }
        while stats.records_written.load(Ordering::Relaxed) < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.send(()).unwrap();
        task.await.unwrap();
        store.writes.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn a_trickle_of_records_is_written_together_after_the_linger() {
        assert_eq!(writes_for(500, Duration::from_millis(20)).await, vec![2]);
        assert_eq!(writes_for(0, Duration::from_millis(300)).await, vec![1, 1]);
    }
}
