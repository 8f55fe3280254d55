//! The per-trace analysis gives the same answers from every store (issue 19): a sample of
//! the fault corpus (affected, incident and healthy traces of every fault type) is
//! written to the embedded store and to ClickHouse — a real 18.16 server and the modern
//! engine (chDB 26.x behind its HTTP front) — and each trace, read back by id through
//! `SpanReader::trace`, must analyse exactly as the generated spans do: same duration,
//! critical path, culprit and root-cause errors, from the trace root and from the entry
//! span.
//!
//! Needs `clickhouse-server` and a Python with chdb-core (`scripts/test.sh` installs both;
//! `HOPSCOPE_TEST_PYTHON` points at the Python).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod corpus;
#[path = "../../storage/tests/support/mod.rs"]
mod support;

use corpus::{Corpus, Fault, Labelled, Mode};
use hopscope_analysis::{TraceAnalysis, analyze};
use hopscope_schemas::SpanRecord;
use hopscope_storage::clickhouse::{ClickHouseConfig, ClickHouseStore, Compression};
use hopscope_storage::{EmbeddedStore, SpanReader, SpanWriter};
use support::{ChdbFront, LegacyServer};

/// Traces per fault type and mode.
const PER_MODE: usize = 2;

fn sample() -> Vec<Labelled> {
    let mut corpus = Corpus::new(corpus::seed());
    let mut out = Vec::new();
    for fault in Fault::ALL {
        let incident = corpus.incident(fault);
        for mode in [Mode::Affected, Mode::Incident, Mode::Healthy] {
            out.extend((0..PER_MODE).map(|_| corpus.trace(&incident, mode)));
        }
    }
    out
}

fn spans(traces: &[Labelled]) -> Vec<SpanRecord> {
    traces
        .iter()
        .flat_map(|t| t.spans.iter().map(|s| (**s).clone()))
        .collect()
}

/// The analyses that must not depend on the store: from the root and from the entry, as
/// the API answers them (path, culprit, background, errors; the timeline's positions in
/// the input are the store's order and are not part of the answer).
fn answers(trace: &Labelled, spans: &[std::sync::Arc<SpanRecord>]) -> [serde_json::Value; 2] {
    [None, Some(trace.entry)].map(|root| {
        let analysis: TraceAnalysis = analyze(trace.trace_id, spans, root).expect("a non-empty trace");
        serde_json::to_value(&analysis).expect("serialisable")
    })
}

async fn assert_same_answers(name: &str, store: &dyn SpanReader, traces: &[Labelled]) {
    let mut culprits = 0;
    for trace in traces {
        let want = answers(trace, &trace.spans);
        let read = store
            .trace(trace.trace_id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: trace {} not found", trace.trace_id));
        assert_eq!(
            read.spans.len(),
            trace.spans.len(),
            "{name}: spans of {}",
            trace.trace_id
        );
        let got = answers(trace, &read.spans);
        assert_eq!(
            got,
            want,
            "{name}: analysis of {} ({})",
            trace.trace_id,
            trace.label.fault.name()
        );
        culprits += usize::from(!got[0]["culprit"].is_null());
    }
    // Agreeing on nothing cannot pass: the sample has paths, culprits and errors.
    assert_eq!(culprits, traces.len(), "{name}: every trace has a culprit");
    let errors: usize = traces
        .iter()
        .map(|t| answers(t, &t.spans)[0]["errors"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(errors > 0, "the sample holds failing traces (lock waits, retries)");
}

async fn clickhouse(url: &str, database: &str, compression: Compression, spans: &[SpanRecord]) -> ClickHouseStore {
    let config = ClickHouseConfig {
        ttl_days: 0, // fixture times are from 2023
        ..support::config(url, database, compression)
    };
    let store = ClickHouseStore::open(config).await.unwrap();
    for chunk in spans.chunks(100) {
        store.write_spans(chunk.to_vec()).await.unwrap();
    }
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysis_is_the_same_from_the_embedded_store_and_clickhouse() {
    let traces = sample();
    let spans = spans(&traces);

    let embedded = EmbeddedStore::default();
    embedded.write_spans(spans.clone()).await.unwrap();
    assert_same_answers("embedded", &embedded, &traces).await;

    let server = LegacyServer::start();
    let legacy = clickhouse(&server.url(), "hs_corpus_legacy", Compression::Lz4, &spans).await;
    assert_same_answers("clickhouse 18.16", &legacy, &traces).await;

    let front = ChdbFront::start();
    let modern = clickhouse(&front.url, "hs_corpus_modern", Compression::None, &spans).await;
    assert_same_answers("chdb", &modern, &traces).await;
}
