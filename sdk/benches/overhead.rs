//! SDK overhead, hopscope-sdk side by side with the official `opentelemetry_sdk` 0.33 in
//! the same run: span start+end, start + 5 attributes + end, W3C inject/extract, and the
//! per-span cost of turning a finished batch into an encoded OTLP request.
//!
//! Both SDKs run with a batch processor in front of an exporter that discards, with the
//! same queue size, so the numbers are what the application thread pays per span.
//!
//! Run: `cargo bench -p hopscope-sdk --bench overhead` (results in benches/README.md).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use hopscope_sdk::export::BoxFuture;
use hopscope_sdk::propagation::TraceContextPropagator;
use hopscope_sdk::{
    BatchConfig, Extractor, Injector, Resource, SpanData, SpanExporter, SpanKind, TextMapPropagator, TracerProvider,
};
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{Span as _, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use prost::Message;

const QUEUE: usize = 1 << 16;

/// Discards batches (hopscope side).
struct Discard;
impl SpanExporter for Discard {
    fn export<'a>(&'a mut self, _: &'a [SpanData], _: &'a Resource) -> BoxFuture<'a, hopscope_sdk::Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// Discards (or keeps) batches and counts spans (opentelemetry_sdk side).
#[derive(Debug, Clone, Default)]
struct OtelSink {
    keep: Option<Arc<Mutex<Vec<opentelemetry_sdk::trace::SpanData>>>>,
    exported: Arc<AtomicU64>,
}
impl opentelemetry_sdk::trace::SpanExporter for OtelSink {
    async fn export(&self, batch: Vec<opentelemetry_sdk::trace::SpanData>) -> OTelSdkResult {
        self.exported.fetch_add(batch.len() as u64, Ordering::Relaxed);
        if let Some(keep) = &self.keep
            && let Ok(mut k) = keep.lock()
        {
            k.extend(batch);
        }
        Ok(())
    }
}

fn hopscope_provider() -> TracerProvider {
    TracerProvider::builder()
        .with_resource(Resource::builder().with_service_name("bench").build())
        .with_exporter(Discard)
        .with_batch_config(BatchConfig {
            max_queue_size: QUEUE,
            scheduled_delay: Duration::from_millis(10),
            ..BatchConfig::default()
        })
        .build()
        .expect("provider")
}

fn otel_provider(sink: OtelSink) -> SdkTracerProvider {
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(QUEUE)
        .with_scheduled_delay(Duration::from_millis(10))
        .build();
    let processor = BatchSpanProcessor::builder(sink).with_batch_config(config).build();
    SdkTracerProvider::builder()
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("bench")
                .build(),
        )
        .with_span_processor(processor)
        .build()
}

fn spans(c: &mut Criterion) {
    let hop = hopscope_provider();
    let sink = OtelSink::default();
    let otel = otel_provider(sink.clone());
    let (ht, ot) = (hop.tracer("bench"), otel.tracer("bench"));
    // Spans the opentelemetry_sdk side started, to report how many its full queue dropped.
    let mut otel_started = 0u64;

    let mut g = c.benchmark_group("span_start_end");
    g.throughput(Throughput::Elements(1));
    g.bench_function("hopscope", |b| {
        b.iter(|| ht.span("op").kind(SpanKind::Client).start().end())
    });
    g.bench_function("opentelemetry_sdk", |b| {
        b.iter(|| {
            otel_started += 1;
            let mut s = ot
                .span_builder("op")
                .with_kind(opentelemetry::trace::SpanKind::Client)
                .start(&ot);
            s.end();
        })
    });
    g.finish();

    let mut g = c.benchmark_group("span_5_attributes");
    g.throughput(Throughput::Elements(1));
    g.bench_function("hopscope", |b| {
        b.iter(|| {
            let mut s = ht.span("GET").kind(SpanKind::Client).start();
            s.set_attribute("db.system.name", "redis");
            s.set_attribute("db.operation.name", "GET");
            s.set_attribute("server.address", "redis-shard-2");
            s.set_attribute("server.port", 6379);
            s.set_attribute("db.namespace", "0");
            s.end();
        })
    });
    g.bench_function("opentelemetry_sdk", |b| {
        use opentelemetry::KeyValue;
        b.iter(|| {
            otel_started += 1;
            let mut s = ot
                .span_builder("GET")
                .with_kind(opentelemetry::trace::SpanKind::Client)
                .start(&ot);
            s.set_attribute(KeyValue::new("db.system.name", "redis"));
            s.set_attribute(KeyValue::new("db.operation.name", "GET"));
            s.set_attribute(KeyValue::new("server.address", "redis-shard-2"));
            s.set_attribute(KeyValue::new("server.port", 6379));
            s.set_attribute(KeyValue::new("db.namespace", "0"));
            s.end();
        })
    });
    g.finish();
    eprintln!("hopscope stats after span benches: {:?}", hop.stats());
    drop(otel.shutdown());
    let exported = sink.exported.load(Ordering::Relaxed);
    eprintln!(
        "opentelemetry_sdk after span benches: started {otel_started}, exported {exported}, dropped {}",
        otel_started.saturating_sub(exported)
    );
}

