-- emissions_daily: one index instead of two. The primary key becomes (day, meter_id):
-- every reading of the table selects a range of days (a period), which the key now
-- serves, and an accounting run writes its rows in key order, so the inserts append
-- to the index. Measured on a year of 1,200 meters (438,000 rows): 4.9 s with the
-- keys (meter_id, day) + (day, enterprise_id), 2.2 s with (day, meter_id) alone.
-- Same in both storage modes.
ALTER TABLE emissions_daily DROP CONSTRAINT emissions_daily_pkey;
ALTER TABLE emissions_daily ADD CONSTRAINT emissions_daily_pkey PRIMARY KEY (day, meter_id);
DROP INDEX emissions_daily_day_idx;
