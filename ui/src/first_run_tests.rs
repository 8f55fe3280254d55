//! What a newcomer reads on the pages (issue 23): rates per second over the last minute
//! and at peak, the service map's own-span figures and edge routing, charts with few
//! points, blame's default window and empty-baseline fallback, and footer links to each
//! page's own JSON — every link answered by the real API router.

use std::sync::Arc;

use hopscope_query_api::{AnalysisConfig, QueryApiConfig, router_with_aggregates};
use hopscope_schemas::SpanKind;
use hopscope_schemas::fixtures::{self, resource, span};
use hopscope_storage::{AggregateReader, EmbeddedConfig, EmbeddedStore, SpanWriter};

use crate::tests::{WINDOW, app, get, store};

/// One hour from the fixtures' T0, in µs.
const HOUR: &str = "start=1700000000000000&end=1700003600000000";

/// The `<tr>` of the table row whose header cell links `name`.
fn row<'a>(html: &'a str, name: &str) -> &'a str {
    let at = html
        .find(&format!(">{name}</a></th>"))
        .unwrap_or_else(|| panic!("no row for {name}:\n{html}"));
    let end = html[at..].find("</tr>").map_or(html.len(), |e| at + e);
    &html[at..end]
}

async fn store_with(spans: Vec<hopscope_schemas::SpanRecord>) -> Arc<EmbeddedStore> {
    let store = Arc::new(EmbeddedStore::new(EmbeddedConfig::default()));
    store.write_spans(spans).await.unwrap();
    store
}

#[tokio::test]
async fn overview_shows_the_last_minute_and_the_peak_per_second() {
    // 30 requests in one second early in the hour, one in its last minute: the hour's
    // average (0.009/s) would say nothing about either.
    let res = resource("burst", "vm-1", Some("private"));
    let mut spans: Vec<_> = (0..30)
        .map(|i| {
            span(
                &res,
                1 + i,
                10 + i,
                None,
                "GET /b",
                SpanKind::Server,
                100_000_000 + i * 10_000,
                1_000,
            )
            .build()
        })
        .collect();
    spans.push(span(&res, 99, 999, None, "GET /b", SpanKind::Server, 3_590_000_000, 1_000).build());
    let app = app(store_with(spans).await, true);
    let (_, html) = get(&app, &format!("/?{HOUR}")).await;
    assert!(
        html.contains("Rate, last minute") && html.contains("Peak rate"),
        "{html}"
    );
    let burst = row(&html, "burst");
    assert!(burst.contains(">0.02/s<"), "last minute: 1 request / 60 s: {burst}");
    assert!(burst.contains(">30/s<"), "peak: 30 in one second: {burst}");
    assert!(!html.contains("/min"), "one unit per column: {html}");
}

#[tokio::test]
async fn service_nodes_show_their_own_spans_and_say_whose_view_edges_are() {
    // acct's call to pay times out at acct (ERROR) while pay served it fine.
    let acct = resource("acct", "vm-a", Some("hosted"));
    let pay = resource("pay", "vm-p", Some("private"));
    let spans = vec![
        span(&acct, 1, 1, None, "POST /transfer", SpanKind::Server, 1_000, 400_000)
            .http("acct")
            .build(),
        span(&acct, 1, 2, Some(1), "POST /charge", SpanKind::Client, 2_000, 300_000)
            .http("payment")
            .error("timeout")
            .build(),
        span(&pay, 1, 3, Some(2), "POST /charge", SpanKind::Server, 3_000, 350_000)
            .http("payment")
            .build(),
    ];
    let app = app(store_with(spans).await, true);
    let (_, html) = get(&app, &format!("/services?{WINDOW}")).await;
    let node = html
        .split("<g class=\"node")
        .find(|g| g.contains("<title>pay: requests it served, its own spans</title>"))
        .unwrap_or_else(|| panic!("no node for pay:\n{html}"));
    assert!(node.contains("1 req · 0% err"), "pay's own spans: {node}");
    assert!(html.contains("id=\"map-legend\""), "the map says whose view: {html}");
    assert!(html.contains(">http 1 · 100% err<"), "the edge: caller's view: {html}");
}

