#!/usr/bin/env bash
# Culprit and blame accuracy on the demo's injected faults (benches/README.md, section
# "Culprit and blame accuracy"). Runs the real hopscope binary on loopback ports and the
# demo workload against it; uses the local Redis, PostgreSQL, MariaDB and RabbitMQ when
# reachable (simulated hops otherwise, or with ACCURACY_SIMULATE=1). About 3–4 minutes.
# Knobs: ACCURACY_ROUNDS (3), ACCURACY_INCIDENT_SECS (10), ACCURACY_BASELINE_SECS (15),
# ACCURACY_RATE (8 requests/s), ACCURACY_VERBOSE=1 (print every missed analysis).
set -euo pipefail
cd "$(dirname "$0")/.."
export ACCURACY_OUT="${ACCURACY_OUT:-target/accuracy.md}"
cargo test --test accuracy -- --ignored --nocapture
echo "report written to $ACCURACY_OUT"
