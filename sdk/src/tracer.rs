//! Tracer provider (the SDK's configured state), tracers and span builders.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::context;
use crate::error::Result;
use crate::export::{BatchConfig, BatchProcessor, ExportStats, SpanExporter};
use crate::id::{self, SpanContext, SpanId, TraceFlags, TraceId, TraceState};
use crate::propagation::{Propagator, TextMapPropagator};
use crate::record::{self, Record};
use crate::resource::Resource;
use crate::sampler::Sampler;
use crate::span::{Link, Span, SpanData, SpanKind, SpanLimits, Stamp, Status};
use crate::value::{Key, KeyValue, Value, has_duplicate_keys, note_key, upsert};

/// Shared state behind every tracer and span of one provider.
pub(crate) struct ProviderState {
    pub(crate) sampler: Sampler,
    pub(crate) limits: SpanLimits,
    pub(crate) propagator: Propagator,
    pub(crate) resource: Arc<Resource>,
    pub(crate) processor: Option<BatchProcessor>,
}

impl ProviderState {
    /// Hands an ended span's record to the export queue; the stamp's raw clock readings
    /// are still to be converted.
    #[inline]
    pub(crate) fn on_end(&self, record: Record, stamp: Stamp) {
        match &self.processor {
            Some(processor) => processor.enqueue(record, stamp),
            None => record::recycle(record),
        }
    }
}

/// The configured SDK: resource, sampler, limits, propagator and exporter. Cheap to clone
/// (all clones share one state). Call [`TracerProvider::shutdown`] before exit to
/// flush queued spans.
#[derive(Clone)]
pub struct TracerProvider {
    state: Arc<ProviderState>,
}

impl std::fmt::Debug for TracerProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracerProvider")
            .field("resource", &self.state.resource)
            .finish()
    }
}

impl TracerProvider {
    /// A builder with defaults: `ParentBased(AlwaysOn)`, W3C trace context, no exporter.
    pub fn builder() -> TracerProviderBuilder {
        TracerProviderBuilder::default()
    }

    /// A provider that samples nothing and exports nothing; spans still propagate
    /// context.
    pub fn noop() -> TracerProvider {
        TracerProvider::builder()
            .with_sampler(Sampler::AlwaysOff)
            .build_without_exporter()
    }

    /// A tracer for one instrumentation scope (library or component name).
    pub fn tracer(&self, scope: impl Into<Cow<'static, str>>) -> Tracer {
        Tracer {
            state: self.state.clone(),
            scope: scope.into(),
        }
    }

    /// The resource every span is exported with.
    pub fn resource(&self) -> &Resource {
        &self.state.resource
    }

    /// Export counters (queued, dropped because the queue was full, exported, failed).
    pub fn stats(&self) -> ExportStats {
        self.state
            .processor
            .as_ref()
            .map(BatchProcessor::stats)
            .unwrap_or_default()
    }

    /// Spans dropped because the export queue was full.
    pub fn dropped_spans(&self) -> u64 {
        self.stats().dropped
    }

    /// Exports everything queued so far and waits until that is done (bounded by the
    /// batch config's export timeout and retries).
    pub async fn flush(&self) -> Result<()> {
        match &self.state.processor {
            Some(p) => p.flush().await,
            None => Ok(()),
        }
    }

    /// Flushes and stops the export worker. Spans ended afterwards are dropped (counted).
    /// Bounded by [`BatchConfig::shutdown_timeout`].
    pub async fn shutdown(&self) -> Result<()> {
        match &self.state.processor {
            Some(p) => p.shutdown().await,
            None => Ok(()),
        }
    }
}

/// Builds a [`TracerProvider`].
#[derive(Default)]
pub struct TracerProviderBuilder {
    sampler: Sampler,
    limits: SpanLimits,
    propagator: Option<Propagator>,
    resource: Option<Resource>,
    batch: Option<BatchConfig>,
    exporter: Option<Box<dyn SpanExporter>>,
}

impl TracerProviderBuilder {
    /// The head sampler.
    pub fn with_sampler(mut self, sampler: Sampler) -> Self {
        self.sampler = sampler;
        self
    }

