#![allow(clippy::unwrap_used)]

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use proptest::arbitrary::any;
use proptest::prelude::{ProptestConfig, prop_assert, prop_assert_eq, proptest};
use prost::Message;

use super::*;
use crate::otlp::spans_from_request;
use crate::otlp_scan::tests::{damage, kv, request};
use crate::span::SpanRecord;

/// What the walk gives for `body`, as owned records.
fn walked(body: &[u8]) -> Option<Vec<SpanRecord>> {
    let request = WireRequest::parse(body)?;
    let mut attributes = Vec::new();
    let views = request.views(&mut attributes)?;
    assert_eq!(views.len(), request.span_count());
    Some(views.iter().map(SpanView::to_record).collect())
}

/// What prost + the mapping give for `body`, when it decodes and every span is valid.
fn mapped(body: &[u8]) -> Option<Vec<SpanRecord>> {
    let batch = spans_from_request(ExportTraceServiceRequest::decode(body).ok()?);
    (batch.rejected == 0).then_some(batch.spans)
}

#[test]
fn every_field_of_every_message_matches_the_mapping() {
    // Every scalar type, arrays, key/value lists, events, links, status, resource and
    // scope attributes, several scopes.
    let body = request(&[3, 0, 5]).encode_to_vec();
    let walked = walked(&body).unwrap();
    assert_eq!(walked.len(), 8);
    assert_eq!(Some(walked), mapped(&body));
}

#[test]
fn derived_fields_match_the_mapping() {
    let mut request = request(&[1]);
    let span = &mut request.resource_spans[0].scope_spans[0].spans[0];
    span.kind = 3;
    span.attributes = vec![
        kv("db.system", any_value::Value::StringValue("redis".into())),
        kv("server.address", any_value::Value::StringValue("redis-2".into())),
        kv("server.port", any_value::Value::IntValue(6379)),
    ];
    let body = request.encode_to_vec();
    let walked = walked(&body).unwrap();
    assert_eq!(walked[0].peer.as_deref(), Some("redis-2:6379"));
    assert_eq!(Some(walked), mapped(&body));
}

#[test]
fn unusable_links_are_dropped_and_counted_like_the_mapping() {
    let mut request = request(&[1]);
    let span = &mut request.resource_spans[0].scope_spans[0].spans[0];
    let mut bad = span.links[0].clone();
    bad.trace_id = vec![0; 16];
    span.links.push(bad);
    let body = request.encode_to_vec();
    let walked = walked(&body).unwrap();
    assert_eq!(walked[0].links.len(), 1);
    assert_eq!(walked[0].dropped_links_count, 5);
    assert_eq!(Some(walked), mapped(&body));
}

#[test]
fn an_invalid_span_is_left_to_the_mapping() {
    let cases: [fn(&mut Span); 4] = [
        |s| s.trace_id = vec![0; 16],
        |s| s.span_id.truncate(4),
        |s| s.start_time_unix_nano = 0,
        |s| s.end_time_unix_nano = s.start_time_unix_nano - 1,
    ];
    for break_span in cases {
        let mut request = request(&[2]);
        break_span(&mut request.resource_spans[0].scope_spans[0].spans[1]);
        let body = request.encode_to_vec();
        assert!(walked(&body).is_none());
        assert!(mapped(&body).is_none());
    }
}

/// `request` with its first span's encoding followed by `extra` (prost merges the two).
fn with_span_suffix(extra: &[u8]) -> Vec<u8> {
    let mut request = request(&[1]);
    let mut rs = request.resource_spans.remove(0);
    let mut scope = rs.scope_spans.remove(0);
    let mut span = scope.spans.remove(0).encode_to_vec();
    span.extend_from_slice(extra);
    let mut scope_bytes = scope.encode_to_vec();
    prost::encoding::bytes::encode(2, &span, &mut scope_bytes);
    let mut rs_bytes = rs.encode_to_vec();
    prost::encoding::bytes::encode(2, &scope_bytes, &mut rs_bytes);
    let mut body = Vec::new();
    prost::encoding::bytes::encode(1, &rs_bytes, &mut body);
    body
}

#[test]
fn repeated_fields_follow_prost_or_are_left_to_it() {
    // Repeated scalars: the last wins; a repeated status is merged field by field.
    let extra = Span {
        name: "renamed".into(),
        status: Some(Status {
            message: String::new(),
            code: 1,
        }),
        ..Default::default()
    };
    let body = with_span_suffix(&extra.encode_to_vec());
    let spans = walked(&body).unwrap();
    assert_eq!(spans[0].name, "renamed");
    assert_eq!(spans[0].status_message, "boom");
    assert_eq!(spans[0].status_code, crate::span::StatusCode::Ok);
    assert_eq!(Some(spans), mapped(&body));

    // An attribute whose value (a singular message) appears twice: prost merges the
    // two; the walk declines and leaves it to prost.
    let mut attr = KeyValue {
        key: "k".into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(1)),
        }),
        ..Default::default()
    }
    .encode_to_vec();
    let second = AnyValue {
        value: Some(any_value::Value::IntValue(2)),
    }
    .encode_to_vec();
    prost::encoding::bytes::encode(2, &second, &mut attr);
    let mut extra = Vec::new();
    prost::encoding::bytes::encode(9, &attr, &mut extra);
    let body = with_span_suffix(&extra);
    assert!(mapped(&body).is_some());
    assert!(walked(&body).is_none());
}

