//! Write-ahead log settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// When appended records reach the disk itself, and what a crash can cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub enum Durability {
    /// `write(2)` before the acknowledgement; the kernel writes back later. Survives the
    /// process being killed (SIGKILL, panic, OOM kill), not a power loss or kernel crash.
    /// Cost: one system call per request.
    #[default]
    Process,
    /// `fdatasync(2)` before every acknowledgement. Survives power loss. Cost: one disk
    /// flush per request (milliseconds on spinning disks, ~0.1–1 ms on SSDs), which caps
    /// requests per second per collector.
    FsyncEach,
    /// `fdatasync(2)` at most every `interval_ms`, by the next append or the periodic
    /// [`super::Wal::sync`] call. A power loss can lose the last interval of acknowledged
    /// requests; a process kill loses nothing.
    FsyncInterval {
        /// Longest time between flushes, in milliseconds.
        interval_ms: u64,
    },
}

impl Durability {
    /// The flush interval of [`Durability::FsyncInterval`].
    pub fn interval(&self) -> Option<Duration> {
        match self {
            Durability::FsyncInterval { interval_ms } => Some(Duration::from_millis(*interval_ms)),
            _ => None,
        }
    }
}

/// Write-ahead log configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalConfig {
    /// A new segment file starts when the current one would grow past this many bytes.
    pub segment_bytes: u64,
    /// Most bytes of records not yet committed by the storage writer. When an append would
    /// pass it, the append fails with [`super::WalError::Full`] and the receivers answer
    /// with back-pressure (HTTP 429 / gRPC RESOURCE_EXHAUSTED) until the writer drains.
    pub max_backlog_bytes: u64,
    /// Committed records are kept up to this many bytes (oldest segments deleted first),
    /// so a store that lives in memory can rebuild itself from the log at start-up.
    /// 0 deletes segments as soon as everything in them is committed.
    pub retain_bytes: u64,
    /// Committed segments older than this many seconds are deleted even when under
    /// `retain_bytes`. 0 means no age limit.
    pub retain_secs: u64,
    /// When records reach the disk.
    pub durability: Durability,
    /// Most bytes of the newest records also kept in memory, so that the storage writer
    /// following the appends takes them from there instead of reading the file back.
    /// Records that do not fit are read from the file. 0 keeps none.
    pub memory_tail_bytes: u64,
}

impl Default for WalConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 64 * 1024 * 1024,
            max_backlog_bytes: 2 * 1024 * 1024 * 1024,
            retain_bytes: 2 * 1024 * 1024 * 1024,
            retain_secs: 7 * 24 * 3600,
            durability: Durability::Process,
            memory_tail_bytes: 8 * 1024 * 1024,
        }
    }
}
