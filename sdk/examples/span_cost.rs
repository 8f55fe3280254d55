//! Runs N span start+end (optionally with 5 attributes) through hopscope-sdk or
//! opentelemetry_sdk, each with a batch processor and a discarding exporter, for
//! instruction counting under `valgrind --tool=callgrind` (`sdk/benches/span_cost.sh` runs
//! it for both SDKs and prints instructions per span; results in benches/README.md):
//!
//! `span_cost <hopscope|otel|tracing-hopscope|tracing-otel|tracing-otel-lean> <spans> [attrs]`
//!
//! The `tracing-*` modes make the spans with `tracing::info_span!` (created, entered,
//! exited, dropped) under a registry with one layer: hopscope-sdk's `TracingLayer`, or
//! tracing-opentelemetry's layer over opentelemetry_sdk with its defaults (`-otel`) or
//! with location, thread and busy/idle tracking off (`-otel-lean`, closest to what
//! `TracingLayer` records).

use std::time::Duration;

use hopscope_sdk::export::BoxFuture;
use hopscope_sdk::{BatchConfig, Resource, SpanData, SpanExporter, SpanKind, TracerProvider};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use tracing_subscriber::layer::SubscriberExt;

struct Discard;
impl SpanExporter for Discard {
    fn export<'a>(&'a mut self, _: &'a [SpanData], _: &'a Resource) -> BoxFuture<'a, hopscope_sdk::Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

#[derive(Debug)]
struct OtelDiscard;
impl opentelemetry_sdk::trace::SpanExporter for OtelDiscard {
    async fn export(&self, _: Vec<opentelemetry_sdk::trace::SpanData>) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let sdk = args.get(1).map(String::as_str).unwrap_or("hopscope");
    let n: u64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(100_000);
    let attrs = args.get(3).is_some_and(|a| a == "attrs");
    if sdk.starts_with("tracing-") {
        return via_tracing(sdk, n, attrs);
    }
    if sdk == "hopscope" {
        let provider = hopscope_provider()?;
        let tracer = provider.tracer("cost");
        for _ in 0..n {
            let mut s = tracer.span("GET").kind(SpanKind::Client).start();
            if attrs {
                s.set_attribute("db.system.name", "redis");
                s.set_attribute("db.operation.name", "GET");
                s.set_attribute("server.address", "redis-shard-2");
                s.set_attribute("server.port", 6379);
                s.set_attribute("db.namespace", "0");
            }
            s.end();
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(provider.shutdown())?;
        eprintln!("{:?}", provider.stats());
    } else {
        let provider = otel_provider();
        let tracer = provider.tracer("cost");
        for _ in 0..n {
            let mut s = tracer
                .span_builder("GET")
                .with_kind(opentelemetry::trace::SpanKind::Client)
                .start(&tracer);
            if attrs {
                use opentelemetry::KeyValue;
                s.set_attribute(KeyValue::new("db.system.name", "redis"));
                s.set_attribute(KeyValue::new("db.operation.name", "GET"));
                s.set_attribute(KeyValue::new("server.address", "redis-shard-2"));
                s.set_attribute(KeyValue::new("server.port", 6379));
                s.set_attribute(KeyValue::new("db.namespace", "0"));
            }
            s.end();
        }
        provider.shutdown()?;
    }
    Ok(())
}

fn hopscope_provider() -> hopscope_sdk::Result<TracerProvider> {
    TracerProvider::builder()
        .with_resource(Resource::builder().with_service_name("cost").build())
        .with_exporter(Discard)
        .with_batch_config(BatchConfig {
            max_queue_size: 1 << 16,
            scheduled_delay: Duration::from_millis(10),
            ..BatchConfig::default()
        })
        .build()
}

fn otel_provider() -> opentelemetry_sdk::trace::SdkTracerProvider {
    use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(1 << 16)
        .with_scheduled_delay(Duration::from_millis(10))
        .build();
    SdkTracerProvider::builder()
        .with_resource(opentelemetry_sdk::Resource::builder().with_service_name("cost").build())
        .with_span_processor(
            BatchSpanProcessor::builder(OtelDiscard)
                .with_batch_config(config)
                .build(),
        )
        .build()
}

/// N client spans made with `tracing` macros: created, entered, exited, dropped.
fn tracing_spans(n: u64, attrs: bool) {
    for _ in 0..n {
        let span = if attrs {
            tracing::info_span!(
                "GET",
                otel.kind = "client",
                db.system.name = "redis",
                db.operation.name = "GET",
                server.address = "redis-shard-2",
                server.port = 6379,
                db.namespace = "0"
            )
        } else {
            tracing::info_span!("GET", otel.kind = "client")
        };
        drop(span.enter());
    }
}

fn via_tracing(sdk: &str, n: u64, attrs: bool) -> Result<(), Box<dyn std::error::Error>> {
    match sdk {
        "tracing-hopscope" => {
            let provider = hopscope_provider()?;
            let layer = hopscope_sdk::TracingLayer::new(provider.tracer("cost"));
            tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || tracing_spans(n, attrs));
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(provider.shutdown())?;
            eprintln!("{:?}", provider.stats());
        }
        "tracing-otel" | "tracing-otel-lean" => {
            let provider = otel_provider();
            let mut layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("cost"));
            if sdk == "tracing-otel-lean" {
                layer = layer
                    .with_location(false)
                    .with_threads(false)
                    .with_tracked_inactivity(false);
            }
            tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || tracing_spans(n, attrs));
            provider.shutdown()?;
        }
        other => return Err(format!("unknown mode {other}").into()),
    }
    Ok(())
}
