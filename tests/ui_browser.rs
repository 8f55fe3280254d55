//! The web UI in a real headless Chromium (Debian's chromium + chromedriver, driven over
//! the WebDriver protocol) against the real binary running the demo workload plus crafted
//! traces: every page loads, search → trace navigation works, the culprit headline and the
//! critical path appear, filters change results, a subtree collapses, and hostile span
//! names and attributes show as text. Screenshots of every page go to
//! `target/ui-screenshots/`.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`scripts/test.sh` installs them).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Hopscope, free_addr};
use hopscope_schemas::fixtures::{self, T0, resource, span, trace_id};
use hopscope_schemas::otlp::traces_data;
use hopscope_schemas::{AttrValue, KeyValue, SpanKind, SpanRecord};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

const CONFIG: &str = r#"
[sla]
default_level = "standard"
[sla.levels.standard]
p99_ms = 250.0
max_error_rate = 0.02
[sla.levels.gold]
p99_ms = 100.0
max_error_rate = 0.001
[[sla.rules]]
service = "demo-gateway"
level = "gold"

[layers]
order = ["edge", "business", "data"]
[[layers.rules]]
service = "demo-gateway"
layer = "edge"
[[layers.rules]]
service = "web"
layer = "edge"
[[layers.rules]]
service = "demo-*"
layer = "business"
[[layers.rules]]
service = "orders"
layer = "business"
[[layers.rules]]
service = "inventory"
layer = "data"
"#;

