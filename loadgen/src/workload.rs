//! The seeded workload: OTLP export requests that look like a microservice system's
//! traffic, pre-encoded once into a pool, then made unique per send by patching ids and
//! timestamps in place.
//!
//! Each body holds whole traces of 5–50 spans over several services (one `ResourceSpans`
//! per service, with resource attributes including host and cloud tags), 8–20 attributes
//! per span, events on some spans and errors on a few. [`Body::instantiate`] copies a
//! pooled body and rewrites, at offsets found once by walking the protobuf, the high 8
//! bytes of every trace id (to a per-send sequence number) and every timestamp (shifted to
//! "now"), so no two sent bodies are equal and every trace id is new.

use bytes::{BufMut, Bytes, BytesMut};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span, status};
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A service of the simulated system: its name, where it runs, what it calls.
struct Service {
    name: &'static str,
    cloud: (&'static str, &'static str, &'static str), // kind, provider, region
    hosts: u32,
}

const SERVICES: &[Service] = &[
    Service {
        name: "frontend",
        cloud: ("public", "aws", "eu-west-1"),
        hosts: 6,
    },
    Service {
        name: "checkout",
        cloud: ("public", "aws", "eu-west-1"),
        hosts: 4,
    },
    Service {
        name: "cart",
        cloud: ("hosted", "hetzner", "fsn1"),
        hosts: 3,
    },
    Service {
        name: "payment",
        cloud: ("private", "dc-ams", "ams"),
        hosts: 2,
    },
    Service {
        name: "inventory",
        cloud: ("private", "dc-ams", "ams"),
        hosts: 3,
    },
    Service {
        name: "shipping",
        cloud: ("public", "gcp", "europe-west4"),
        hosts: 2,
    },
    Service {
        name: "email",
        cloud: ("public", "gcp", "europe-west4"),
        hosts: 1,
    },
    Service {
        name: "recommendation",
        cloud: ("hosted", "hetzner", "fsn1"),
        hosts: 4,
    },
];

/// What a child span does: the hop kinds hopscope classifies.
#[derive(Clone, Copy)]
enum Hop {
    Http,
    Rpc,
    Db,
    Cache,
    Mq,
    Internal,
}

const HOPS: [Hop; 6] = [Hop::Http, Hop::Rpc, Hop::Db, Hop::Cache, Hop::Mq, Hop::Internal];

/// One pre-encoded export request and where to patch it.
#[derive(Debug, Clone)]
pub struct Body {
    /// The encoded `ExportTraceServiceRequest`.
    pub bytes: Bytes,
    /// Spans in it.
    pub spans: u64,
    /// Offsets of the 16-byte trace ids (span `trace_id` fields).
    trace_id_offsets: Vec<u32>,
    /// Offsets of fixed64 timestamps (span start/end, event times).
    time_offsets: Vec<u32>,
    /// The earliest start time in the body, ns.
    base_time: u64,
}

impl Body {
    /// A copy with trace ids made unique by `seq` and timestamps shifted so the body's
    /// earliest span starts at `now_ns`.
    pub fn instantiate(&self, seq: u64, now_ns: u64) -> Bytes {
        let mut out = BytesMut::with_capacity(self.bytes.len());
        out.put_slice(&self.bytes);
        // Keep the high bit set so an id is never all zeros, whatever the sequence number.
        let high = (seq | 1 << 63).to_be_bytes();
        for &offset in &self.trace_id_offsets {
            let at = offset as usize;
            out[at..at + 8].copy_from_slice(&high);
        }
        let shift = now_ns.saturating_sub(self.base_time);
        for &offset in &self.time_offsets {
            let at = offset as usize;
            let mut word = [0u8; 8];
            word.copy_from_slice(&out[at..at + 8]);
            let time = u64::from_le_bytes(word).saturating_add(shift);
            out[at..at + 8].copy_from_slice(&time.to_le_bytes());
        }
        out.freeze()
    }
}

/// Knobs of the workload.
#[derive(Debug, Clone, Copy)]
pub struct WorkloadConfig {
    /// Seed; the same seed gives the same pool.
    pub seed: u64,
    /// Bodies in the pool.
    pub pool: usize,
    /// Spans per body, roughly: whole traces are added until this is reached.
    pub spans_per_request: usize,
}

/// Generates the pool of encoded bodies.
pub fn generate(config: &WorkloadConfig) -> Vec<Body> {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let base = 1_700_000_000_000_000_000u64;
    (0..config.pool.max(1))
        .map(|i| {
            let request = request(
                &mut rng,
                config.spans_per_request.max(1),
                base + i as u64 * 1_000_000_000,
            );
            encode(&request)
        })
        .collect()
}

/// Generates one decoded request (for benches and tests that want the message).
pub fn request(rng: &mut StdRng, spans_wanted: usize, start: u64) -> ExportTraceServiceRequest {
    // Spans grouped per (service, host) resource, in trace order.
    let mut by_resource: Vec<(usize, u32, Vec<Span>)> = Vec::new();
    let mut total = 0;
    let mut trace_start = start;
    while total < spans_wanted {
        let n = rng.random_range(5..=50usize);
        for (service, host, span) in trace(rng, n, trace_start) {
            match by_resource.iter_mut().find(|(s, h, _)| *s == service && *h == host) {
                Some((_, _, spans)) => spans.push(span),
                None => by_resource.push((service, host, vec![span])),
            }
        }
        total += n;
        trace_start += rng.random_range(100_000..5_000_000u64);
    }
    ExportTraceServiceRequest {
        resource_spans: by_resource
            .into_iter()
            .map(|(service, host, spans)| ResourceSpans {
                resource: Some(resource(&SERVICES[service], host)),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "hopscope-loadgen".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..Default::default()
                    }),
                    spans,
                    schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
                }],
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            })
            .collect(),
    }
}

