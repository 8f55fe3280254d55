//! hopscope SDK: creates spans in Rust services and carries one trace id along every hop —
//! HTTP calls, message queues, cache and database calls — then exports the spans over
//! OTLP (gRPC or HTTP/protobuf) to hopscope or any OpenTelemetry collector.
//!
//! ```no_run
//! use hopscope_sdk::{OtlpConfig, OtlpGrpcExporter, Resource, SpanKind, TracerProvider};
//!
//! # async fn demo() -> hopscope_sdk::Result<()> {
//! let provider = TracerProvider::builder()
//!     .with_resource(Resource::builder().with_service_name("payments").with_env().build())
//!     .with_exporter(OtlpGrpcExporter::new(OtlpConfig::from_env()?)?)
//!     .build()?;
//! let tracer = provider.tracer("payments");
//! let mut span = tracer.span("charge").kind(SpanKind::Internal).attribute("amount", 42).start();
//! span.set_attribute("currency", "EUR");
//! span.end(); // never blocks; a full queue drops and counts (provider.dropped_spans())
//! provider.shutdown().await?; // flushes
//! # Ok(()) }
//! ```
//!
//! Contracts that hold everywhere: recording and ending spans never block and never
//! panic; the export queue is bounded; propagation of W3C `traceparent` and B3 does not
//! allocate (only the carrier's own storage may).

mod clock;
pub mod context;
mod error;
pub mod export;
mod id;
pub mod integrations;
pub mod propagation;
mod record;
mod resource;
mod sampler;
mod span;
mod tracer;
mod value;

pub use context::FutureExt;
pub use error::{Error, Result};
pub use export::{
    BatchConfig, ExportStats, InMemoryExporter, OtlpConfig, OtlpExporter, OtlpGrpcExporter, OtlpHttpExporter,
    SpanExporter,
};
pub use id::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
#[cfg(feature = "tracing")]
pub use integrations::tracing_layer::TracingLayer;
pub use propagation::{Extractor, Injector, Propagator, TextMapPropagator};
pub use resource::{CLOUD_KIND, Cloud, CloudKind, Resource, ResourceBuilder};
pub use sampler::Sampler;
pub use span::{Event, Link, Span, SpanData, SpanKind, SpanLimits, Status};
pub use tracer::{SpanBuilder, Tracer, TracerProvider, TracerProviderBuilder};
pub use value::{Key, KeyValue, Value};
