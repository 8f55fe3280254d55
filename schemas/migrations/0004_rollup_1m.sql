-- Per-minute rollups for dashboards over days: span count, error count, duration sum, max
-- and t-digest quantiles (p50, p90, p95, p99, p99.9), keyed by service, operation, span
-- kind, hop kind, peer instance, host and the hybrid-cloud tags. Read with
-- countMerge / sumMerge / maxMerge / quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99, 0.999).
CREATE TABLE IF NOT EXISTS {db}.{local:rollup_1m}{on_cluster}
(
    minute DateTime{codec:Delta, ZSTD(1)},
    service {lc},
    name {lc},
    kind UInt8,
    hop_kind {lc},
    peer {lc},
    host {lc},
    cloud_kind {lc},
    cloud_provider {lc},
    cloud_region {lc},
    cloud_zone {lc},
    spans AggregateFunction(count),
    errors AggregateFunction(sum, UInt64),
    duration_sum AggregateFunction(sum, UInt64),
    duration_max AggregateFunction(max, UInt64),
    duration_quantiles AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99, 0.999), UInt64)
@modern    , INDEX idx_peer peer TYPE bloom_filter(0.01) GRANULARITY 1
@modern    , INDEX idx_hop_kind hop_kind TYPE set(16) GRANULARITY 1
@modern    , INDEX idx_host host TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = {engine:AggregatingMergeTree:rollup_1m}
PARTITION BY toDate(minute)
ORDER BY (service, name, minute, hop_kind, peer, host, kind, cloud_kind, cloud_provider, cloud_region, cloud_zone)
@ttl TTL minute + INTERVAL {ttl_days} DAY
@modern SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{local:rollup_1m_mv}{on_cluster}
TO {db}.{local:rollup_1m}
AS SELECT
    toStartOfMinute({secs:start_time}) AS minute,
    service, name, kind, hop_kind, peer, host,
    cloud_kind, cloud_provider, cloud_region, cloud_zone,
    countState() AS spans,
    sumState(toUInt64(status_code = 2)) AS errors,
    sumState(duration_ns) AS duration_sum,
    maxState(duration_ns) AS duration_max,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99, 0.999)(duration_ns) AS duration_quantiles
FROM {db}.{local:spans}
GROUP BY minute, service, name, kind, hop_kind, peer, host,
    cloud_kind, cloud_provider, cloud_region, cloud_zone
;
-- @distributed rollup_1m rand()
