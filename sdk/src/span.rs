//! Spans: what a unit of work records, and the handle that records it.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use crate::id::{SpanContext, SpanId};
use crate::tracer::ProviderState;
use crate::value::{Key, KeyValue, Value, dedupe, note_key, upsert};

/// The role of a span in a call, as in OpenTelemetry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SpanKind {
    /// Handles a synchronous request from a client (HTTP/RPC server).
    Server,
    /// Makes a synchronous call to a remote service, cache or database.
    Client,
    /// Hands a message to a broker; the consumer runs later.
    Producer,
    /// Processes a message from a broker.
    Consumer,
    /// Work inside one process.
    #[default]
    Internal,
}

/// The outcome of a span.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Status {
    /// Not set (the default): the backend decides from other data.
    #[default]
    Unset,
    /// Explicitly successful; final, later `set_status` calls are ignored.
    Ok,
    /// Failed, with a description.
    Error {
        /// What went wrong.
        message: Cow<'static, str>,
    },
}

impl Status {
    /// An error status.
    pub fn error(message: impl Into<Cow<'static, str>>) -> Status {
        Status::Error {
            message: message.into(),
        }
    }
}

/// A timestamped annotation on a span. Errors are recorded as events named `exception`
/// with `exception.type` and `exception.message` attributes.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Event name.
    pub name: Cow<'static, str>,
    /// When it happened.
    pub timestamp: SystemTime,
    /// Attributes.
    pub attributes: Vec<KeyValue>,
}

/// A causal link to a span in the same or another trace (a batch consumer links to the
/// messages it processes, for example).
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    /// The linked span.
    pub context: SpanContext,
    /// Attributes describing the link.
    pub attributes: Vec<KeyValue>,
}

impl Link {
    /// A link without attributes.
    pub fn new(context: SpanContext) -> Link {
        Link {
            context,
            attributes: Vec::new(),
        }
    }
}

/// Limits on what one span keeps; beyond them data is dropped and counted in
/// [`SpanData::dropped_attributes`] / `dropped_events`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanLimits {
    /// Most attributes per span (and per event and link).
    pub max_attributes: usize,
    /// Most events per span.
    pub max_events: usize,
    /// Most links per span.
    pub max_links: usize,
}

impl Default for SpanLimits {
    fn default() -> SpanLimits {
        SpanLimits {
            max_attributes: 128,
            max_events: 128,
            max_links: 128,
        }
    }
}

/// A finished (or in-progress) span's data, as handed to exporters.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanData {
    /// Ids and flags.
    pub context: SpanContext,
    /// The parent span, if any.
    pub parent_span_id: Option<SpanId>,
    /// Whether the parent was in another process.
    pub parent_is_remote: bool,
    /// Operation name.
    pub name: Cow<'static, str>,
    /// Span kind.
    pub kind: SpanKind,
    /// Instrumentation scope (the tracer's name).
    pub scope: Cow<'static, str>,
    /// Start time.
    pub start_time: SystemTime,
    /// End time (equal to the start time until the span ends).
    pub end_time: SystemTime,
    /// Attributes.
    pub attributes: Vec<KeyValue>,
    /// Events.
    pub events: Vec<Event>,
    /// Links.
    pub links: Vec<Link>,
    /// Status.
    pub status: Status,
    /// Attributes dropped over the limit.
    pub dropped_attributes: u32,
    /// Events dropped over the limit.
    pub dropped_events: u32,
    /// Links dropped over the limit.
    pub dropped_links: u32,
}

/// A span being recorded. Create one with [`crate::Tracer::span`].
///
/// Contract: every method is cheap and non-blocking and never fails. Ending (with
/// [`Span::end`] or by dropping) hands the data to the export queue without waiting; when
/// the queue is full the span is dropped and counted. A span that was not sampled records
/// nothing, but its [`Span::context`] is valid and propagates the trace.
#[must_use = "a span ends when dropped; keep it alive for the duration of the work"]
pub struct Span {
    /// The record while recording (always `Some` inside); its `context` is the span's.
    pub(crate) record: Option<crate::record::Record>,
    /// The context of a span that does not record (unused while `data` is set).
    pub(crate) context: SpanContext,
    pub(crate) state: Option<Arc<ProviderState>>,
    /// Raw clock reading at start (the export worker converts it), or 0 when the start
    /// time was given explicitly and is already in the record.
    pub(crate) start_raw: u64,
    /// Bloom filter of the attribute keys set so far.
    pub(crate) keys_seen: u64,
    /// Whether a key may have been set twice (the export worker then resolves repeats).
    pub(crate) maybe_repeated: bool,
}