fn encode(request: &ExportTraceServiceRequest) -> Body {
    let bytes = request.encode_to_vec();
    let mut offsets = Offsets::default();
    walk_request(&bytes, &mut offsets);
    let spans = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len() as u64)
        .sum();
    let base_time = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| s.start_time_unix_nano)
        .min()
        .unwrap_or(0);
    Body {
        bytes: Bytes::from(bytes),
        spans,
        trace_id_offsets: offsets.trace_ids,
        time_offsets: offsets.times,
        base_time,
    }
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(key: &str, value: impl Into<String>) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.into()))
}

fn i(key: &str, value: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(value))
}

fn resource(service: &Service, host: u32) -> Resource {
    let (kind, provider, region) = service.cloud;
    Resource {
        attributes: vec![
            s("service.name", service.name),
            s("service.namespace", "shop"),
            s("service.version", "2.14.1"),
            s("service.instance.id", format!("{}-{host}", service.name)),
            s("deployment.environment.name", "production"),
            s("host.name", format!("{}-{host}.{region}.internal", service.name)),
            s(
                "host.id",
                format!("i-{:012x}", (service.name.len() as u64) << 20 | u64::from(host)),
            ),
            s("os.type", "linux"),
            s("cloud.provider", provider),
            s("cloud.region", region),
            s(
                "cloud.availability_zone",
                format!("{region}-{}", ["a", "b", "c"][host as usize % 3]),
            ),
            s("hopscope.cloud.kind", kind),
            s("telemetry.sdk.name", "opentelemetry"),
            s("telemetry.sdk.language", "rust"),
            s("telemetry.sdk.version", "0.33.0"),
        ],
        ..Default::default()
    }
}

