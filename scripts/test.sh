#!/usr/bin/env bash
# Runs the whole hopscope test suite on a fresh machine: checks formatting and lints
# (fails fast, before anything is installed or built for the tests), installs what the
# tests need (the OpenTelemetry Python SDK and chdb-core into ./.venv; clickhouse-server,
# Chromium and ChromeDriver with apt; Redis, RabbitMQ, MariaDB and PostgreSQL with apt,
# started when not listening; see scripts/lib/services.sh), then runs every workspace test.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p hopscope --no-default-features -- -D warnings # the production build: no demo, no loadgen

if ! .venv/bin/python -c 'import opentelemetry.exporter.otlp.proto.grpc, opentelemetry.exporter.otlp.proto.http, opentelemetry.propagators.b3' 2>/dev/null; then
  echo "installing the OpenTelemetry Python SDK into .venv (tests/python/requirements.txt)"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
fi
# chDB (the modern ClickHouse engine, in-process) for the ClickHouse storage tests.
if ! .venv/bin/python -c 'import chdb' 2>/dev/null; then
  echo "installing chdb-core into .venv (tests/python/requirements.txt)"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
fi
# A real ClickHouse server (Debian's clickhouse-server 18.16), started by the storage tests.
if ! command -v clickhouse-server >/dev/null 2>&1 && [ ! -x /usr/sbin/clickhouse-server ]; then
  echo "installing clickhouse-server (apt)"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y clickhouse-server
fi
# Debian's Chromium and ChromeDriver for the web UI tests in a real browser (tests/ui_browser.rs).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "installing chromium and chromium-driver (apt)"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver
fi
# Redis, RabbitMQ, MariaDB and PostgreSQL with the users and databases the tests expect;
# any that cannot be set up is named, and the tests needing it skip naming it.
# shellcheck source=lib/services.sh
. scripts/lib/services.sh
ensure_services
export HOPSCOPE_TEST_PYTHON="$PWD/.venv/bin/python"

if cargo nextest --version >/dev/null 2>&1; then
  # Doc tests first: nextest does not run them, and its summary should close the output.
  # Not --quiet: the doc tests take minutes; show each crate's as it runs.
  echo "doc tests (one block per crate):"
  cargo test --workspace --doc
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
