-- usage_quality_enterprise_day (#14): slots and estimated slots of usage_day_quality
-- summed per enterprise and local day of the park, for the data-quality board's
-- completeness panels, which read 300 rows a day of the benchmark park instead of
-- grouping 1,200 meter-days (a year: 109,500 rows instead of 438,000). Same table in
-- both storage modes. Grouped as the panels group: by the meter's CURRENT enterprise
-- (meters.enterprise_id), active meters only.
--
-- Kept exact by summing again, never by adjusting with a difference:
-- * after usage changes: parkcarbon.schema.refresh_rollups (derive_committed calls it
--   after every commit, from the day before the earliest changed slot) refreshes
--   usage_day_quality (timescale mode) and then sums the enterprise-days from the
--   window's start again (usage_quality_enterprise_day_resum);
-- * after a meter moves to another enterprise or is (de)activated: a statement-level
--   trigger on meters sums again the whole history of the enterprises concerned, in
--   the transaction of the change (a rare event: a registry sync).
-- * a derivation that committed usage but died (or failed) before its sum leaves a row in
--   usage_quality_resum_pending, written in its own transaction: the next sum (the next
--   derivation's, parkcarbon.schema.rollups) takes those rows and starts from the oldest;
-- * sums run one at a time (advisory lock LockKey.QUALITY, 0x7175616C): each reads the
--   usage committed before it started, so a slower older sum never overwrites a newer one.
-- Row-level security: it has an enterprise_id column, so parkcarbon.security.rls gives
-- it policies; the service role (derive) gets DML on it as on every table.
CREATE TABLE usage_quality_enterprise_day (
    bucket           timestamptz NOT NULL,    -- local midnight, as usage_day_quality
    enterprise_id    text NOT NULL,
    meters           integer NOT NULL,        -- usage_day_quality rows (active meters)
    slots            bigint NOT NULL,
    estimated_slots  bigint NOT NULL,
    PRIMARY KEY (bucket, enterprise_id)
);

-- Windows of usage committed but not summed yet (from ``since`` on): written by a
-- derivation in its transaction, removed by the sum that covers them.
CREATE TABLE usage_quality_resum_pending (
    since      timestamptz NOT NULL,
    marked_at  timestamptz NOT NULL DEFAULT now()
);

-- Sum again the enterprise-days of ``enterprises`` (NULL: all) whose local day starts in
-- [since, until) (NULL: unbounded) from usage_day_quality and meters: delete them, then
-- insert the GROUP BY (ON CONFLICT as a safeguard: sums are serialised by the lock,
-- so none should meet another's rows). Dynamic SQL
-- with the bounds as literals, so each call is planned for its own values. The GROUP BY
-- is read into a temporary table first: in an INSERT ... SELECT, TimescaleDB does not
-- turn the continuous aggregate's watermark into a constant and evaluates it for every
-- materialised row (6 s instead of 0.08 s for two enterprises of the benchmark park).
CREATE FUNCTION usage_quality_enterprise_day_resum(
    enterprises text[], since timestamptz, until timestamptz
) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r_where text := 'true';
    u_where text := 'true';
    n integer;
BEGIN
    -- one sum at a time (LockKey.QUALITY): the statements below then read every commit
    -- made before this sum began (READ COMMITTED: a snapshot per statement)
    PERFORM pg_advisory_xact_lock(1903518060);
    IF enterprises IS NOT NULL THEN
        r_where := r_where || format(' AND r.enterprise_id = ANY (%L::text[])', enterprises);
        u_where := u_where || format(' AND m.enterprise_id = ANY (%L::text[])', enterprises);
    END IF;
    IF since IS NOT NULL THEN
        r_where := r_where || format(' AND r.bucket >= %L::timestamptz', since);
        u_where := u_where || format(' AND u.bucket >= %L::timestamptz', since);
    END IF;
    IF until IS NOT NULL THEN
        r_where := r_where || format(' AND r.bucket < %L::timestamptz', until);
        u_where := u_where || format(' AND u.bucket < %L::timestamptz', until);
    END IF;
    DROP TABLE IF EXISTS pg_temp.usage_quality_resum;
    EXECUTE 'CREATE TEMP TABLE usage_quality_resum AS
             SELECT u.bucket, m.enterprise_id, count(*)::int AS meters,
                    sum(u.slots)::bigint AS slots,
                    sum(u.estimated_slots)::bigint AS estimated_slots
             FROM usage_day_quality u JOIN meters m ON m.id = u.meter_id AND m.active
             WHERE ' || u_where || '
             GROUP BY 1, 2';
    EXECUTE 'DELETE FROM usage_quality_enterprise_day r WHERE ' || r_where;
    INSERT INTO usage_quality_enterprise_day AS t
        (bucket, enterprise_id, meters, slots, estimated_slots)
    SELECT g.bucket, g.enterprise_id, g.meters, g.slots, g.estimated_slots
    FROM pg_temp.usage_quality_resum g
    ORDER BY 1, 2
    ON CONFLICT (bucket, enterprise_id) DO UPDATE
    SET meters = excluded.meters, slots = excluded.slots,
        estimated_slots = excluded.estimated_slots;
    GET DIAGNOSTICS n = ROW_COUNT;
    DROP TABLE pg_temp.usage_quality_resum;
    RETURN n;
END
$$;

-- A meter moved or (de)activated regroups all of its days: sum again every day of its
-- old and new enterprise. Statement level (a sync upserts every meter, most unchanged):
-- only rows whose enterprise or active flag changed count. No column list: PostgreSQL
-- refuses transition tables on an UPDATE OF trigger.
CREATE FUNCTION usage_quality_enterprise_day_meters() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE ents text[];
BEGIN
    SELECT array_agg(DISTINCT e ORDER BY e) INTO ents
    FROM meters_old o JOIN meters_new n ON n.id = o.id
    CROSS JOIN LATERAL (VALUES (o.enterprise_id), (n.enterprise_id)) v(e)
    WHERE (o.enterprise_id, o.active) IS DISTINCT FROM (n.enterprise_id, n.active);
    IF ents IS NOT NULL THEN
        PERFORM usage_quality_enterprise_day_resum(ents, NULL, NULL);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER usage_quality_enterprise_day_meters AFTER UPDATE ON meters
    REFERENCING OLD TABLE AS meters_old NEW TABLE AS meters_new
    FOR EACH STATEMENT EXECUTE FUNCTION usage_quality_enterprise_day_meters();

-- What is stored already (a database migrated from 0014).
SELECT usage_quality_enterprise_day_resum(NULL, NULL, NULL);
