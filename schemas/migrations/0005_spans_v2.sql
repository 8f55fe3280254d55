-- Typed spans (replaces the JSON `record` column of 0001's `spans`).
--
-- `spans_v2`: one row per span in typed columns: attributes as parallel arrays (key,
-- type code, value text; see schemas/src/clickhouse/attrs.rs), so every field
-- round-trips with its type; events (time as an offset from the span start) and links
-- as Nested columns, whose arrays share one size stream. Tag filters match scalar span
-- attributes in `attributes.*` and everything else through `tags` (`key\0value` of
-- every event attribute and of array/kvlist span attributes); both have bloom filters
-- on modern servers.
-- `resources`: each distinct (resource, scope) pair once per day, keyed by the 64-bit
-- hash that spans reference in `resource_hash`; the writer inserts it before the spans.
--
-- The views of 0002-0004 are dropped here and recreated on `spans_v2` by 0006; in
-- between, hopscope copies the rows of the old `spans` table into `spans_v2` (no view is
-- attached then, so the rollups do not count the copied spans twice).
DROP TABLE IF EXISTS {db}.{local:trace_index_mv}{on_cluster};
DROP TABLE IF EXISTS {db}.{local:operations_mv}{on_cluster};
DROP TABLE IF EXISTS {db}.{local:rollup_1m_mv}{on_cluster};
CREATE TABLE IF NOT EXISTS {db}.{local:spans_v2}{on_cluster}
(
    trace_id FixedString(16){codec:ZSTD(1)},
    span_id FixedString(8){codec:ZSTD(1)},
    parent_span_id FixedString(8){codec:ZSTD(1)},
    start_time {ts}{codec:Delta, ZSTD(1)},
    duration_ns UInt64{codec:T64, ZSTD(1)},
    service {lc},
    name {lc},
    kind UInt8{codec:T64, ZSTD(1)},
    status_code UInt8{codec:T64, ZSTD(1)},
    hop_kind {lc},
    peer {lc},
    host {lc},
    cloud_kind {lc},
    cloud_provider {lc},
    cloud_region {lc},
    cloud_zone {lc},
    tags Array(String){codec:ZSTD(1)},
    trace_state String{codec:ZSTD(1)},
    flags UInt32{codec:T64, ZSTD(1)},
    status_message String{codec:ZSTD(1)},
    attributes Nested(key {lc_item}, type UInt8, value String){codec:ZSTD(1)},
    dropped_attributes_count UInt32{codec:T64, ZSTD(1)},
    events Nested(
        offset_ns Int64,
        name {lc_item},
        attr_keys Array({lc_item}),
        attr_types Array(UInt8),
        attr_values Array(String),
        dropped UInt32
    ){codec:ZSTD(1)},
    dropped_events_count UInt32{codec:T64, ZSTD(1)},
    links Nested(
        trace_id FixedString(16),
        span_id FixedString(8),
        trace_state String,
        flags UInt32,
        attr_keys Array({lc_item}),
        attr_types Array(UInt8),
        attr_values Array(String),
        dropped UInt32
    ){codec:ZSTD(1)},
    dropped_links_count UInt32{codec:T64, ZSTD(1)},
    resource_hash UInt64{codec:ZSTD(1)}
@modern    , INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1
@modern    , INDEX idx_tags tags TYPE bloom_filter(0.01) GRANULARITY 1
@modern    , INDEX idx_attr_values attributes.value TYPE bloom_filter(0.01) GRANULARITY 1
@modern    , INDEX idx_duration duration_ns TYPE minmax GRANULARITY 1
@modern    , INDEX idx_peer peer TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = {engine:ReplacingMergeTree:spans_v2}
PARTITION BY toDate({secs:start_time})
ORDER BY (service, name, start_time, trace_id, span_id)
@ttl TTL toDateTime(start_time) + INTERVAL {ttl_days} DAY
@modern SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000
@legacy SETTINGS index_granularity = 8192
;
-- @distributed spans_v2 cityHash64(trace_id)
CREATE TABLE IF NOT EXISTS {db}.{local:resources}{on_cluster}
(
    day Date,
    resource_hash UInt64,
    attributes Nested(key {lc_item}, type UInt8, value String){codec:ZSTD(1)},
    dropped_attributes_count UInt32,
    schema_url String{codec:ZSTD(1)},
    scope_name String{codec:ZSTD(1)},
    scope_version String{codec:ZSTD(1)},
    scope_attributes Nested(key {lc_item}, type UInt8, value String){codec:ZSTD(1)},
    scope_dropped_attributes_count UInt32,
    scope_schema_url String{codec:ZSTD(1)},
    tags Array(String){codec:ZSTD(1)}
)
ENGINE = {engine:ReplacingMergeTree:resources}
PARTITION BY day
ORDER BY resource_hash
@ttl TTL day + INTERVAL {ttl_days} DAY
@modern SETTINGS index_granularity = 1024, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000
@legacy SETTINGS index_granularity = 1024
;
-- @distributed resources resource_hash
