-- One row per span. The extracted columns drive searches; `record` keeps the whole
-- SpanRecord as JSON so every field (typed attributes, events, links, resource, scope)
-- round-trips. `tags` holds `key\0value` for every span, resource and event attribute
-- (value in its search text form) plus Jaeger's synthetic tags, so a tag filter is one
-- `has(tags, ?)` backed by a bloom filter. ReplacingMergeTree keyed on
-- (…, trace_id, span_id) collapses a re-inserted span; readers also dedupe at query time.
CREATE TABLE IF NOT EXISTS {db}.{local:spans}{on_cluster}
(
    trace_id FixedString(16){codec:ZSTD(1)},
    span_id FixedString(8){codec:ZSTD(1)},
    parent_span_id FixedString(8){codec:ZSTD(1)},
    start_time {ts}{codec:Delta, ZSTD(1)},
    duration_ns UInt64{codec:T64, ZSTD(1)},
    service {lc},
    name {lc},
    kind UInt8{codec:T64},
    status_code UInt8{codec:T64},
    hop_kind {lc},
    peer {lc},
    host {lc},
    cloud_kind {lc},
    cloud_provider {lc},
    cloud_region {lc},
    cloud_zone {lc},
    tags Array(String){codec:ZSTD(1)},
    record String{codec:ZSTD(3)}
@modern    , INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1
@modern    , INDEX idx_tags tags TYPE bloom_filter(0.01) GRANULARITY 1
@modern    , INDEX idx_duration duration_ns TYPE minmax GRANULARITY 1
@modern    , INDEX idx_peer peer TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = {engine:ReplacingMergeTree:spans}
PARTITION BY toDate({secs:start_time})
ORDER BY (service, name, start_time, trace_id, span_id)
@ttl TTL toDateTime(start_time) + INTERVAL {ttl_days} DAY
@modern SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000
@legacy SETTINGS index_granularity = 8192
;
-- @distributed spans cityHash64(trace_id)
