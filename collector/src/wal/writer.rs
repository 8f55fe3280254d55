//! Appending records: framing a payload onto the active segment, flushing it as the
//! configured [`Durability`] says, and rolling to a new segment.
//!
//! Contract (the module doc of [`crate::wal`] has the whole list):
//! - `Ok(seq)` from an append means the frame is in the file (and flushed, under
//!   [`Durability::FsyncEach`]); the record is then read back until retention deletes it.
//! - An `Err` means the record was not appended: the partial frame is cut off and its
//!   sequence number reused; only when that cut fails too is the number burnt and a new
//!   segment started for the next append.
//! - Appends are serialised by the log's lock; sequence numbers follow the order in
//!   which appends returned. A segment file is `MAGIC` then frames ([`record`]).

use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Instant, SystemTime};

use bytes::Bytes;

use super::fs::{OpenMode, WalFile, WalFs};
use super::record::{self, HEADER_LEN, MAGIC};
use super::tail::TailRecord;
use super::{Durability, Result, SEGMENT_SUFFIX, Segment, State, Wal, WalError, io_err, retention};

impl Wal {
    /// Appends one record and returns its sequence number, once it is as durable as the
    /// configured [`Durability`] promises.
    pub fn append(&self, payload: &[u8]) -> Result<u64> {
        self.append_locked(&mut self.state.lock(), payload, None)
    }

    /// [`Wal::append`] for a payload the caller shares: the log also keeps it in memory
    /// (up to `memory_tail_bytes`) for the reader following the appends, which then need
    /// not read it back from the file.
    pub fn append_shared(&self, payload: Bytes) -> Result<u64> {
        self.append_locked(&mut self.state.lock(), &payload, Some(&payload))
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

    /// The append itself, with the log's state already locked.
    fn append_locked(&self, state: &mut State, payload: &[u8], shared: Option<&Bytes>) -> Result<u64> {
        let frame_len = (HEADER_LEN + payload.len()) as u64;
        let backlog = retention::backlog_bytes(state);
        if backlog > 0 && backlog + frame_len > self.config.max_backlog_bytes {
            return Err(WalError::Full {
                backlog_bytes: backlog,
                limit_bytes: self.config.max_backlog_bytes,
            });
        }
        let active_has_records = state.segments.last().is_some_and(|s| s.next_seq > s.first_seq);
        let active_bytes = state.segments.last().map_or(0, |s| s.bytes);
        if state.needs_roll || (active_has_records && active_bytes + frame_len > self.config.segment_bytes) {
            self.roll(state)?;
        }
        let seq = state.next_seq;
        let header = record::header(seq, payload);
        let Some(segment) = state.segments.last() else {
            return Err(WalError::Io {
                path: self.dir.clone(),
                source: io::Error::other("no active segment"),
            });
        };
        let (start, path) = (segment.bytes, segment.path.clone());
        let written = record::write_frame(&mut state.active, &header, payload);
        let flushed = match written {
            Ok(()) if self.sync_due(state) => {
                state.unsynced = true;
                self.sync_locked(state)
            }
            Ok(()) => Ok(()),
            Err(source) => Err(WalError::Io {
                path: path.clone(),
                source,
            }),
        };
        if let Err(err) = flushed {
            self.undo_append(state, start, seq, frame_len);
            return Err(err);
        }
        let Some(segment) = state.segments.last_mut() else {
            return Err(io_err(&path)(io::Error::other("no active segment")));
        };
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
        Ok(seq)
    }

    /// True when this append must flush before it returns.
    fn sync_due(&self, state: &State) -> bool {
        match self.config.durability {
            Durability::Process => false,
            Durability::FsyncEach => true,
            Durability::FsyncInterval { .. } => self
                .config
                .durability
                .interval()
                .is_some_and(|i| state.last_sync.elapsed() >= i),
        }
    }

    /// After a failed write or flush of the frame for `seq` that began at `start`: cuts
    /// the segment back to `start`, so the failed record leaves nothing behind and `seq`
    /// is used by the next append. If the cut fails, the frame may be partly (or wholly)
    /// in the file: `seq` is burnt, so no later record shares it, and the next append
    /// starts a new segment, so no record follows the damaged frame.
    fn undo_append(&self, state: &mut State, start: u64, seq: u64, frame_len: u64) {
        let cut = state
            .active
            .set_len(start)
            .and_then(|()| state.active.seek(SeekFrom::Start(start)).map(drop));
        if let Err(err) = cut {
            tracing::error!(error = %err, seq, "cannot cut a failed append off the write-ahead log; starting a new segment");
            if let Some(segment) = state.segments.last_mut() {
                segment.bytes = start + frame_len;
                segment.next_seq = seq + 1;
            }
            state.next_seq = seq + 1;
            state.needs_roll = true;
        }
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

    /// Starts a new active segment (flushing the old one first unless durability is
    /// [`Durability::Process`]).
    fn roll(&self, state: &mut State) -> Result<()> {
        if self.config.durability != Durability::Process {
            self.sync_locked(state)?;
        }
        let (file, segment) = create_segment(self.fs.as_ref(), &self.dir, state.next_seq)?;
        state.active = file;
        state.segments.push(segment);
        state.needs_roll = false;
        Ok(())
    }
}

/// Creates the segment file whose first record will be `first_seq`, holding only
/// `MAGIC`. On failure nothing is left behind (best effort: the file is removed).
pub(super) fn create_segment(fs: &dyn WalFs, dir: &Path, first_seq: u64) -> Result<(Box<dyn WalFile>, Segment)> {
    let path = dir.join(format!("{first_seq:020}{SEGMENT_SUFFIX}"));
    let mut file = fs.open(&path, OpenMode::Create).map_err(io_err(&path))?;
    if let Err(err) = file.write_all(MAGIC) {
        drop(file);
        let _ = fs.remove_file(&path);
        return Err(io_err(&path)(err));
    }
    let segment = Segment {
        first_seq,
        next_seq: first_seq,
        bytes: MAGIC.len() as u64,
        path,
        created: SystemTime::now(),
    };
    Ok((file, segment))
}
