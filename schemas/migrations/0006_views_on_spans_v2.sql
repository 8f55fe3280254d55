-- After hopscope copied the old `spans` rows into `spans_v2` (see 0005): the old table
-- goes, and the trace index, operation list and rollup views of 0002-0004 are recreated
-- on `spans_v2` (same target tables, same definitions).
DROP TABLE IF EXISTS {db}.spans{on_cluster};
DROP TABLE IF EXISTS {db}.{local:spans}{on_cluster};
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{local:trace_index_mv}{on_cluster}
TO {db}.{local:trace_index}
AS SELECT
    trace_id,
    service,
    min(start_time) AS start_min,
    max(start_time) AS start_max,
    toDate({secs:min(start_time)}) AS day
FROM {db}.{local:spans_v2}
GROUP BY trace_id, service
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{local:operations_mv}{on_cluster}
TO {db}.{local:operations}
AS SELECT
    toDate({secs:start_time}) AS day,
    service,
    name,
    kind
FROM {db}.{local:spans_v2}
GROUP BY day, service, name, kind
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
FROM {db}.{local:spans_v2}
GROUP BY minute, service, name, kind, hop_kind, peer, host,
    cloud_kind, cloud_provider, cloud_region, cloud_zone
;
