#!/bin/sh
# Instructions per span, hopscope-sdk vs. opentelemetry_sdk, under callgrind (stable on a
# loaded machine, unlike wall time). Runs sdk/examples/span_cost with N1 and N2 spans per
# SDK and mode and reports (Ir(N2) - Ir(N1)) / (N2 - N1) per thread: the application
# thread ("app") and the export worker ("worker"), so one-off start-up costs cancel out.
# quanta's TSC calibration (a one-off whose length varies from run to run, hopscope only)
# is subtracted before the difference. --fair-sched=yes lets the export worker keep up the
# way it does natively (without it valgrind starves the worker and queues overflow).
#
# Usage: [SDKS="..."] sdk/benches/span_cost.sh [N1 N2]   (default 100000 200000; results in
# benches/README.md). SDKS picks the span_cost modes to run (default "hopscope otel"); the
# `tracing` comparison is SDKS="tracing-hopscope tracing-otel tracing-otel-lean".
set -eu
n1=${1:-100000}
n2=${2:-200000}
cargo build --release -q -p hopscope-sdk --features tracing --example span_cost
bin=${CARGO_TARGET_DIR:-target}/release/examples/span_cost
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Ir of one thread's profile, minus quanta::Clock::new (inclusive) if it ran there.
cost() {
    total=$(sed -n 's/^summary: //p' "$1")
    calib=$(callgrind_annotate --inclusive=yes "$1" 2>/dev/null |
        awk '/quanta::Clock::new \[/ { gsub(",", "", $1); print $1; exit }')
    echo $((total - ${calib:-0}))
}

printf '%-17s %-6s %8s %8s %8s\n' sdk mode app worker total
for sdk in ${SDKS:-hopscope otel}; do
    for mode in plain attrs; do
        for n in "$n1" "$n2"; do
            valgrind --tool=callgrind --fair-sched=yes --separate-threads=yes \
                --callgrind-out-file="$out/$sdk.$mode.$n" "$bin" "$sdk" "$n" "$mode" >"$out/log" 2>&1 ||
                { cat "$out/log"; exit 1; }
            grep -h 'dropped: [1-9]' "$out/log" && echo "warning: $sdk $mode $n dropped spans" >&2
        done
        app=$(( ($(cost "$out/$sdk.$mode.$n2-01") - $(cost "$out/$sdk.$mode.$n1-01")) / (n2 - n1) ))
        worker=0
        for f in "$out/$sdk.$mode.$n2"-*; do
            t=${f##*-}
            [ "$t" = 01 ] && continue
            worker=$((worker + ($(cost "$f") - $(cost "$out/$sdk.$mode.$n1-$t")) / (n2 - n1)))
        done
        printf '%-17s %-6s %8d %8d %8d\n' "$sdk" "$mode" "$app" "$worker" $((app + worker))
    done
done