/// A minimal WebDriver session over chromedriver.
struct Browser {
    driver: Child,
    base: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
            "the UI tests need Debian's chromium and chromium-driver: apt-get install chromium chromium-driver (scripts/test.sh does)"
        );
        let port = free_addr().port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::new();
        let root = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{root}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", "--hide-scrollbars", "--window-size=1440,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let answer: Value = http
            .post(format!("{root}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_owned();
        Browser {
            driver,
            base: format!("{root}/session/{session}"),
            http,
            _profile: profile,
        }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        answer["value"].clone()
    }

    async fn goto(&self, url: &str) {
        let v = self
            .cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
        assert!(v.is_null(), "navigate to {url}: {v}");
    }

    async fn url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn script(&self, script: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    async fn find_all(&self, css: &str) -> Vec<String> {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT].as_str().map(str::to_owned))
            .collect()
    }

    async fn find(&self, css: &str) -> String {
        let all = self.find_all(css).await;
        all.into_iter()
            .next()
            .unwrap_or_else(|| panic!("no element matches {css}"))
    }

    async fn click(&self, element: &str) {
        let v = self
            .cmd(
                reqwest::Method::POST,
                &format!("/element/{element}/click"),
                Some(json!({})),
            )
            .await;
        assert!(v.is_null(), "click: {v}");
    }

    async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.cmd(reqwest::Method::GET, &format!("/element/{e}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// No JavaScript dialog is open (an injected `alert` would open one).
    async fn no_alert(&self) {
        let v = self.cmd(reqwest::Method::GET, "/alert/text", None).await;
        assert_eq!(v["error"], "no such alert", "a dialog is open: {v}");
    }

    /// Saves the whole page as `target/ui-screenshots/{name}.png`.
    async fn screenshot(&self, name: &str) {
        let height = self
            .script("return document.documentElement.scrollHeight")
            .await
            .as_u64()
            .unwrap_or(1000);
        let rect = json!({ "width": 1440, "height": height.clamp(700, 6000) });
        self.cmd(reqwest::Method::POST, "/window/rect", Some(rect)).await;
        let png = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64_decode(png.as_str().unwrap());
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::File::create(dir.join(format!("{name}.png")))
            .unwrap()
            .write_all(&bytes)
            .unwrap();
        self.cmd(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": 1440, "height": 1000 })),
        )
        .await;
    }

    async fn wait_for(&self, what: &str, cond: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.script(&format!("return !!({cond})")).await == Value::Bool(true) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Browser {
    /// Stops chromedriver and every Chromium process of this session's profile: killing
    /// the driver alone leaves its browser running (orphaned) after the test, pass or fail.
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let profile = format!("--user-data-dir={}", self._profile.path().display());
        let _ = Command::new("pkill").args(["-KILL", "-f", "--", &profile]).status();
    }
}

fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("ui-screenshots")
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let clean: Vec<u8> = text.bytes().filter(|b| !b"=\r\n".contains(b)).collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= u32::from(value(c)) << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// Moves fixture spans (written around [`T0`]) to end just before now.
fn now_shifted(mut spans: Vec<SpanRecord>, ago_ms: u64) -> Vec<SpanRecord> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let shift = now - ago_ms * 1_000_000 - T0;
    for s in &mut spans {
        s.start_time_unix_nano += shift;
        s.end_time_unix_nano += shift;
        for e in &mut s.events {
            e.time_unix_nano += shift;
        }
    }
    spans
}

/// The crafted traces: a checkout whose time goes to one Redis shard (trace 800), a
/// typical checkout a second earlier (trace 802), a span with a hostile name and attribute
/// (trace 801), and the fixtures' layering and request/reply traces.
fn crafted() -> Vec<SpanRecord> {
    let checkout = resource("checkout", "vm-pay-2", Some("private"));
    let mut spans = vec![
        span(
            &checkout,
            800,
            8001,
            None,
            "POST /checkout",
            SpanKind::Server,
            1_000_000,
            100_000,
        )
        .http("checkout")
        .build(),
        span(
            &checkout,
            800,
            8002,
            Some(8001),
            "GET",
            SpanKind::Client,
            1_010_000,
            78_000,
        )
        .redis("redis-shard-2")
        .build(),
        span(
            &checkout,
            800,
            8003,
            Some(8001),
            "GET",
            SpanKind::Client,
            1_090_000,
            2_000,
        )
        .redis("redis-shard-1")
        .build(),
        span(
            &checkout,
            802,
            8021,
            None,
            "POST /checkout",
            SpanKind::Server,
            0,
            25_000,
        )
        .http("checkout")
        .build(),
        span(&checkout, 802, 8022, Some(8021), "GET", SpanKind::Client, 10_000, 3_000)
            .redis("redis-shard-2")
            .build(),
        span(&checkout, 802, 8023, Some(8021), "GET", SpanKind::Client, 20_000, 2_000)
            .redis("redis-shard-1")
            .build(),
    ];
    spans.extend(fixtures::request_reply());
    let mut evil = span(
        &checkout,
        801,
        8011,
        None,
        "<script>alert(1)</script>",
        SpanKind::Server,
        0,
        5_000,
    )
    .http("checkout")
    .build();
    evil.attributes.push(KeyValue::new(
        "comment",
        AttrValue::String("<img src=x onerror=alert(2)>".to_owned()),
    ));
    spans.push(evil);
    spans.extend(fixtures::layering());
    spans
}

#[tokio::test]
async fn ui_pages_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hopscope.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let queue = format!("hopscope-ui-test-{}", std::process::id());
    let hopscope = Hopscope::start(&[
        "demo",
        "--simulate",
        "--all-faults",
        "--rate",
        "25",
        "--queue",
        &queue,
        "--config",
        config.to_str().unwrap(),
    ])
    .await;
    let request = ExportTraceServiceRequest {
        resource_spans: traces_data(now_shifted(crafted(), 2_000).iter()).resource_spans,
    };
    let response = hopscope
        .client
        .post(format!("{}/v1/traces", hopscope.http_endpoint()))
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let checkout = trace_id(800).to_hex();
    let evil = trace_id(801).to_hex();
    hopscope.wait_for_trace(&checkout, 3).await;
    hopscope.wait_for_trace(&evil, 1).await;
    hopscope.wait_for_trace(&trace_id(802).to_hex(), 3).await;
    hopscope
        .wait_for_trace(&trace_id(fixtures::REPLY_TRACE).to_hex(), 8)
        .await;
    // Let the demo produce enough traffic (with its faults) for every report.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = hopscope.get_ok("/api/traces?service=demo-gateway&limit=100").await;
        if body["data"].as_array().map_or(0, Vec::len) >= 60 {
            break;
        }
        assert!(Instant::now() < deadline, "the demo produced too few traces");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ops = hopscope.get_ok("/api/services/demo-gateway/operations").await;
    let entry = ops["data"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .unwrap_or("POST /transfer")
        .to_owned();

    let base = format!("http://{}", hopscope.query);
    let browser = Browser::start().await;

    // Every page loads with its heading and no error notice.
    let blame = format!(
        "/blame?service=demo-gateway&operation={}&lookback=15m",
        entry.replace(' ', "+").replace('/', "%2F")
    );
    let pages: Vec<(&str, String, &str)> = vec![
        ("overview", "/".to_owned(), "Overview"),
        ("search", "/search?service=demo-gateway".to_owned(), "Search traces"),
        ("services", "/services".to_owned(), "Service map"),
        (
            "middleware-cache",
            "/middleware?kind=cache&lookback=5m&step=1s".to_owned(),
            "Middleware",
        ),
        (
            "middleware-db",
            "/middleware?kind=db&lookback=5m&step=1s".to_owned(),
            "Middleware",
        ),
        (
            "middleware-mq",
            "/middleware?kind=mq&lookback=5m&step=1s".to_owned(),
            "Middleware",
        ),
        (
            "middleware-host",
            "/middleware?kind=host&cloud_kind=private&lookback=5m&step=1s".to_owned(),
            "Middleware",
        ),
        ("sla", "/sla".to_owned(), "SLA health"),
        ("blame", blame, "Blame"),
        ("exceptions", "/exceptions".to_owned(), "Exceptions"),
        ("mismatches", "/mismatches".to_owned(), "Outcome mismatches"),
        (
            "trace-not-found",
            "/trace/0123456789abcdef0123456789abcdef".to_owned(),
            "Trace not found",
        ),
    ];
    for (name, path, heading) in &pages {
        browser.goto(&format!("{base}{path}")).await;
        assert_eq!(browser.text("h1").await, *heading, "{path}");
        if *name != "trace-not-found" {
            assert!(
                browser.find_all(".notice.error").await.is_empty(),
                "{path} shows an error"
            );
        }
        browser.no_alert().await;
        browser.screenshot(name).await;
    }
    browser
        .goto(&format!("{base}/trace/0123456789abcdef0123456789abcdef"))
        .await;
    assert!(
        browser
            .text("main")
            .await
            .contains("No trace with id 0123456789abcdef0123456789abcdef is stored")
    );

    // The dependency map draws nodes and marks the fixture's upward call in red.
    browser.goto(&format!("{base}/services")).await;
    assert!(browser.find_all("svg.map .node").await.len() >= 6);
    assert!(!browser.find_all("svg.map path.edge.violation").await.is_empty());
    assert!(
        browser
            .text("#violations")
            .await
            .contains("inventory (data) calls orders (business)")
    );

    // Middleware comparison lists every Redis shard of the demo.
    browser.goto(&format!("{base}/middleware?kind=cache")).await;
    let table = browser.text("#instances").await;
    assert!(
        table.contains("redis-shard-1") && table.contains("redis-shard-2"),
        "{table}"
    );

    // Filters change results: errors only keeps just the traces with errors, which the
    // demo's faults make; the unfiltered list has traces without errors too. (Counting
    // rows is not enough: the demo keeps running, and on a slow machine both lists fill
    // their limit.)
    let error_counts =
        "return [...document.querySelectorAll('table.data tbody tr')].map(r => r.cells[5].textContent.trim())";
    let cells = |v: Value| -> Vec<String> { serde_json::from_value(v).expect("error cells") };
    browser
        .goto(&format!("{base}/search?service=demo-gateway&limit=200"))
        .await;
    let all = cells(browser.script(error_counts).await);
    assert!(
        all.iter().any(|e| e == "0"),
        "the unfiltered search shows only failed traces: {all:?}"
    );
    browser.click(&browser.find("#f-errors").await).await;
    browser.click(&browser.find("#f-submit").await).await;
    browser
        .wait_for("the errors-only search", "location.search.includes('errors=1')")
        .await;
    let failed = cells(browser.script(error_counts).await);
    assert!(
        !failed.is_empty() && failed.iter().all(|e| e != "0"),
        "errors only: {failed:?}"
    );
    browser.screenshot("search-errors-only").await;

    // Search → trace: the crafted checkout names its culprit in words.
    browser.goto(&format!("{base}/search?service=checkout")).await;
    browser.screenshot("search-checkout").await;
    let link = browser.find("table.data tbody td a").await;
    browser.click(&link).await;
    browser
        .wait_for("the trace page", "location.pathname.startsWith('/trace/')")
        .await;
    assert_eq!(browser.url().await, format!("{base}/trace/{checkout}"));
    let headline = browser.text("#culprit").await;
    assert_eq!(
        headline,
        "78% of this request was spent in GET on redis-shard-2:6379 (cache), from checkout on vm-pay-2, private DC"
    );
    assert_eq!(browser.find_all("#critical-path tbody tr").await.len(), 3);
    assert_eq!(browser.find_all("ol.waterfall li.crit").await.len(), 3);
    assert_eq!(browser.find_all("ol.waterfall li.culprit").await.len(), 1);
    // Span details open on click.
    browser.click(&browser.find("li.culprit summary").await).await;
    assert!(
        browser
            .text("li.culprit .span-details")
            .await
            .contains("redis-shard-2:6379")
    );
    browser.screenshot("trace-checkout").await;

    // Compare with typical: the earlier checkout is the typical one.
    browser.click(&browser.find("#compare-typical").await).await;
    browser
        .wait_for("the compare page", "location.pathname === '/compare'")
        .await;
    assert_eq!(
        browser.text("p.verdict").await,
        "+75 ms in GET on redis-shard-2:6379 vs the typical 3.0 ms"
    );
    assert!(browser.find_all("#compare-table tbody tr").await.len() >= 3);
    assert!(browser.text("#compare-table thead").await.contains("typical (1 trace)"));
    assert_eq!(browser.find_all("#compare-table td.slower").await.len(), 1);
    assert_eq!(browser.find_all("#compare-table .bar.other").await.len(), 3);
    browser.screenshot("compare-typical").await;

    // Request/reply over a queue: the wait in the queue is the culprit; the audit consumer
    // that runs after the response is background work.
    let reply = trace_id(fixtures::REPLY_TRACE).to_hex();
    browser.goto(&format!("{base}/trace/{reply}")).await;
    assert!(
        browser
            .text("#culprit")
            .await
            .starts_with("74% of this request was spent waiting in the queue payments (rabbitmq)")
    );
    assert_eq!(browser.find_all("#background tbody tr").await.len(), 1);
    assert_eq!(browser.find_all("ol.waterfall li.background").await.len(), 1);
    browser.screenshot("trace-request-reply").await;

    // A demo trace: the waterfall collapses under the root.
    let traces = hopscope.get_ok("/api/traces?service=demo-ledger&limit=1").await;
    let demo_trace = traces["data"][0]["traceID"].as_str().unwrap().to_owned();
    browser.goto(&format!("{base}/trace/{demo_trace}")).await;
    assert!(browser.text("#culprit").await.contains("of this request was spent"));
    browser.screenshot("trace-demo").await;
    let below_root = browser
        .script("const r=[...document.querySelectorAll('ol.waterfall > li')]; let n=0; for (let i=1; i<r.length && Number(r[i].dataset.depth)>0; i++) n++; return n")
        .await;
    assert!(below_root.as_u64().unwrap() > 0);
    browser
        .click(&browser.find("ol.waterfall > li button.toggle").await)
        .await;
    let hidden = browser
        .script("return document.querySelectorAll('ol.waterfall > li.hidden').length")
        .await;
    assert_eq!(hidden, below_root, "collapsing the root hides its whole subtree");
    browser.screenshot("trace-demo-collapsed").await;
    browser
        .click(&browser.find("ol.waterfall > li button.toggle").await)
        .await;
    let hidden = browser
        .script("return document.querySelectorAll('ol.waterfall > li.hidden').length")
        .await;
    assert_eq!(hidden.as_u64(), Some(0));

    // Hostile strings are text, never markup.
    browser.goto(&format!("{base}/trace/{evil}")).await;
    browser.no_alert().await;
    browser.click(&browser.find("ol.waterfall li summary").await).await;
    assert_eq!(browser.text("ol.waterfall li .op").await, "<script>alert(1)</script>");
    assert!(
        browser
            .text("ol.waterfall li .span-details")
            .await
            .contains("<img src=x onerror=alert(2)>")
    );
    let injected = browser
        .script("return document.querySelectorAll('main script, main img').length")
        .await;
    assert_eq!(injected.as_u64(), Some(0));
    browser.screenshot("trace-hostile").await;
    browser.goto(&format!("{base}/search?service=checkout")).await;
    browser.no_alert().await;
    assert!(browser.text("main").await.contains("<script>alert(1)</script>"));

    first_run_checks(&browser, &base).await;
}

/// What misled a newcomer (issue 23), checked as rendered: map edges never run under a
/// box and labels never overlap, chart axis text is readable, rates are per second,
/// blame's empty baseline is announced, footers link each page's JSON.
async fn first_run_checks(browser: &Browser, base: &str) {
    browser.goto(&format!("{base}/services")).await;
    let under = browser
        .script(
            r#"const boxes = [...document.querySelectorAll('svg.map .node rect')].map(r => r.getBBox());
               let bad = [];
               for (const p of document.querySelectorAll('svg.map path.edge')) {
                 const len = p.getTotalLength();
                 const a = p.getPointAtLength(0), b = p.getPointAtLength(len);
                 const inside = (q, r, m) => q.x > r.x + m && q.x < r.x + r.width - m && q.y > r.y + m && q.y < r.y + r.height - m;
                 const own = r => inside(a, r, -2) || inside(b, r, -2);
                 for (let t = 0; t <= len; t += 4) {
                   const q = p.getPointAtLength(t);
                   const hit = boxes.find(r => !own(r) && inside(q, r, 1));
                   if (hit) { bad.push(p.querySelector('title').textContent); break; }
                 }
               }
               const labels = [...document.querySelectorAll('svg.map text.elabel')].map(t => t.getBBox());
               let overlaps = 0;
               labels.forEach((x, i) => labels.slice(i + 1).forEach(y => {
                 if (x.x < y.x + y.width && y.x < x.x + x.width && x.y < y.y + y.height && y.y < x.y + x.height) overlaps++;
               }));
               return {bad, overlaps, edges: document.querySelectorAll('svg.map path.edge').length};"#,
        )
        .await;
    assert!(under["edges"].as_u64().unwrap_or(0) >= 8, "{under}");
    assert_eq!(under["bad"], json!([]), "edges under boxes: {under}");
    assert_eq!(under["overlaps"], 0, "overlapping edge labels: {under}");
    let payment = browser
        .script(
            "return [...document.querySelectorAll('svg.map .node')].map(n => n.textContent).find(t => t.startsWith('demo-payment'))",
        )
        .await;
    assert!(
        payment.as_str().is_some_and(|t| t.contains("req ·")),
        "demo-payment shows the requests it served: {payment}"
    );
    browser.screenshot("first-run-services").await;

    browser.goto(&format!("{base}/")).await;
    let main = browser.text("main").await;
    assert!(
        main.contains("Rate, last minute") && main.contains("Peak rate"),
        "{main}"
    );
    assert!(!main.contains("/min"), "{main}");
    browser.screenshot("first-run-overview").await;

    browser
        .goto(&format!("{base}/middleware?kind=db&lookback=5m&step=1s"))
        .await;
    let tick_px = browser
        .script("return document.querySelector('svg.chart .tick').getBoundingClientRect().height")
        .await;
    assert!(tick_px.as_f64().unwrap_or(0.0) >= 10.0, "axis text {tick_px} px high");
    assert!(!browser.text("main").await.contains("/min"));
    // A resolution as long as the time range: one point per series, said in words.
    browser
        .goto(&format!("{base}/middleware?kind=db&lookback=5m&step=10m"))
        .await;
    assert!(browser.text("main").await.contains("few data: 1 point"));
    assert!(!browser.find_all("svg.chart circle.point").await.is_empty());
    browser.screenshot("first-run-middleware-few-data").await;

    // The demo has run for less than the window, so the period just before is empty.
    browser.goto(&format!("{base}/blame?service=demo-gateway")).await;
    let entry = browser
        .script("return [...document.querySelectorAll('select[name=operation] option')].map(o => o.value).find(v => v)")
        .await;
    let entry = entry.as_str().unwrap_or("POST /transfer/{from}/{amount}").to_owned();
    browser
        .goto(&format!(
            "{base}/blame?service=demo-gateway&operation={}&lookback=1h&previous=1",
            entry
                .replace(' ', "+")
                .replace('/', "%2F")
                .replace('{', "%7B")
                .replace('}', "%7D")
        ))
        .await;
    assert!(
        browser
            .text("#blame-notice")
            .await
            .contains("showing the slow tail instead"),
        "{}",
        browser.text("main").await
    );
    browser.screenshot("first-run-blame-empty-baseline").await;

    browser.goto(&format!("{base}/sla")).await;
    let href = browser
        .script("return document.getElementById('api-link').getAttribute('href')")
        .await;
    let href = href.as_str().unwrap_or_default().to_owned();
    assert!(href.starts_with("/api/v1/sla?start="), "{href}");
    browser.goto(&format!("{base}{href}")).await;
    let json: Value = serde_json::from_str(&browser.text("body").await).unwrap();
    assert!(json["interfaces"].is_array(), "{json}");
    browser.goto(&format!("{base}/api")).await;
    assert!(browser.text("body").await.contains("/api/v1/blame"));
}
