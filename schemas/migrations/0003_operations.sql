-- Service and operation lists, one row per (day, service, operation, span kind): the
-- services and operations endpoints read this instead of the spans.
CREATE TABLE IF NOT EXISTS {db}.{local:operations}{on_cluster}
(
    day Date,
    service {lc},
    name {lc},
    kind UInt8
)
ENGINE = {engine:ReplacingMergeTree:operations}
PARTITION BY day
ORDER BY (service, name, kind, day)
@ttl TTL day + INTERVAL {ttl_days} DAY
@modern SETTINGS non_replicated_deduplication_window = 1000
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{local:operations_mv}{on_cluster}
TO {db}.{local:operations}
AS SELECT
    toDate({secs:start_time}) AS day,
    service,
    name,
    kind
FROM {db}.{local:spans}
GROUP BY day, service, name, kind
;
-- @distributed operations rand()
