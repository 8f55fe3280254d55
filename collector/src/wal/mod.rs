//! The write-ahead log: an append-only, checksummed, segmented log on local disk.
//!
//! The collector acknowledges an OTLP request only after its spans are appended here; the
//! storage writer reads the log, writes to the store, and commits its position only after
//! the store accepted the spans. Nothing acknowledged is lost when the process dies, the
//! store is down, or both.
//!
//! # On disk
//!
//! A directory holding:
//! - segment files `{first_seq:020}.wal`, each `MAGIC record*` (framing in [`record`]);
//!   records carry consecutive sequence numbers starting at 1 (gaps only where corruption
//!   was cut out);
//! - `commit`: the highest committed sequence number (`seq:u64le`), replaced in place
//!   so that a torn write leaves the previous value ([`marker`]: two checksummed slots);
//! - `intent`: the sequence range the writer is about to hand to the store
//!   (`first:u64le last:u64le`), kept the same way. After a crash between a
//!   store write and its commit, the writer replays exactly that range as one batch, so a
//!   store that deduplicates whole batches (ClickHouse's insert deduplication token) sees
//!   the same batch again rather than a differently cut one.
//!
//! # In memory
//!
//! [`Wal::append_shared`] also keeps the newest records' payloads in memory (up to
//! `memory_tail_bytes`, [`tail`]); the reader following the appends takes them from
//! there instead of reading the file back. It is only a cache: a reader gets the same
//! bytes either way.
//!
//! # Guarantees
//!
//! - [`Wal::append`] returns only after the record is written to the file (and flushed to
//!   the device as [`Durability`] says). A record whose append returned is read back by
//!   every [`WalReader`] and after every reopen, until retention deletes it — and
//!   retention only deletes segments whose records are all committed.
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
mod marker;
pub mod record;
mod tail;

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use parking_lot::Mutex;
use tracing::{info, warn};

use crate::body_pool::BodyPool;
pub use config::{Durability, WalConfig};
use marker::Marker;
use record::{Decoded, HEADER_LEN, MAGIC};
use tail::{Tail, TailRecord};

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
    active: File,
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
    state: Mutex<State>,
    intent_file: Mutex<Marker<16>>,
    /// Buffers readers read payloads into, reused once the store writer is done with
    /// them (as the receivers' bodies are).
    read_buffers: Arc<BodyPool>,
}

/// Idle read buffers kept ([`BodyPool`]).
const SPARE_READ_BUFFERS: usize = 8;

impl Wal {
    /// Opens (or creates) the log in `dir`, recovering from damaged data as the module doc
    /// describes.
    pub fn open(dir: &Path, config: WalConfig) -> Result<(Wal, Recovery)> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let (commit_file, committed) = Marker::<8>::open(dir, COMMIT_FILE)?;
        let committed = match committed {
            Some(seq) => u64::from_le_bytes(seq),
            None => {
                if fs::metadata(dir.join(COMMIT_FILE)).is_ok_and(|m| m.len() > 0) {
                    warn!(dir = %dir.display(), "commit file damaged; replaying the whole log");
                }
                0
            }
        };
        let (intent_file, _) = Marker::<16>::open(dir, INTENT_FILE)?;
        let mut recovery = Recovery {
            committed,
            ..Recovery::default()
        };
        let mut segments = Vec::new();
        for path in segment_files(dir)? {
            let scan = scan_segment(&path)?;
            for damage in scan.damage {
                warn!(path = %damage.path.display(), offset = damage.offset, bytes_lost = damage.bytes_lost,
                      reason = %damage.reason, cut = damage.cut, "write-ahead log damage skipped");
                if damage.cut {
                    let file = OpenOptions::new().write(true).open(&path).map_err(io_err(&path))?;
                    file.set_len(damage.offset).map_err(io_err(&path))?;
                }
                recovery.damaged.push(damage);
            }
            let Some((first_seq, last_seq)) = scan.seq_range else {
                fs::remove_file(&path).map_err(io_err(&path))?;
                continue;
            };
            recovery.records += scan.records;
            let created = fs::metadata(&path)
                .and_then(|m| m.modified())
                .unwrap_or_else(|_| SystemTime::now());
            segments.push(Segment {
                first_seq,
                next_seq: last_seq + 1,
                bytes: scan.valid_len,
                path,
                created,
            });
        }
        let next_seq = segments.last().map_or(1, |s| s.next_seq).max(committed + 1);
        recovery.segments = segments.len();
        recovery.first_seq = segments.first().map_or(next_seq, |s| s.first_seq);
        recovery.next_seq = next_seq;
        let (active, segment) = create_segment(dir, next_seq)?;
        segments.push(segment);
        let tail = Tail::new(usize::try_from(config.memory_tail_bytes).unwrap_or(usize::MAX));
        let wal = Wal {
            dir: dir.to_owned(),
            config,
            state: Mutex::new(State {
                segments,
                active,
                next_seq,
                committed,
                commit_file,
                last_sync: Instant::now(),
                unsynced: false,
                tail,
            }),
            intent_file: Mutex::new(intent_file),
            read_buffers: BodyPool::new(SPARE_READ_BUFFERS),
        };
        wal.apply_retention(&mut wal.state.lock())?;
        info!(dir = %dir.display(), records = recovery.records, committed, next_seq,
              damaged = recovery.damaged.len(), "write-ahead log opened");
        Ok((wal, recovery))
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &WalConfig {
        &self.config
    }

