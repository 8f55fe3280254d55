//! A small value replaced in place: the log's `commit` and `intent` files.
//!
//! # On disk
//!
//! Two slots, each `generation:u64le value crc32:u32le` (the checksum covers generation and
//! value). A write goes to the slot that does not hold the newest valid value, with the
//! next generation, so a write torn by a crash can only damage that slot: the value before
//! it is still read. Reading takes the valid slot with the highest generation; no valid
//! slot reads as "none".
//!
//! A file written before slots existed (one bare `value crc32:u32le`, shorter than a slot)
//! is read as that value; the first write then goes to the second slot, past it.
//!
//! Writing in place replaced "write `name.tmp`, rename it over `name`", which created a
//! file, renamed it and (ext4 flushes a file renamed over another) wrote its data back,
//! twice per feeder batch, with the log's lock held for the commit: about 7% of the
//! collector's CPU at 48k spans/s (benches/README.md).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::fs::{OpenMode, WalFile, WalFs};
use super::{Result, io_err};

/// A value of `N` bytes kept in a file as described in the module doc.
#[derive(Debug)]
pub(crate) struct Marker<const N: usize> {
    fs: Arc<dyn WalFs>,
    file: Box<dyn WalFile>,
    path: PathBuf,
    /// The file's length when it was opened.
    opened_len: u64,
    /// Generation of the newest value written or read.
    generation: u64,
    /// The slot the next write goes to (0 or 1).
    next_slot: u64,
}

impl<const N: usize> Marker<N> {
    const SLOT: usize = 8 + N + 4;

    /// Opens (or creates) `dir/name`; returns the marker and the value it holds.
    pub fn open(fs: Arc<dyn WalFs>, dir: &Path, name: &str) -> Result<(Self, Option<[u8; N]>)> {
        let path = dir.join(name);
        let mut file = fs.open(&path, OpenMode::ReadWrite).map_err(io_err(&path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_err(&path))?;
        let (generation, next_slot, value) = match newest::<N>(&bytes) {
            Some((slot, generation, value)) => (generation, 1 - slot, Some(value)),
            None => match legacy::<N>(&bytes) {
                Some(value) => (0, 1, Some(value)),
                None => (0, 0, None),
            },
        };
        let marker = Self {
            fs,
            file,
            path,
            opened_len: bytes.len() as u64,
            generation,
            next_slot,
        };
        Ok((marker, value))
    }

    /// Reads the value from the file again (`None` when no slot is intact).
    pub fn read(&self) -> Option<[u8; N]> {
        let mut bytes = Vec::new();
        let mut file = self.fs.open(&self.path, OpenMode::Read).ok()?;
        file.read_to_end(&mut bytes).ok()?;
        newest::<N>(&bytes)
            .map(|(_, _, value)| value)
            .or_else(|| legacy::<N>(&bytes))
    }

    /// The file's length when it was opened (0: it was created, or empty).
    pub fn opened_len(&self) -> u64 {
        self.opened_len
    }

    /// Replaces the value; with `sync`, flushed to the device before returning.
    pub fn write(&mut self, value: &[u8; N], sync: bool) -> Result<()> {
        let generation = self.generation + 1;
        let mut slot = Vec::with_capacity(Self::SLOT);
        slot.extend_from_slice(&generation.to_le_bytes());
        slot.extend_from_slice(value);
        slot.extend_from_slice(&crc32fast::hash(&slot).to_le_bytes());
        let offset = self.next_slot * Self::SLOT as u64;
        self.file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.write_all(&slot))
            .map_err(io_err(&self.path))?;
        if sync {
            self.file.sync_data().map_err(io_err(&self.path))?;
        }
        self.generation = generation;
        self.next_slot = 1 - self.next_slot;
        Ok(())
    }
}

