-- emissions_enterprise_day and emissions_park_day (#14): emissions_daily summed per
-- enterprise and local day, and per local day of the park, so the Grafana boards read
-- 300 rows a day of the benchmark park (one a day for park series) instead of 1,200
-- meter rows (a year: 109,500 and 365 rows instead of 438,000). Same tables in both
-- storage modes (emissions_daily is a plain table in both).
--
-- Kept exact by statement-level triggers on emissions_daily, in the transaction that
-- writes it (the accounting run: new days, restatements and late data delete then
-- insert meter-days; a meter moved to another enterprise deletes the old owner's row and
-- inserts the new owner's): every (day, enterprise) a statement touched is summed again
-- from emissions_daily, never adjusted by a difference, so it is the GROUP BY of
-- emissions_daily whatever wrote it; then the park days touched are summed again from
-- emissions_enterprise_day. Row-level security: emissions_enterprise_day has an
-- enterprise_id column, so parkcarbon.security.rls gives it the policies of
-- emissions_daily.
--
-- The columns are what the boards need of a local day: market-based Scope 2 of grid
-- electricity is kept apart (the boards apply the enterprise-month's green power share
-- to it when they read it, as `parkcarbon emissions` does); tce excludes Scope 3
-- (water), as every figure does; electricity_tce_* (grid import and on-site PV, NULL
-- where no row has the factor) is the tce per kWh of the non-fossil share.
CREATE TABLE emissions_enterprise_day (
    day                          date NOT NULL,            -- local day in the park timezone
    enterprise_id                text NOT NULL,
    meters                       integer NOT NULL,         -- emissions_daily rows summed
    scope1_location_co2_t        double precision NOT NULL,
    scope1_market_co2_t          double precision NOT NULL,
    scope2_location_co2_t        double precision NOT NULL,
    scope2_market_grid_co2_t     double precision NOT NULL, -- remainder factor, before
                                                            -- green power
    scope2_market_other_co2_t    double precision NOT NULL, -- heat, steam
    scope3_water_co2_t           double precision NOT NULL,
    tce_equivalent               double precision NOT NULL, -- Scope 1, 2, PV, export
    tce_equal_value              double precision NOT NULL,
    grid_kwh                     double precision NOT NULL, -- electricity, Scope 2
    pv_kwh                       double precision NOT NULL, -- on-site generation
    export_kwh                   double precision NOT NULL,
    electricity_tce_equivalent   double precision,          -- grid import and PV
    electricity_tce_equal_value  double precision,
    estimated                    boolean NOT NULL,
    PRIMARY KEY (day, enterprise_id)
);
-- One enterprise's days (its board, the green power of its months).
CREATE INDEX emissions_enterprise_day_enterprise_idx ON emissions_enterprise_day
    (enterprise_id, day);

-- emissions_park_day: the same per local day for the whole park (365 rows a year), for
-- the park board's daily series and totals. Market-based Scope 2 of grid electricity
-- is before green power here too: the boards subtract the share of the enterprises
-- with green power (a few enterprise-days) when they read it. No enterprise_id column:
-- row-level security does not apply and enterprise roles are not granted it (a park
-- total would add other enterprises' figures); park roles and the reader read it.
CREATE TABLE emissions_park_day (
    day                          date PRIMARY KEY,
    enterprises                  integer NOT NULL,         -- emissions_enterprise_day rows
    meters                       integer NOT NULL,
    scope1_location_co2_t        double precision NOT NULL,
    scope1_market_co2_t          double precision NOT NULL,
    scope2_location_co2_t        double precision NOT NULL,
    scope2_market_grid_co2_t     double precision NOT NULL,
    scope2_market_other_co2_t    double precision NOT NULL,
    scope3_water_co2_t           double precision NOT NULL,
    tce_equivalent               double precision NOT NULL,
    tce_equal_value              double precision NOT NULL,
    grid_kwh                     double precision NOT NULL,
    pv_kwh                       double precision NOT NULL,
    export_kwh                   double precision NOT NULL,
    electricity_tce_equivalent   double precision,
    electricity_tce_equal_value  double precision,
    estimated                    boolean NOT NULL
);

-- The statements that sum again the (day, enterprise) pairs of a relation ``keys`` (with
-- those columns) from emissions_daily. Run by EXECUTE in the trigger functions
-- themselves: a transition table is visible only there, not in a function they call.
CREATE FUNCTION emissions_enterprise_day_resum(keys text) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $f$
SELECT ARRAY[
    format($q$
        DELETE FROM emissions_enterprise_day r
        USING (SELECT DISTINCT day, enterprise_id FROM %1$I) k
        WHERE r.day = k.day AND r.enterprise_id = k.enterprise_id
    $q$, keys),
    format($q$
        INSERT INTO emissions_enterprise_day
        SELECT e.day, e.enterprise_id, count(*)::int,
               coalesce(sum(e.co2_location_t) FILTER (WHERE e.scope = '1'), 0),
               coalesce(sum(e.co2_market_t) FILTER (WHERE e.scope = '1'), 0),
               coalesce(sum(e.co2_location_t) FILTER (WHERE e.scope = '2'), 0),
               coalesce(sum(e.co2_market_t)
                        FILTER (WHERE e.scope = '2' AND e.carrier = 'electricity'), 0),
               coalesce(sum(e.co2_market_t)
                        FILTER (WHERE e.scope = '2' AND e.carrier <> 'electricity'), 0),
               coalesce(sum(e.co2_location_t) FILTER (WHERE e.scope = '3'), 0),
               coalesce(sum(e.tce_equivalent) FILTER (WHERE e.scope <> '3'), 0),
               coalesce(sum(e.tce_equal_value) FILTER (WHERE e.scope <> '3'), 0),
               coalesce(sum(e.quantity)
                        FILTER (WHERE e.carrier = 'electricity' AND e.scope = '2'), 0),
               coalesce(sum(e.quantity)
                        FILTER (WHERE e.carrier = 'electricity' AND e.scope = 'pv'), 0),
               coalesce(sum(e.quantity)
                        FILTER (WHERE e.carrier = 'electricity' AND e.scope = 'export'), 0),
               sum(e.tce_equivalent)
                 FILTER (WHERE e.carrier = 'electricity' AND e.scope IN ('2', 'pv')),
               sum(e.tce_equal_value)
                 FILTER (WHERE e.carrier = 'electricity' AND e.scope IN ('2', 'pv')),
               bool_or(e.estimated)
        FROM emissions_daily e
        JOIN (SELECT DISTINCT day, enterprise_id FROM %1$I) k
          ON k.day = e.day AND k.enterprise_id = e.enterprise_id
        GROUP BY e.day, e.enterprise_id
        ORDER BY e.day, e.enterprise_id
    $q$, keys),
    format($q$
        DELETE FROM emissions_park_day p
        USING (SELECT DISTINCT day FROM %1$I) k WHERE p.day = k.day
    $q$, keys),
    format($q$
        INSERT INTO emissions_park_day
        SELECT e.day, count(*)::int, sum(e.meters)::int, sum(e.scope1_location_co2_t),
               sum(e.scope1_market_co2_t), sum(e.scope2_location_co2_t),
               sum(e.scope2_market_grid_co2_t), sum(e.scope2_market_other_co2_t),
               sum(e.scope3_water_co2_t), sum(e.tce_equivalent), sum(e.tce_equal_value),
               sum(e.grid_kwh), sum(e.pv_kwh), sum(e.export_kwh),
               sum(e.electricity_tce_equivalent), sum(e.electricity_tce_equal_value),
               bool_or(e.estimated)
        FROM emissions_enterprise_day e
        WHERE e.day IN (SELECT day FROM %1$I)
        GROUP BY e.day
        ORDER BY e.day
    $q$, keys)]
$f$;

-- One function per event: a transition table exists only in the trigger that declares it.
CREATE FUNCTION emissions_enterprise_day_new() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE q text;
BEGIN
    FOREACH q IN ARRAY emissions_enterprise_day_resum('new_rows') LOOP EXECUTE q; END LOOP;
    RETURN NULL;
END
$$;

CREATE FUNCTION emissions_enterprise_day_old() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE q text;
BEGIN
    FOREACH q IN ARRAY emissions_enterprise_day_resum('old_rows') LOOP EXECUTE q; END LOOP;
    RETURN NULL;
END
$$;

CREATE FUNCTION emissions_enterprise_day_both() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE q text;
BEGIN
    FOREACH q IN ARRAY emissions_enterprise_day_resum('old_rows')
                       || emissions_enterprise_day_resum('new_rows') LOOP
        EXECUTE q;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE FUNCTION emissions_enterprise_day_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE emissions_enterprise_day, emissions_park_day;
    RETURN NULL;
END
$$;

CREATE TRIGGER emissions_enterprise_day_insert AFTER INSERT ON emissions_daily
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION emissions_enterprise_day_new();
CREATE TRIGGER emissions_enterprise_day_delete AFTER DELETE ON emissions_daily
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION emissions_enterprise_day_old();
CREATE TRIGGER emissions_enterprise_day_update AFTER UPDATE ON emissions_daily
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION emissions_enterprise_day_both();
CREATE TRIGGER emissions_enterprise_day_truncate AFTER TRUNCATE ON emissions_daily
    FOR EACH STATEMENT EXECUTE FUNCTION emissions_enterprise_day_truncate();

-- What is accounted already (a database migrated from 0012): the same sums.
DO $$
DECLARE q text;
BEGIN
    CREATE TEMP TABLE _emissions_keys ON COMMIT DROP AS
        SELECT DISTINCT day, enterprise_id FROM emissions_daily;
    FOREACH q IN ARRAY emissions_enterprise_day_resum('_emissions_keys') LOOP
        EXECUTE q;
    END LOOP;
    DROP TABLE _emissions_keys;
END
$$;