    /// Appends one record and returns its sequence number, once it is as durable as the
    /// configured [`Durability`] promises.
    pub fn append(&self, payload: &[u8]) -> Result<u64> {
        self.append_frame(payload, None)
    }

    /// [`Wal::append`] for a payload the caller shares: the log also keeps it in memory
    /// (up to `memory_tail_bytes`) for the reader following the appends, which then need
    /// not read it back from the file.
    pub fn append_shared(&self, payload: Bytes) -> Result<u64> {
        self.append_frame(&payload, Some(&payload))
    }

    /// [`Wal::append_shared`] only if no other append, sync or reader holds the log at
    /// this moment: `None`, without waiting and without writing, when one does. Meant
    /// for callers that must not block on the lock (an async task under
    /// [`Durability::Process`], where an append is one `write(2)` into the page cache)
    /// and can fall back to [`Wal::append_shared`] elsewhere.
    pub fn try_append_shared(&self, payload: Bytes) -> Option<Result<u64>> {
        let mut state = self.state.try_lock()?;
        Some(self.append_locked(&mut state, &payload, Some(&payload)))
    }

    fn append_frame(&self, payload: &[u8], shared: Option<&Bytes>) -> Result<u64> {
        self.append_locked(&mut self.state.lock(), payload, shared)
    }

    /// The append itself, with the log's state already locked.
    fn append_locked(&self, state: &mut State, payload: &[u8], shared: Option<&Bytes>) -> Result<u64> {
        let frame_len = (HEADER_LEN + payload.len()) as u64;
        let backlog = backlog_bytes(state);
        if backlog > 0 && backlog + frame_len > self.config.max_backlog_bytes {
            return Err(WalError::Full {
                backlog_bytes: backlog,
                limit_bytes: self.config.max_backlog_bytes,
            });
        }
        let active_has_records = state.segments.last().is_some_and(|s| s.next_seq > s.first_seq);
        let active_bytes = state.segments.last().map_or(0, |s| s.bytes);
        if active_has_records && active_bytes + frame_len > self.config.segment_bytes {
            self.roll(state)?;
        }
        let seq = state.next_seq;
        let header = record::header(seq, payload);
        let State { segments, active, .. } = state;
        let segment = segments.last_mut().ok_or_else(|| WalError::Io {
            path: self.dir.clone(),
            source: io::Error::other("no active segment"),
        })?;
        if let Err(source) = record::write_frame(active, &header, payload) {
            // Cut a partial frame so that later appends stay readable.
            let _ = active.set_len(segment.bytes);
            let _ = active.seek(SeekFrom::Start(segment.bytes));
            return Err(WalError::Io {
                path: segment.path.clone(),
                source,
            });
        }
        segment.bytes += frame_len;
        segment.next_seq = seq + 1;
        if let Some(payload) = shared {
            let (segment, end) = (segment.first_seq, segment.bytes);
            state.tail.push(TailRecord {
                seq,
                segment,
                end,
                payload: payload.clone(),
            });
        }
        state.next_seq = seq + 1;
        state.unsynced = true;
        let sync_now = match self.config.durability {
            Durability::Process => false,
            Durability::FsyncEach => true,
            Durability::FsyncInterval { .. } => self
                .config
                .durability
                .interval()
                .is_some_and(|i| state.last_sync.elapsed() >= i),
        };
        if sync_now {
            self.sync_locked(state)?;
        }
        Ok(seq)
    }

