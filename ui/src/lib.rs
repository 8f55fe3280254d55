//! hopscope web UI: server-side rendered Leptos pages served under `/` by the query process.
//!
//! The pages land with the UI issue; until then this crate exports nothing and the query
//! API on :16686 serves the Jaeger-compatible JSON API only.