impl std::fmt::Debug for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Span")
            .field("context", self.context())
            .field("recording", &self.is_recording())
            .finish()
    }
}

impl Span {
    /// A span that records nothing and carries `context` (e.g. to keep propagating a
    /// remote context through code that wants a `Span`).
    #[inline]
    pub fn non_recording(context: SpanContext) -> Span {
        Span {
            record: None,
            context,
            state: None,
            start_raw: 0,
            keys_seen: 0,
            maybe_repeated: false,
        }
    }

    /// This span's context, to propagate or to parent other spans.
    pub fn context(&self) -> &SpanContext {
        self.data().map_or(&self.context, |d| &d.context)
    }

    fn data(&self) -> Option<&SpanData> {
        self.record.as_deref()?.as_ref()
    }

    fn data_mut(&mut self) -> Option<&mut SpanData> {
        self.record.as_deref_mut()?.as_mut()
    }

    /// Whether attributes, events and status are being kept.
    pub fn is_recording(&self) -> bool {
        self.data().is_some()
    }

    #[inline]
    fn limits(&self) -> SpanLimits {
        self.state.as_ref().map(|p| p.limits).unwrap_or_default()
    }

    /// Sets an attribute, replacing one with the same key. (The new entry is appended;
    /// the export worker resolves repeated keys before export, so that the common case
    /// of distinct keys costs no search here.)
    #[inline]
    pub fn set_attribute(&mut self, key: impl Into<Key>, value: impl Into<Value>) {
        if self.record.is_none() {
            return;
        }
        let kv = KeyValue::new(key, value);
        self.maybe_repeated |= note_key(&mut self.keys_seen, &kv.key);
        let limit = self.limits().max_attributes;
        match self.data_mut() {
            // The common case: room in the vector and under the limit.
            Some(data) if data.attributes.len() < data.attributes.capacity() && data.attributes.len() < limit => {
                data.attributes.push(kv);
            }
            _ => self.set_attribute_slow(kv, limit),
        }
    }

    /// [`Span::set_attribute`] when the vector is full or missing, or at the limit.
    #[inline(never)]
    fn set_attribute_slow(&mut self, kv: KeyValue, limit: usize) {
        let Some(data) = self.data_mut() else {
            return;
        };
        let attrs = &mut data.attributes;
        if attrs.len() < limit {
            if attrs.capacity() == 0 {
                // A recycled vector with room for a handful.
                *attrs = crate::record::spare_attributes();
            }
            attrs.push(kv);
        } else {
            // At the limit: only a key already present may still be set.
            dedupe(attrs);
            if !upsert(attrs, kv, limit) {
                data.dropped_attributes += 1;
            }
        }
    }

    /// Sets several attributes.
    pub fn set_attributes(&mut self, attributes: impl IntoIterator<Item = KeyValue>) {
        for kv in attributes {
            self.set_attribute(kv.key, kv.value);
        }
    }

    /// Adds an event now.
    pub fn add_event(&mut self, name: impl Into<Cow<'static, str>>, attributes: Vec<KeyValue>) {
        self.add_event_at(name, crate::clock::now(), attributes);
    }

    /// Adds an event at `timestamp`.
    pub fn add_event_at(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        timestamp: SystemTime,
        mut attributes: Vec<KeyValue>,
    ) {
        let limits = self.limits();
        if let Some(data) = self.data_mut() {
            if data.events.len() >= limits.max_events {
                data.dropped_events += 1;
                return;
            }
            attributes.truncate(limits.max_attributes);
            data.events.push(Event {
                name: name.into(),
                timestamp,
                attributes,
            });
        }
    }

    /// Records an error as an `exception` event (`exception.type` is the Rust type name,
    /// `exception.message` its `Display`) and sets the status to error.
    pub fn record_error<E: std::error::Error + ?Sized>(&mut self, error: &E) {
        self.record_exception(std::any::type_name::<E>(), error.to_string());
    }

    /// Records an `exception` event with an explicit type and message and sets the status
    /// to error with that message.
    pub fn record_exception(&mut self, exception_type: impl Into<Value>, message: impl Into<String>) {
        if !self.is_recording() {
            return;
        }
        let message = message.into();
        self.add_event(
            "exception",
            vec![
                KeyValue::new("exception.type", exception_type),
                KeyValue::new("exception.message", message.clone()),
            ],
        );
        self.set_status(Status::error(message));
    }

