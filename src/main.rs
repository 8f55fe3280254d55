//! The `hopscope` binary: parses the command line, sets up logging and runs a role.
//!
//! `hopscope demo` and `hopscope loadgen` exist with the cargo features `demo` and
//! `loadgen` (both default, so `cargo run` has them); a production build
//! (`--no-default-features`) links neither the demo's middleware clients (sqlx, lapin,
//! redis) nor the load generator.

mod all_in_one;
mod allocator;
mod cli;
mod config;
#[cfg(feature = "demo")]
mod demo;
mod migrate;
mod observability;
mod pipeline;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command};

/// mimalloc, tuned as [`allocator`] describes.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs the command; an error is printed as one line (`error: ...` with its causes, no
/// backtrace, whatever `RUST_BACKTRACE` says) and exits with status 1. Errors here are
/// what a user can fix (a port in use, a data directory in use, a bad file); bugs panic.
fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let serves = match &cli.command {
        None | Some(Command::AllInOne) => true,
        #[cfg(feature = "demo")]
        Some(Command::Demo(_)) => true,
        _ => false,
    };
    if serves && !cli.options.print_config {
        allocator::reexec_with_purge_delay();
    }
    let config = cli.options.resolve()?;
    if cli.options.print_config {
        print!("{}", config.to_toml()?);
        return Ok(());
    }
    // Colour only for a person at a terminal: logs redirected to a file or a collector
    // stay plain text (and NO_COLOR turns colour off anyway).
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.options.log)?)
        .with_ansi(colour)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command.unwrap_or(Command::AllInOne) {
        Command::AllInOne => runtime.block_on(all_in_one::run(config)),
        #[cfg(feature = "demo")]
        Command::Demo(args) => runtime.block_on(demo::run(config, args)),
        Command::Migrate { print, legacy } => runtime.block_on(migrate::run(config, print, legacy)),
        #[cfg(feature = "loadgen")]
        Command::Loadgen(args) => runtime.block_on(hopscope_loadgen::run(args)).map(drop),
    }
}
