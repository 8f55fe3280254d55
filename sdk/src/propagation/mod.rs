//! Trace-context propagation over any carrier, in the OpenTelemetry shapes: an
//! [`Injector`]/[`Extractor`] over a carrier (HTTP headers, AMQP headers, NATS headers,
//! Kafka-style header lists, maps) and a [`TextMapPropagator`] with `inject`, `extract`
//! and `fields`.
//!
//! The W3C and B3 propagators format ids into stack buffers and parse them from the
//! carrier's `&str` without allocating; only the carrier's own storage (e.g. a
//! `HeaderValue`) may allocate.

mod b3;
mod carriers;
mod w3c;

use std::sync::Arc;

pub use b3::{B3Encoding, B3Propagator};
pub use carriers::KafkaHeaders;
pub use w3c::TraceContextPropagator;

use crate::id::SpanContext;

/// Writes key/value pairs into a carrier. Keys are lowercase ASCII.
pub trait Injector {
    /// Sets `key` to `value`, replacing any existing value.
    fn set(&mut self, key: &str, value: &str);
}

/// Reads values from a carrier. Lookups are case-insensitive where the carrier's keys
/// are (HTTP headers); map carriers store keys lowercase.
pub trait Extractor {
    /// The value of `key`, if present and valid UTF-8.
    fn get(&self, key: &str) -> Option<&str>;

    /// All keys (used for debugging and by propagators that scan prefixes).
    fn keys(&self) -> Vec<&str>;
}

/// Injects a span context into, and extracts one from, a text-map carrier.
///
/// Contract: `inject` writes only the keys listed in `fields`; `extract` returns a remote
/// (`is_remote == true`), valid context or `None`, and never panics on malformed input.
pub trait TextMapPropagator: Send + Sync {
    /// Writes `cx` into the carrier.
    fn inject(&self, cx: &SpanContext, injector: &mut dyn Injector);

    /// Reads a remote context from the carrier.
    fn extract(&self, extractor: &dyn Extractor) -> Option<SpanContext>;

    /// The keys this propagator writes (e.g. for CORS or header allow-lists).
    fn fields(&self) -> &[&'static str];
}

/// A shareable propagator: one or several [`TextMapPropagator`]s. Injects with every
/// member; extracts with the first member that finds a context. The default is W3C
/// trace context alone (the OpenTelemetry default).
#[derive(Clone)]
pub struct Propagator {
    members: Arc<[Box<dyn TextMapPropagator>]>,
    fields: Arc<[&'static str]>,
}

impl std::fmt::Debug for Propagator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Propagator").field("fields", &self.fields).finish()
    }
}

impl Default for Propagator {
    fn default() -> Propagator {
        Propagator::new(TraceContextPropagator)
    }
}

impl Propagator {
    /// One propagator.
    pub fn new(p: impl TextMapPropagator + 'static) -> Propagator {
        Propagator::composite(vec![Box::new(p)])
    }

    /// Several propagators, tried in order on extract.
    pub fn composite(members: Vec<Box<dyn TextMapPropagator>>) -> Propagator {
        let mut fields: Vec<&'static str> = Vec::new();
        for m in &members {
            for f in m.fields() {
                if !fields.contains(f) {
                    fields.push(f);
                }
            }
        }
        Propagator {
            members: members.into(),
            fields: fields.into(),
        }
    }

    /// W3C trace context and B3 (single header) together: injects both, extracts
    /// whichever is present (W3C first). Useful at the edge between Zipkin-era and
    /// OpenTelemetry services.
    pub fn w3c_and_b3() -> Propagator {
        Propagator::composite(vec![
            Box::new(TraceContextPropagator),
            Box::new(B3Propagator::new(B3Encoding::SingleHeader)),
        ])
    }
}

impl TextMapPropagator for Propagator {
    fn inject(&self, cx: &SpanContext, injector: &mut dyn Injector) {
        for m in self.members.iter() {
            m.inject(cx, injector);
        }
    }

    fn extract(&self, extractor: &dyn Extractor) -> Option<SpanContext> {
        self.members.iter().find_map(|m| m.extract(extractor))
    }

    fn fields(&self) -> &[&'static str] {
        &self.fields
    }
}
