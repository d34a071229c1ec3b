-- parkcarbon carbon accounting: factor versions, computed daily emissions per meter,
-- accounting runs, restatement log, economic inputs and green power.
-- Same tables in both storage modes (emissions_daily is small: one row per meter and
-- local day), so there is no .timescale or .plain part.

-- Every factor version ever used. Never deleted: stored figures name these ids.
CREATE TABLE carbon_factors (
    version_id      text PRIMARY KEY,            -- key/region/year/scope/content-hash
    key             text NOT NULL,               -- co2.electricity.location, tce.diesel, ...
    region          text NOT NULL,
    basis           text NOT NULL,
    gas             text NOT NULL,
    year            integer NOT NULL,            -- the year the factor describes
    value           double precision,            -- as written (unit below)
    unit            text,
    components      jsonb,                       -- NCV, carbon content, oxidation
    per_canonical   double precision NOT NULL,   -- t CO2 / tce / GJ per canonical unit
    canonical_unit  text NOT NULL,
    valid_from      date,
    valid_to        date,
    annual          boolean NOT NULL,
    unconfirmed     boolean NOT NULL,
    confidence      text NOT NULL,
    source          text NOT NULL,
    origin          text NOT NULL CHECK (origin IN ('library', 'park', 'enterprise')),
    enterprise_id   text,
    stored_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE accounting_runs (
    run_id          bigserial PRIMARY KEY,
    started_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at     timestamptz,
    reason          text NOT NULL,               -- refresh | force <period> | ...
    watermark       timestamptz,                 -- usage derived after this was checked
    settings        jsonb NOT NULL DEFAULT '{}', -- region, energy basis, gas kind
    rows_written    integer NOT NULL DEFAULT 0,
    rows_restated   integer NOT NULL DEFAULT 0
);

-- A factor plan: the factor versions (and disclosure flags) one figure used. Stored
-- once and referenced by id, so a year of daily rows stays narrow.
CREATE TABLE carbon_plans (
    plan_id     serial PRIMARY KEY,
    factor_ids  text[] NOT NULL,                 -- carbon_factors.version_id, sorted
    flags       text[] NOT NULL,                 -- earlier_year:..., unconfirmed:..., sorted
    UNIQUE (factor_ids, flags)
);

-- One row per meter and local day (park timezone). Sub-meters are not accounted.
-- scope: '1', '2', '3' (water, informational), 'pv' (on-site generation, zero
-- emission), 'export' (fed to the grid; does not reduce Scope 2, reduces PV consumed).
CREATE TABLE emissions_daily (
    meter_id          text NOT NULL,
    day               date NOT NULL,             -- local day in the park timezone
    enterprise_id     text NOT NULL,
    carrier           text NOT NULL,
    role              text NOT NULL,
    scope             text NOT NULL CHECK (scope IN ('1', '2', '3', 'pv', 'export')),
    quantity          double precision NOT NULL, -- canonical unit (kWh, m3, GJ, t)
    unit              text NOT NULL,
    heat_gj           double precision NOT NULL DEFAULT 0,  -- heat content of heat/steam
    co2_location_t    double precision NOT NULL,
    co2_market_t      double precision NOT NULL, -- remainder factor, before green power
    co2_ets_t         double precision,          -- NULL where no ETS factor applies
    tce_equivalent    double precision NOT NULL, -- GB/T 2589 当量值
    tce_equal_value   double precision,          -- GB/T 2589 等价值 (electricity differs)
    estimated         boolean NOT NULL,
    slots             integer NOT NULL,
    plan_id           integer NOT NULL,          -- carbon_plans: factor versions, flags
    run_id            bigint NOT NULL,           -- accounting_runs.run_id (no foreign
                                                 -- key: its per-row check doubles the
                                                 -- cost of writing a year of rows)
    computed_at       timestamptz NOT NULL,
    PRIMARY KEY (meter_id, day)
);
CREATE INDEX emissions_daily_day_idx ON emissions_daily (day, enterprise_id);

-- emissions_daily with the factor versions and flags spelled out.
CREATE VIEW emissions_daily_provenance AS
SELECT e.*, p.factor_ids, p.flags
FROM emissions_daily e JOIN carbon_plans p USING (plan_id);

-- Old and new figures of every restated (meter, day).
CREATE TABLE restatements (
    id                 bigserial PRIMARY KEY,
    run_id             bigint NOT NULL,         -- accounting_runs.run_id
    meter_id           text NOT NULL,
    day                date NOT NULL,
    enterprise_id      text NOT NULL,
    cause              text NOT NULL,          -- late_data | factor_change
    old_quantity       double precision,
    new_quantity       double precision,
    old_co2_location_t double precision,
    new_co2_location_t double precision,
    old_co2_market_t   double precision,
    new_co2_market_t   double precision,
    old_tce            double precision,
    new_tce            double precision,
    old_factor_ids     text[],
    new_factor_ids     text[],
    old_run_id         bigint,
    restated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX restatements_run_idx ON restatements (run_id);
CREATE INDEX restatements_day_idx ON restatements (day);

-- Economic inputs per enterprise and month (Art. 13 per-mu indicators, intensities).
CREATE TABLE enterprise_economics (
    enterprise_id        text NOT NULL,
    month                date NOT NULL CHECK (extract(day FROM month) = 1),
    value_added_10k_cny  double precision CHECK (value_added_10k_cny >= 0),
    tax_10k_cny          double precision CHECK (tax_10k_cny >= 0),
    investment_10k_cny   double precision CHECK (investment_10k_cny >= 0),
    source               text,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (enterprise_id, month)
);

-- Green power purchased (green power trading) and green certificates, per month.
CREATE TABLE green_power (
    enterprise_id     text NOT NULL,
    month             date NOT NULL CHECK (extract(day FROM month) = 1),
    contract_kwh      double precision NOT NULL DEFAULT 0 CHECK (contract_kwh >= 0),
    certificate_kwh   double precision NOT NULL DEFAULT 0 CHECK (certificate_kwh >= 0),
    source            text,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (enterprise_id, month)
);

-- Market-based Scope 2 is computed when read (green power share per enterprise-month),
-- so a change of green power inputs is logged here when it changes a stored figure:
-- the enterprise-month's remainder tCO2 x (1 - min(1, green / grid)) before and after.
CREATE TABLE green_power_restatements (
    id                 bigserial PRIMARY KEY,
    enterprise_id      text NOT NULL,
    month              date NOT NULL,
    old_green_kwh      double precision NOT NULL,  -- contracts + certificates, kWh
    new_green_kwh      double precision NOT NULL,
    grid_kwh           double precision NOT NULL,  -- stored grid import of the month
    old_co2_market_t   double precision NOT NULL,  -- market-based Scope 2 electricity
    new_co2_market_t   double precision NOT NULL,
    source             text,
    restated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX green_power_restatements_month_idx
    ON green_power_restatements (month, enterprise_id);

-- Rollups for Grafana and reports (location-based; market-based needs green power
-- allocation, done by parkcarbon.carbon.accounting.emissions).
CREATE VIEW emissions_enterprise_daily AS
SELECT enterprise_id, day,
       sum(co2_location_t) FILTER (WHERE scope = '1') AS scope1_co2_t,
       sum(co2_location_t) FILTER (WHERE scope = '2') AS scope2_location_co2_t,
       sum(co2_location_t) FILTER (WHERE scope IN ('1', '2')) AS scope12_location_co2_t,
       sum(co2_location_t) FILTER (WHERE scope = '3') AS scope3_water_co2_t,
       sum(tce_equivalent) AS tce_equivalent,
       bool_or(estimated) AS estimated
FROM emissions_daily
GROUP BY enterprise_id, day;

CREATE VIEW emissions_enterprise_monthly AS
SELECT enterprise_id, date_trunc('month', day)::date AS month,
       sum(scope1_co2_t) AS scope1_co2_t,
       sum(scope2_location_co2_t) AS scope2_location_co2_t,
       sum(scope12_location_co2_t) AS scope12_location_co2_t,
       sum(scope3_water_co2_t) AS scope3_water_co2_t,
       sum(tce_equivalent) AS tce_equivalent,
       bool_or(estimated) AS estimated
FROM emissions_enterprise_daily
GROUP BY enterprise_id, date_trunc('month', day);

-- Find usage derived since the last accounting run without scanning all usage
-- (on a TimescaleDB hypertable the index is created on every chunk).
CREATE INDEX usage_derived_at_idx ON usage (derived_at);
