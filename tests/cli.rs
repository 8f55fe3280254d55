//! The `hopscope` command line as a user meets it: help, configuration precedence,
//! clean shutdown on SIGTERM, and one process per data directory.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{Hopscope, binary};

#[test]
fn help_names_the_ports_and_options() {
    let output = Command::new(binary())
        .arg("--help")
        .output()
        .expect("run hopscope --help");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "all-in-one",
        "--config",
        "--data-dir",
        "--grpc-listen",
        "--query-listen",
        "HOPSCOPE_DATA_DIR",
        "4317",
    ] {
        assert!(help.contains(expected), "--help does not mention {expected}:\n{help}");
    }
}

#[test]
fn flags_beat_environment_beats_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hopscope.toml");
    std::fs::write(
        &file,
        "[collector]\ngrpc_listen = \"127.0.0.1:1111\"\nhttp_listen = \"127.0.0.1:2222\"\n[query]\nlisten = \"127.0.0.1:3333\"\n",
    )
    .unwrap();
    let output = Command::new(binary())
        .args([
            "--config",
            file.to_str().unwrap(),
            "--print-config",
            "--grpc-listen",
            "127.0.0.1:4444",
        ])
        .env("HOPSCOPE_GRPC_LISTEN", "127.0.0.1:5555")
        .env("HOPSCOPE_HTTP_LISTEN", "127.0.0.1:6666")
        .output()
        .expect("run hopscope --print-config");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("grpc_listen = \"127.0.0.1:4444\""), "{printed}");
    assert!(printed.contains("http_listen = \"127.0.0.1:6666\""), "{printed}");
    assert!(printed.contains("listen = \"127.0.0.1:3333\""), "{printed}");
}

#[test]
fn a_config_typo_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[collector]\nmax_request_byte = 10\n").unwrap();
    let output = Command::new(binary())
        .args(["--config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("max_request_byte"), "{stderr}");
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly_and_the_data_dir_is_exclusive() {
    let mut hopscope = Hopscope::start(&[]).await;

    let second = Command::new(binary())
        .arg("--data-dir")
        .arg(hopscope.data_dir.path())
        .args([
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--query-listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!second.status.success(), "a second process shared the data directory");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("in use by another hopscope process"), "{stderr}");

    let status = hopscope.terminate();
    assert!(status.success(), "exit after SIGTERM: {status:?}");
}

#[tokio::test]
async fn start_up_prints_the_ui_url_without_colour_codes() {
    let hopscope = Hopscope::start_logged(&[]).await;
    let url = format!("UI: http://localhost:{}/", hopscope.query.port());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !hopscope.log().contains(&url) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {url:?} in the start-up log:\n{}",
            hopscope.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // stderr is a file here, not a terminal: no ANSI escape codes.
    assert!(
        !hopscope.log().contains('\u{1b}'),
        "colour codes in a log file:\n{}",
        hopscope.log()
    );
}

/// Runs `hopscope demo` with `args` (and a backtrace asked for) and returns its stderr,
/// after checking it failed without starting the workload.
fn failed_demo(args: &[&str]) -> String {
    let output = Command::new(binary())
        .arg("demo")
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .env("HOPSCOPE_LOG", "info")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("demo workload running"), "{stderr}");
    assert!(!stderr.to_lowercase().contains("backtrace"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one clear line:\n{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

#[tokio::test]
async fn demo_beside_a_running_server_names_the_flag_to_change() {
    let hopscope = Hopscope::start(&[]).await;
    let free = || common::free_addr().to_string();
    let (g, h, q) = (free(), free(), free());
    let data_dir = hopscope.data_dir.path().to_str().unwrap();
    let stderr = failed_demo(&[
        "--data-dir",
        data_dir,
        "--grpc-listen",
        &g,
        "--http-listen",
        &h,
        "--query-listen",
        &q,
    ]);
    assert!(
        stderr.contains("in use by another hopscope process") && stderr.contains("--data-dir"),
        "{stderr}"
    );

    let other = tempfile::tempdir().unwrap();
    let taken = hopscope.query.to_string();
    let stderr = failed_demo(&[
        "--data-dir",
        other.path().to_str().unwrap(),
        "--grpc-listen",
        &g,
        "--http-listen",
        &h,
        "--query-listen",
        &taken,
    ]);
    assert!(
        stderr.contains(&taken) && stderr.contains("in use") && stderr.contains("--query-listen"),
        "{stderr}"
    );
}

/// The README's "Quick start" section.
fn quick_start() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("## Quick start").expect("a Quick start section");
    let rest = &readme[start + 3..];
    rest[..rest.find("\n## ").unwrap_or(rest.len())].to_owned()
}

#[test]
fn readme_quick_start_flags_env_and_path_work_as_written() {
    let section = quick_start();
    // Flags go after `cargo run --release --`: run the binary with exactly those flags.
    let line = section
        .lines()
        .find(|l| l.starts_with("cargo run --release -- "))
        .unwrap_or_else(|| panic!("no `cargo run --release -- <flags>` line:\n{section}"));
    let flags: Vec<&str> = line["cargo run --release -- ".len()..]
        .split('#')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert!(flags.contains(&"--query-listen"), "{line}");
    let output = Command::new(binary())
        .args(&flags)
        .arg("--print-config")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    let query = flags[flags.iter().position(|f| *f == "--query-listen").unwrap() + 1];
    assert!(printed.contains(&format!("listen = \"{query}\"")), "{printed}");
    // The same with environment variables.
    let env_line = section
        .lines()
        .find(|l| l.starts_with("HOPSCOPE_"))
        .unwrap_or_else(|| panic!("no HOPSCOPE_* environment example:\n{section}"));
    let mut command = Command::new(binary());
    for pair in env_line.split_whitespace().take_while(|w| w.contains('=')) {
        let (key, value) = pair.split_once('=').unwrap();
        command.env(key, value);
    }
    let output = command.arg("--print-config").output().unwrap();
    assert!(output.status.success(), "{env_line}");
    let printed = String::from_utf8_lossy(&output.stdout);
    let query = env_line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("HOPSCOPE_QUERY_LISTEN="))
        .unwrap_or_else(|| panic!("the env example sets HOPSCOPE_QUERY_LISTEN: {env_line}"));
    assert!(printed.contains(&format!("listen = \"{query}\"")), "{printed}");
    // How to get `hopscope` on the PATH, and what the test command installs and starts.
    for expected in [
        "cargo install --path .",
        "./target/release/hopscope",
        "clickhouse-server",
        "Chromium",
        "Redis",
        "RabbitMQ",
        "MariaDB",
        "PostgreSQL",
        "UI: http://localhost:16686/",
    ] {
        assert!(
            section.contains(expected),
            "Quick start does not mention {expected}:\n{section}"
        );
    }
}

#[test]
fn demo_help_groups_its_flags_and_the_readme_documents_each() {
    let output = Command::new(binary()).args(["demo", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    let demo = help.find("Demo workload:").unwrap_or_else(|| panic!("{help}"));
    let server = help.find("Server options:").unwrap_or_else(|| panic!("{help}"));
    let demo_section = &help[demo..server.max(demo)];
    assert!(
        demo_section.contains("--rate") && !demo_section.contains("--data-dir"),
        "{help}"
    );
    assert!(help[server..].contains("--data-dir"), "{help}");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let flags: Vec<&str> = demo_section
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .collect();
    assert!(flags.contains(&"--fault-noisy-host"), "{flags:?}");
    for flag in flags {
        assert!(readme.contains(flag), "README does not document `hopscope demo {flag}`");
    }
}
