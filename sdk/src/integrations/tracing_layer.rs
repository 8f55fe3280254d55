//! A [`tracing_subscriber::Layer`] that turns `tracing` spans into hopscope spans
//! (feature `tracing`), so services instrumented with `#[tracing::instrument]` and
//! `info_span!` send their spans through the SDK's pipeline.
//!
//! Mapping, as tracing-opentelemetry does it:
//! - a `tracing` span becomes a span named after it, started when the `tracing` span is
//!   created and ended when it closes (its last handle drops); its fields become
//!   attributes, at creation and on `Span::record`;
//! - the fields `otel.name` (span name), `otel.kind` (`server`, `client`, `producer`,
//!   `consumer`, `internal`), `otel.status_code` (`ok`, `error`) and
//!   `otel.status_message` are taken as such, not as attributes;
//! - an event inside a span becomes a span event named by its message, with its fields,
//!   `level` and `target` as attributes; an `ERROR` event sets the span's status to
//!   error;
//! - a field recorded as an error (`error = &err as &dyn Error`, or `#[instrument(err)]`)
//!   becomes an `exception` event with `exception.message` (and the status becomes
//!   error), on the span or on the event's span;
//! - `follows_from` becomes a link.
//!
//! Context is shared with the SDK both ways: entering a `tracing` span makes its context
//! the SDK's current context ([`crate::context::current`]), so SDK spans, the HTTP/gRPC/MQ
//! integrations and [`crate::Tracer::inject`] see it; and a `tracing` span created
//! without a `tracing` parent inside an SDK span (a server span of
//! [`crate::integrations::http::HttpServerLayer`], say) becomes that span's child.
//!
//! Events outside any `tracing` span are not recorded (there is no span to put them on).

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::context;
use crate::id::SpanContext;
use crate::span::{Link, Span, SpanKind, Status};
use crate::tracer::Tracer;
use crate::value::{KeyValue, Value};

/// The layer. Add it to a `tracing_subscriber::registry()`:
///
/// ```no_run
/// # #[cfg(feature = "tracing")] {
/// use tracing_subscriber::layer::SubscriberExt;
/// # let provider = hopscope_sdk::TracerProvider::noop();
/// let subscriber = tracing_subscriber::registry()
///     .with(hopscope_sdk::integrations::tracing_layer::TracingLayer::new(provider.tracer("checkout")));
/// tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TracingLayer {
    tracer: Tracer,
}

impl TracingLayer {
    /// A layer whose spans come from `tracer`.
    pub fn new(tracer: Tracer) -> TracingLayer {
        TracingLayer { tracer }
    }
}

/// What the layer keeps in a `tracing` span's extensions.
struct Recording {
    span: Span,
}

thread_local! {
    /// The SDK contexts that entering `tracing` spans replaced on this thread, restored
    /// on exit (enter and exit nest per thread).
    static ENTERED: RefCell<Vec<Option<SpanContext>>> = const { RefCell::new(Vec::new()) };
}

/// Collects a span's creation fields: the `otel.*` ones apart, the rest as attributes.
#[derive(Default)]
struct SpanFields {
    name: Option<String>,
    kind: Option<SpanKind>,
    status: Option<Status>,
    status_message: Option<String>,
    attributes: Vec<KeyValue>,
    error: Option<String>,
}

fn span_kind(s: &str) -> Option<SpanKind> {
    Some(match s.to_ascii_lowercase().as_str() {
        "server" => SpanKind::Server,
        "client" => SpanKind::Client,
        "producer" => SpanKind::Producer,
        "consumer" => SpanKind::Consumer,
        "internal" => SpanKind::Internal,
        _ => return None,
    })
}

impl SpanFields {
    fn special(&mut self, field: &Field, value: &str) -> bool {
        match field.name() {
            "otel.name" => self.name = Some(value.to_owned()),
            "otel.kind" => self.kind = span_kind(value),
            "otel.status_code" => {
                self.status = match value.to_ascii_lowercase().as_str() {
                    "ok" => Some(Status::Ok),
                    "error" => Some(Status::error("")),
                    _ => None,
                }
            }
            "otel.status_message" | "otel.status_description" => self.status_message = Some(value.to_owned()),
            _ => return false,
        }
        true
    }

    fn push(&mut self, field: &Field, value: Value) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    /// The status to set, with `otel.status_message` as an error's message.
    fn status(&mut self) -> Option<Status> {
        match self.status.take()? {
            Status::Error { .. } => Some(Status::error(self.status_message.take().unwrap_or_default())),
            other => Some(other),
        }
    }
}

