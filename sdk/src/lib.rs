//! hopscope SDK: creates spans in Rust services and carries trace context across HTTP,
//! message-queue, cache and database hops.
//!
//! The span API, propagators and exporters land with the SDK issue; until then this crate
//! exports nothing, and any OpenTelemetry SDK can send spans to hopscope over OTLP.