/// The valid slot with the highest generation: (slot, generation, value).
fn newest<const N: usize>(bytes: &[u8]) -> Option<(u64, u64, [u8; N])> {
    let len = Marker::<N>::SLOT;
    (0..2u64)
        .filter_map(|slot| {
            let start = usize::try_from(slot).ok()? * len;
            let raw = bytes.get(start..start + len)?;
            let (body, crc) = raw.split_at(8 + N);
            if crc32fast::hash(body).to_le_bytes() != crc {
                return None;
            }
            let generation = u64::from_le_bytes(body.get(..8)?.try_into().ok()?);
            let value: [u8; N] = body.get(8..)?.try_into().ok()?;
            Some((slot, generation, value))
        })
        .max_by_key(|(_, generation, _)| *generation)
}

/// The value of a file from before slots: `value crc32` alone, or followed by the zeros
/// and the (torn) second slot of the first write after it.
fn legacy<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    let slot = Marker::<N>::SLOT;
    if bytes.len() != N + 4 && bytes.len() != 2 * slot {
        return None;
    }
    if bytes.get(N + 4..slot.min(bytes.len()))?.iter().any(|b| *b != 0) {
        return None;
    }
    let (value, crc) = bytes.get(..N + 4)?.split_at(N);
    (crc32fast::hash(value).to_le_bytes() == crc).then(|| value.try_into().ok())?
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> (Marker<8>, Option<[u8; 8]>) {
        Marker::<8>::open(Arc::new(super::super::fs::StdFs), dir, "m").unwrap()
    }

    #[test]
    fn values_survive_reopen_and_alternate_slots() {
        let dir = tempfile::tempdir().unwrap();
        let (mut m, value) = open(dir.path());
        assert_eq!(value, None);
        for v in 1..=5u64 {
            m.write(&v.to_le_bytes(), v % 2 == 0).unwrap();
            assert_eq!(m.read(), Some(v.to_le_bytes()));
            drop(m);
            let (reopened, value) = open(dir.path());
            assert_eq!(value, Some(v.to_le_bytes()));
            m = reopened;
        }
        assert_eq!(std::fs::metadata(dir.path().join("m")).unwrap().len(), 40);
    }

    #[test]
    fn a_torn_write_leaves_the_value_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut m, _) = open(dir.path());
        m.write(&7u64.to_le_bytes(), false).unwrap();
        m.write(&8u64.to_le_bytes(), false).unwrap();
        // The second write went to slot 1 (bytes 20..40); tear it.
        let path = dir.path().join("m");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[30] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(m.read(), Some(7u64.to_le_bytes()));
        let (mut m, value) = open(dir.path());
        assert_eq!(value, Some(7u64.to_le_bytes()));
        // The next write replaces the damaged slot, not the good one.
        m.write(&9u64.to_le_bytes(), false).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            newest::<8>(&bytes).map(|(slot, _, v)| (slot, v)),
            Some((1, 9u64.to_le_bytes()))
        );
        assert_eq!(newest::<8>(&bytes[..20]).map(|(_, _, v)| v), Some(7u64.to_le_bytes()));
    }

    #[test]
    fn damage_everywhere_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let (mut m, _) = open(dir.path());
        m.write(&7u64.to_le_bytes(), false).unwrap();
        std::fs::write(dir.path().join("m"), [1u8; 40]).unwrap();
        assert_eq!(m.read(), None);
        assert_eq!(open(dir.path()).1, None);
    }

    #[test]
    fn a_file_from_before_slots_is_read_and_kept_until_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        let mut legacy_bytes = 42u64.to_le_bytes().to_vec();
        legacy_bytes.extend_from_slice(&crc32fast::hash(&42u64.to_le_bytes()).to_le_bytes());
        std::fs::write(&path, &legacy_bytes).unwrap();
        let (mut m, value) = open(dir.path());
        assert_eq!(value, Some(42u64.to_le_bytes()));
        m.write(&43u64.to_le_bytes(), false).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            &bytes[..12],
            &legacy_bytes[..],
            "the old value stays until the new one is whole"
        );
        assert_eq!(open(dir.path()).1, Some(43u64.to_le_bytes()));
        // Had that first write been torn, the old value would still be read.
        let mut torn = bytes.clone();
        torn[35] ^= 0xff;
        std::fs::write(&path, &torn).unwrap();
        assert_eq!(open(dir.path()).1, Some(42u64.to_le_bytes()));
    }
}
