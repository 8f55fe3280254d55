//! Golden files pin the OTLP → span row mapping: each `golden/NAME.otlp.json` (an OTLP
//! JSON export request, as OTLP/HTTP JSON clients send it) must map to exactly
//! `golden/NAME.golden.json`. Run with `UPDATE_GOLDEN=1` to rewrite the golden files after
//! an intended change, and review the diff.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use hopscope_schemas::otlp::spans_from_request;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn otlp_json_maps_to_golden_rows() {
    let mut checked = 0;
    for entry in std::fs::read_dir(golden_dir()).unwrap() {
        let input = entry.unwrap().path();
        let Some(name) = input
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".otlp.json"))
        else {
            continue;
        };
        let request: ExportTraceServiceRequest =
            serde_json::from_str(&std::fs::read_to_string(&input).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let batch = spans_from_request(request);
        assert_eq!(batch.rejected, 0, "{name}: {}", batch.error_message());
        let actual = serde_json::to_string_pretty(&batch.spans).unwrap() + "\n";
        let golden = golden_dir().join(format!("{name}.golden.json"));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &actual).unwrap();
        }
        let expected = std::fs::read_to_string(&golden)
            .unwrap_or_else(|_| panic!("{} missing; run with UPDATE_GOLDEN=1", golden.display()));
        assert_eq!(actual, expected, "{name}: mapping differs from {}", golden.display());
        checked += 1;
    }
    assert!(checked > 0, "no golden inputs found");
}