/// One trace of `n` spans: a root on `frontend`, then a random tree over the services.
fn trace(rng: &mut StdRng, n: usize, start: u64) -> Vec<(usize, u32, Span)> {
    let mut trace_id = [0u8; 16];
    rng.fill(&mut trace_id[..]);
    trace_id[15] |= 1;
    let failing = rng.random_bool(0.05);
    let total = rng.random_range(2_000_000..400_000_000u64);
    let mut spans: Vec<(usize, u32, Span)> = Vec::with_capacity(n);
    for index in 0..n {
        let mut span_id = [0u8; 8];
        rng.fill(&mut span_id[..]);
        span_id[7] |= 1;
        let (parent, service, span_start, span_end) = if index == 0 {
            (None, 0, start, start + total)
        } else {
            let p = rng.random_range(0..index);
            let (ps, _, parent) = &spans[p];
            let (ps_start, ps_end) = (parent.start_time_unix_nano, parent.end_time_unix_nano);
            let room = (ps_end - ps_start).max(2);
            let offset = rng.random_range(0..room / 2);
            let length = rng.random_range(1..=(room - offset).max(1));
            // Children mostly call another service; some stay in-process.
            let service = if rng.random_bool(0.7) {
                rng.random_range(1..SERVICES.len())
            } else {
                *ps
            };
            (Some(p), service, ps_start + offset, ps_start + offset + length)
        };
        let hop = if index == 0 {
            Hop::Http
        } else {
            HOPS[rng.random_range(0..HOPS.len())]
        };
        let host = rng.random_range(0..SERVICES[service].hosts);
        let error = failing && (index == n - 1 || rng.random_bool(0.1));
        let parent_span_id = parent.map(|p| spans[p].2.span_id.clone()).unwrap_or_default();
        let span = make_span(
            rng,
            hop,
            index == 0,
            &trace_id,
            span_id,
            parent_span_id,
            span_start,
            span_end,
            error,
        );
        spans.push((service, host, span));
    }
    spans
}

#[allow(clippy::too_many_arguments)]
fn make_span(
    rng: &mut StdRng,
    hop: Hop,
    root: bool,
    trace_id: &[u8; 16],
    span_id: [u8; 8],
    parent_span_id: Vec<u8>,
    start: u64,
    end: u64,
    error: bool,
) -> Span {
    let (name, kind, mut attributes) = hop_attributes(rng, hop, root);
    // Pad to 8–20 attributes with the kind of detail real instrumentation adds.
    let want = rng.random_range(8..=20usize);
    let mut extra = 0;
    while attributes.len() < want {
        attributes.push(match extra % 6 {
            0 => s(
                "thread.name",
                format!("tokio-runtime-worker-{}", rng.random_range(0..16)),
            ),
            1 => i("thread.id", rng.random_range(1..64)),
            2 => s(
                "code.function",
                ["handle", "process", "load", "store", "render"][rng.random_range(0..5)],
            ),
            3 => s("code.namespace", "shop::handlers"),
            4 => s("user.tier", ["free", "plus", "enterprise"][rng.random_range(0..3)]),
            _ => s(
                &format!("app.detail.{extra}"),
                format!("value-{}", rng.random_range(0..1000)),
            ),
        });
        extra += 1;
    }
    let mut events = Vec::new();
    if rng.random_bool(0.2) {
        events.push(span::Event {
            time_unix_nano: start + (end - start) / 2,
            name: "cache.lookup".into(),
            attributes: vec![s("cache.result", if rng.random_bool(0.8) { "hit" } else { "miss" })],
            ..Default::default()
        });
    }
    let status = if error {
        events.push(span::Event {
            time_unix_nano: end,
            name: "exception".into(),
            attributes: vec![
                s("exception.type", "TimeoutError"),
                s("exception.message", "deadline exceeded after 250ms"),
                s(
                    "exception.stacktrace",
                    "at shop::client::call (client.rs:88)\nat shop::handlers::process (handlers.rs:142)",
                ),
            ],
            ..Default::default()
        });
        Some(Status {
            code: status::StatusCode::Error as i32,
            message: "deadline exceeded".into(),
        })
    } else {
        None
    };
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        parent_span_id,
        name,
        kind: kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end.max(start),
        attributes,
        events,
        status,
        flags: 0x100 | 1,
        ..Default::default()
    }
}

