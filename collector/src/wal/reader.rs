//! Reading the log in order: [`WalReader`].
//!
//! Contract: a reader returns every record from its position on in sequence order, each
//! once, from the in-memory tail when it holds the record and from the segment files
//! otherwise (the same bytes either way). It skips frames that fail their checksum (as
//! recovery reported them) and, past a frame that cannot be delimited, goes on with the
//! next segment. `None` means it has caught up with the last append; call again later.
//! Records that retention deleted (all committed) are skipped. Reading does blocking
//! file I/O; payloads are read into reusable buffers ([`BodyPool`](crate::body_pool)).

use std::io::{BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use tracing::warn;

use super::fs::{OpenMode, WalFile};
use super::record::{self, Decoded, MAGIC};
use super::tail::TailRecord;
use super::{Result, Wal, io_err};

impl Wal {
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

/// Reads records in order; see [`Wal::reader`] and the module doc.
#[derive(Debug)]
pub struct WalReader {
    wal: Arc<Wal>,
    position: u64,
    current: Option<(u64, BufReader<Box<dyn WalFile>>)>,
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
                let mut file = self.wal.fs.open(&path, OpenMode::Read).map_err(io_err(&path))?;
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
