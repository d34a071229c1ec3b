-- Peak-carbon targets as accounting applies them: each subject's annual cap and its
-- budget for every local month of that year (after the budget profile: pro rata by
-- days, the park's seasonal weights or the enterprise's own profile). Written from the
-- targets file by every accounting refresh, so Grafana boards and monthly reports read
-- the same budgets `parkcarbon targets status` prints. enterprise_id NULL: the park.
CREATE TABLE carbon_budgets (
    month                      date NOT NULL CHECK (extract(day FROM month) = 1),
    enterprise_id              text,
    cap_co2_t                  double precision NOT NULL CHECK (cap_co2_t >= 0),  -- the year's cap
    budget_co2_t               double precision NOT NULL CHECK (budget_co2_t >= 0),  -- this month
    intensity_co2_per_10k_cny  double precision,   -- the year's intensity target, if any
    basis                      text NOT NULL CHECK (basis IN ('location', 'market')),
    profile                    text NOT NULL,      -- days | seasonal | the subject's own
    cap_source                 text NOT NULL,      -- annual | pathway (interpolated)
    updated_at                 timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX carbon_budgets_subject_month_idx
    ON carbon_budgets (coalesce(enterprise_id, ''), month);

-- Factor overrides for one meter (a measured gas heating value, the declared enthalpy
-- of the steam a meter measures): the factor file's `meter:` scope (#10).
ALTER TABLE carbon_factors ADD COLUMN meter_id text;
ALTER TABLE carbon_factors DROP CONSTRAINT carbon_factors_origin_check;
ALTER TABLE carbon_factors ADD CONSTRAINT carbon_factors_origin_check
    CHECK (origin IN ('library', 'park', 'enterprise', 'meter'));

-- Process emissions (Scope 1) from monthly production activity data: clinker and lime
-- calcination (parkcarbon.carbon.process; config/production.yaml). One row per
-- enterprise, month and product, with the activity data and the method used.
CREATE TABLE process_emissions (
    enterprise_id  text NOT NULL REFERENCES enterprises (id),
    month          date NOT NULL CHECK (extract(day FROM month) = 1),
    product        text NOT NULL CHECK (product IN ('clinker', 'lime')),
    output_t       double precision NOT NULL CHECK (output_t >= 0),
    parameters     jsonb NOT NULL,             -- CaO/MgO %, non-carbonate shares, kiln dust
    method         text NOT NULL,              -- clinker_measured | clinker_tier1 | lime_...
    co2_t          double precision NOT NULL CHECK (co2_t >= 0),
    unconfirmed    boolean NOT NULL,           -- an IPCC Tier 1 default was used
    method_source  text NOT NULL,
    source         text NOT NULL,              -- the production file or record source
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (enterprise_id, month, product)
);

-- The green certificate register (GEC, 1 certificate = 1 MWh): the evidence behind
-- market-based Scope 2 certificate claims (parkcarbon.carbon.certificates). A claim is
-- refused unless cancelled, unbundled certificates of the enterprise and reporting
-- year cover it; certificates that came with a green power trade back that contract.
CREATE TABLE green_certificates (
    enterprise_id    text NOT NULL REFERENCES enterprises (id),
    serials          text NOT NULL,               -- as written: PREFIX<first>..PREFIX<last>
    serial_prefix    text NOT NULL,
    serial_first     bigint NOT NULL,
    serial_last      bigint NOT NULL CHECK (serial_last >= serial_first),
    mwh              double precision NOT NULL CHECK (mwh > 0),
    generation_from  date NOT NULL,               -- first month of generation
    generation_to    date NOT NULL,               -- last month of generation
    cancelled_on     date,                        -- NULL: not cancelled (cannot back a claim)
    contract_id      text,                        -- bundled with this green power trade
    source           text,
    PRIMARY KEY (serial_prefix, serial_first)
);
