-- trace id -> (service, first start, last start): trace-by-id reads this small table
-- (sorted by trace_id) first, then reads only those services' time ranges of `spans`,
-- which the spans primary key (service, name, start_time) prunes without a full scan.
CREATE TABLE IF NOT EXISTS {db}.{local:trace_index}{on_cluster}
(
    trace_id FixedString(16){codec:ZSTD(1)},
    service {lc},
    start_min {ts}{codec:Delta, ZSTD(1)},
    start_max {ts}{codec:Delta, ZSTD(1)},
    day Date
)
ENGINE = {engine:ReplacingMergeTree:trace_index}
PARTITION BY day
ORDER BY (trace_id, service, start_min, start_max)
@ttl TTL day + INTERVAL {ttl_days} DAY
@modern SETTINGS index_granularity = 1024, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000
@legacy SETTINGS index_granularity = 1024
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{local:trace_index_mv}{on_cluster}
TO {db}.{local:trace_index}
AS SELECT
    trace_id,
    service,
    min(start_time) AS start_min,
    max(start_time) AS start_max,
    toDate({secs:min(start_time)}) AS day
FROM {db}.{local:spans}
GROUP BY trace_id, service
;
-- @distributed trace_index cityHash64(trace_id)
