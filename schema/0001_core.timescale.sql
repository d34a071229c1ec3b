-- TimescaleDB: hypertables, compression, continuous aggregates.

-- create_hypertable also creates the time index readings_ts_idx / usage_ts_idx
-- (ts DESC), the names the plain file gives its own indexes.
SELECT create_hypertable('readings', 'ts', chunk_time_interval => INTERVAL '7 days');
SELECT create_hypertable('usage', 'ts', chunk_time_interval => INTERVAL '30 days');

ALTER TABLE readings SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'meter_id',
    timescaledb.compress_orderby = 'ts'
);
-- Late readings older than this still land: TimescaleDB >= 2.11 inserts into
-- compressed chunks (ON CONFLICT included).
SELECT add_compression_policy('readings', INTERVAL '45 days');

ALTER TABLE usage SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'meter_id',
    timescaledb.compress_orderby = 'ts'
);
SELECT add_compression_policy('usage', INTERVAL '120 days');

CREATE MATERIALIZED VIEW usage_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT meter_id,
       time_bucket(INTERVAL '1 hour', ts) AS bucket,
       sum(quantity) AS quantity,
       bool_or(estimated) AS estimated,
       count(*) AS slots
FROM usage
GROUP BY meter_id, time_bucket(INTERVAL '1 hour', ts)
WITH NO DATA;

-- Daily buckets are local days of the park ({{timezone}}). Aggregated from usage
-- directly, not from usage_hourly: a local day is then whole 15-minute slots in any
-- timezone (UTC hours are not whole local days at +05:30), sums add the same slots
-- as the plain view, and late data reaches it without waiting for usage_hourly.
CREATE MATERIALIZED VIEW usage_daily
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT meter_id,
       time_bucket(INTERVAL '1 day', ts, {{timezone}}) AS bucket,
       sum(quantity) AS quantity,
       bool_or(estimated) AS estimated,
       count(*) AS slots
FROM usage
GROUP BY meter_id, time_bucket(INTERVAL '1 day', ts, {{timezone}})
WITH NO DATA;

-- start_offset NULL: late data anywhere in history is re-materialised (only the
-- invalidated ranges are recomputed). Real-time aggregation covers the newest part.
SELECT add_continuous_aggregate_policy('usage_hourly',
    start_offset => NULL, end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '5 minutes');
SELECT add_continuous_aggregate_policy('usage_daily',
    start_offset => NULL, end_offset => INTERVAL '1 day',
    schedule_interval => INTERVAL '30 minutes');
