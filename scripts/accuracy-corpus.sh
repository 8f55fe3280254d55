#!/usr/bin/env bash
# Culprit and blame top-1 accuracy per fault type on the labelled, randomised fault corpus
# (analysis/tests/corpus, issue 19): eight fault types, 200 affected traces each for the
# culprit and 20 incident windows (each with its own baseline window and a decoy node that
# is slow all the time) for blame. Pure and in-process: no services needed, a few seconds
# in release. Fails unless every type reaches 0.95 on both.
# Knobs: CORPUS_SEED (19), CORPUS_TRACES (200), CORPUS_WINDOWS (20),
# CORPUS_WINDOW_TRACES (60 per window), CORPUS_OUT (where the markdown table goes).
set -euo pipefail
cd "$(dirname "$0")/.."
export CORPUS_OUT="${CORPUS_OUT:-target/accuracy-corpus.md}"
status=0
cargo test --release -p hopscope-analysis --test fault_corpus -- --nocapture "$@" || status=$?
echo "report written to $CORPUS_OUT"
exit "$status"
