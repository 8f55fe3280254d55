//! The process allocator and the one setting of it that the code cannot make itself.
//!
//! hopscope runs on mimalloc (v3, built without transparent huge pages: features in the
//! workspace Cargo.toml). Under ingest load glibc malloc's per-thread arenas kept freed
//! batch memory resident (peak RSS 391 MiB against 233 MiB in the same benchmark), and
//! transparent huge pages make every fresh region 2 MiB.
//!
//! mimalloc keeps freed pages for `purge_delay` milliseconds before giving them back to
//! the OS; v3's default is 1,000 ms. At flat-out ingest (~220k spans/s, 4 gRPC
//! connections, 64 MiB store budget) that held peak RSS at 184–204 MiB; with 10 ms it is
//! 121 MiB at the same CPU per span (benches/README.md). mimalloc reads its options from
//! the environment as the process starts, and changing them later takes an `unsafe`
//! call, which the workspace forbids. So a server process started without
//! `MIMALLOC_PURGE_DELAY` executes itself again, once, with it set: same pid, arguments,
//! environment otherwise and standard streams. Setting `MIMALLOC_PURGE_DELAY` yourself
//! (any value) skips that.

/// The purge delay servers run with, in milliseconds.
pub const PURGE_DELAY_MS: &str = "10";

const PURGE_DELAY_VAR: &str = "MIMALLOC_PURGE_DELAY";

/// Re-executes the process with [`PURGE_DELAY_MS`] unless `MIMALLOC_PURGE_DELAY` is set.
/// Returns only when it did not re-execute: already set, or the exec failed (then the
/// process carries on with mimalloc's default and says so on stderr).
pub fn reexec_with_purge_delay() {
    if std::env::var_os(PURGE_DELAY_VAR).is_some() {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let error = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env(PURGE_DELAY_VAR, PURGE_DELAY_MS)
            .exec();
        eprintln!(
            "hopscope: could not re-execute with {PURGE_DELAY_VAR}={PURGE_DELAY_MS} ({error}); \
             running with mimalloc's default purge delay (higher peak RSS)"
        );
    }
}