fn hop_attributes(rng: &mut StdRng, hop: Hop, root: bool) -> (String, span::SpanKind, Vec<KeyValue>) {
    use span::SpanKind as K;
    let route = ["/api/cart", "/api/checkout", "/api/products/{id}", "/api/orders", "/"][rng.random_range(0..5)];
    match hop {
        Hop::Http if root => (
            format!("GET {route}"),
            K::Server,
            vec![
                s("http.request.method", "GET"),
                s("http.route", route),
                s(
                    "url.path",
                    route.replace("{id}", &rng.random_range(1..10_000).to_string()),
                ),
                s("url.scheme", "https"),
                i("http.response.status_code", 200),
                s("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)"),
                s(
                    "client.address",
                    format!(
                        "10.{}.{}.{}",
                        rng.random_range(0..255),
                        rng.random_range(0..255),
                        rng.random_range(1..255)
                    ),
                ),
            ],
        ),
        Hop::Http => (
            "POST".into(),
            K::Client,
            vec![
                s("http.request.method", "POST"),
                s("server.address", format!("api-{}.internal", rng.random_range(0..4))),
                i("server.port", 8080),
                s("url.full", format!("http://api.internal:8080{route}")),
                i("http.response.status_code", 200),
            ],
        ),
        Hop::Rpc => (
            "shop.Inventory/Reserve".into(),
            K::Client,
            vec![
                s("rpc.system", "grpc"),
                s("rpc.service", "shop.Inventory"),
                s("rpc.method", "Reserve"),
                s("server.address", format!("inventory-{}", rng.random_range(0..3))),
                i("server.port", 50051),
            ],
        ),
        Hop::Db => (
            "SELECT orders".into(),
            K::Client,
            vec![
                s("db.system.name", "postgresql"),
                s("db.namespace", "orders"),
                s("db.operation.name", "SELECT"),
                s("db.query.text", "SELECT id, total FROM orders WHERE customer_id = $1"),
                s("server.address", format!("pg-{}.db.internal", rng.random_range(0..2))),
                i("server.port", 5432),
            ],
        ),
        Hop::Cache => (
            "GET".into(),
            K::Client,
            vec![
                s("db.system.name", "redis"),
                s("db.operation.name", "GET"),
                s("server.address", format!("redis-shard-{}", rng.random_range(0..4))),
                i("server.port", 6379),
            ],
        ),
        Hop::Mq => (
            "publish orders".into(),
            K::Producer,
            vec![
                s("messaging.system", "rabbitmq"),
                s("messaging.operation.type", "publish"),
                s("messaging.destination.name", "orders"),
                s("server.address", "rabbit-1"),
                i("server.port", 5672),
            ],
        ),
        Hop::Internal => ("compute".into(), K::Internal, vec![s("component", "pricing")]),
    }
}

#[derive(Default)]
struct Offsets {
    trace_ids: Vec<u32>,
    times: Vec<u32>,
}

/// Reads a varint at `at`, returning it and the position after it.
fn varint(bytes: &[u8], mut at: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(at)?;
        at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some((value, at));
        }
    }
    None
}

/// Calls `field(number, wire_type, value_start, value_end)` for each field of a message
/// spanning `bytes[start..end]`.
fn fields(bytes: &[u8], start: usize, end: usize, mut field: impl FnMut(u64, u64, usize, usize)) {
    let mut at = start;
    while at < end {
        let Some((key, next)) = varint(bytes, at) else {
            return;
        };
        let (number, wire) = (key >> 3, key & 7);
        let (value_start, value_end) = match wire {
            0 => match varint(bytes, next) {
                Some((_, after)) => (next, after),
                None => return,
            },
            1 => (next, next + 8),
            2 => match varint(bytes, next) {
                Some((len, after)) => (after, after + len as usize),
                None => return,
            },
            5 => (next, next + 4),
            _ => return,
        };
        field(number, wire, value_start, value_end);
        at = value_end;
    }
}

