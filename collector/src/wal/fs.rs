//! The log's file I/O, behind a small trait so that tests can inject disk faults.
//!
//! Everything the log does to the disk goes through [`WalFs`] (directory listing,
//! opening, removing) and [`WalFile`] (reading, writing, seeking, flushing, cutting). The
//! production implementation, [`StdFs`], is `std::fs` with nothing added; a write of a
//! record frame is still one `writev(2)` (`Write::write_vectored` reaches the file through
//! the box). Tests use a fault-injecting implementation (disk full, failing flushes, a
//! crash in the middle of a write) to check the guarantees in the module doc of
//! [`crate::wal`] under those faults.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// How [`WalFs::open`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only; the file must exist.
    Read,
    /// Write only, created or emptied (a new segment).
    Create,
    /// Read and write, created when missing, never emptied (markers, cutting a segment).
    ReadWrite,
}

/// An open file of the log.
pub trait WalFile: Read + Write + Seek + Send + fmt::Debug {
    /// Flushes the file's data to the device (`fdatasync(2)`).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Truncates (or extends) the file to `len` bytes; the position is unchanged.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// The file's length in bytes.
    fn byte_len(&self) -> io::Result<u64>;
}

/// The directory operations of the log. Share it as `Arc<dyn WalFs>`.
pub trait WalFs: Send + Sync + fmt::Debug {
    /// Creates `dir` and its parents when missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The paths of the entries of `dir`, in no particular order.
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    /// Opens `path` as `mode` says.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn WalFile>>;
    /// Deletes the file at `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// When the file at `path` was last modified.
    fn modified(&self, path: &Path) -> io::Result<SystemTime>;
}

/// The real file system (`std::fs`).
#[derive(Debug, Clone, Copy, Default)]
pub struct StdFs;

impl WalFile for File {
    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }

    fn byte_len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}

impl StdFs {
    /// Opens `path` as a `std::fs::File` (shared with the fault-injecting test file
    /// system, which wraps it).
    pub(crate) fn open_file(path: &Path, mode: OpenMode) -> io::Result<File> {
        match mode {
            OpenMode::Read => File::open(path),
            OpenMode::Create => OpenOptions::new().create(true).write(true).truncate(true).open(path),
            OpenMode::ReadWrite => OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path),
        }
    }
}

impl WalFs for StdFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn read_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        fs::read_dir(dir)?.map(|entry| entry.map(|e| e.path())).collect()
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn WalFile>> {
        Ok(Box::new(Self::open_file(path, mode)?))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn modified(&self, path: &Path) -> io::Result<SystemTime> {
        fs::metadata(path)?.modified()
    }
}