    /// Flushes appended records to the device (for [`Durability::FsyncInterval`], call it
    /// every interval).
    pub fn sync(&self) -> Result<()> {
        self.sync_locked(&mut self.state.lock())
    }

    fn sync_locked(&self, state: &mut State) -> Result<()> {
        if state.unsynced {
            let path = state.segments.last().map(|s| s.path.clone()).unwrap_or_default();
            state.active.sync_data().map_err(io_err(&path))?;
            state.unsynced = false;
        }
        state.last_sync = Instant::now();
        Ok(())
    }

    fn roll(&self, state: &mut State) -> Result<()> {
        if self.config.durability != Durability::Process {
            self.sync_locked(state)?;
        }
        let (file, segment) = create_segment(&self.dir, state.next_seq)?;
        state.active = file;
        state.segments.push(segment);
        Ok(())
    }

    /// Records that every sequence number up to `seq` is stored downstream. Commits never
    /// move backwards. Deletes segments that retention no longer needs.
    pub fn commit(&self, seq: u64) -> Result<()> {
        let mut state = self.state.lock();
        if seq <= state.committed {
            return Ok(());
        }
        let seq = seq.min(state.next_seq.saturating_sub(1));
        let sync = self.config.durability != Durability::Process;
        state.commit_file.write(&seq.to_le_bytes(), sync)?;
        state.committed = seq;
        self.apply_retention(&mut state)
    }

    fn apply_retention(&self, state: &mut State) -> Result<()> {
        let mut total: u64 = state.segments.iter().map(|s| s.bytes).sum();
        let max_age = (self.config.retain_secs > 0).then(|| Duration::from_secs(self.config.retain_secs));
        while state.segments.len() > 1 {
            let oldest = &state.segments[0];
            let committed = !oldest.has_uncommitted(state.committed);
            let too_old = max_age.is_some_and(|age| oldest.created.elapsed().is_ok_and(|e| e > age));
            if !(committed && (total > self.config.retain_bytes || too_old)) {
                break;
            }
            fs::remove_file(&oldest.path).map_err(io_err(&oldest.path))?;
            total -= oldest.bytes;
            state.segments.remove(0);
        }
        Ok(())
    }

    /// Records that the records `first..=last` are about to be written to the store as
    /// one batch (see the module doc). Durable like commits.
    pub fn set_intent(&self, first: u64, last: u64) -> Result<()> {
        let mut value = [0u8; 16];
        value[..8].copy_from_slice(&first.to_le_bytes());
        value[8..].copy_from_slice(&last.to_le_bytes());
        let sync = self.config.durability != Durability::Process;
        self.intent_file.lock().write(&value, sync)
    }

    /// The last recorded intent `(first, last)`, if its file is intact.
    pub fn intent(&self) -> Option<(u64, u64)> {
        let value = self.intent_file.lock().read()?;
        let word = |at: usize| value[at..at + 8].try_into().ok().map(u64::from_le_bytes);
        Some((word(0)?, word(8)?))
    }