fn walk_request(bytes: &[u8], out: &mut Offsets) {
    // ExportTraceServiceRequest.resource_spans = 1 → ResourceSpans.scope_spans = 2 →
    // ScopeSpans.spans = 2 → Span { trace_id = 1, start = 7, end = 8, events = 11 } →
    // Event.time_unix_nano = 1.
    fields(bytes, 0, bytes.len(), |n, w, s0, e0| {
        if n != 1 || w != 2 {
            return;
        }
        fields(bytes, s0, e0, |n, w, s1, e1| {
            if n != 2 || w != 2 {
                return;
            }
            fields(bytes, s1, e1, |n, w, s2, e2| {
                if n != 2 || w != 2 {
                    return;
                }
                fields(bytes, s2, e2, |n, w, s3, e3| match (n, w) {
                    (1, 2) if e3 - s3 == 16 => out.trace_ids.push(s3 as u32),
                    (7 | 8, 1) => out.times.push(s3 as u32),
                    (11, 2) => fields(bytes, s3, e3, |n, w, s4, _| {
                        if (n, w) == (1, 1) {
                            out.times.push(s4 as u32);
                        }
                    }),
                    _ => {}
                });
            });
        });
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn all_spans(request: &ExportTraceServiceRequest) -> Vec<&Span> {
        request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .collect()
    }

    #[test]
    fn the_workload_has_the_promised_shape() {
        let pool = generate(&WorkloadConfig {
            seed: 7,
            pool: 4,
            spans_per_request: 300,
        });
        for body in &pool {
            let request = ExportTraceServiceRequest::decode(body.bytes.clone()).unwrap();
            let spans = all_spans(&request);
            assert_eq!(spans.len() as u64, body.spans);
            assert!(spans.len() >= 300);
            assert!(request.resource_spans.len() >= 4, "several services and hosts");
            for span in &spans {
                assert!((8..=20).contains(&span.attributes.len()), "{}", span.attributes.len());
            }
            let traces: HashSet<_> = spans.iter().map(|s| s.trace_id.clone()).collect();
            assert!(traces.len() >= 6);
            assert_eq!(body.trace_id_offsets.len(), spans.len());
        }
        let all: Vec<_> = pool
            .iter()
            .flat_map(|b| {
                all_spans(&ExportTraceServiceRequest::decode(b.bytes.clone()).unwrap())
                    .into_iter()
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(
            all.iter().any(|s| s.status.as_ref().is_some_and(|st| st.code == 2)),
            "some errors"
        );
        assert!(all.iter().any(|s| !s.events.is_empty()), "some events");
        // Same seed, same pool.
        let again = generate(&WorkloadConfig {
            seed: 7,
            pool: 4,
            spans_per_request: 300,
        });
        assert_eq!(again[3].bytes, pool[3].bytes);
    }

    #[test]
    fn instantiate_makes_new_trace_ids_and_shifts_time() {
        let body = &generate(&WorkloadConfig {
            seed: 1,
            pool: 1,
            spans_per_request: 100,
        })[0];
        let now = 1_800_000_000_000_000_000;
        let a = ExportTraceServiceRequest::decode(body.instantiate(5, now)).unwrap();
        let b = ExportTraceServiceRequest::decode(body.instantiate(6, now + 1)).unwrap();
        let original = ExportTraceServiceRequest::decode(body.bytes.clone()).unwrap();
        let (sa, sb, so) = (all_spans(&a), all_spans(&b), all_spans(&original));
        assert_ne!(a, b);
        for ((x, y), o) in sa.iter().zip(&sb).zip(&so) {
            assert_ne!(x.trace_id, y.trace_id);
            assert_eq!(
                x.trace_id[8..],
                o.trace_id[8..],
                "low half kept, so traces stay distinct"
            );
            assert_eq!(x.span_id, o.span_id);
            assert_eq!(
                x.end_time_unix_nano - x.start_time_unix_nano,
                o.end_time_unix_nano - o.start_time_unix_nano
            );
            for event in &x.events {
                assert!(event.time_unix_nano >= x.start_time_unix_nano && event.time_unix_nano <= x.end_time_unix_nano);
            }
        }
        assert_eq!(sa.iter().map(|s| s.start_time_unix_nano).min().unwrap(), now);
        let traces_a: HashSet<_> = sa.iter().map(|s| s.trace_id.clone()).collect();
        let traces_o: HashSet<_> = so.iter().map(|s| s.trace_id.clone()).collect();
        assert_eq!(traces_a.len(), traces_o.len());
    }
}
