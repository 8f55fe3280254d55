//! `scripts/test.sh`'s service set-up (`scripts/lib/services.sh`): a service that is
//! listening is left alone, one that cannot be started is named and the suite is told to
//! skip (not require) it. Exercised with stand-in services, so the machine's real ones
//! are never stopped or started here.

#![allow(clippy::unwrap_used)]

use std::process::Command;

mod common;

/// Sources the script with `SERVICES` replaced and runs `ensure_services`, printing
/// whether the tests will require services; returns stdout and stderr.
fn ensure(services: &str) -> (String, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lib/services.sh");
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!(
            ". {script}\nstart_broken() {{ echo 'services: stand-in start failed' >&2; return 1; }}\n\
             SERVICES='{services}'\nensure_services\necho \"require=${{HOPSCOPE_REQUIRE_SERVICES:-unset}}\""
        ))
        .env_remove("HOPSCOPE_REQUIRE_SERVICES")
        .output()
        .expect("run bash");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_listening_service_is_used_and_a_missing_one_is_named() {
    let listening = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listening.local_addr().unwrap().port();
    let (out, err) = ensure(&format!("Standin {port} start_broken"));
    assert!(
        out.contains(&format!("Standin already listening on 127.0.0.1:{port}")),
        "{out}"
    );
    assert!(out.contains("require=1"), "{out}{err}");

    let closed = common::free_addr().port();
    let (out, err) = ensure(&format!("Standin {port} start_broken\nGhostMQ {closed} start_broken"));
    assert!(err.contains("not available: GhostMQ"), "{err}");
    assert!(out.contains("require=unset"), "the tests must skip, not fail: {out}");
    drop(listening);
}