    /// Counters for monitoring.
    pub fn stats(&self) -> WalStats {
        let state = self.state.lock();
        WalStats {
            segments: state.segments.len(),
            bytes: state.segments.iter().map(|s| s.bytes).sum(),
            backlog_bytes: backlog_bytes(&state),
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

    /// A reader that returns records from sequence number `from` on.
    pub fn reader(self: &Arc<Self>, from: u64) -> WalReader {
        WalReader {
            wal: Arc::clone(self),
            position: from.max(1),
            current: None,
            resume: None,
        }
    }

    /// Where `position` is: the log's next sequence number, and the segment that holds
    /// `position` (its first sequence number and path) with the one after it, if any;
    /// and the record at `position` itself when the in-memory tail holds it (it is then
    /// taken out of the tail).
    fn locate(&self, position: u64) -> Location {
        let mut state = self.state.lock();
        let held = (position < state.next_seq).then(|| state.tail.take(position)).flatten();
        if held.is_some() {
            // The reader needs no file for it.
            return Location {
                next_seq: state.next_seq,
                here: None,
                next: None,
                held,
            };
        }
        let index = state
            .segments
            .iter()
            .rposition(|s| s.first_seq <= position)
            .unwrap_or(0);
        let here = state.segments.get(index).map(|s| (s.first_seq, s.path.clone()));
        let next = state.segments.get(index + 1).map(|s| s.first_seq);
        Location {
            next_seq: state.next_seq,
            here,
            next,
            held,
        }
    }
}

/// What [`Wal::locate`] found.
struct Location {
    next_seq: u64,
    here: Option<(u64, PathBuf)>,
    next: Option<u64>,
    held: Option<TailRecord>,
}

/// Reads records in order; see [`Wal::reader`]. Reading does blocking file I/O.
#[derive(Debug)]
pub struct WalReader {
    wal: Arc<Wal>,
    position: u64,
    current: Option<(u64, BufReader<File>)>,
    /// Where the file reading goes on after records taken from the in-memory tail:
    /// (segment, offset just past the last such record).
    resume: Option<(u64, u64)>,
}

impl WalReader {
    /// The sequence number the next record will have at least.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The next record as `(seq, payload)`, or `None` when the reader has caught up with
    /// the last append.
    pub fn next_record(&mut self) -> Result<Option<(u64, Bytes)>> {
        loop {
            let Location {
                next_seq,
                here,
                next: next_segment,
                held,
            } = self.wal.locate(self.position);
            if self.position >= next_seq {
                return Ok(None);
            }
            if let Some(record) = held {
                self.resume = Some((record.segment, record.end));
                self.position = record.seq + 1;
                return Ok(Some((record.seq, record.payload)));
            }
            let Some((first_seq, path)) = here else {
                return Ok(None);
            };
            if self.position < first_seq {
                // Retention deleted what this reader wanted (it only deletes committed data).
                self.position = first_seq;
            }
            // Past records taken from the tail, reading goes on after the last of them
            // (or from the start of another segment; records before `position` are
            // skipped either way).
            let resume_at = self
                .resume
                .take()
                .and_then(|(segment, end)| (segment == first_seq).then_some(end));
            if self.current.as_ref().is_none_or(|(f, _)| *f != first_seq) {
                let mut file = File::open(&path).map_err(io_err(&path))?;
                file.seek(SeekFrom::Start(resume_at.unwrap_or(MAGIC.len() as u64)))
                    .map_err(io_err(&path))?;
                self.current = Some((first_seq, BufReader::new(file)));
            } else if let (Some(end), Some((_, reader))) = (resume_at, self.current.as_mut()) {
                reader.seek(SeekFrom::Start(end)).map_err(io_err(&path))?;
            }
            let Some((_, reader)) = self.current.as_mut() else {
                continue;
            };
            let buffer = self.wal.read_buffers.take(0);
            match record::read_record_into(reader, buffer).map_err(io_err(&path))? {
                Decoded::Record { seq, payload } => {
                    if seq >= self.position {
                        self.position = seq + 1;
                        return Ok(Some((seq, self.wal.read_buffers.share(payload))));
                    }
                    self.wal.read_buffers.give_back(payload);
                }
                // Found and reported at open; the frame is whole, so the next one follows.
                Decoded::BadChecksum { .. } => {}
                end => {
                    // This segment holds nothing more for us: go on with the next one.
                    if let Decoded::Corrupt(reason) = end {
                        warn!(path = %path.display(), reason, "write-ahead log record unreadable; skipping the rest of the segment");
                    }
                    self.current = None;
                    match next_segment {
                        Some(next_first) if next_first > self.position => self.position = next_first,
                        Some(_) => {}
                        None => return Ok(None),
                    }
                }
            }
        }
    }
}

fn backlog_bytes(state: &State) -> u64 {
    state
        .segments
        .iter()
        .filter(|s| s.has_uncommitted(state.committed))
        .map(|s| s.bytes)
        .sum()
}

fn segment_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<(u64, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(first) = name.strip_suffix(SEGMENT_SUFFIX).and_then(|n| n.parse::<u64>().ok()) {
            files.push((first, path));
        }
    }
    files.sort();
    Ok(files.into_iter().map(|(_, path)| path).collect())
}

fn create_segment(dir: &Path, first_seq: u64) -> Result<(File, Segment)> {
    let path = dir.join(format!("{first_seq:020}{SEGMENT_SUFFIX}"));
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .map_err(io_err(&path))?;
    file.write_all(MAGIC).map_err(io_err(&path))?;
    let segment = Segment {
        first_seq,
        next_seq: first_seq,
        bytes: MAGIC.len() as u64,
        path,
        created: SystemTime::now(),
    };
    Ok((file, segment))
}

struct Scan {
    /// Where the readable part of the file ends (the file is cut here when shorter).
    valid_len: u64,
    records: u64,
    seq_range: Option<(u64, u64)>,
    damage: Vec<Damage>,
}

fn scan_segment(path: &Path) -> Result<Scan> {
    let file = File::open(path).map_err(io_err(path))?;
    let file_len = file.metadata().map_err(io_err(path))?.len();
    let mut reader = BufReader::new(file);
    let mut magic = [0u8; 8];
    let magic_ok = io::Read::read_exact(&mut reader, &mut magic).is_ok() && &magic == MAGIC;
    let mut scan = Scan {
        valid_len: MAGIC.len() as u64,
        records: 0,
        seq_range: None,
        damage: Vec::new(),
    };
    let damage = |offset: u64, bytes_lost: u64, reason: &str, cut: bool| Damage {
        path: path.to_owned(),
        offset,
        bytes_lost,
        reason: reason.to_owned(),
        cut,
    };
    if !magic_ok {
        scan.valid_len = 0;
        scan.damage.push(damage(0, file_len, "bad segment header", true));
        return Ok(scan);
    }
    loop {
        let problem = match record::read_record(&mut reader).map_err(io_err(path))? {
            Decoded::Record { seq, payload } => {
                let frame = (HEADER_LEN + payload.len()) as u64;
                match scan.seq_range {
                    Some((_, last)) if seq <= last => {
                        scan.damage
                            .push(damage(scan.valid_len, frame, "sequence number goes backwards", false));
                    }
                    _ => {
                        scan.seq_range = Some((scan.seq_range.map_or(seq, |(first, _)| first), seq));
                        scan.records += 1;
                    }
                }
                scan.valid_len += frame;
                continue;
            }
            Decoded::BadChecksum { frame_len } => {
                scan.damage
                    .push(damage(scan.valid_len, frame_len, "checksum mismatch", false));
                scan.valid_len += frame_len;
                continue;
            }
            Decoded::End => return Ok(scan),
            Decoded::Torn => "torn record at the end (a write cut short by a crash)",
            Decoded::Corrupt(reason) => reason,
        };
        scan.damage
            .push(damage(scan.valid_len, file_len - scan.valid_len, problem, true));
        return Ok(scan);
    }
}

#[cfg(test)]
mod tests;
