#!/usr/bin/env python3
"""Query latency against a running hopscope: trace by id, Jaeger search and the /api/v1
analysis endpoints. Prints one JSON object (milliseconds). Standard library only.

usage: bench-query.py QUERY_BASE_URL [REPEAT]
"""
import json
import random
import statistics
import sys
import time
import urllib.error
import urllib.request

base = sys.argv[1].rstrip("/")
repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 100
random.seed(42)


def get(path):
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(base + path, timeout=120) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as err:
        body, status = err.read(), err.code
    return (time.perf_counter() - started) * 1000, status, body


def measure(name, paths):
    times, statuses = [], {}
    for path in paths:
        ms, status, _ = get(path)
        times.append(ms)
        statuses[status] = statuses.get(status, 0) + 1
    times.sort()
    q = lambda p: times[min(len(times) - 1, int(p * len(times)))]
    return name, {"n": len(times), "p50": round(q(0.5), 2), "p99": round(q(0.99), 2),
                  "max": round(times[-1], 2), "mean": round(statistics.mean(times), 2),
                  "statuses": statuses, "example": paths[0]}


now_us = int(time.time() * 1e6)
hour = 3600 * 1_000_000
window = f"start={now_us - hour}&end={now_us}"
# Trace ids to look up: from searches over several services.
ids = []
for service in ["frontend", "checkout", "payment", "cart", "inventory"]:
    _, status, body = get(f"/api/traces?service={service}&limit=200&{window}")
    if status == 200:
        ids += [t["traceID"] for t in json.loads(body)["data"]]
random.shuffle(ids)
ids = ids[:repeat] or ["0" * 32]

results = dict([
    measure("trace_by_id", [f"/api/traces/{i}" for i in ids]),
    measure("search_service", [f"/api/traces?service=frontend&limit=20&{window}"] * repeat),
    measure("search_service_operation", [f"/api/traces?service=frontend&operation=GET%20%2Fapi%2Fcart&limit=20&{window}"] * repeat),
    measure("search_tag_error", [f"/api/traces?service=checkout&tags=%7B%22error%22%3A%22true%22%7D&limit=20&{window}"] * repeat),
    measure("search_min_duration", [f"/api/traces?service=payment&minDuration=100ms&limit=20&{window}"] * repeat),
    measure("trace_analysis", [f"/api/v1/traces/{i}/analysis" for i in ids[: max(1, repeat // 2)]]),
    measure("middleware", [f"/api/v1/middleware?kind=cache&{window}"] * max(1, repeat // 10)),
    measure("sla", [f"/api/v1/sla?{window}"] * max(1, repeat // 10)),
    measure("exceptions", [f"/api/v1/exceptions?{window}"] * max(1, repeat // 10)),
    measure("dependencies_v1", [f"/api/v1/dependencies?{window}"] * max(1, repeat // 10)),
    measure("jaeger_dependencies", [f"/api/dependencies?endTs={now_us // 1000}&lookback=3600000"] * max(1, repeat // 10)),
])
print(json.dumps(results, indent=1))