    /// Sets the status. `Ok` is final; `Unset` is ignored; `Error` replaces `Unset` or an
    /// earlier error.
    pub fn set_status(&mut self, status: Status) {
        if let Some(data) = self.data_mut() {
            match (&data.status, &status) {
                (Status::Ok, _) | (_, Status::Unset) => {}
                _ => data.status = status,
            }
        }
    }

    /// Renames the span (e.g. once the route is known).
    pub fn update_name(&mut self, name: impl Into<Cow<'static, str>>) {
        if let Some(data) = self.data_mut() {
            data.name = name.into();
        }
    }

    /// Adds a link.
    pub fn add_link(&mut self, link: Link) {
        let limits = self.limits();
        if let Some(data) = self.data_mut() {
            if data.links.len() >= limits.max_links {
                data.dropped_links += 1;
            } else {
                data.links.push(link);
            }
        }
    }

    /// Makes this span the current context until the guard drops (sync code; for async
    /// use [`crate::FutureExt::in_span`]).
    pub fn enter(&self) -> crate::context::ContextGuard {
        crate::context::attach(self.context().clone())
    }

    /// Ends the span now. Never blocks.
    #[inline]
    pub fn end(mut self) {
        self.finish(None);
    }

    /// Ends the span at `end_time`. Never blocks.
    pub fn end_at(mut self, end_time: SystemTime) {
        self.finish(Some(end_time));
    }

    /// Ends a recording span at `end_time` (default: now, one raw clock reading that the
    /// export worker converts); does nothing when the span already ended or does not
    /// record.
    #[inline(always)]
    fn finish(&mut self, end_time: Option<SystemTime>) {
        let Some(mut record) = self.record.take() else {
            return;
        };
        let end_raw = match (end_time, record.as_mut()) {
            (Some(at), Some(data)) => {
                data.end_time = at;
                0
            }
            _ => crate::clock::raw(),
        };
        match &self.state {
            Some(state) => state.on_end(
                record,
                Stamp {
                    start_raw: self.start_raw,
                    end_raw,
                    maybe_repeated: self.maybe_repeated,
                },
            ),
            None => crate::record::recycle(record),
        }
    }
}

/// What travels with an ended span's data to the export worker: raw clock readings for
/// the start and end (0 = already in the record) and whether an attribute key may be
/// repeated.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stamp {
    pub(crate) start_raw: u64,
    pub(crate) end_raw: u64,
    pub(crate) maybe_repeated: bool,
}

/// Sets `data`'s start and end times from raw clock readings taken on any thread (0 =
/// already set in the record); the end is never before the start.
#[inline]
pub(crate) fn resolve_times(data: &mut SpanData, start_raw: u64, end_raw: u64, anchor: crate::clock::Anchor) {
    if start_raw != 0 && end_raw != 0 {
        // The common case: both readings; the conversion is monotonic.
        data.start_time = anchor.to_system_time(start_raw);
        data.end_time = anchor.to_system_time(end_raw.max(start_raw));
        return;
    }
    if start_raw != 0 {
        data.start_time = anchor.to_system_time(start_raw);
    }
    if end_raw != 0 {
        data.end_time = anchor.to_system_time(end_raw);
    }
    data.end_time = data.end_time.max(data.start_time);
}

impl Drop for Span {
    #[inline]
    fn drop(&mut self) {
        self.finish(None);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::{KeyValue, SpanLimits, TracerProvider};

    #[test]
    fn repeated_keys_resolve_like_upsert_at_the_limit() {
        let provider = TracerProvider::builder()
            .with_limits(SpanLimits {
                max_attributes: 2,
                ..SpanLimits::default()
            })
            .build()
            .unwrap();
        let tracer = provider.tracer("t");
        let mut span = tracer.start("s");
        span.set_attribute("a", 1);
        assert!(!span.maybe_repeated);
        span.set_attribute("a", 2); // appended; resolved later
        assert!(span.maybe_repeated);
        span.set_attribute("b", 3); // at the limit: repeats resolved, then stored
        span.set_attribute("c", 4); // over the limit: dropped
        span.set_attribute("a", 5); // an existing key: replaced
        let data = span.data().unwrap();
        assert_eq!(data.attributes, vec![KeyValue::new("a", 5), KeyValue::new("b", 3)]);
        assert_eq!(data.dropped_attributes, 1);
    }
}
