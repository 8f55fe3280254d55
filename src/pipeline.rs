//! The durable write path of the process: the write-ahead log, the sink the ingest path
//! appends to, and the feeder that moves the log into the store.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hopscope_collector::durable::{FeederStats, StoreFeeder, WalWriter};
use hopscope_collector::wal::Wal;
use hopscope_storage::SpanWriter;
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::config::HopscopeConfig;

/// Whether the store keeps what it was given across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMemory {
    /// The store forgets on restart (the embedded store): replay the whole retained log.
    Volatile,
    /// The store keeps its data (ClickHouse): replay only what was not committed.
    Persistent,
}

/// The opened write path; see [`Pipeline::open`].
pub struct Pipeline {
    /// The log.
    pub wal: Arc<Wal>,
    /// Where the ingest path appends accepted requests (`Ingest::new`).
    pub log: Arc<WalWriter>,
    /// The feeder's counters.
    pub feeder_stats: Arc<FeederStats>,
    feeder: StoreFeeder,
    replay_from: u64,
}

impl Pipeline {
    /// Opens the log under `<data_dir>/wal` (recovering from damage, which is logged) and
    /// prepares a feeder into `store` that starts where `memory` says.
    pub fn open(config: &HopscopeConfig, store: Arc<dyn SpanWriter>, memory: StoreMemory) -> anyhow::Result<Self> {
        let dir = config.data_dir.0.join("wal");
        let (wal, recovery) = Wal::open(&dir, config.wal.clone())
            .with_context(|| format!("cannot open the write-ahead log in {}", dir.display()))?;
        let wal = Arc::new(wal);
        let replay_from = match memory {
            StoreMemory::Volatile => wal.first_seq(),
            StoreMemory::Persistent => wal.committed() + 1,
        };
        // Each damaged place was already logged by `Wal::open`.
        info!(
            records = recovery.records,
            damaged = recovery.damaged.len(),
            replay_from,
            next_seq = recovery.next_seq,
            "write-ahead log ready"
        );
        let appended = Arc::new(Notify::new());
        let log = Arc::new(WalWriter::new(Arc::clone(&wal), Arc::clone(&appended)));
        let feeder = StoreFeeder::new(Arc::clone(&wal), store, appended, config.feeder.clone());
        let feeder_stats = feeder.stats();
        Ok(Self {
            wal,
            log,
            feeder_stats,
            feeder,
            replay_from,
        })
    }

    /// Starts the feeder (and, for interval durability, the periodic flush). The returned
    /// task ends after `shutdown` completes and the log is drained.
    pub fn spawn(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        if let Some(interval) = self.wal.config().durability.interval() {
            let wal = Arc::clone(&self.wal);
            tokio::spawn(periodic_sync(wal, interval));
        }
        let replay_from = self.replay_from;
        tokio::spawn(self.feeder.run(replay_from, shutdown))
    }
}

async fn periodic_sync(wal: Arc<Wal>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        let wal = Arc::clone(&wal);
        match tokio::task::spawn_blocking(move || wal.sync()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => warn!(error = %err, "write-ahead log flush failed"),
            Err(_) => return,
        }
    }
}
