//! The write-ahead log: an append-only, checksummed, segmented log on local disk.
//!
//! The collector acknowledges an OTLP request only after it is appended here as one
//! record; the store feeder reads the log, writes to the store, and commits its position
//! only after the store accepted the spans. Nothing acknowledged is lost when the process
//! dies, the store is down, or both.
//!
//! # Files of this module, one stage each
//!
//! - [`record`]: the frame of one record inside a segment file;
//! - `writer`: appending ([`Wal::append`]), flushing, rolling to a new segment;
//! - `reader`: [`WalReader`], reading records in order from the files or the memory tail;
//! - `recovery`: [`Wal::open`], scanning the segments and cutting out damage;
//! - `retention`: commits, the batch intent, and deleting segments no longer needed;
//! - [`fs`]: the file system trait all I/O goes through ([`fs::StdFs`] in production;
//!   a fault-injecting one in the tests);
//! - `marker`, `tail`, `config`: the commit/intent files, the in-memory tail, settings.
//!
//! # On disk
//!
//! A directory holding:
//! - segment files `{first_seq:020}.wal`, each `MAGIC record*` (framing in [`record`]);
//!   records carry consecutive sequence numbers starting at 1 (gaps only where corruption
//!   was cut out or a failed append could not be cut back);
//! - `commit`: the highest committed sequence number (`seq:u64le`), replaced in place
//!   so that a torn write leaves the previous value (`marker`: two checksummed slots);
//! - `intent`: the sequence range the feeder is about to hand to the store
//!   (`first:u64le last:u64le`), kept the same way. After a crash between a store write
//!   and its commit, the feeder replays exactly that range as one batch, so a store that
//!   deduplicates whole batches (ClickHouse's insert deduplication token) sees the same
//!   batch again rather than a differently cut one.
//!
//! # In memory
//!
//! [`Wal::append_shared`] also keeps the newest records' payloads in memory (up to
//! `memory_tail_bytes`, `tail`); the reader following the appends takes them from there
//! instead of reading the file back. It is only a cache: a reader gets the same bytes
//! either way.
//!
//! # Guarantees
//!
//! - [`Wal::append`] returns `Ok` only after the record is written to the file (and
//!   flushed to the device as [`Durability`] says). A record whose append returned `Ok`
//!   is read back by every [`WalReader`] and after every reopen, until retention deletes
//!   it — and retention only deletes segments whose records are all committed.
//! - A failed append (disk full, a failed write or flush) returns the error and leaves no
//!   record: the partial frame is cut off again and the sequence number is reused. If the
//!   cut itself fails, the sequence number is burnt instead and the next append starts a
//!   new segment, so later records never follow a damaged frame; a reader then skips the
//!   damaged frame, or (when its bytes did all reach the file) returns a record that was
//!   never acknowledged. A client retries what was not acknowledged, and the stores
//!   ignore spans they already hold.
//! - Appends are serialised: sequence numbers follow the order appends returned in.
//! - Start-up never fails because of damaged data. Opening scans every segment. A complete
//!   frame that fails its checksum (a bit flip) is skipped, and the records after it are
//!   kept; a torn frame (a crash mid-write) or an impossible length ends the segment,
//!   which is cut there. Each is logged and returned in [`Recovery::damaged`]; readers
//!   skip the same frames. Only records that were never acknowledged (torn) or that the
//!   disk damaged are lost.
//! - A missing or damaged `commit` file reads as "nothing committed": records are then
//!   replayed again, which the stores absorb because writes are idempotent per span.
//! - Each open starts a new active segment, so a damaged tail is never appended to.
//! - Back-pressure: when the bytes of segments holding uncommitted records would pass
//!   `max_backlog_bytes`, [`Wal::append`] fails with [`WalError::Full`] instead of
//!   growing (the limit is counted per segment, so it is exceeded by at most one segment).

mod config;
#[cfg(test)]
pub(crate) mod fault;
pub mod fs;
mod marker;
mod reader;
pub mod record;
mod recovery;
mod retention;
mod tail;
mod writer;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use parking_lot::Mutex;

use crate::body_pool::BodyPool;
pub use config::{Durability, WalConfig};
use fs::{WalFile, WalFs};
use marker::Marker;
pub use reader::WalReader;
use tail::Tail;

const COMMIT_FILE: &str = "commit";
const INTENT_FILE: &str = "intent";
const SEGMENT_SUFFIX: &str = ".wal";

