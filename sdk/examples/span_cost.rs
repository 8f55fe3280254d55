//! Runs N span start+end (optionally with 5 attributes) through hopscope-sdk or
//! opentelemetry_sdk, each with a batch processor and a discarding exporter, for
//! instruction counting under `valgrind --tool=callgrind` (`sdk/benches/span_cost.sh` runs
//! it for both SDKs and prints instructions per span; results in benches/README.md):
//!
//! `span_cost <hopscope|otel> <spans> [attrs]`

use std::time::Duration;

use hopscope_sdk::export::BoxFuture;
use hopscope_sdk::{BatchConfig, Resource, SpanData, SpanExporter, SpanKind, TracerProvider};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};

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
    const QUEUE: usize = 1 << 16;
    if sdk == "hopscope" {
        let provider = TracerProvider::builder()
            .with_resource(Resource::builder().with_service_name("cost").build())
            .with_exporter(Discard)
            .with_batch_config(BatchConfig {
                max_queue_size: QUEUE,
                scheduled_delay: Duration::from_millis(10),
                ..BatchConfig::default()
            })
            .build()?;
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
        use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
        let config = BatchConfigBuilder::default()
            .with_max_queue_size(QUEUE)
            .with_scheduled_delay(Duration::from_millis(10))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_resource(opentelemetry_sdk::Resource::builder().with_service_name("cost").build())
            .with_span_processor(
                BatchSpanProcessor::builder(OtelDiscard)
                    .with_batch_config(config)
                    .build(),
            )
            .build();
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
