//! Sends one small trace (a server span with a database client span under it) with the
//! OTLP exporter the environment selects, and prints its trace id:
//!
//! ```sh
//! OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 \
//!     cargo run -p hopscope-sdk --example otlp_env
//! ```
//!
//! (`grpc` with `http://localhost:4317` is the default.) Then look the trace up in
//! hopscope: `curl localhost:16686/api/traces/<trace id>`.

use hopscope_sdk::{FutureExt, OtlpExporter, Resource, SpanKind, TracerProvider};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let provider = TracerProvider::builder()
        .with_resource(
            Resource::builder()
                .with_service_name("otlp-env-example")
                .with_env()
                .build(),
        )
        .with_exporter(OtlpExporter::from_env()?)
        .build()?;
    let tracer = provider.tracer("otlp-env-example");
    let root = tracer.span("GET /accounts").kind(SpanKind::Server).start();
    let trace_id = root.context().trace_id;
    let t = tracer.clone();
    async move {
        let mut query = t.span("SELECT accounts").kind(SpanKind::Client).start();
        query.set_attribute("db.system.name", "postgresql");
        query.set_attribute("db.operation.name", "SELECT");
        query.end();
    }
    .in_span(root)
    .await;
    provider.shutdown().await?;
    let stats = provider.stats();
    println!("trace {trace_id}: exported {}, failed {}", stats.exported, stats.failed);
    Ok(())
}
