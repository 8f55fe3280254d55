//! A [`WalFs`] over the real file system that injects faults into segment files
//! (`*.wal`), for the model test: a full disk (`ENOSPC` once a byte budget is used up,
//! after a short write as a real disk gives), a failing flush (`EIO` from
//! `fdatasync`), and a crash in the middle of a write (a prefix of the write reaches the
//! file, then every operation fails as if the process were gone, so nothing can tidy the
//! torn frame up before the log is reopened), and a failing truncation. The `commit` and `intent` markers are left
//! alone; their own torn-write handling is tested in `marker`.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;

use super::fs::{OpenMode, StdFs, WalFile, WalFs};

/// `ENOSPC`: no space left on device.
const ENOSPC: i32 = 28;
/// `EIO`: input/output error.
const EIO: i32 = 5;

/// The faults in force; change them between operations.
#[derive(Debug, Default)]
pub struct Faults {
    /// Bytes that still fit on the "disk"; `None`: no limit.
    pub space_left: Option<u64>,
    /// `fdatasync` fails.
    pub fail_sync: bool,
    /// Truncating a segment fails (the log cannot cut a failed append off).
    pub fail_set_len: bool,
    /// The process "dies" once this many more bytes are written: they reach the file,
    /// the rest of that write does not, and everything after fails.
    pub crash_after: Option<u64>,
    /// The process has "died" (see `crash_after`); cleared to "restart".
    pub crashed: bool,
}

/// See the module doc.
#[derive(Debug, Clone, Default)]
pub struct FaultyFs {
    /// The faults, shared with every file opened.
    pub faults: Arc<Mutex<Faults>>,
}

impl FaultyFs {
    /// Clears every fault, as after a restart on a disk with room again.
    pub fn heal(&self) {
        *self.faults.lock() = Faults::default();
    }

    fn check_alive(&self) -> io::Result<()> {
        if self.faults.lock().crashed {
            return Err(io::Error::other("injected: the process crashed"));
        }
        Ok(())
    }
}

impl WalFs for FaultyFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.check_alive()?;
        StdFs.create_dir_all(dir)
    }

    fn read_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        StdFs.read_dir(dir)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn WalFile>> {
        if mode != OpenMode::Read {
            self.check_alive()?;
        }
        Ok(Box::new(FaultyFile {
            file: StdFs::open_file(path, mode)?,
            segment: path.extension().is_some_and(|ext| ext == "wal"),
            faults: Arc::clone(&self.faults),
        }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.check_alive()?;
        StdFs.remove_file(path)
    }

    fn modified(&self, path: &Path) -> io::Result<SystemTime> {
        StdFs.modified(path)
    }
}

#[derive(Debug)]
struct FaultyFile {
    file: File,
    segment: bool,
    faults: Arc<Mutex<Faults>>,
}

impl FaultyFile {
    fn check_alive(&self) -> io::Result<()> {
        if self.faults.lock().crashed {
            return Err(io::Error::other("injected: the process crashed"));
        }
        Ok(())
    }
}

impl Read for FaultyFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }
}

impl Seek for FaultyFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file.seek(pos)
    }
}

impl Write for FaultyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.segment {
            return self.file.write(buf);
        }
        let mut faults = self.faults.lock();
        if faults.crashed {
            return Err(io::Error::other("injected: the process crashed"));
        }
        let mut len = buf.len() as u64;
        if let Some(left) = faults.space_left {
            if left == 0 {
                return Err(io::Error::from_raw_os_error(ENOSPC));
            }
            len = len.min(left);
        }
        if let Some(left) = faults.crash_after {
            len = len.min(left);
        }
        let written = self.file.write(&buf[..len as usize])?;
        if let Some(left) = faults.space_left.as_mut() {
            *left -= written as u64;
        }
        if let Some(left) = faults.crash_after.as_mut() {
            *left -= written as u64;
            if *left == 0 {
                faults.crashed = true;
            }
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl WalFile for FaultyFile {
    fn sync_data(&mut self) -> io::Result<()> {
        self.check_alive()?;
        if self.segment && self.faults.lock().fail_sync {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        self.file.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.check_alive()?;
        if self.segment && self.faults.lock().fail_set_len {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        self.file.set_len(len)
    }

    fn byte_len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
}