/// What can go wrong with the log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// The uncommitted backlog is at its limit; retry after the writer drained some.
    #[error("write-ahead log backlog is full ({backlog_bytes} of {limit_bytes} bytes uncommitted)")]
    Full {
        /// Bytes of segments that hold uncommitted records.
        backlog_bytes: u64,
        /// The configured limit.
        limit_bytes: u64,
    },
    /// A file operation failed.
    #[error("write-ahead log i/o error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// Result alias for log operations.
pub type Result<T, E = WalError> = std::result::Result<T, E>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One damaged place found at open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The segment file.
    pub path: PathBuf,
    /// Where the damage starts.
    pub offset: u64,
    /// Bytes lost: one record's frame when it was skipped, the rest of the file when the
    /// file was cut there.
    pub bytes_lost: u64,
    /// What was found there.
    pub reason: String,
    /// True when the file was cut at `offset` (a torn tail, or a damaged length field
    /// after which no frame boundary can be trusted); false when one complete frame that
    /// failed its checksum was skipped and the records after it kept.
    pub cut: bool,
}

/// What opening the log found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Valid records in the log.
    pub records: u64,
    /// Segment files kept.
    pub segments: usize,
    /// Damaged places cut out.
    pub damaged: Vec<Damage>,
    /// The committed position read from the `commit` file (0: none).
    pub committed: u64,
    /// The oldest sequence number still in the log (next_seq when empty).
    pub first_seq: u64,
    /// The sequence number the next append gets.
    pub next_seq: u64,
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WalStats {
    /// Segment files.
    pub segments: usize,
    /// Bytes in all segment files.
    pub bytes: u64,
    /// Bytes of segments that hold uncommitted records.
    pub backlog_bytes: u64,
    /// Records appended but not committed.
    pub backlog_records: u64,
    /// Sequence number of the next append.
    pub next_seq: u64,
    /// Highest committed sequence number.
    pub committed: u64,
    /// Payload bytes of the newest records held in memory for the reader.
    pub memory_tail_bytes: u64,
}

#[derive(Debug)]
struct Segment {
    first_seq: u64,
    /// One past the last record in it.
    next_seq: u64,
    bytes: u64,
    path: PathBuf,
    created: SystemTime,
}

impl Segment {
    fn has_uncommitted(&self, committed: u64) -> bool {
        self.next_seq > self.first_seq && self.next_seq - 1 > committed
    }
}

#[derive(Debug)]
struct State {
    /// Oldest first; the last one is the active segment.
    segments: Vec<Segment>,
    active: Box<dyn WalFile>,
    /// The active segment's end may hold a partial frame a failed append could not cut
    /// off: the next append starts a new segment.
    needs_roll: bool,
    next_seq: u64,
    committed: u64,
    /// Where `committed` is kept.
    commit_file: Marker<8>,
    last_sync: Instant,
    unsynced: bool,
    /// The newest records, in memory for the reader that follows the appends.
    tail: Tail,
}

/// The write-ahead log. Share it as `Arc<Wal>`; every method is safe to call concurrently.
/// Methods do blocking file I/O: call them from blocking threads, not the async reactor
/// (the one exception, [`Wal::try_append_shared`] under [`Durability::Process`], says why).
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    config: WalConfig,
    fs: Arc<dyn WalFs>,
    state: Mutex<State>,
    intent_file: Mutex<Marker<16>>,
    /// Buffers readers read payloads into, reused once the store writer is done with
    /// them (as the receivers' bodies are).
    read_buffers: Arc<BodyPool>,
}

/// Idle read buffers kept ([`BodyPool`]).
const SPARE_READ_BUFFERS: usize = 8;

impl Wal {
    /// The configuration it was opened with.
    pub fn config(&self) -> &WalConfig {
        &self.config
    }

    /// Counters for monitoring.
    pub fn stats(&self) -> WalStats {
        let state = self.state.lock();
        WalStats {
            segments: state.segments.len(),
            bytes: state.segments.iter().map(|s| s.bytes).sum(),
            backlog_bytes: retention::backlog_bytes(&state),
            backlog_records: state.next_seq.saturating_sub(state.committed + 1),
            next_seq: state.next_seq,
            committed: state.committed,
            memory_tail_bytes: state.tail.bytes() as u64,
        }
    }

    /// The oldest sequence number still in the log.
    pub fn first_seq(&self) -> u64 {
        let state = self.state.lock();
        state
            .segments
            .iter()
            .find(|s| s.next_seq > s.first_seq)
            .map_or(state.next_seq, |s| s.first_seq)
    }

    /// The highest committed sequence number (0: none).
    pub fn committed(&self) -> u64 {
        self.state.lock().committed
    }
}

#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod tests;