    /// Span limits.
    pub fn with_limits(mut self, limits: SpanLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The propagator integrations use to inject and extract context (default: W3C trace
    /// context on inject; W3C then B3 on extract).
    pub fn with_propagator(mut self, propagator: Propagator) -> Self {
        self.propagator = Some(propagator);
        self
    }

    /// The resource (default: [`Resource::detect`]).
    pub fn with_resource(mut self, resource: Resource) -> Self {
        self.resource = Some(resource);
        self
    }

    /// Batch/queue settings (default: [`BatchConfig::default`]).
    pub fn with_batch_config(mut self, config: BatchConfig) -> Self {
        self.batch = Some(config);
        self
    }

    /// Where spans go. Without one, spans are sampled and recorded but not exported.
    pub fn with_exporter(mut self, exporter: impl SpanExporter) -> Self {
        self.exporter = Some(Box::new(exporter));
        self
    }

    /// Builds the provider and starts the export worker thread (if an exporter is set).
    pub fn build(self) -> Result<TracerProvider> {
        let resource = Arc::new(self.resource.unwrap_or_else(Resource::detect));
        let processor = match self.exporter {
            Some(exporter) => Some(BatchProcessor::start(
                exporter,
                self.batch.unwrap_or_default(),
                resource.clone(),
            )?),
            None => None,
        };
        Ok(TracerProvider {
            state: Arc::new(ProviderState {
                sampler: self.sampler,
                limits: self.limits,
                propagator: self.propagator.unwrap_or_default(),
                resource,
                processor,
            }),
        })
    }

    fn build_without_exporter(self) -> TracerProvider {
        let resource = Arc::new(self.resource.unwrap_or_else(Resource::empty));
        TracerProvider {
            state: Arc::new(ProviderState {
                sampler: self.sampler,
                limits: self.limits,
                propagator: self.propagator.unwrap_or_default(),
                resource,
                processor: None,
            }),
        }
    }
}

/// Creates spans for one instrumentation scope. Cheap to clone.
#[derive(Clone)]
pub struct Tracer {
    state: Arc<ProviderState>,
    scope: Cow<'static, str>,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer").field("scope", &self.scope).finish()
    }
}

impl Tracer {
    /// Starts building a span. By default its parent is the current context
    /// ([`crate::context::current`]) and its kind is internal.
    pub fn span(&self, name: impl Into<Cow<'static, str>>) -> SpanBuilder<'_> {
        SpanBuilder {
            tracer: self,
            name: name.into(),
            kind: SpanKind::Internal,
            parent: ParentChoice::Current,
            attributes: Vec::new(),
            links: Vec::new(),
            start_time: None,
        }
    }

    /// Starts an internal span under the current context.
    pub fn start(&self, name: impl Into<Cow<'static, str>>) -> Span {
        self.span(name).start()
    }

    /// The provider's propagator.
    pub fn propagator(&self) -> &Propagator {
        &self.state.propagator
    }

    /// Injects `cx` into a carrier with the provider's propagator.
    pub fn inject(&self, cx: &SpanContext, carrier: &mut dyn crate::propagation::Injector) {
        self.state.propagator.inject(cx, carrier);
    }

    /// Extracts a remote context from a carrier with the provider's propagator.
    pub fn extract(&self, carrier: &dyn crate::propagation::Extractor) -> Option<SpanContext> {
        self.state.propagator.extract(carrier)
    }
}

/// What a new span takes from its (valid) parent.
struct Parent {
    trace_id: TraceId,
    span_id: SpanId,
    sampled: bool,
    is_remote: bool,
    trace_state: TraceState,
}

impl Parent {
    #[inline]
    fn of(p: &SpanContext) -> Parent {
        Parent {
            trace_id: p.trace_id,
            span_id: p.span_id,
            sampled: p.is_sampled(),
            is_remote: p.is_remote,
            trace_state: p.trace_state.clone(),
        }
    }
}

enum ParentChoice {
    Current,
    Root,
    Explicit(SpanContext),
}

/// Configures a span before it starts. See [`Tracer::span`].
#[must_use = "call .start() to start the span"]
pub struct SpanBuilder<'t> {
    tracer: &'t Tracer,
    name: Cow<'static, str>,
    kind: SpanKind,
    parent: ParentChoice,
    attributes: Vec<KeyValue>,
    links: Vec<Link>,
    start_time: Option<SystemTime>,
}

impl SpanBuilder<'_> {
    /// The span kind.
    pub fn kind(mut self, kind: SpanKind) -> Self {
        self.kind = kind;
        self
    }

