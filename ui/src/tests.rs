//! Pages rendered through the router (no socket, no browser) over the embedded store
//! loaded with the shared analysis fixtures.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use hopscope_query_api::AnalysisConfig;
use hopscope_schemas::fixtures::{self, T0};
use hopscope_schemas::{AttrValue, KeyValue, SpanKind};
use hopscope_storage::{EmbeddedConfig, EmbeddedStore, SpanWriter};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;

/// Window over all fixtures, in µs.
pub(crate) const WINDOW: &str = "start=1700000000000000&end=1700000200000000";

pub(crate) async fn store(with_fixtures: bool) -> Arc<EmbeddedStore> {
    let store = Arc::new(EmbeddedStore::new(EmbeddedConfig::default()));
    if with_fixtures {
        let mut spans = fixtures::all();
        let res = fixtures::resource("evil<b>svc</b>", "vm-evil", Some("hosted"));
        let mut evil = fixtures::span(
            &res,
            900,
            9001,
            None,
            "<script>alert(1)</script>",
            SpanKind::Server,
            5_000,
            3_000,
        )
        .attr("http.request.method", "GET")
        .build();
        evil.attributes.push(KeyValue::new(
            "note",
            AttrValue::String("<img src=x onerror=alert(2)>".to_owned()),
        ));
        spans.push(evil);
        store.write_spans(spans).await.unwrap();
    }
    store
}

pub(crate) async fn get(app: &axum::Router, uri: &str) -> (StatusCode, String) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

pub(crate) fn app(store: Arc<EmbeddedStore>, aggregates: bool) -> axum::Router {
    let aggregates: Option<Arc<dyn AggregateReader>> = if aggregates { Some(store.clone()) } else { None };
    router(UiState::new(store, aggregates, AnalysisConfig::default()))
}

#[tokio::test]
async fn every_page_renders_over_the_fixtures() {
    let app = app(store(true).await, true);
    for (path, expect) in [
        ("/", "Recent slow traces"),
        ("/search", "Matching traces"),
        ("/services", "Rule violations"),
        ("/middleware?kind=cache", "redis-shard-2:6379"),
        ("/middleware?kind=db", "ledger-db"),
        ("/middleware?kind=mq", "payments"),
        ("/middleware?kind=host", "vm-cart-1"),
        ("/sla", "Interfaces"),
        ("/blame?service=cart&operation=GET+/cart", "redis-shard-2:6379 (cache)"),
        ("/exceptions", "StockError"),
        ("/mismatches", "caller timed out"),
    ] {
        let sep = if path.contains('?') { '&' } else { '?' };
        let (status, html) = get(&app, &format!("{path}{sep}{WINDOW}")).await;
        assert_eq!(status, StatusCode::OK, "{path}: {html}");
        assert!(html.starts_with("<!DOCTYPE html>"), "{path}");
        assert!(html.contains(expect), "{path} lacks {expect:?}:\n{html}");
        assert!(html.contains("<h1>"), "{path} has a heading");
    }
}

#[tokio::test]
async fn trace_page_names_the_culprit_and_shows_the_critical_path() {
    let app = app(store(true).await, true);
    // Trace 131 is in the incident window and hits shard 2 (131 % 3 + 1 = 2... of n = 31).
    let id = fixtures::trace_id(fixtures::REDIS_TRACES + 31).to_hex();
    let (status, html) = get(&app, &format!("/trace/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(
            "of this request was spent in GET on redis-shard-2:6379 (cache), from cart on vm-cart-1, private DC"
        ),
        "{html}"
    );
    assert!(html.contains("id=\"critical-path\""));
    assert!(html.contains("class=\"span crit culprit\""));
    assert!(html.contains("id=\"compare-typical\""), "{html}");
    // The fire-and-forget consumer is background work with its queue wait, not the culprit.
    let id = fixtures::trace_id(fixtures::QUEUE_TRACE).to_hex();
    let (_, html) = get(&app, &format!("/trace/{id}")).await;
    assert!(
        html.contains("of this request was spent in POST /order of orders (its own work)"),
        "{html}"
    );
    assert!(html.contains("id=\"background\""), "{html}");
    assert!(html.contains("queue wait on payments (82%)"), "{html}");
    assert!(html.contains("class=\"badge background-badge\""), "{html}");
    assert!(html.contains("queue wait 100 ms"), "{html}");
}

