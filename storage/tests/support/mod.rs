//! Shared test support for the ClickHouse store: a real 18.16 server started per test,
//! the chDB HTTP front (modern engine), fixture spans and the conformance check that
//! compares a store's answers with the embedded store's.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hopscope_schemas::{
    AttrValue, Event, HopKind, KeyValue, Link, Resource, Scope, SpanId, SpanKind, SpanRecord, StatusCode, TraceId,
};
use hopscope_storage::clickhouse::{ClickHouseConfig, Compression};
use hopscope_storage::{EmbeddedConfig, EmbeddedStore, OperationQuery, SpanReader, SpanWriter, TagFilter, TraceQuery};

/// The Python with chdb-core installed.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("HOPSCOPE_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        root.exists(),
        "no Python with chdb-core: run scripts/test.sh or set HOPSCOPE_TEST_PYTHON"
    );
    root
}

fn front_script() -> PathBuf {
    // Through the workspace root, so that other crates' tests can include this module.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../storage/tests/support/chdb_http.py")
}

/// chDB behind a ClickHouse-compatible HTTP front.
pub struct ChdbFront {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl ChdbFront {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(python())
            .arg(front_script())
            .arg("--path")
            .arg(dir.path().join("chdb"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the chDB front (is chdb-core installed? see tests/python/requirements.txt)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .unwrap_or_else(|| panic!("chDB front did not start: {line:?}"));
        Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
            _dir: dir,
        }
    }

    /// Parses every statement of a DDL script with the modern engine's parser.
    pub fn validate(script: &str) -> Result<(), String> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ddl.sql");
        std::fs::write(&file, script).unwrap();
        let out = Command::new(python())
            .arg(front_script())
            .arg("--validate")
            .arg(&file)
            .output()
            .unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stdout).into_owned())
        }
    }
}

impl Drop for ChdbFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `clickhouse-server` binary (Debian installs it in /usr/sbin).
pub fn server_binary() -> PathBuf {
    for candidate in ["/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!("clickhouse-server is not installed: run scripts/test.sh (it apt-installs it)");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A real ClickHouse server (Debian's 18.16) in its own temporary directory.
pub struct LegacyServer {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub http_port: u16,
    tcp_port: u16,
}

impl LegacyServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Self {
            child: None,
            dir,
            http_port: free_port(),
            tcp_port: free_port(),
        };
        server.write_config();
        server.spawn();
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    fn write_config(&self) {
        let d = self.dir.path().display();
        let config = format!(
            "<yandex>
  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/error.log</errorlog></logger>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{d}/data/</path>
  <tmp_path>{d}/data/tmp/</tmp_path>
  <user_files_path>{d}/data/user_files/</user_files_path>
  <format_schema_path>{d}/data/format_schemas/</format_schema_path>
  <mark_cache_size>5368709</mark_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
  <users_config>{d}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
</yandex>
",
            http = self.http_port,
            tcp = self.tcp_port
        );
        std::fs::write(self.dir.path().join("config.xml"), config).unwrap();
        std::fs::write(
            self.dir.path().join("users.xml"),
            "<yandex>
  <profiles><default></default></profiles>
  <users><default><password></password><networks><ip>::/0</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
",
        )
        .unwrap();
    }

    /// Starts the server process and waits until it answers.
    pub fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("stdout.log")).unwrap();
        let child = Command::new(server_binary())
            .arg(format!(
                "--config-file={}",
                self.dir.path().join("config.xml").display()
            ))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start clickhouse-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.http_port)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "clickhouse-server did not start; see {}",
                self.dir.path().display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILLs the server.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for LegacyServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A store configuration for tests: one database per test, fast retries.
