//! Test harness: runs the real `hopscope` binary on free loopback ports with its own data
//! directory, and talks to it over HTTP like any client would.

#![allow(dead_code)]

pub mod otlp;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running hopscope process; killed when dropped.
pub struct Hopscope {
    pub child: Child,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub query: SocketAddr,
    pub data_dir: tempfile::TempDir,
    pub client: reqwest::Client,
}

/// A free port on 127.0.0.1 (bound, then released for the child to take).
pub fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr")
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hopscope"))
}

impl Hopscope {
    /// Starts hopscope with default settings plus `extra_args`, waiting until it answers.
    pub async fn start(extra_args: &[&str]) -> Hopscope {
        Self::start_in(tempfile::tempdir().expect("temp dir"), extra_args).await
    }

    /// Starts hopscope on an existing data directory (e.g. the one a killed process left).
    pub async fn start_in(data_dir: tempfile::TempDir, extra_args: &[&str]) -> Hopscope {
        Self::spawn(data_dir, extra_args, false).await
    }

    /// Like [`Hopscope::start`] with info logging, its stderr written to a file that
    /// [`Hopscope::log`] reads (not a terminal, as under a service manager).
    pub async fn start_logged(extra_args: &[&str]) -> Hopscope {
        Self::spawn(tempfile::tempdir().expect("temp dir"), extra_args, true).await
    }

    /// What the process has written to stderr so far (only for [`Hopscope::start_logged`]).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.path().join("stderr.log")).unwrap_or_default()
    }

    async fn spawn(data_dir: tempfile::TempDir, extra_args: &[&str], logged: bool) -> Hopscope {
        let (grpc, http, query) = (free_addr(), free_addr(), free_addr());
        let mut command = Command::new(binary());
        command
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(["--grpc-listen", &grpc.to_string()])
            .args(["--http-listen", &http.to_string()])
            .args(["--query-listen", &query.to_string()])
            .args(extra_args)
            .env("HOPSCOPE_LOG", if logged { "info" } else { "warn" })
            .stdin(Stdio::null());
        if logged {
            let file = std::fs::File::create(data_dir.path().join("stderr.log")).expect("log file");
            command.stderr(file);
        }
        let child = command.spawn().expect("start hopscope");
        let hopscope = Hopscope {
            child,
            grpc,
            http,
            query,
            data_dir,
            client: reqwest::Client::new(),
        };
        hopscope.wait_ready().await;
        hopscope
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let query_up = self.client.get(self.query_url("/api/services")).send().await.is_ok();
            let grpc_up = tokio::net::TcpStream::connect(self.grpc).await.is_ok();
            let http_up = tokio::net::TcpStream::connect(self.http).await.is_ok();
            if query_up && grpc_up && http_up {
                return;
            }
            assert!(Instant::now() < deadline, "hopscope did not start within 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn query_url(&self, path: &str) -> String {
        format!("http://{}{}", self.query, path)
    }

    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.http)
    }

    /// GET on the query API; returns status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(self.query_url(path))
            .send()
            .await
            .expect("query api reachable");
        let status = response.status().as_u16();
        let body = response.json().await.expect("query api answers JSON");
        (status, body)
    }

    /// GET that must succeed; returns the JSON body.
    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path} answered {status}: {body}");
        body
    }

    /// Polls `/api/traces/{id}` until the trace has at least `spans` spans.
    pub async fn wait_for_trace(&self, trace_id: &str, spans: usize) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = self.get(&format!("/api/traces/{trace_id}")).await;
            if status == 200 && body["data"][0]["spans"].as_array().map_or(0, Vec::len) >= spans {
                return body["data"][0].clone();
            }
            assert!(
                Instant::now() < deadline,
                "trace {trace_id} did not reach {spans} spans: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the process with SIGKILL (no chance to flush anything) and hands back its
    /// data directory for a restart.
    pub fn kill_hard(mut self) -> tempfile::TempDir {
        self.child.kill().expect("SIGKILL hopscope");
        self.child.wait().expect("reap hopscope");
        std::mem::replace(&mut self.data_dir, tempfile::tempdir().expect("temp dir"))
    }

    /// Waits until `/ready` says the store holds everything logged before the start.
    pub async fn wait_ready_to_query(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = self
                .client
                .get(self.query_url("/ready"))
                .send()
                .await
                .map(|r| r.status().as_u16());
            if ready.ok() == Some(200) {
                return;
            }
            assert!(Instant::now() < deadline, "hopscope did not become ready within 60 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The value of one Prometheus metric from `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self
            .client
            .get(self.query_url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        text.lines()
            .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("metric {name} missing from:\n{text}"))
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "hopscope did not exit within 20 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Hopscope {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The span of a Jaeger trace with this operation name.
pub fn span_named<'a>(trace: &'a Value, name: &str) -> &'a Value {
    trace["spans"]
        .as_array()
        .and_then(|spans| spans.iter().find(|s| s["operationName"] == name))
        .unwrap_or_else(|| panic!("no span named {name:?} in {trace}"))
}

/// The value of a tag in a Jaeger tag list.
pub fn tag<'a>(tags: &'a Value, key: &str) -> Option<&'a Value> {
    tags.as_array()?.iter().find(|t| t["key"] == key)
}

/// The value of a tag, asserting its Jaeger type.
pub fn typed_tag<'a>(tags: &'a Value, key: &str, ty: &str) -> &'a Value {
    let tag = tag(tags, key).unwrap_or_else(|| panic!("no tag {key} in {tags}"));
    assert_eq!(tag["type"], ty, "tag {key} has the wrong type: {tag}");
    &tag["value"]
}

/// Trace ids found by a Jaeger search.
pub fn trace_ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .map(|traces| {
            traces
                .iter()
                .map(|t| t["traceID"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}