/// A fixed-size carrier (no heap), for the allocation-free path.
struct Stack {
    tp: [u8; 55],
    has: bool,
}
impl Injector for Stack {
    fn set(&mut self, key: &str, value: &str) {
        if key == "traceparent" && value.len() == 55 {
            self.tp.copy_from_slice(value.as_bytes());
            self.has = true;
        }
    }
}
impl Extractor for Stack {
    fn get(&self, key: &str) -> Option<&str> {
        (key == "traceparent" && self.has)
            .then(|| std::str::from_utf8(&self.tp).ok())
            .flatten()
    }
    fn keys(&self) -> Vec<&str> {
        vec!["traceparent"]
    }
}

fn propagation(c: &mut Criterion) {
    let hop = TracerProvider::builder().build().expect("provider");
    let span = hop.tracer("b").start("root");
    let cx = span.context().clone();
    let otel = SdkTracerProvider::builder().build();
    let os = otel.tracer("b").start("root");
    let ocx = opentelemetry::Context::new().with_remote_span_context(os.span_context().clone());
    let otel_prop = opentelemetry_sdk::propagation::TraceContextPropagator::new();

    let mut g = c.benchmark_group("w3c_inject_extract");
    g.throughput(Throughput::Elements(1));
    g.bench_function("hopscope_stack_carrier", |b| {
        let mut carrier = Stack {
            tp: [0; 55],
            has: false,
        };
        b.iter(|| {
            TraceContextPropagator.inject(black_box(&cx), &mut carrier);
            black_box(TraceContextPropagator.extract(&carrier))
        })
    });
    g.bench_function("hopscope_hashmap", |b| {
        b.iter(|| {
            let mut carrier: HashMap<String, String> = HashMap::new();
            TraceContextPropagator.inject(black_box(&cx), &mut carrier);
            black_box(TraceContextPropagator.extract(&carrier))
        })
    });
    g.bench_function("opentelemetry_sdk_hashmap", |b| {
        b.iter(|| {
            let mut carrier: HashMap<String, String> = HashMap::new();
            otel_prop.inject_context(black_box(&ocx), &mut carrier);
            black_box(otel_prop.extract(&carrier))
        })
    });
    g.bench_function("hopscope_http_headers", |b| {
        b.iter(|| {
            let mut carrier = http::HeaderMap::new();
            TraceContextPropagator.inject(black_box(&cx), &mut carrier);
            black_box(TraceContextPropagator.extract(&carrier))
        })
    });
    g.finish();
}

/// 512 finished, attribute-laden client spans from each SDK.
fn batches() -> (
    Vec<SpanData>,
    Resource,
    Vec<opentelemetry_sdk::trace::SpanData>,
    opentelemetry_sdk::Resource,
) {
    let mem = hopscope_sdk::InMemoryExporter::new();
    let resource = Resource::builder()
        .with_service_name("bench")
        .with_host_name("vm-1")
        .build();
    let hop = TracerProvider::builder()
        .with_resource(resource.clone())
        .with_exporter(mem.clone())
        .build()
        .expect("provider");
    let keep = Arc::new(Mutex::new(Vec::new()));
    let otel = otel_provider(OtelSink {
        keep: Some(keep.clone()),
        ..OtelSink::default()
    });
    let (ht, ot) = (hop.tracer("bench"), otel.tracer("bench"));
    for i in 0..512i64 {
        let mut s = ht.span("GET").kind(SpanKind::Client).start();
        s.set_attribute("db.system.name", "redis");
        s.set_attribute("server.address", "redis-shard-2");
        s.set_attribute("server.port", 6379);
        s.set_attribute("i", i);
        s.end();
        let mut o = ot
            .span_builder("GET")
            .with_kind(opentelemetry::trace::SpanKind::Client)
            .start(&ot);
        o.set_attribute(opentelemetry::KeyValue::new("db.system.name", "redis"));
        o.set_attribute(opentelemetry::KeyValue::new("server.address", "redis-shard-2"));
        o.set_attribute(opentelemetry::KeyValue::new("server.port", 6379));
        o.set_attribute(opentelemetry::KeyValue::new("i", i));
        o.end();
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(hop.flush()).expect("flush");
    let _ = otel.force_flush();
    let otel_spans = keep.lock().map(|k| k.clone()).unwrap_or_default();
    let otel_resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("bench")
        .with_attribute(opentelemetry::KeyValue::new("host.name", "vm-1"))
        .build();
    (mem.spans(), resource, otel_spans, otel_resource)
}

fn export(c: &mut Criterion) {
    let (hop_spans, resource, otel_spans, otel_resource) = batches();
    assert_eq!((hop_spans.len(), otel_spans.len()), (512, 512));
    let mut g = c.benchmark_group("export_512_spans_to_otlp_bytes");
    g.throughput(Throughput::Elements(512));
    g.bench_function("hopscope", |b| {
        b.iter(|| black_box(hopscope_sdk::export::to_otlp_request(&hop_spans, &resource).encode_to_vec()))
    });
    let attrs: opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema = (&otel_resource).into();
    g.bench_function("opentelemetry_sdk", |b| {
        b.iter_batched(
            || otel_spans.clone(),
            |batch| {
                let resource_spans =
                    opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope(batch, &attrs);
                let request =
                    opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest { resource_spans };
                black_box(request.encode_to_vec())
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, spans, propagation, export);
criterion_main!(benches);
