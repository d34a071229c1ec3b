-- usage_day_totals: sum, slot count and estimated-slot count of usage per meter and
-- local day of the park ({{timezone}}), maintained by statement-level triggers on usage
-- with transition tables: every INSERT (COPY, ON CONFLICT DO UPDATE included), UPDATE,
-- DELETE and TRUNCATE of usage adds its delta in the same transaction, so the totals
-- are exact whenever usage is, with no refresh step. A day whose last slot is deleted
-- loses its row. The estimated flag is kept as a count so deletes can clear it.
CREATE TABLE usage_day_totals (
    meter_id         text NOT NULL,
    bucket           timestamptz NOT NULL,           -- local midnight, as usage_daily
    quantity         double precision NOT NULL,
    slots            integer NOT NULL,
    estimated_slots  integer NOT NULL,
    PRIMARY KEY (meter_id, bucket)
);
CREATE INDEX usage_day_totals_bucket_idx ON usage_day_totals (bucket);

INSERT INTO usage_day_totals
SELECT meter_id, date_trunc('day', ts, {{timezone}}), sum(quantity), count(*),
       count(*) FILTER (WHERE estimated)
FROM usage
GROUP BY 1, 2;

-- Rows are added in key order, so concurrent writers lock day rows in the same order.
CREATE FUNCTION usage_day_totals_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM usage_day_totals;
        RETURN NULL;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO usage_day_totals AS t (meter_id, bucket, quantity, slots, estimated_slots)
        SELECT meter_id, date_trunc('day', ts, {{timezone}}), sum(quantity), count(*),
               count(*) FILTER (WHERE estimated)
        FROM usage_new
        GROUP BY 1, 2
        ORDER BY 1, 2
        ON CONFLICT (meter_id, bucket) DO UPDATE
        SET quantity = t.quantity + excluded.quantity, slots = t.slots + excluded.slots,
            estimated_slots = t.estimated_slots + excluded.estimated_slots;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE usage_day_totals t
        SET quantity = t.quantity - g.quantity, slots = t.slots - g.slots,
            estimated_slots = t.estimated_slots - g.estimated_slots
        FROM (SELECT meter_id, date_trunc('day', ts, {{timezone}}) AS bucket,
                     sum(quantity) AS quantity, count(*) AS slots,
                     count(*) FILTER (WHERE estimated) AS estimated_slots
              FROM usage_old
              GROUP BY 1, 2) g
        WHERE t.meter_id = g.meter_id AND t.bucket = g.bucket;
        -- days left without a slot (deleted, or an UPDATE moved the slot elsewhere)
        DELETE FROM usage_day_totals t
        USING (SELECT DISTINCT meter_id, date_trunc('day', ts, {{timezone}}) AS bucket
               FROM usage_old) g
        WHERE t.meter_id = g.meter_id AND t.bucket = g.bucket AND t.slots = 0;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER usage_day_totals_insert AFTER INSERT ON usage
    REFERENCING NEW TABLE AS usage_new
    FOR EACH STATEMENT EXECUTE FUNCTION usage_day_totals_apply();
CREATE TRIGGER usage_day_totals_update AFTER UPDATE ON usage
    REFERENCING OLD TABLE AS usage_old NEW TABLE AS usage_new
    FOR EACH STATEMENT EXECUTE FUNCTION usage_day_totals_apply();
CREATE TRIGGER usage_day_totals_delete AFTER DELETE ON usage
    REFERENCING OLD TABLE AS usage_old
    FOR EACH STATEMENT EXECUTE FUNCTION usage_day_totals_apply();
CREATE TRIGGER usage_day_totals_truncate AFTER TRUNCATE ON usage
    FOR EACH STATEMENT EXECUTE FUNCTION usage_day_totals_apply();

-- The same relation as before (and as the continuous aggregate in TimescaleDB mode),
-- now read from the totals instead of grouping usage at query time.
CREATE OR REPLACE VIEW usage_daily AS
SELECT meter_id, bucket, quantity, estimated_slots > 0 AS estimated, slots::bigint AS slots
FROM usage_day_totals;
