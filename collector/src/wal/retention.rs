//! Commits, the batch intent, and deleting segments no longer needed.
//!
//! - `commit` (`seq:u64le` in a [`Marker`](super::marker)) is the highest sequence
//!   number the store holds. It never moves backwards; a torn write of it leaves the
//!   previous value.
//! - `intent` (`first:u64le last:u64le`, kept the same way) is the range of the batch the
//!   feeder is writing to the store, so that after a crash it replays exactly that batch.
//! - Retention deletes the oldest segment only when every record in it is committed and
//!   the segments together pass `retain_bytes` (or it is older than `retain_secs`); the
//!   active segment is never deleted. So an acknowledged record is never deleted before
//!   the store has it.
//! - The backlog (bytes of segments that hold uncommitted records) is what
//!   `max_backlog_bytes` bounds.

use std::time::Duration;

use super::{Durability, Result, State, Wal, io_err};

impl Wal {
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

    pub(super) fn apply_retention(&self, state: &mut State) -> Result<()> {
        let mut total: u64 = state.segments.iter().map(|s| s.bytes).sum();
        let max_age = (self.config.retain_secs > 0).then(|| Duration::from_secs(self.config.retain_secs));
        while state.segments.len() > 1 {
            let oldest = &state.segments[0];
            let committed = !oldest.has_uncommitted(state.committed);
            let too_old = max_age.is_some_and(|age| oldest.created.elapsed().is_ok_and(|e| e > age));
            if !(committed && (total > self.config.retain_bytes || too_old)) {
                break;
            }
            self.fs.remove_file(&oldest.path).map_err(io_err(&oldest.path))?;
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
}

/// Bytes of segments that hold uncommitted records.
pub(super) fn backlog_bytes(state: &State) -> u64 {
    state
        .segments
        .iter()
        .filter(|s| s.has_uncommitted(state.committed))
        .map(|s| s.bytes)
        .sum()
}
