//! The log's guarantees under each injected fault, one at a time ([`FaultyFs`]): a full
//! disk, a failing flush, a crash mid-write, and a failed append that cannot be cut back.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::fault::FaultyFs;
use super::record::HEADER_LEN;
use super::tests::{read_all, small_config};
use super::*;

fn active_path(dir: &Path) -> PathBuf {
    recovery::segment_files(&fs::StdFs, dir).unwrap().pop().unwrap()
}

/// A log on a [`FaultyFs`] with records 1 and 2 appended.
fn faulty(config: WalConfig) -> (tempfile::TempDir, FaultyFs, Arc<Wal>) {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::default();
    let wal = Arc::new(Wal::open_with(dir.path(), config, Arc::new(fs.clone())).unwrap().0);
    wal.append(b"one").unwrap();
    wal.append_shared(Bytes::from_static(b"two")).unwrap();
    (dir, fs, wal)
}

fn os_error(err: &WalError) -> Option<i32> {
    match err {
        WalError::Io { source, .. } => source.raw_os_error(),
        WalError::Full { .. } => None,
    }
}

#[test]
fn a_full_disk_fails_the_append_and_leaves_nothing_behind() {
    let (dir, fs, wal) = faulty(small_config(u64::MAX));
    let before = std::fs::metadata(active_path(dir.path())).unwrap().len();
    fs.faults.lock().space_left = Some(10);
    let err = wal.append_shared(Bytes::from(vec![3u8; 50])).unwrap_err();
    assert_eq!(os_error(&err), Some(28), "ENOSPC: {err}");
    assert_eq!(
        std::fs::metadata(active_path(dir.path())).unwrap().len(),
        before,
        "partial frame cut off"
    );
    assert_eq!(wal.stats().memory_tail_bytes, 3, "only record 2 in memory");
    fs.heal();
    assert_eq!(wal.append(b"three").unwrap(), 3, "the failed append's number is reused");
    let seqs: Vec<u64> = read_all(&wal, 1).iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
}

#[test]
fn a_failed_flush_fails_the_append_under_fsync_each() {
    let config = WalConfig {
        durability: Durability::FsyncEach,
        ..small_config(u64::MAX)
    };
    let (dir, fs, wal) = faulty(config.clone());
    fs.faults.lock().fail_sync = true;
    let err = wal.append(b"not flushed").unwrap_err();
    assert_eq!(os_error(&err), Some(5), "EIO: {err}");
    fs.heal();
    assert_eq!(wal.append(b"three").unwrap(), 3);
    drop(wal);
    let (wal, recovery) = Wal::open(dir.path(), config).unwrap();
    assert!(recovery.damaged.is_empty(), "{recovery:?}");
    let payloads: Vec<Vec<u8>> = read_all(&Arc::new(wal), 1).into_iter().map(|(_, p)| p).collect();
    assert_eq!(payloads, vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
}

#[test]
fn a_crash_mid_append_leaves_a_torn_tail_that_recovery_cuts() {
    let (dir, fs, wal) = faulty(small_config(u64::MAX));
    fs.faults.lock().crash_after = Some(HEADER_LEN as u64 + 4);
    assert!(wal.append(&[9u8; 40]).is_err(), "the append never returned Ok");
    drop(wal);
    let active = active_path(dir.path());
    let torn_len = std::fs::metadata(&active).unwrap().len();
    let (wal, recovery) = Wal::open(dir.path(), small_config(u64::MAX)).unwrap();
    assert_eq!(recovery.damaged.len(), 1, "{recovery:?}");
    let damage = &recovery.damaged[0];
    assert!(damage.cut && damage.reason.starts_with("torn record"), "{damage:?}");
    assert_eq!(damage.offset + damage.bytes_lost, torn_len);
    assert_eq!(damage.bytes_lost, HEADER_LEN as u64 + 4);
    let wal = Arc::new(wal);
    assert_eq!(read_all(&wal, 1), vec![(1, b"one".to_vec()), (2, b"two".to_vec())]);
    assert_eq!(wal.append(b"three").unwrap(), 3);
}

#[test]
fn an_append_that_cannot_be_cut_back_burns_its_number_and_starts_a_new_segment() {
    let (dir, fs, wal) = faulty(WalConfig {
        segment_bytes: 1 << 20,
        ..small_config(u64::MAX)
    });
    {
        let mut faults = fs.faults.lock();
        faults.space_left = Some(HEADER_LEN as u64 + 2);
        faults.fail_set_len = true;
    }
    assert!(wal.append(&[9u8; 40]).is_err());
    fs.heal();
    assert_eq!(wal.append(b"four").unwrap(), 4, "3 is burnt");
    assert_eq!(wal.stats().segments, 2, "4 went to a new segment");
    let expected = vec![(1, b"one".to_vec()), (2, b"two".to_vec()), (4, b"four".to_vec())];
    assert_eq!(read_all(&wal, 1), expected, "the reader skips the torn frame");
    drop(wal);
    let (wal, recovery) = Wal::open(dir.path(), small_config(u64::MAX)).unwrap();
    assert_eq!(recovery.damaged.len(), 1, "the torn frame is cut at open: {recovery:?}");
    assert_eq!(read_all(&Arc::new(wal), 1), expected);
}
