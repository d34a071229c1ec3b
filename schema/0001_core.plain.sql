-- Plain PostgreSQL: the same relation names as ordinary tables and views.

CREATE INDEX readings_ts_idx ON readings (ts);
CREATE INDEX usage_ts_idx ON usage (ts);

CREATE VIEW usage_hourly AS
SELECT meter_id,
       date_bin(INTERVAL '1 hour', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
       sum(quantity) AS quantity,
       bool_or(estimated) AS estimated,
       count(*) AS slots
FROM usage
GROUP BY meter_id, date_bin(INTERVAL '1 hour', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00');

-- Daily buckets are local days of the park ({{timezone}}).
CREATE VIEW usage_daily AS
SELECT meter_id,
       date_trunc('day', ts, {{timezone}}) AS bucket,
       sum(quantity) AS quantity,
       bool_or(estimated) AS estimated,
       count(*) AS slots
FROM usage
GROUP BY meter_id, date_trunc('day', ts, {{timezone}});
