//! Opening the log: reading the markers, scanning every segment, cutting out damage.
//!
//! Guarantees (see also the module doc of [`crate::wal`]): opening never fails because
//! of damaged data, only because of I/O errors. Each segment is scanned frame by frame:
//! - a complete frame whose checksum fails is skipped and reported (`cut: false`); the
//!   frames after it are kept, and readers skip the same frame;
//! - a frame that ends early (a torn write: the process died inside an append, or a
//!   failed append could not be cut back) or has an impossible length ends the segment,
//!   which is truncated there and reported (`cut: true`);
//! - a file without the segment header is reported and deleted, as is a segment with no
//!   valid record left.
//!
//! Every open then starts a fresh active segment, so new records never follow damage.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use parking_lot::Mutex;
use tracing::{info, warn};

use super::fs::{OpenMode, StdFs, WalFs};
use super::record::{self, Decoded, HEADER_LEN, MAGIC};
use super::tail::Tail;
use super::{
    COMMIT_FILE, Damage, INTENT_FILE, Marker, Recovery, Result, SEGMENT_SUFFIX, SPARE_READ_BUFFERS, Segment, State,
    Wal, WalConfig, io_err, writer,
};
use crate::body_pool::BodyPool;

impl Wal {
    /// Opens (or creates) the log in `dir` on the real file system, recovering from
    /// damaged data as the module doc describes.
    pub fn open(dir: &Path, config: WalConfig) -> Result<(Wal, Recovery)> {
        Self::open_with(dir, config, Arc::new(StdFs))
    }

    /// [`Wal::open`] doing all file I/O through `fs`.
    pub fn open_with(dir: &Path, config: WalConfig, fs: Arc<dyn WalFs>) -> Result<(Wal, Recovery)> {
        fs.create_dir_all(dir).map_err(io_err(dir))?;
        let (commit_file, committed) = Marker::<8>::open(Arc::clone(&fs), dir, COMMIT_FILE)?;
        let committed = match committed {
            Some(seq) => u64::from_le_bytes(seq),
            None => {
                if commit_file.opened_len() > 0 {
                    warn!(dir = %dir.display(), "commit file damaged; replaying the whole log");
                }
                0
            }
        };
        let (intent_file, _) = Marker::<16>::open(Arc::clone(&fs), dir, INTENT_FILE)?;
        let mut recovery = Recovery {
            committed,
            ..Recovery::default()
        };
        let mut segments = Vec::new();
        for path in segment_files(fs.as_ref(), dir)? {
            let scan = scan_segment(fs.as_ref(), &path)?;
            for damage in scan.damage {
                warn!(path = %damage.path.display(), offset = damage.offset, bytes_lost = damage.bytes_lost,
                      reason = %damage.reason, cut = damage.cut, "write-ahead log damage skipped");
                if damage.cut {
                    let mut file = fs.open(&path, OpenMode::ReadWrite).map_err(io_err(&path))?;
                    file.set_len(damage.offset).map_err(io_err(&path))?;
                }
                recovery.damaged.push(damage);
            }
            let Some((first_seq, last_seq)) = scan.seq_range else {
                fs.remove_file(&path).map_err(io_err(&path))?;
                continue;
            };
            recovery.records += scan.records;
            let created = fs.modified(&path).unwrap_or_else(|_| SystemTime::now());
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
        let (active, segment) = writer::create_segment(fs.as_ref(), dir, next_seq)?;
        segments.push(segment);
        let tail = Tail::new(usize::try_from(config.memory_tail_bytes).unwrap_or(usize::MAX));
        let wal = Wal {
            dir: dir.to_owned(),
            config,
            fs,
            state: Mutex::new(State {
                segments,
                active,
                needs_roll: false,
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
        info!(dir = %wal.dir.display(), records = recovery.records, committed, next_seq,
              damaged = recovery.damaged.len(), "write-ahead log opened");
        Ok((wal, recovery))
    }
}

/// The segment files in `dir`, oldest first.
pub(super) fn segment_files(fs: &dyn WalFs, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<(u64, PathBuf)> = Vec::new();
    for path in fs.read_dir(dir).map_err(io_err(dir))? {
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

struct Scan {
    /// Where the readable part of the file ends (the file is cut here when shorter).
    valid_len: u64,
    records: u64,
    seq_range: Option<(u64, u64)>,
    damage: Vec<Damage>,
}

fn scan_segment(fs: &dyn WalFs, path: &Path) -> Result<Scan> {
    let file = fs.open(path, OpenMode::Read).map_err(io_err(path))?;
    let file_len = file.byte_len().map_err(io_err(path))?;
    let mut reader = BufReader::new(file);
    let mut magic = [0u8; 8];
    let magic_ok = reader.read_exact(&mut magic).is_ok() && &magic == MAGIC;
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