impl Visit for SpanFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.special(field, value) {
            self.push(field, Value::String(Cow::Owned(value.to_owned())));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if !self.special(field, &text) {
            self.push(field, Value::String(Cow::Owned(text)));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, u64_value(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, Value::F64(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::Bool(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let message = value.to_string();
        self.push(field, Value::String(Cow::Owned(message.clone())));
        self.error = Some(message);
    }
}

/// A `u64` as an integer attribute when it fits, else as its decimal text (OTLP has no
/// unsigned integers).
fn u64_value(v: u64) -> Value {
    match i64::try_from(v) {
        Ok(i) => Value::I64(i),
        Err(_) => Value::String(Cow::Owned(v.to_string())),
    }
}

/// Applies recorded fields to a started span.
fn apply(span: &mut Span, mut fields: SpanFields) {
    if let Some(name) = fields.name.take() {
        span.update_name(name);
    }
    if let Some(status) = fields.status() {
        span.set_status(status);
    }
    if let Some(message) = fields.error.take() {
        span.record_exception("error", message);
    }
    for kv in fields.attributes.drain(..) {
        span.set_attribute(kv.key, kv.value);
    }
}

/// An event's fields: the message apart, the rest as attributes.
#[derive(Default)]
struct EventFields {
    message: Option<String>,
    attributes: Vec<KeyValue>,
    error: Option<String>,
}

impl Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.attributes.push(KeyValue::new(field.name(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(text);
        } else {
            self.attributes.push(KeyValue::new(field.name(), text));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.attributes.push(KeyValue::new(field.name(), u64_value(value)));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let message = value.to_string();
        self.attributes.push(KeyValue::new(field.name(), message.clone()));
        self.error = Some(message);
    }
}

impl<S> tracing_subscriber::Layer<S> for TracingLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span_ref) = ctx.span(id) else { return };
        let mut fields = SpanFields::default();
        attrs.record(&mut fields);
        let mut builder = self.tracer.span(attrs.metadata().name());
        if let Some(kind) = fields.kind.take() {
            builder = builder.kind(kind);
        }
        if let Some(parent) = attrs.parent() {
            // An explicit `parent:`: that span's context (a root if it is not ours).
            let cx = ctx
                .span(parent)
                .and_then(|p| p.extensions().get::<Recording>().map(|r| r.span.context().clone()));
            builder = builder.parent(cx.as_ref());
        } else if attrs.is_root() {
            builder = builder.root();
        }
        // Otherwise the SDK's current context, which the entered `tracing` span set (or an
        // SDK span did).
        let mut span = builder.attributes(std::mem::take(&mut fields.attributes)).start();
        apply(&mut span, fields);
        span_ref.extensions_mut().insert(Recording { span });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span_ref) = ctx.span(id) else { return };
        let mut extensions = span_ref.extensions_mut();
        let Some(recording) = extensions.get_mut::<Recording>() else {
            return;
        };
        let mut fields = SpanFields::default();
        values.record(&mut fields);
        apply(&mut recording.span, fields);
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: Context<'_, S>) {
        let Some(follows) = ctx
            .span(follows)
            .and_then(|f| f.extensions().get::<Recording>().map(|r| r.span.context().clone()))
        else {
            return;
        };
        if let Some(span_ref) = ctx.span(id)
            && let Some(recording) = span_ref.extensions_mut().get_mut::<Recording>()
        {
            recording.span.add_link(Link::new(follows));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(span_ref) = ctx.event_span(event) else {
            return;
        };
        let mut extensions = span_ref.extensions_mut();
        let Some(recording) = extensions.get_mut::<Recording>() else {
            return;
        };
        let span = &mut recording.span;
        if !span.is_recording() {
            return;
        }
        let mut fields = EventFields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let level = *meta.level();
        let message = fields.message.take();
        if let Some(error) = fields.error.take() {
            span.record_exception("error", error);
        }
        if level == Level::ERROR {
            span.set_status(Status::error(message.clone().unwrap_or_default()));
        }
        let mut attributes = fields.attributes;
        attributes.push(KeyValue::new("level", level.as_str()));
        attributes.push(KeyValue::new("target", meta.target().to_owned()));
        let name: Cow<'static, str> = match message {
            Some(m) => m.into(),
            None => meta.name().into(),
        };
        span.add_event(name, attributes);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span_ref) = ctx.span(id) else { return };
        let extensions = span_ref.extensions();
        let Some(recording) = extensions.get::<Recording>() else {
            return;
        };
        let previous = context::replace(Some(recording.span.context().clone()));
        ENTERED.with(|e| e.borrow_mut().push(previous));
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        let ours = ctx
            .span(id)
            .is_some_and(|s| s.extensions().get::<Recording>().is_some());
        if !ours {
            return;
        }
        if let Some(previous) = ENTERED.with(|e| e.borrow_mut().pop()) {
            context::replace(previous);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span_ref) = ctx.span(&id) else { return };
        let recording = span_ref.extensions_mut().remove::<Recording>();
        if let Some(recording) = recording {
            recording.span.end();
        }
    }
}