#[test]
fn one_attribute_list_serves_request_after_request() {
    // A long request, then a shorter one, through one list: each view holds exactly its
    // own span's attributes, nothing left over from the walk before.
    let (long, short) = (request(&[3, 0, 5]).encode_to_vec(), request(&[2]).encode_to_vec());
    let mut attributes = Vec::new();
    for body in [&long, &short, &long] {
        let request = WireRequest::parse(body).unwrap();
        let views = request.views(&mut attributes).unwrap();
        let records: Vec<SpanRecord> = views.iter().map(SpanView::to_record).collect();
        assert_eq!(Some(records), mapped(body));
    }
}

#[test]
fn an_attribute_space_keeps_one_allocation_across_bodies() {
    let mut space = AttributeSpace::default();
    let body = request(&[3, 0, 5]).encode_to_vec();
    let mut list = space.take();
    let request = WireRequest::parse(&body).unwrap();
    request.views(&mut list).unwrap();
    let (capacity, address) = (list.capacity(), list.as_ptr() as usize);
    assert!(capacity > 0);
    space.keep(list);
    assert_eq!(space.capacity(), capacity);
    // A later body (another lifetime) walks in the same allocation.
    let later = body.clone();
    let list = space.take();
    assert!(list.is_empty());
    assert_eq!((list.capacity(), list.as_ptr() as usize), (capacity, address));
    let mut list = list;
    let request = WireRequest::parse(&later).unwrap();
    assert_eq!(request.views(&mut list).unwrap().len(), 8);

    // An outsized list is not kept.
    space.keep(Vec::with_capacity(AttributeSpace::MAX_KEPT + 1));
    assert_eq!(space.capacity(), 0);
}

#[test]
fn an_empty_request_has_no_spans() {
    assert_eq!(walked(&[]), Some(Vec::new()));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// The contract: whenever the walk gives spans, prost + the mapping give the same
    /// spans and reject none.
    #[test]
    fn some_implies_the_same_spans_as_the_mapping(
        scopes in proptest::collection::vec(0u8..4, 1..3),
        edits in proptest::collection::vec((0.0f64..1.0, any::<u8>(), any::<u8>()), 0..4),
    ) {
        let body = damage(request(&scopes).encode_to_vec(), &edits);
        if let Some(spans) = walked(&body) {
            prop_assert_eq!(Some(spans), mapped(&body));
        }
    }

    /// And it is useful: undamaged requests are walked.
    #[test]
    fn undamaged_requests_are_walked(scopes in proptest::collection::vec(0u8..6, 0..4)) {
        let body = request(&scopes).encode_to_vec();
        prop_assert!(walked(&body).is_some());
    }
}

#[test]
fn a_cache_shares_resources_and_scopes_across_requests_and_stays_bounded() {
    let mut cache = HeaderCache::default();
    let first = request(&[2, 1]).encode_to_vec();
    let mut second = request(&[2, 1]);
    second.resource_spans[0].scope_spans[0].spans.truncate(1);
    let second = second.encode_to_vec();
    let a = WireRequest::parse_cached(&first, &mut cache).unwrap();
    let b = WireRequest::parse_cached(&second, &mut cache).unwrap();
    let (mut a_attrs, mut b_attrs) = (Vec::new(), Vec::new());
    let (a, b) = (a.views(&mut a_attrs).unwrap(), b.views(&mut b_attrs).unwrap());
    assert!(Arc::ptr_eq(a[0].resource, b[0].resource) && Arc::ptr_eq(a[0].scope, b[0].scope));
    // Cached or not, the views are the same spans.
    let uncached: Vec<SpanRecord> = walked(&second).unwrap();
    assert_eq!(b.iter().map(SpanView::to_record).collect::<Vec<_>>(), uncached);

    // Another schema URL is another resource.
    let mut other = request(&[2, 1]);
    other.resource_spans[0].schema_url = "https://example.com/other".into();
    let other = other.encode_to_vec();
    let c = WireRequest::parse_cached(&other, &mut cache).unwrap();
    let mut c_attrs = Vec::new();
    let c = c.views(&mut c_attrs).unwrap();
    assert!(!Arc::ptr_eq(a[0].resource, c[0].resource));
    assert_eq!(c[0].resource.schema_url, "https://example.com/other");

    // A schema URL spelling out another resource's key bytes is still another resource.
    let named = opentelemetry_proto::tonic::resource::v1::Resource {
        attributes: vec![kv("service.name", any_value::Value::StringValue("a".into()))],
        ..Default::default()
    };
    let mut with_resource = request(&[1]);
    with_resource.resource_spans[0].resource = Some(named.clone());
    with_resource.resource_spans[0].schema_url = "s".into();
    let mut forged = with_resource.clone();
    forged.resource_spans[0].resource = None;
    let named = named.encode_to_vec();
    let mut url = (named.len() as u32).to_le_bytes().to_vec();
    url.extend_from_slice(&named);
    url.push(b's');
    forged.resource_spans[0].schema_url = String::from_utf8(url).unwrap();
    let (with_resource, forged) = (with_resource.encode_to_vec(), forged.encode_to_vec());
    let d = WireRequest::parse_cached(&with_resource, &mut cache).unwrap();
    let e = WireRequest::parse_cached(&forged, &mut cache).unwrap();
    let (mut d_attrs, mut e_attrs) = (Vec::new(), Vec::new());
    let (d, e) = (d.views(&mut d_attrs).unwrap(), e.views(&mut e_attrs).unwrap());
    assert_eq!(d[0].service_name, "a");
    assert!(e[0].resource.attributes.is_empty() && e[0].service_name != "a");

    for i in 0..HeaderCache::MAX_ENTRIES + 10 {
        let mut r = request(&[1]);
        r.resource_spans[0].schema_url = format!("https://example.com/{i}");
        WireRequest::parse_cached(&r.encode_to_vec(), &mut cache).unwrap();
    }
    assert!(cache.resources.map.len() <= HeaderCache::MAX_ENTRIES);
}