#[tokio::test]
async fn request_reply_trace_names_the_wait_in_the_queue() {
    let store = store(false).await;
    store.write_spans(fixtures::request_reply()).await.unwrap();
    let app = app(store, true);
    let id = fixtures::trace_id(fixtures::REPLY_TRACE).to_hex();
    let (status, html) = get(&app, &format!("/trace/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("74% of this request was spent waiting in the queue payments (rabbitmq)"),
        "{html}"
    );
    assert!(
        html.contains("Self time 103 ms over 2 visits of the 140 ms response"),
        "{html}"
    );
    assert!(html.contains("audit: audit process"), "{html}");
}

#[tokio::test]
async fn compare_page_aligns_both_traces_and_colours_the_change() {
    let app = app(store(true).await, true);
    let slow = fixtures::trace_id(fixtures::REDIS_TRACES + 31).to_hex();
    let fast = fixtures::trace_id(fixtures::REDIS_TRACES + 1).to_hex();
    let (status, html) = get(&app, &format!("/compare?trace={slow}&with={fast}")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("+39 ms in GET on redis-shard-2:6379 vs the other trace&#x27;s 1.0 ms")
            || html.contains("+39 ms in GET on redis-shard-2:6379 vs the other trace's 1.0 ms"),
        "{html}"
    );
    assert!(html.contains("id=\"compare-table\""), "{html}");
    assert!(html.contains("class=\"num slower\""), "{html}");
    assert!(html.contains("class=\"bar other\""), "{html}");
    // The typical trace of a window (the baseline minute of the fixture).
    let (status, html) = get(
        &app,
        &format!("/compare?trace={slow}&baseline_start=1700000000000000&baseline_end=1700000059999999"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("+39 ms in GET on redis-shard-2:6379 vs the typical 1.0 ms"),
        "{html}"
    );
    assert!(html.contains("typical (median of 30 traces)"), "{html}");
    // The default window (the hour before the trace) holds the fixture's earlier traces.
    let (status, html) = get(&app, &format!("/compare?trace={slow}")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("vs the typical"), "{html}");
    // Its JSON link names the window the page used, so the API answers the same.
    assert!(
        html.contains(&format!("/api/v1/traces/{slow}/compare?baseline_start=")),
        "{html}"
    );
    // Bad and unknown input is explained.
    let (status, _) = get(&app, "/compare?trace=nope").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get(
        &app,
        &format!("/compare?trace={slow}&with=0123456789abcdef0123456789abcdef"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, html) = get(&app, "/compare").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("name=\"trace\""), "{html}");
}

#[tokio::test]
async fn unknown_and_malformed_trace_ids_are_explained() {
    let app = app(store(true).await, true);
    let (status, html) = get(&app, "/trace/0123456789abcdef0123456789abcdef").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("No trace with id 0123456789abcdef0123456789abcdef is stored"));
    let (status, html) = get(&app, "/trace/not-a-trace").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("is not a trace id"));
}

#[tokio::test]
async fn user_strings_are_escaped() {
    let app = app(store(true).await, true);
    let id = fixtures::trace_id(900).to_hex();
    for uri in [
        format!("/trace/{id}"),
        format!("/search?{WINDOW}"),
        format!("/?{WINDOW}"),
        format!("/search?service=%3Cscript%3Ex%3C/script%3E&tags=a%3D%22%3Cimg%20src%3Dx%3E%22&{WINDOW}"),
        format!("/services?{WINDOW}&lookback=%3Cscript%3E"),
    ] {
        let (_, html) = get(&app, &uri).await;
        assert!(!html.contains("<script>"), "{uri}: raw script tag:\n{html}");
        assert!(!html.contains("<img"), "{uri}: raw img tag");
        assert!(!html.contains("<b>svc"), "{uri}: raw b tag");
    }
    let (_, html) = get(&app, &format!("/trace/{id}")).await;
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
    assert!(html.contains("&lt;img src=x onerror=alert(2)&gt;"), "{html}");
}

#[tokio::test]
async fn empty_store_and_missing_aggregates_are_explained() {
    let app_empty = app(store(false).await, true);
    let (status, html) = get(&app_empty, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No traces yet") && html.contains("hopscope demo"));
    let (_, html) = get(&app_empty, "/search").await;
    assert!(html.contains("No traces yet"));

    let app_plain = app(store(true).await, false);
    for path in [
        "/services",
        "/middleware?kind=db",
        "/sla",
        "/blame",
        "/exceptions",
        "/mismatches",
    ] {
        let (status, html) = get(&app_plain, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(html.contains("does not provide the analysis aggregates"), "{path}");
    }
    let (_, html) = get(&app_plain, &format!("/?{WINDOW}")).await;
    assert!(html.contains("Rates need the analysis aggregates"));
}

#[tokio::test]
async fn filters_change_results_and_bad_input_is_explained() {
    let app = app(store(true).await, true);
    let (_, all) = get(&app, &format!("/search?{WINDOW}&limit=500")).await;
    let (_, errors) = get(&app, &format!("/search?{WINDOW}&limit=500&errors=1")).await;
    let (_, slow) = get(
        &app,
        &format!("/search?{WINDOW}&limit=500&service=cart&min_duration=30ms"),
    )
    .await;
    let rows = |html: &str| html.matches("<td><a href=\"/trace/").count();
    assert!(rows(&errors) < rows(&all), "{} vs {}", rows(&errors), rows(&all));
    assert!(rows(&errors) > 0);
    assert_eq!(rows(&slow), 10, "ten incident traces hit the slow shard");
    let (_, bad) = get(&app, &format!("/search?{WINDOW}&min_duration=fast")).await;
    assert!(bad.contains("is not a duration"));
    let (status, bad) = get(&app, "/middleware?kind=teapot").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad.contains("Unknown kind"));
    let _ = T0;
}

#[tokio::test]
async fn static_assets_are_served() {
    let app = app(store(false).await, true);
    let (status, css) = get(&app, "/static/app.css").await;
    assert_eq!(status, StatusCode::OK);
    assert!(css.contains("waterfall"));
    let (status, _) = get(&app, "/static/app.js").await;
    assert_eq!(status, StatusCode::OK);
}