#[tokio::test]
async fn a_chart_with_one_point_says_few_data_and_axes_stay_readable() {
    let res = resource("cart", "vm-c", Some("private"));
    let spans = vec![
        span(&res, 1, 1, None, "GET /cart", SpanKind::Server, 1_000, 5_000).build(),
        span(&res, 1, 2, Some(1), "GET", SpanKind::Client, 2_000, 1_000)
            .redis("redis-shard-1")
            .build(),
    ];
    let app = app(store_with(spans).await, true);
    let (_, html) = get(&app, &format!("/middleware?kind=cache&{WINDOW}")).await;
    assert!(html.contains("few data: 1 point"), "{html}");
    assert!(html.contains("class=\"point\""), "points are drawn: {html}");
    // Drawn at about the width shown, so 12 px axis text stays about 12 px.
    assert!(html.contains("viewBox=\"0 0 640 240\""), "{html}");
    assert!(!html.contains("/min"), "throughput in one unit: {html}");

    let app = app_fixtures().await;
    let (_, html) = get(&app, &format!("/middleware?kind=cache&{WINDOW}")).await;
    assert!(!html.contains("few data"), "{html}");
}

async fn app_fixtures() -> axum::Router {
    app(store(true).await, true)
}

#[tokio::test]
async fn blame_defaults_to_the_last_hour_and_falls_back_to_the_tail_without_baseline_traces() {
    let app = app_fixtures().await;
    let (_, html) = get(&app, "/blame").await;
    assert!(html.contains("<option value=\"1h\" selected"), "{html}");

    // The period just before the fixtures holds no traces.
    let (_, html) = get(
        &app,
        &format!("/blame?service=cart&operation=GET+/cart&previous=1&{WINDOW}"),
    )
    .await;
    assert!(html.contains("id=\"blame-notice\""), "{html}");
    assert!(
        html.contains("No baseline traces: showing the slow tail instead"),
        "{html}"
    );
    assert!(html.contains("The slow tail — "), "{html}");

    // With a baseline that has traces, no notice.
    let (b0, b1) = fixtures::REDIS_BASELINE_US;
    let (i0, i1) = fixtures::REDIS_INCIDENT_US;
    let t0 = fixtures::T0 / 1_000;
    let uri = format!(
        "/blame?service=cart&operation=GET+/cart&start={}&end={}&baseline_start={}&baseline_end={}",
        t0 + i0,
        t0 + i1,
        t0 + b0,
        t0 + b1
    );
    let (_, html) = get(&app, &uri).await;
    assert!(!html.contains("blame-notice"), "{html}");
    assert!(html.contains("in the baseline"), "{html}");
}

#[tokio::test]
async fn footer_links_each_page_to_its_own_json_and_the_api_answers_them() {
    let store = store(true).await;
    let aggregates: Arc<dyn AggregateReader> = store.clone();
    let ui = app(store.clone(), true);
    let api = router_with_aggregates(
        store,
        Some(aggregates),
        &QueryApiConfig::default(),
        &AnalysisConfig::default(),
    );
    let id = fixtures::trace_id(fixtures::QUEUE_TRACE).to_hex();
    for (page, endpoint) in [
        (format!("/?{WINDOW}"), "/api/v1/sla?"),
        (format!("/sla?{WINDOW}"), "/api/v1/sla?"),
        (format!("/services?{WINDOW}"), "/api/v1/dependencies?"),
        (format!("/middleware?kind=db&{WINDOW}"), "/api/v1/middleware?kind=db&"),
        (format!("/exceptions?{WINDOW}"), "/api/v1/exceptions?"),
        (format!("/mismatches?{WINDOW}"), "/api/v1/mismatches?"),
        (
            format!("/blame?service=cart&operation=GET+/cart&{WINDOW}"),
            "/api/v1/blame?service=cart&operation=GET+%2Fcart&",
        ),
        (format!("/search?service=cart&{WINDOW}"), "/api/traces?service=cart&"),
        (format!("/trace/{id}"), "/api"),
    ] {
        let (_, html) = get(&ui, &page).await;
        let at = html
            .find("id=\"api-link\" href=\"")
            .unwrap_or_else(|| panic!("{page}: no api link"));
        let rest = &html[at + "id=\"api-link\" href=\"".len()..];
        let href = rest[..rest.find('"').unwrap()].replace("&amp;", "&");
        assert!(href.starts_with(endpoint), "{page} links {href}, not {endpoint}");
        assert_ne!(href, "/api/services", "{page}");
        let (status, body) = get(&api, &href).await;
        assert_eq!(status, axum::http::StatusCode::OK, "{page} → {href}: {body}");
    }
}
