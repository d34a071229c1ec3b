CREATE VIEW usage_day_quality AS
SELECT meter_id, bucket, slots::bigint AS slots, estimated_slots::bigint AS estimated_slots
FROM usage_day_totals;
