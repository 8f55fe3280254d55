#!/usr/bin/env bash
# Ingest benchmark: hopscope (durable log + embedded store) next to rotel (blackhole
# exporter) on the same seeded workload, in the same run, on loopback.
#
#   scripts/bench-ingest.sh                 # ~2.5 minutes
#   DURATION=20 CONNECTIONS=4 scripts/bench-ingest.sh
#   CLICKHOUSE=1 scripts/bench-ingest.sh    # also hopscope into a local clickhouse-server
#   CLICKHOUSE=1 CLICKHOUSE_ONLY=1 scripts/bench-ingest.sh   # only that
#
# For each target: a flat-out run (max acked spans/s, spans per CPU second of the target
# process from /proc/<pid>/stat, peak RSS = VmHWM), then fixed-rate runs at 50% and 90% of
# that max for ack latency, then both at one equal rate (90% of the lower max) for spans
# per CPU second at the same offered load. hopscope's CPU figure includes draining its write-ahead log into
# the store after the load stops. Results: target/bench-results/<date>/*.json + a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/clickhouse.sh

DURATION=${DURATION:-15}
WARMUP=${WARMUP:-3}
CONNECTIONS=${CONNECTIONS:-4}
PROTOCOL=${PROTOCOL:-grpc}
SPANS_PER_REQUEST=${SPANS_PER_REQUEST:-500}
# Embedded store budget: what the RSS target is measured with (see benches/README.md).
MAX_BYTES=${MAX_BYTES:-67108864}
OUT=target/bench-results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"

if [ -z "${HOPSCOPE_BIN:-}" ]; then
  cargo build --release -p hopscope --quiet
  HOPSCOPE_BIN=target/release/hopscope
fi
ROTEL=${ROTEL_BIN:-}
if [ -z "$ROTEL" ]; then
  if [ ! -x .venv-bench/bin/python ]; then python3 -m venv .venv-bench; fi
  .venv-bench/bin/python -c 'import rotel' 2>/dev/null || .venv-bench/bin/pip install --quiet --disable-pip-version-check rotel
  ROTEL=$(.venv-bench/bin/python -c 'import rotel, os; print(os.path.join(os.path.dirname(rotel.__file__), "rotel-agent"))')
fi

PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

port() { case "$PROTOCOL" in grpc) echo "$1";; http) echo "$2";; esac; }

loadgen() { # name endpoint pid rate [extra...]
  local name=$1 endpoint=$2 pid=$3 rate=$4; shift 4
  "$HOPSCOPE_BIN" loadgen --protocol "$PROTOCOL" --endpoint "$endpoint" --connections "$CONNECTIONS" \
    --duration "$DURATION" --warmup "$WARMUP" --rate "$rate" --spans-per-request "$SPANS_PER_REQUEST" \
    --watch-pid "$pid" --format json --quiet "$@" > "$OUT/$name.json"
  jq -c '{acked_spans_per_second, errors, throttled, p50: .latency_ms.p50, p99: .latency_ms.p99, cpu: .target.cpu_seconds, spans_per_cpu_s: .target.spans_per_cpu_second, with_drain: .target.spans_per_cpu_second_with_drain, rss: .target.peak_rss_mib}' "$OUT/$name.json" | sed "s/^/$name: /"
}

start_hopscope() { # name [extra args...]
  local name=$1; shift
  rm -rf "$OUT/data-$name"
  "$HOPSCOPE_BIN" --data-dir "$OUT/data-$name" --grpc-listen 127.0.0.1:24317 --http-listen 127.0.0.1:24318 \
    --query-listen 127.0.0.1:26686 --max-bytes "$MAX_BYTES" --log warn "$@" 2> "$OUT/$name.log" &
  HOPSCOPE_PID=$!; PIDS+=("$HOPSCOPE_PID"); HOPSCOPE_DATA="$OUT/data-$name"
  wait_port 24317; wait_port 24318; wait_port 26686
}

