#!/usr/bin/env bash
# Query latency at a given store size: loads SPANS spans of the loadgen workload into an
# embedded-store hopscope (eviction off: --max-spans/--max-bytes raised), waits until the
# store holds them, then times trace by id, searches and the analysis endpoints.
#
#   SPANS=1000000 scripts/bench-query.sh
#   SPANS=10000000 scripts/bench-query.sh   # needs the memory; see benches/README.md
#   CLICKHOUSE=1 SPANS=1000000 scripts/bench-query.sh   # into a local clickhouse-server
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/clickhouse.sh
SPANS=${SPANS:-1000000}
REPEAT=${REPEAT:-100}
STORE=embedded; [ "${CLICKHOUSE:-0}" = 1 ] && STORE=clickhouse
OUT=target/bench-results/query-$STORE-$SPANS-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
if [ -z "${HOPSCOPE_BIN:-}" ]; then cargo build --release -p hopscope --quiet; HOPSCOPE_BIN=target/release/hopscope; fi
PIDS=()
trap 'for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done' EXIT
STORE_ARGS=(--max-spans $((SPANS * 2)) --max-bytes $((64 * 1024 * 1024 * 1024)))
if [ "$STORE" = clickhouse ]; then
  start_clickhouse "$OUT/clickhouse" 48123 49000; PIDS+=("$CH_PID")
  STORE_ARGS=(--clickhouse-url http://127.0.0.1:48123)
fi
"$HOPSCOPE_BIN" --data-dir "$OUT/data" --grpc-listen 127.0.0.1:44317 --http-listen 127.0.0.1:44318 \
  --query-listen 127.0.0.1:46686 "${STORE_ARGS[@]}" \
  --wal-max-backlog-bytes $((8 * 1024 * 1024 * 1024)) --log warn 2> "$OUT/hopscope.log" &
PID=$!; PIDS+=("$PID")
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:46686/health >/dev/null && break; sleep 0.1; done
metric() { curl -s http://127.0.0.1:46686/metrics | awk -v m="$1" '$1 == m {printf "%d", $2}'; }
started=$(date +%s)
while [ "$(metric hopscope_spans_accepted_total)" -lt "$SPANS" ]; do
  "$HOPSCOPE_BIN" loadgen --endpoint http://127.0.0.1:44317 --connections 4 --duration 10 --quiet --format json > /dev/null
  echo "loaded $(metric hopscope_spans_accepted_total) spans; in the store $(metric hopscope_store_spans_written_total); RSS $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$PID/status)"
done
while [ "$(metric hopscope_wal_backlog_records)" -gt 0 ]; do sleep 1; done
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ), store: $STORE, load took $(( $(date +%s) - started )) s"
  echo "spans in the store: $(metric hopscope_store_spans_written_total)"
  echo "hopscope RSS: $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$PID/status), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt"
python3 scripts/bench-query.py http://127.0.0.1:46686 "$REPEAT" | tee "$OUT/query.json"
echo "results in $OUT"