    /// An explicit parent (local or extracted from a carrier). `None` makes a root span.
    pub fn parent(mut self, parent: Option<&SpanContext>) -> Self {
        self.parent = match parent {
            Some(p) if p.is_valid() => ParentChoice::Explicit(p.clone()),
            _ => ParentChoice::Root,
        };
        self
    }

    /// Starts a new trace, ignoring the current context.
    pub fn root(mut self) -> Self {
        self.parent = ParentChoice::Root;
        self
    }

    /// An attribute set before sampling (samplers and exporters see it).
    pub fn attribute(mut self, key: impl Into<Key>, value: impl Into<Value>) -> Self {
        self.attributes.push(KeyValue::new(key, value));
        self
    }

    /// Several attributes.
    pub fn attributes(mut self, attributes: impl IntoIterator<Item = KeyValue>) -> Self {
        self.attributes.extend(attributes);
        self
    }

    /// A link.
    pub fn link(mut self, link: Link) -> Self {
        self.links.push(link);
        self
    }

    /// An explicit start time (default: now).
    pub fn start_time(mut self, at: SystemTime) -> Self {
        self.start_time = Some(at);
        self
    }

    /// Starts the span.
    #[inline]
    pub fn start(self) -> Span {
        let state = &self.tracer.state;
        // The parent's ids, flags and state (copied out of the thread-local current
        // context, so that the rest runs here rather than inside the access).
        let parent = match &self.parent {
            ParentChoice::Current => context::with_current(|p| p.filter(|p| p.is_valid()).map(Parent::of)),
            ParentChoice::Root => None,
            ParentChoice::Explicit(p) => Some(Parent::of(p)),
        };
        let (trace_id, span_id, parent_span_id, parent_is_remote, trace_state, sampled) = match parent {
            Some(p) => (
                p.trace_id,
                SpanId::random(),
                Some(p.span_id),
                p.is_remote,
                p.trace_state,
                state.sampler.sample_child(p.sampled, p.trace_id),
            ),
            None => {
                let (trace_id, span_id) = id::new_root_ids();
                let sampled = state.sampler.should_sample(None, trace_id);
                (trace_id, span_id, None, false, TraceState::default(), sampled)
            }
        };
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::NOT_SAMPLED
        };
        let context = SpanContext {
            trace_id,
            span_id,
            trace_flags: flags,
            trace_state,
            is_remote: false,
        };
        if !sampled {
            return Span::non_recording(context);
        }
        // Builder attributes become the span's attribute vector (deduplicated only when
        // needed).
        let mut attributes = Vec::new();
        let mut dropped_attributes = 0;
        let mut keys_seen = 0;
        if !self.attributes.is_empty() {
            let max = state.limits.max_attributes;
            if has_duplicate_keys(&self.attributes) || self.attributes.len() > max {
                for kv in self.attributes {
                    if !upsert(&mut attributes, kv, max) {
                        dropped_attributes += 1;
                    }
                }
            } else {
                attributes = self.attributes;
            }
            for kv in &attributes {
                note_key(&mut keys_seen, &kv.key);
            }
        }
        let mut links = self.links;
        let mut dropped_links = 0;
        if !links.is_empty() {
            let max = state.limits.max_links;
            dropped_links = links.len().saturating_sub(max) as u32;
            links.truncate(max);
        }
        // The start time is a raw clock reading until the export worker converts it.
        let (start_time, start_raw) = match self.start_time {
            Some(at) => (at, 0),
            None => (UNIX_EPOCH, crate::clock::raw()),
        };
        // A recycled record (the previous span's, usually), filled in place.
        let mut record = record::take();
        *record = Some(SpanData {
            context,
            parent_span_id,
            parent_is_remote,
            name: self.name,
            kind: self.kind,
            scope: self.tracer.scope.clone(),
            start_time,
            end_time: start_time,
            attributes,
            events: Vec::new(),
            links,
            status: Status::Unset,
            dropped_attributes,
            dropped_events: 0,
            dropped_links,
        });
        Span {
            record: Some(record),
            context: SpanContext::default(),
            state: Some(state.clone()),
            start_raw,
            keys_seen,
            maybe_repeated: false,
        }
    }
}
