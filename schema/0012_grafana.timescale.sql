-- Aggregated from usage directly (local days are whole 15-minute slots in any timezone),
-- with real-time aggregation for what is not materialised yet, like usage_daily.
CREATE MATERIALIZED VIEW usage_day_quality
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT meter_id,
       time_bucket(INTERVAL '1 day', ts, {{timezone}}) AS bucket,
       count(*) AS slots,
       count(*) FILTER (WHERE estimated) AS estimated_slots
FROM usage
GROUP BY meter_id, time_bucket(INTERVAL '1 day', ts, {{timezone}})
WITH NO DATA;

SELECT add_continuous_aggregate_policy('usage_day_quality',
    start_offset => NULL, end_offset => INTERVAL '1 day',
    schedule_interval => INTERVAL '30 minutes');
