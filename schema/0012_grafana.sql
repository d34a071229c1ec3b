-- Grafana boards (#14): usage_day_quality, slots and estimated slots per meter and
-- local day of the park ({{timezone}}), for the data-quality board (completeness against
-- the 90 % rule, estimated share) without reading 15-minute usage for a year.
-- 0012_grafana.plain.sql: a view of usage_day_totals (kept exact by triggers);
-- 0012_grafana.timescale.sql: a continuous aggregate of usage, as usage_daily.
SELECT 1;