start_rotel() {
  "$ROTEL" start --exporter blackhole --otlp-grpc-endpoint 127.0.0.1:34317 --otlp-http-endpoint 127.0.0.1:34318 \
    --pid-file "$OUT/rotel.pid" 2> "$OUT/rotel.log" > /dev/null &
  ROTEL_PID=$!; PIDS+=("$ROTEL_PID")
  wait_port 34317; wait_port 34318
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# Stops hopscope and deletes its data: a flat-out run leaves ~2 GiB of log in the page
# cache, and the kernel writing that back to disk during the next runs took CPU and
# cache from them (those runs measured ~30% fewer spans per CPU second). The kernel's
# write-back of a run's own log is not in any figure (it is not the process's CPU).
stop_hopscope() { stop "$HOPSCOPE_PID"; rm -rf "$HOPSCOPE_DATA"; }

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "hopscope: $("$HOPSCOPE_BIN" --version), rotel: $("$ROTEL" --version)"
  echo "workload: seed 42, ~$SPANS_PER_REQUEST spans/request, $PROTOCOL, $CONNECTIONS connections, ${WARMUP}s warm-up + ${DURATION}s"
} | tee "$OUT/machine.txt"

if [ "${CLICKHOUSE_ONLY:-0}" != 1 ]; then
  start_hopscope hopscope
  H_ENDPOINT=http://127.0.0.1:$(port 24317 24318)
  loadgen hopscope-max "$H_ENDPOINT" "$HOPSCOPE_PID" 0 --drain-metrics-url http://127.0.0.1:26686/metrics
  stop_hopscope

  start_rotel
  R_ENDPOINT=http://127.0.0.1:$(port 34317 34318)
  loadgen rotel-max "$R_ENDPOINT" "$ROTEL_PID" 0
  stop "$ROTEL_PID"

  # Sustained max for hopscope: acked spans over sending time plus the drain into the store.
  H_MAX=$(jq '.acked_spans / (.seconds + (.target.drain_seconds // 0)) | floor' "$OUT/hopscope-max.json")
  R_MAX=$(jq '.acked_spans_per_second | floor' "$OUT/rotel-max.json")
  for pct in 50 90; do
    start_hopscope "hopscope-$pct"
    loadgen "hopscope-$pct" "$H_ENDPOINT" "$HOPSCOPE_PID" $((H_MAX * pct / 100)) --drain-metrics-url http://127.0.0.1:26686/metrics
    stop_hopscope
    start_rotel
    loadgen "rotel-$pct" "$R_ENDPOINT" "$ROTEL_PID" $((R_MAX * pct / 100))
    stop "$ROTEL_PID"
  done

  # Equal load: both at 90% of the lower of the two maxima, so spans per CPU second
  # compare at the same offered rate (batching and wake-ups depend on the rate).
  SAME=$(( (H_MAX < R_MAX ? H_MAX : R_MAX) * 90 / 100 ))
  start_hopscope hopscope-same
  loadgen hopscope-same "$H_ENDPOINT" "$HOPSCOPE_PID" "$SAME" --drain-metrics-url http://127.0.0.1:26686/metrics
  stop_hopscope
  start_rotel
  loadgen rotel-same "$R_ENDPOINT" "$ROTEL_PID" "$SAME"
  stop "$ROTEL_PID"
fi

if [ "${CLICKHOUSE:-0}" = 1 ]; then
  CH=$OUT/clickhouse
  start_clickhouse "$CH" 28123 29000; PIDS+=("$CH_PID")
  CH_CPU0=$(awk '{print $14+$15}' "/proc/$CH_PID/stat")
  H_ENDPOINT=http://127.0.0.1:$(port 24317 24318)
  start_hopscope hopscope-clickhouse --clickhouse-url http://127.0.0.1:28123
  loadgen hopscope-clickhouse-max "$H_ENDPOINT" "$HOPSCOPE_PID" 0 --drain-metrics-url http://127.0.0.1:26686/metrics
  CH_CPU1=$(awk '{print $14+$15}' "/proc/$CH_PID/stat")
  curl -s http://127.0.0.1:26686/metrics | grep -E '^hopscope_(spans_accepted|store_spans_written|spans_dropped)' | tee "$OUT/hopscope-clickhouse-metrics.txt"
  echo "clickhouse-server CPU seconds during the run: $(( (CH_CPU1 - CH_CPU0) / $(getconf CLK_TCK) ))" | tee -a "$OUT/hopscope-clickhouse-metrics.txt"
  stop_hopscope; stop "$CH_PID"
fi

echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"
echo "results in $OUT"
