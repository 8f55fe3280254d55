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