pub fn config(url: &str, database: &str, compression: Compression) -> ClickHouseConfig {
    ClickHouseConfig {
        url: url.into(),
        database: database.into(),
        compression,
        request_timeout: Duration::from_secs(20),
        ..ClickHouseConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// Fixture spans

fn kv(key: &str, value: AttrValue) -> KeyValue {
    KeyValue::new(key, value)
}

/// The fixture's time origin: an hour ago (recent enough for any retention), whole ms.
pub fn base_ns() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    (now - 3_600_000_000_000) / 1_000_000 * 1_000_000
}

fn resource(service: &str, host: &str) -> Arc<Resource> {
    Arc::new(Resource {
        attributes: vec![
            kv("service.name", AttrValue::String(service.into())),
            kv("host.name", AttrValue::String(host.into())),
            kv("cloud.provider", AttrValue::String("aws".into())),
            kv("cloud.region", AttrValue::String("eu-west-1".into())),
        ],
        dropped_attributes_count: 1,
        schema_url: "https://opentelemetry.io/schemas/1.24.0".into(),
    })
}

/// `traces` traces of five spans over four services; every start time is distinct.
pub fn fixture(base: u64, traces: u32) -> Vec<SpanRecord> {
    let scope = Arc::new(Scope {
        name: "io.hopscope.test".into(),
        version: "1.2.3".into(),
        attributes: vec![kv("scope.attr", AttrValue::Int(7))],
        dropped_attributes_count: 0,
        schema_url: String::new(),
    });
    let mut spans = Vec::new();
    for t in 0..traces {
        let mut trace_id = [0u8; 16];
        trace_id[..4].copy_from_slice(&(t + 1).to_be_bytes());
        trace_id[15] = 0xab;
        let trace_id = TraceId(trace_id);
        let start = base + u64::from(t) * 10_000_000;
        let id = |n: u8| {
            let mut s = [0u8; 8];
            s[..4].copy_from_slice(&(t + 1).to_be_bytes());
            s[7] = n;
            SpanId(s)
        };
        let failing = t % 5 == 3;
        let slow = u64::from(t % 7) * 1_000_000;
        let mk = |n: u8,
                  parent: Option<u8>,
                  service: &str,
                  name: &str,
                  kind: SpanKind,
                  offset: u64,
                  duration: u64,
                  hop: HopKind| SpanRecord {
            trace_id,
            span_id: id(n),
            parent_span_id: parent.map(id),
            trace_state: if n == 1 { "vendor=x".into() } else { String::new() },
            flags: 1,
            name: name.into(),
            kind,
            start_time_unix_nano: start + offset,
            end_time_unix_nano: start + offset + duration,
            status_code: StatusCode::Unset,
            status_message: String::new(),
            attributes: vec![],
            dropped_attributes_count: 0,
            events: vec![],
            dropped_events_count: 0,
            links: vec![],
            dropped_links_count: 0,
            resource: resource(service, &format!("{service}-host-{}", t % 2)),
            scope: scope.clone(),
            service_name: service.into(),
            hop_kind: hop,
            peer: None,
            host: Some(format!("{service}-host-{}", t % 2)),
        };
        let mut root = mk(
            1,
            None,
            "front",
            if t % 2 == 0 { "GET /pay" } else { "GET /cart" },
            SpanKind::Server,
            0,
            5_000_000 + slow,
            HopKind::Http,
        );
        root.attributes = vec![
            kv("http.request.method", AttrValue::String("GET".into())),
            kv(
                "http.response.status_code",
                AttrValue::Int(if failing { 500 } else { 200 }),
            ),
            kv("user.vip", AttrValue::Bool(t % 3 == 0)),
            kv("sample.ratio", AttrValue::Double(0.25)),
            kv("raw", AttrValue::Bytes(vec![0, 1, 0xfe])),
            kv(
                "list",
                AttrValue::Array(vec![AttrValue::Int(1), AttrValue::String("two".into())]),
            ),
            kv("nested", AttrValue::KvList(vec![kv("a", AttrValue::Bool(false))])),
            kv("empty", AttrValue::Empty),
            kv("tenant", AttrValue::String(format!("tenant-{}", t % 4))),
        ];
        if failing {
            root.status_code = StatusCode::Error;
            root.status_message = "upstream failed".into();
        }
        let mut call = mk(
            2,
            Some(1),
            "front",
            "call pay",
            SpanKind::Client,
            100_000,
            3_000_000 + slow,
            HopKind::Http,
        );
        call.peer = Some("pay:8080".into());
        call.links = vec![Link {
            trace_id: TraceId([9; 16]),
            span_id: SpanId([8; 8]),
            trace_state: "k=v".into(),
            attributes: vec![kv("link.kind", AttrValue::String("follows".into()))],
            dropped_attributes_count: 2,
            flags: 1,
        }];
        let mut charge = mk(
            3,
            Some(2),
            "pay",
            "charge",
            SpanKind::Server,
            200_000,
            2_000_000 + slow,
            HopKind::Http,
        );
        charge.events = vec![Event {
            time_unix_nano: start + 300_000,
            name: "exception".into(),
            attributes: vec![kv(
                "exception.type",
                AttrValue::String(if failing { "Timeout".into() } else { "None".into() }),
            )],
            dropped_attributes_count: 0,
        }];
        if failing {
            charge.status_code = StatusCode::Error;
            charge.status_message = "card declined".into();
        } else {
            charge.status_code = StatusCode::Ok;
        }
        let mut cache = mk(
            4,
            Some(3),
            "pay",
            "GET",
            SpanKind::Client,
            400_000,
            100_000 + u64::from(t),
            HopKind::Cache,
        );
        cache.peer = Some(format!("redis-shard-{}:6379", t % 2));
        cache.attributes = vec![kv("db.system", AttrValue::String("redis".into()))];
        let mut publish = mk(
            5,
            Some(3),
            "ledger",
            "ledger publish",
            SpanKind::Consumer,
            900_000,
            50_000,
            HopKind::Mq,
        );
        publish.dropped_events_count = 3;
        publish.dropped_links_count = 1;
        publish.dropped_attributes_count = 4;
        spans.extend([root, call, charge, cache, publish]);
    }
    spans
}

/// One trace in which a parent calls the same other service twice (two sibling server
/// spans): the dependency count must be 2. Catches an id mix-up in the dependency join
/// that merges siblings (e.g. an alias shadowing the `span_id` column).
pub fn fanout(base: u64) -> Vec<SpanRecord> {
    let mut spans = fixture(base + 5_000_000_000, 1);
    let trace_id = TraceId([0x5a; 16]);
    for span in &mut spans {
        span.trace_id = trace_id;
    }
    let mut sibling = spans[2].clone(); // "pay" server span, child of the front client span
    sibling.span_id = SpanId([0x5b; 8]);
    sibling.start_time_unix_nano += 1_000;
    sibling.end_time_unix_nano += 1_000;
    sibling.events.clear();
    spans.push(sibling);
    spans
}

// ---------------------------------------------------------------------------------------
// Conformance

/// A trace as comparable data.
fn flat(traces: Vec<hopscope_storage::Trace>) -> Vec<(TraceId, Vec<SpanRecord>)> {
    traces
        .into_iter()
        .map(|t| (t.trace_id, t.spans.iter().map(|s| (**s).clone()).collect()))
        .collect()
}

fn tag(key: &str, value: &str) -> TagFilter {
    TagFilter {
        key: key.into(),
        value: value.into(),
    }
}

/// 30 one-span-tree traces of the [`fixture`] shape, one every 47 s from 10 minutes
/// after `base` (about 23 minutes in all), so that a search over the whole window reads
/// several of the reader's newest-first time slices.
pub fn spread(base: u64) -> Vec<SpanRecord> {
    (0..30u8)
        .flat_map(|k| {
            fixture(base + 600_000_000_000 + u64::from(k) * 47_000_000_000, 1)
                .into_iter()
                .map(move |mut span| {
                    span.trace_id.0[14] = k + 1;
                    span
                })
        })
        .collect()
}

/// The searches the conformance suite runs (each filter alone, and together).
pub fn queries(base: u64) -> Vec<TraceQuery> {
    let q = TraceQuery::default();
    let svc = |s: &str| Some(s.to_string());
    vec![
        q.clone(),
        TraceQuery { limit: 3, ..q.clone() },
        TraceQuery {
            service: svc("pay"),
            ..q.clone()
        },
        TraceQuery {
            service: svc("front"),
            operation: svc("GET /pay"),
            ..q.clone()
        },
        TraceQuery {
            service: svc("pay"),
            span_kind: Some(SpanKind::Client),
            ..q.clone()
        },
        TraceQuery {
            span_kind: Some(SpanKind::Consumer),
            limit: 5,
            ..q.clone()
        },
        TraceQuery {
            tags: vec![tag("error", "true")],
            ..q.clone()
        },
        TraceQuery {
            tags: vec![tag("http.response.status_code", "500")],
            ..q.clone()
        },
        TraceQuery {
            tags: vec![tag("user.vip", "true")],
            ..q.clone()
        },
        TraceQuery {
            tags: vec![tag("sample.ratio", "0.25")],
            limit: 2,
            ..q.clone()
        },
        TraceQuery {
            tags: vec![tag("raw", "0001fe")],
            limit: 2,
            ..q.clone()
        },
        TraceQuery {
            tags: vec![tag("list", "[1,\"two\"]")],
            limit: 2,
            ..q.clone()
        },
        TraceQuery {
            tags: vec![tag("nested", "{\"a\":false}")],
            limit: 2,
            ..q.clone()
        },
        TraceQuery {
            tags: vec![tag("empty", "")],
            limit: 2,
            ..q.clone()
        },
        TraceQuery {
            tags: vec![tag("exception.type", "Timeout")],
            ..q.clone()
        },
        TraceQuery {
            tags: vec![tag("host.name", "pay-host-1")],
            ..q.clone()
        },
        TraceQuery {
            tags: vec![tag("span.kind", "consumer")],
            limit: 4,
            ..q.clone()
        },
        TraceQuery {
            tags: vec![tag("otel.status_code", "OK")],
            limit: 4,
            ..q.clone()
        },
        TraceQuery {
            tags: vec![tag("otel.status_description", "card declined")],
            ..q.clone()
        },
        TraceQuery {
            tags: vec![tag("otel.scope.name", "io.hopscope.test")],
            limit: 2,
            ..q.clone()
        },
        TraceQuery {
            tags: vec![tag("otel.scope.version", "")],
            ..q.clone()
        },
        TraceQuery {
            tags: vec![tag("tenant", "tenant-1"), tag("user.vip", "true")],
            ..q.clone()
        },
        TraceQuery {
            tags: vec![tag("tenant", "it's \\ 'quoted'")],
            ..q.clone()
        },
        TraceQuery {
            service: svc("x' OR 1=1 --"),
            ..q.clone()
        },
        TraceQuery {
            min_duration_ns: Some(8_000_000),
            ..q.clone()
        },
        TraceQuery {
            max_duration_ns: Some(60_000),
            ..q.clone()
        },
        TraceQuery {
            service: svc("pay"),
            min_duration_ns: Some(100_010),
            max_duration_ns: Some(100_020),
            ..q.clone()
        },
        TraceQuery {
            start_ns: Some(base + 50_000_000),
            end_ns: Some(base + 120_000_000),
            ..q.clone()
        },
        TraceQuery {
            start_ns: Some(base + 50_000_000),
            end_ns: Some(base + 10_000_000),
            ..q.clone()
        },
        // Windows of many time slices (see `spread`): the newest traces first, across slices.
        TraceQuery {
            start_ns: Some(base),
            end_ns: Some(base + 2_400_000_000_000),
            limit: 7,
            ..q.clone()
        },
        TraceQuery {
            start_ns: Some(base),
            end_ns: Some(base + 2_400_000_000_000),
            limit: 45,
            ..q.clone()
        },
        TraceQuery {
            service: svc("pay"),
            end_ns: Some(base + 2_400_000_000_000),
            ..q.clone()
        },
        TraceQuery {
            tags: vec![tag("error", "true")],
            start_ns: Some(base),
            end_ns: Some(base + 1_500_000_000_000),
            limit: 4,
            ..q.clone()
        },
        TraceQuery {
            service: svc("pay"),
            operation: svc("charge"),
            span_kind: Some(SpanKind::Server),
            tags: vec![tag("error", "true")],
            min_duration_ns: Some(2_000_000),
            max_duration_ns: Some(9_000_000),
            start_ns: Some(base),
            end_ns: Some(base + 400_000_000),
            limit: 3,
        },
    ]
}

/// Requires `store` to give the embedded store's answers for the same spans.
pub async fn assert_conformance(store: &dyn SpanReader, spans: &[SpanRecord], base: u64) {
    let embedded = EmbeddedStore::new(EmbeddedConfig::default());
    embedded.write_spans(spans.to_vec()).await.unwrap();
    let reference: &dyn SpanReader = &embedded;

    assert_eq!(store.services().await.unwrap(), reference.services().await.unwrap());
    for service in ["front", "pay", "ledger", "nope"] {
        for span_kind in [None, Some(SpanKind::Client), Some(SpanKind::Server)] {
            let q = OperationQuery {
                service: service.into(),
                span_kind,
            };
            assert_eq!(
                store.operations(&q).await.unwrap(),
                reference.operations(&q).await.unwrap(),
                "{q:?}"
            );
        }
    }
    let mut ids: Vec<TraceId> = spans.iter().map(|s| s.trace_id).collect();
    ids.dedup();
    ids.push(TraceId([0x77; 16]));
    for id in ids {
        let got = store.trace(id).await.unwrap().map(|t| flat(vec![t]));
        let want = reference.trace(id).await.unwrap().map(|t| flat(vec![t]));
        assert_eq!(got, want, "trace {id}");
    }
    for q in queries(base) {
        let got = flat(store.find_traces(&q).await.unwrap());
        let want = flat(reference.find_traces(&q).await.unwrap());
        let ids = |v: &[(TraceId, Vec<SpanRecord>)]| v.iter().map(|t| t.0.to_string()).collect::<Vec<_>>();
        assert_eq!(ids(&got), ids(&want), "{q:?}");
        assert_eq!(got, want, "{q:?}");
    }
    for (a, b) in [
        (0, u64::MAX),
        (base, base + 100_000_000),
        (base + 200_300, base + 200_300),
        (10, 5),
    ] {
        assert_eq!(
            store.dependencies(a, b).await.unwrap(),
            reference.dependencies(a, b).await.unwrap(),
            "dependencies {a}..{b}"
        );
    }
}
