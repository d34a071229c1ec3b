"""Every SQL statement of parkcarbon.carbon, by name (habit 14: no SQL in the CLI).

Plain strings, run with ``conn.execute(NAME, params)``. A few are templates whose
``{...}`` holes take only fragments defined here (``BUCKET``, ``EMISSIONS_WHERE``...)
or internal constants, never user input; values always go in as parameters.

Sections: reads of the registry, emissions (``accounting``), indicators, targets,
factors, the accounting run (``engine``), its change detection, restatements and
green power, economics.

Change detection (the accounting run's temp tables): ``_dirty(meter_id, day)`` the pairs
recomputed, ``_rows`` their new figures, ``_changed`` the pairs whose stored row is
written or removed. A pair whose recomputed row equals the stored one (figures within
EPSILON, same factor plan, slots and flags) is left alone: not rewritten, not restated.
A restatement is a change of a stored figure (quantity, heat, tCO2, tce) of a day whose
stored row covered the whole local day. A day still filling in (fewer slots than the
local day has, more now: the day in progress, or data still arriving) is updated
without a restatement; a new factor version that gives the same figures updates the
row's provenance only.
"""

from __future__ import annotations

# --- registry ----------------------------------------------------------------------

# The enterprise ids (validating targets and economics files against the registry).
ENTERPRISE_IDS = "SELECT id FROM enterprises"
# Is this enterprise id known?
ENTERPRISE_EXISTS = "SELECT 1 FROM enterprises WHERE id = %s"
# id -> Chinese name, for report rows.
ENTERPRISE_NAMES = "SELECT id, name_zh FROM enterprises"
# id, name and land area (per-mu indicators).
ENTERPRISE_LAND = "SELECT id, name_zh, land_area_mu FROM enterprises"
# The park's land area and name (the PARK row of the indicators).
PARK_LAND = "SELECT land_area_mu, name_zh FROM park LIMIT 1"
# Accounted meters (sub-meters are inside another meter's figure).
ACCOUNTED_METERS = (
    "SELECT id, enterprise_id, carrier, role FROM meters "
    "WHERE role <> 'sub_meter' ORDER BY id"
)
# Ownership periods of the accounted meters (meter_ownership, migration 0009) as local
# days [day_from, day_to) of the park (parameter tz): the owner of a local day is the
# owner at its local start, so a period owns the days whose start falls in
# [valid_from, valid_to): from the first local midnight at or after valid_from (a move
# during a day leaves that day with the old owner) up to the first one at or after
# valid_to. timestamptz counts microseconds, hence "+ 1 day - 1 microsecond" as the
# ceiling to a local day. NULL day_from: a meter's first period, open to the past (it
# starts in 1900 anyway); NULL day_to: the current period.
METER_OWNERSHIP = """
SELECT o.meter_id, o.enterprise_id,
       CASE WHEN o.valid_from > min(o.valid_from) OVER (PARTITION BY o.meter_id)
            THEN ((o.valid_from AT TIME ZONE %(tz)s) + INTERVAL '1 day'
                  - INTERVAL '1 microsecond')::date END AS day_from,
       ((o.valid_to AT TIME ZONE %(tz)s) + INTERVAL '1 day'
        - INTERVAL '1 microsecond')::date AS day_to
FROM meter_ownership o
JOIN meters m ON m.id = o.meter_id AND m.role <> 'sub_meter'
ORDER BY o.meter_id, o.valid_from
"""

# --- emissions (accounting.emissions, park_summary) --------------------------------

# The bucket column of EMISSIONS_ROLLUP per ``freq``.
BUCKET = {
    None: "NULL::date",
    "day": "e.day",
    "month": "date_trunc('month', e.day)::date",
    "year": "date_trunc('year', e.day)::date",
}
# The WHERE of EMISSIONS_ROLLUP, and what is added for one enterprise.
EMISSIONS_WHERE = "e.day >= %(d0)s AND e.day < %(d1)s"
AND_ENTERPRISE = " AND e.enterprise_id = %(ent)s"
# Stored figures per enterprise, bucket, month, carrier, scope and factor plan.
EMISSIONS_ROLLUP = """
        SELECT e.enterprise_id, {bucket} AS bucket, date_trunc('month', e.day)::date AS month,
               e.carrier, e.scope, sum(e.quantity), sum(e.heat_gj), sum(e.co2_location_t),
               sum(e.co2_market_t), sum(e.co2_ets_t), count(e.co2_ets_t), count(*),
               sum(e.tce_equivalent), sum(e.tce_equal_value), bool_or(e.estimated), e.plan_id
        FROM emissions_daily e WHERE {where}
        GROUP BY 1, 2, 3, 4, 5, e.plan_id"""
# Green power (contracts + certificates) per enterprise and month of a whole-month period.
GREEN_POWER_MONTHS = """
            SELECT g.enterprise_id, g.month, g.contract_kwh + g.certificate_kwh
            FROM green_power g
            WHERE g.month >= %(d0)s AND g.month < %(d1)s"""
# Green power and grid import per enterprise and whole month around a part-month period.
GREEN_POWER_WHOLE_MONTHS = """
        SELECT g.enterprise_id, g.month, g.contract_kwh + g.certificate_kwh, m.grid_kwh
        FROM green_power g
        JOIN (SELECT enterprise_id, date_trunc('month', day)::date AS month,
                     sum(quantity) AS grid_kwh
              FROM emissions_daily WHERE carrier = 'electricity' AND scope = '2'
                AND day >= date_trunc('month', %(d0)s::date)
                AND day < date_trunc('month', %(d1)s::date - 1) + INTERVAL '1 month'
              GROUP BY 1, 2) m USING (enterprise_id, month)
        WHERE g.month >= date_trunc('month', %(d0)s::date) AND g.month < %(d1)s"""
# Every factor plan: its factor version ids and disclosure flags.
CARBON_PLANS = "SELECT plan_id, factor_ids, flags FROM carbon_plans"
# Park energy by carrier and scope for [d0, d1).
PARK_ENERGY = """
        SELECT carrier, scope, sum(quantity), min(unit), sum(tce_equivalent)
        FROM emissions_daily WHERE day >= %s AND day < %s
        GROUP BY 1, 2 ORDER BY 1, 2"""

# --- indicators --------------------------------------------------------------------

# Value added, tax and investment per enterprise for [d0, d1).
ECONOMICS_SUMS = """SELECT enterprise_id, sum(value_added_10k_cny), sum(tax_10k_cny),
                  sum(investment_10k_cny)
           FROM enterprise_economics WHERE month >= %s AND month < %s GROUP BY 1"""
# tce per kWh of electricity the stored figures used, per energy basis.
_ELECTRICITY_TCE_PER_KWH = """SELECT sum({col}) / nullif(sum(quantity), 0) FROM emissions_daily
            WHERE carrier = 'electricity' AND scope IN ('2', 'pv')
              AND day >= %s AND day < %s"""
ELECTRICITY_TCE_PER_KWH = {
    "equivalent": _ELECTRICITY_TCE_PER_KWH.format(col="tce_equivalent"),
    "equal_value": _ELECTRICITY_TCE_PER_KWH.format(col="tce_equal_value"),
}

# --- factors -----------------------------------------------------------------------

COUNT_FACTORS = "SELECT count(*) FROM carbon_factors"
# One factor version (never updated: a changed value is a new version).
INSERT_FACTOR = """
            INSERT INTO carbon_factors (version_id, key, region, basis, gas, year, value,
                unit, components, per_canonical, canonical_unit, valid_from, valid_to,
                annual, unconfirmed, confidence, source, origin, enterprise_id, meter_id)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                    %s, %s, %s)
            ON CONFLICT (version_id) DO NOTHING
            """

# --- the accounting run (engine) ---------------------------------------------------

# One accounting run at a time (transaction lock, parameter LockKey.ACCOUNTING).
ACCOUNTING_LOCK = "SELECT pg_advisory_xact_lock(%s)"
# Inside a caller's transaction a run is a savepoint and ON COMMIT DROP waits for the
# caller's commit: leftovers of an earlier run in the same transaction are dropped.
DROP_RUN_TEMPS = "DROP TABLE IF EXISTS _plan, _rows, _raw, _dirty, _changed"
# Memory for the run's aggregate (engine.WORK_MEM says why).
SET_WORK_MEM = "SET LOCAL work_mem = '{work_mem}'"
# The watermark of the latest run that tracks one (None before the first run).
LAST_WATERMARK = "SELECT max(watermark) FROM accounting_runs WHERE watermark IS NOT NULL"
# A new run (parameters: reason, settings JSON, track watermark?, watermark).
INSERT_RUN = (
    "INSERT INTO accounting_runs (reason, settings, watermark) VALUES "
    "(%s, %s, CASE WHEN %s THEN %s::timestamptz END) RETURNING run_id"
)
FINISH_RUN = (
    "UPDATE accounting_runs SET finished_at = clock_timestamp(), rows_written = %s, "
    "rows_restated = %s WHERE run_id = %s"
)
# pg_stat_activity is a snapshot per transaction: clear it before reading the watermark.
CLEAR_STAT_SNAPSHOT = "SELECT pg_stat_clear_snapshot()"
# The instant from which the next run must look for usage (see engine._watermark).
WATERMARK = """SELECT CASE WHEN bool_or(state IS NULL)
                       THEN clock_timestamp() - %s::interval
                       ELSE least(clock_timestamp(), min(xact_start)) END
           FROM pg_stat_activity
           WHERE datname = current_database() AND pid <> pg_backend_pid()
             AND backend_type = 'client backend'"""
# First and last local day with usage (parameters: tz, tz).
USAGE_RANGE = (
    "SELECT (min(ts) AT TIME ZONE %s)::date, (max(ts) AT TIME ZONE %s)::date FROM usage"
)
STORED_RANGE = "SELECT min(day), max(day) FROM emissions_daily"
# Is anything stored for [d0, d1)?
STORED_IN_SPAN = "SELECT EXISTS (SELECT 1 FROM emissions_daily WHERE day >= %s AND day < %s)"
# The carbon_plans id of a (factor_ids, flags) pair, stored if new.
PLAN_ID = """WITH ins AS (INSERT INTO carbon_plans (factor_ids, flags) VALUES (%s, %s)
                            ON CONFLICT (factor_ids, flags) DO NOTHING RETURNING plan_id)
               SELECT plan_id FROM ins UNION ALL
               SELECT plan_id FROM carbon_plans WHERE factor_ids = %s AND flags = %s"""

PLAN_DDL = """
CREATE TEMP TABLE _plan (
    meter_id text, enterprise_id text, carrier text, role text, scope text, unit text,
    d0 date, d1 date, m_location float8, m_market float8, m_ets float8, m_tce_eq float8,
    m_tce_ev float8, m_gj float8, plan_id integer
) ON COMMIT DROP
"""
COPY_PLAN = "COPY _plan ({columns}) FROM STDIN"

# Usage per meter and local day ({agg}, one of the AGG_* below) x the factor plan.
SELECT_ROWS = """
SELECT g.meter_id, g.day, p.enterprise_id, p.carrier, p.role, p.scope, g.quantity, p.unit,
       g.quantity * p.m_gj AS heat_gj,
       g.quantity * p.m_location AS co2_location_t,
       g.quantity * p.m_market AS co2_market_t,
       g.quantity * p.m_ets AS co2_ets_t,
       g.quantity * p.m_tce_eq AS tce_equivalent,
       g.quantity * p.m_tce_ev AS tce_equal_value,
       g.estimated, g.slots, p.plan_id
FROM ({agg}) g
JOIN _plan p ON p.meter_id = g.meter_id AND g.day >= p.d0 AND g.day < p.d1
"""
COMPUTE = "CREATE TEMP TABLE _rows ON COMMIT DROP AS " + SELECT_ROWS

# Converting every usage row to local time is the most expensive part of the run, so
# where the park's UTC offset is constant over the span (Asia/Shanghai: always) rows are
# binned to local days with date_bin from a local-midnight origin, and only the grouped
# rows are converted. Zones with daylight saving take the per-row conversion.
AGG_RANGE_FIXED = """
SELECT b.meter_id, (b.bucket AT TIME ZONE %(tz)s)::date AS day, b.quantity, b.estimated,
       b.slots
FROM (SELECT u.meter_id, date_bin(INTERVAL '1 day', u.ts, %(origin)s) AS bucket,
             sum(u.quantity) AS quantity, bool_or(u.estimated) AS estimated,
             count(*)::int AS slots
      FROM usage u
      WHERE u.ts >= %(t0)s AND u.ts < %(t1)s
      GROUP BY 1, 2) b
"""

AGG_RANGE = """
SELECT u.meter_id, (u.ts AT TIME ZONE %(tz)s)::date AS day, sum(u.quantity) AS quantity,
       bool_or(u.estimated) AS estimated, count(*)::int AS slots
FROM usage u
WHERE u.ts >= %(t0)s AND u.ts < %(t1)s
GROUP BY 1, 2
"""

AGG_DIRTY = """
SELECT d.meter_id, d.day, sum(u.quantity) AS quantity,
       bool_or(u.estimated) AS estimated, count(*)::int AS slots
FROM _dirty d
JOIN usage u ON u.meter_id = d.meter_id
            AND u.ts >= (d.day::timestamp AT TIME ZONE %(tz)s)
            AND u.ts < ((d.day + 1)::timestamp AT TIME ZONE %(tz)s)
GROUP BY 1, 2
"""

# Plain PostgreSQL keeps usage per meter and local day in usage_day_totals (migration
# 0005, exact through triggers on usage): the run reads ~440,000 rows for a year of
# 1,200 meters instead of grouping 42 million. TimescaleDB mode groups usage (above).
AGG_TOTALS_RANGE = """
SELECT t.meter_id, (t.bucket AT TIME ZONE %(tz)s)::date AS day, t.quantity,
       t.estimated_slots > 0 AS estimated, t.slots
FROM usage_day_totals t
WHERE t.bucket >= %(t0)s AND t.bucket < %(t1)s
"""

AGG_TOTALS_DIRTY = """
SELECT d.meter_id, d.day, t.quantity, t.estimated_slots > 0 AS estimated, t.slots
FROM _dirty d
JOIN usage_day_totals t ON t.meter_id = d.meter_id
                       AND t.bucket >= (d.day::timestamp AT TIME ZONE %(tz)s)
                       AND t.bucket < ((d.day + 1)::timestamp AT TIME ZONE %(tz)s)
"""

# _dirty(meter_id, day) of an incremental run, collected in _raw from:
RAW_DDL = "CREATE TEMP TABLE _raw (meter_id text, day date) ON COMMIT DROP"
# ... usage derived since the watermark,
RAW_DERIVED = """
        INSERT INTO _raw
        SELECT DISTINCT meter_id, (ts AT TIME ZONE %(tz)s)::date FROM usage
        WHERE derived_at >= %(wm)s
        """
HAS_USAGE_CHANGES = "SELECT to_regclass('usage_changes') IS NOT NULL"
# ... usage written or removed since the watermark (usage_changes),
RAW_CHANGED = """
            INSERT INTO _raw
            SELECT DISTINCT c.meter_id, d::date
            FROM usage_changes c,
                 generate_series((c.first_slot AT TIME ZONE %(tz)s)::date,
                                 (c.last_slot AT TIME ZONE %(tz)s)::date,
                                 INTERVAL '1 day') AS d
            WHERE c.changed_at >= %(wm)s
            """
# ... stored days whose factor plan, scope or enterprise differ from today's plan,
RAW_REPLANNED = """
        INSERT INTO _raw
        SELECT e.meter_id, e.day FROM emissions_daily e
        JOIN _plan p ON p.meter_id = e.meter_id AND e.day >= p.d0 AND e.day < p.d1
        WHERE e.plan_id IS DISTINCT FROM p.plan_id OR e.scope <> p.scope
           OR e.enterprise_id <> p.enterprise_id
        """
# ... and meters no longer accounted (declared a sub-meter since).
RAW_UNPLANNED = """
        INSERT INTO _raw
        SELECT e.meter_id, e.day FROM emissions_daily e
        WHERE NOT EXISTS (SELECT 1 FROM _plan p WHERE p.meter_id = e.meter_id)
        """
DIRTY_FROM_RAW = (
    "CREATE TEMP TABLE _dirty ON COMMIT DROP AS SELECT DISTINCT meter_id, day FROM _raw"
)
# Is there anything to recompute in an incremental run?
ANY_DIRTY = "SELECT EXISTS (SELECT 1 FROM _dirty)"
# A full run over a span with stored rows: everything stored or computed is dirty.
DIRTY_SPAN = (
    "CREATE TEMP TABLE _dirty ON COMMIT DROP AS SELECT meter_id, day "
    "FROM emissions_daily WHERE day >= %s AND day < %s "
    "UNION SELECT meter_id, day FROM _rows"
)
ANALYZE_RUN_TEMPS = "ANALYZE _rows, _dirty"  # temp tables: no autovacuum statistics
# (dirty pairs, filling in, removed) of a run.
CHANGE_COUNTS = (
    "SELECT (SELECT count(*) FROM _dirty), count(*) FILTER (WHERE filling), "
    "count(*) FILTER (WHERE had_old AND NOT has_new) FROM _changed"
)
DELETE_CHANGED = (
    "DELETE FROM emissions_daily e USING _changed c "
    "WHERE e.meter_id = c.meter_id AND e.day = c.day"
)

# --- change detection (parameters: eps, tz, run, slot_seconds) ---------------------

# Stored columns of a (meter, day) row that can change between runs, and the figures
# among them (a restatement is a change of a figure). NaN (no ETS / equal-value factor)
# is stored as NULL, so compare through _num().
_FIGURES = (
    "quantity",
    "heat_gj",
    "co2_location_t",
    "co2_market_t",
    "co2_ets_t",
    "tce_equivalent",
    "tce_equal_value",
)


def _num(expr: str) -> str:
    return f"CASE WHEN {expr} = 'NaN' THEN NULL ELSE {expr} END"


def _differs(col: str) -> str:
    o, n = f"o.{col}", _num(f"n.{col}")
    return f"(({o} IS NULL) <> ({n} IS NULL) OR abs({o} - {n}) > %(eps)s * greatest(abs({o}), 1))"


_FIGURE_CHANGED = " OR ".join(_differs(c) for c in _FIGURES)

# _changed: the dirty (meter, day) pairs whose stored row must be written or removed
# (new, gone, or any stored value different). Everything else is left untouched.
# %(slot_seconds)s: the length of a usage slot (parkcarbon.units.SLOT_SECONDS).
CHANGED = f"""
CREATE TEMP TABLE _changed ON COMMIT DROP AS
SELECT d.meter_id, d.day,
       o.meter_id IS NOT NULL AS had_old,
       n.meter_id IS NOT NULL AS has_new,
       CASE WHEN o.meter_id IS NULL THEN false
            WHEN n.meter_id IS NULL THEN abs(o.quantity) > %(eps)s
                 OR abs(o.co2_location_t) > %(eps)s OR abs(o.co2_market_t) > %(eps)s
                 OR abs(o.tce_equivalent) > %(eps)s OR abs(o.heat_gj) > %(eps)s
            ELSE {_FIGURE_CHANGED} END AS figure_changed,
       -- the old figure covered only part of its local day and the new one covers more
       -- of it: the day is filling in (in progress, or data still arriving), not restated
       o.meter_id IS NOT NULL AND n.meter_id IS NOT NULL AND n.slots > o.slots
           AND o.slots < extract(epoch FROM ((o.day + 1)::timestamp AT TIME ZONE %(tz)s)
                                 - (o.day::timestamp AT TIME ZONE %(tz)s)) / %(slot_seconds)s
           AS filling
FROM _dirty d
LEFT JOIN emissions_daily o ON o.meter_id = d.meter_id AND o.day = d.day
LEFT JOIN _rows n ON n.meter_id = d.meter_id AND n.day = d.day
WHERE (o.meter_id IS NULL) <> (n.meter_id IS NULL)
   OR (o.meter_id IS NOT NULL AND (
          o.plan_id IS DISTINCT FROM n.plan_id OR o.enterprise_id <> n.enterprise_id
          OR o.carrier <> n.carrier OR o.role <> n.role OR o.scope <> n.scope
          OR o.unit <> n.unit OR o.estimated <> n.estimated OR o.slots <> n.slots
          OR {_FIGURE_CHANGED}))
"""

# Rows from ``{rows}`` (the _rows table, or the computing query in parentheses) into
# emissions_daily, in primary-key order (day, meter_id), so index inserts append.
STORE = """
INSERT INTO emissions_daily (meter_id, day, enterprise_id, carrier, role, scope, quantity,
    unit, heat_gj, co2_location_t, co2_market_t, co2_ets_t, tce_equivalent,
    tce_equal_value, estimated, slots, plan_id, run_id, computed_at)
SELECT meter_id, day, enterprise_id, carrier, role, scope, quantity, unit, heat_gj,
       co2_location_t, co2_market_t,
       CASE WHEN co2_ets_t = 'NaN' THEN NULL ELSE co2_ets_t END,
       tce_equivalent,
       CASE WHEN tce_equal_value = 'NaN' THEN NULL ELSE tce_equal_value END,
       estimated, slots, plan_id, %(run)s, statement_timestamp()
FROM {rows} n
"""
STORE_CHANGED = """
WHERE EXISTS (SELECT 1 FROM _changed c WHERE c.meter_id = n.meter_id AND c.day = n.day)
ORDER BY day, meter_id
"""
# A span with nothing stored yet: every computed row is new.
STORE_NEW = STORE + "ORDER BY day, meter_id\n"

# A restatement: a stored figure really changed (beyond EPSILON) and the stored row was
# not a day still filling in. A new factor version giving the same figures only updates
# the row's provenance (plan_id), it is not a restatement.
RESTATE = """
INSERT INTO restatements (run_id, meter_id, day, enterprise_id, cause, old_quantity,
    new_quantity, old_co2_location_t, new_co2_location_t, old_co2_market_t,
    new_co2_market_t, old_tce, new_tce, old_factor_ids, new_factor_ids, old_run_id)
SELECT %(run)s, o.meter_id, o.day, o.enterprise_id,
       CASE WHEN n.meter_id IS NOT NULL AND o.plan_id IS DISTINCT FROM n.plan_id
            THEN 'factor_change' ELSE 'late_data' END,
       o.quantity, coalesce(n.quantity, 0), o.co2_location_t, coalesce(n.co2_location_t, 0),
       o.co2_market_t, coalesce(n.co2_market_t, 0), o.tce_equivalent,
       coalesce(n.tce_equivalent, 0),
       (SELECT factor_ids FROM carbon_plans WHERE plan_id = o.plan_id),
       (SELECT factor_ids FROM carbon_plans WHERE plan_id = n.plan_id), o.run_id
FROM _changed c
JOIN emissions_daily o ON o.meter_id = c.meter_id AND o.day = c.day
LEFT JOIN _rows n ON n.meter_id = c.meter_id AND n.day = c.day
WHERE c.figure_changed AND NOT c.filling
"""

# --- restatements and runs (restatement) -------------------------------------------

LATEST_RUNS = (
    "SELECT run_id, started_at, finished_at, reason, rows_written, rows_restated "
    "FROM accounting_runs ORDER BY run_id DESC LIMIT %s"
)
# Conditions of RESTATEMENTS ({where} joins the chosen ones with AND).
RESTATEMENTS_ALL = "true"
RESTATEMENTS_RUN = "r.run_id = %(run)s"
RESTATEMENTS_PERIOD = "r.day >= %(d0)s AND r.day < %(d1)s"
RESTATEMENTS_ENTERPRISE = "r.enterprise_id = %(ent)s"
RESTATEMENTS_BUCKET = {"day": "r.day", "month": "date_trunc('month', r.day)::date"}
# Old vs new figures per run, enterprise, {bucket} (day or month) and cause.
RESTATEMENTS = """
        SELECT r.run_id, r.enterprise_id, {bucket} AS bucket, r.cause, count(*),
               sum(r.old_co2_location_t), sum(r.new_co2_location_t),
               sum(r.new_co2_location_t - r.old_co2_location_t),
               sum(r.old_co2_market_t), sum(r.new_co2_market_t),
               sum(r.new_co2_market_t - r.old_co2_market_t),
               sum(r.old_tce), sum(r.new_tce), sum(r.new_tce - r.old_tce),
               (SELECT array_agg(DISTINCT x ORDER BY x) FROM restatements r2,
                       unnest(r2.old_factor_ids) x
                WHERE r2.run_id = r.run_id AND r2.enterprise_id = r.enterprise_id),
               (SELECT array_agg(DISTINCT x ORDER BY x) FROM restatements r2,
                       unnest(r2.new_factor_ids) x
                WHERE r2.run_id = r.run_id AND r2.enterprise_id = r.enterprise_id)
        FROM restatements r WHERE {where}
        GROUP BY r.run_id, r.enterprise_id, {bucket}, r.cause
        ORDER BY r.run_id, r.enterprise_id, 3"""

# Market-based Scope 2 of an enterprise-month is computed when read (``emissions``):
# remainder tCO2 x (1 - min(1, green kWh / grid kWh)). A change of its green power
# inputs is logged here, with the figures as they stand on the stored grid import.
DROP_GREEN_TEMP = "DROP TABLE IF EXISTS _green_new"
GREEN_TEMP = """
CREATE TEMP TABLE _green_new (
    enterprise_id text, month date, contract_kwh float8, certificate_kwh float8,
    source text
) ON COMMIT DROP
"""
COPY_GREEN = (
    "COPY _green_new (enterprise_id, month, contract_kwh, certificate_kwh, source) FROM STDIN"
)
GREEN_LOG = """
INSERT INTO green_power_restatements (enterprise_id, month, old_green_kwh, new_green_kwh,
    grid_kwh, old_co2_market_t, new_co2_market_t, source)
SELECT enterprise_id, month, old_green, new_green, grid_kwh, old_t, new_t, source
FROM (
    SELECT n.enterprise_id, n.month, n.source, m.grid_kwh,
           coalesce(g.contract_kwh + g.certificate_kwh, 0) AS old_green,
           n.contract_kwh + n.certificate_kwh AS new_green,
           m.remainder_t * (1 - least(1, coalesce(g.contract_kwh + g.certificate_kwh, 0)
                                         / m.grid_kwh)) AS old_t,
           m.remainder_t * (1 - least(1, (n.contract_kwh + n.certificate_kwh)
                                         / m.grid_kwh)) AS new_t
    FROM _green_new n
    LEFT JOIN green_power g ON g.enterprise_id = n.enterprise_id AND g.month = n.month
    JOIN (SELECT e.enterprise_id, date_trunc('month', e.day)::date AS month,
                 sum(e.quantity) AS grid_kwh, sum(e.co2_market_t) AS remainder_t
          FROM emissions_daily e
          WHERE e.carrier = 'electricity' AND e.scope = '2'
            AND e.day >= (SELECT min(month) FROM _green_new)
            AND e.day < (SELECT max(month) FROM _green_new) + INTERVAL '1 month'
          GROUP BY 1, 2) m ON m.enterprise_id = n.enterprise_id AND m.month = n.month
    WHERE m.grid_kwh > 0
) x
WHERE abs(new_t - old_t) > %(eps)s * greatest(abs(old_t), 1)
"""
# Conditions of GREEN_RESTATEMENTS ({where} joins the chosen ones with AND).
GREEN_RESTATEMENTS_ALL = "true"
GREEN_RESTATEMENTS_PERIOD = "month >= date_trunc('month', %(d0)s::date) AND month < %(d1)s"
GREEN_RESTATEMENTS_ENTERPRISE = "enterprise_id = %(ent)s"
GREEN_RESTATEMENTS = """
        SELECT enterprise_id, month, old_green_kwh, new_green_kwh, grid_kwh,
               old_co2_market_t, new_co2_market_t, new_co2_market_t - old_co2_market_t,
               source, restated_at
        FROM green_power_restatements WHERE {where}
        ORDER BY id"""

# --- economics ---------------------------------------------------------------------

UPSERT_ECONOMICS = """INSERT INTO enterprise_economics (enterprise_id, month, value_added_10k_cny,
                   tax_10k_cny, investment_10k_cny, source) VALUES (%s, %s, %s, %s, %s, %s)
               ON CONFLICT (enterprise_id, month) DO UPDATE SET
                   value_added_10k_cny = excluded.value_added_10k_cny,
                   tax_10k_cny = excluded.tax_10k_cny,
                   investment_10k_cny = excluded.investment_10k_cny,
                   source = excluded.source, updated_at = now()"""
# green_power from _green_new (see GREEN_LOG), rows that really change only.
UPSERT_GREEN_POWER = """
               INSERT INTO green_power (enterprise_id, month, contract_kwh, certificate_kwh,
                   source)
               SELECT enterprise_id, month, contract_kwh, certificate_kwh, source
               FROM _green_new
               ON CONFLICT (enterprise_id, month) DO UPDATE SET
                   contract_kwh = excluded.contract_kwh,
                   certificate_kwh = excluded.certificate_kwh,
                   source = excluded.source, updated_at = now()
               WHERE (green_power.contract_kwh, green_power.certificate_kwh,
                      green_power.source)
                     IS DISTINCT FROM (excluded.contract_kwh, excluded.certificate_kwh,
                                       excluded.source)"""

# --- coverage (coverage: value added matched to the days with data) ----------------

# Value added per enterprise and month for [d0, d1).
ECONOMICS_MONTHLY = """SELECT enterprise_id, month, value_added_10k_cny
           FROM enterprise_economics WHERE month >= %s AND month < %s
             AND value_added_10k_cny IS NOT NULL"""
# Local days with figures per enterprise and month in [d0, d1) (any accounted meter).
DATA_DAYS = """SELECT enterprise_id, date_trunc('month', day)::date, count(DISTINCT day)
           FROM emissions_daily WHERE day >= %s AND day < %s GROUP BY 1, 2"""
# Local days with figures for the park (any enterprise) in [d0, d1).
PARK_DATA_DAYS = "SELECT count(DISTINCT day) FROM emissions_daily WHERE day >= %s AND day < %s"

# --- carbon_budgets (targets.store_budgets) ----------------------------------------

# The year of the first stored figure (budgets are written from that year on).
FIRST_FIGURE_YEAR = "SELECT extract(year FROM min(day))::int FROM emissions_daily"
BUDGETS_TEMP = """
CREATE TEMP TABLE IF NOT EXISTS _budgets (
    month date, enterprise_id text, cap_co2_t float8, budget_co2_t float8,
    intensity_co2_per_10k_cny float8, basis text, profile text, cap_source text
) ON COMMIT DROP;
TRUNCATE _budgets
"""
COPY_BUDGETS = (
    "COPY _budgets (month, enterprise_id, cap_co2_t, budget_co2_t, "
    "intensity_co2_per_10k_cny, basis, profile, cap_source) FROM STDIN"
)
DELETE_STALE_BUDGETS = """
DELETE FROM carbon_budgets b
WHERE NOT EXISTS (SELECT 1 FROM _budgets n
                  WHERE coalesce(n.enterprise_id, '') = coalesce(b.enterprise_id, '')
                    AND n.month = b.month)
"""
UPSERT_BUDGETS = """
INSERT INTO carbon_budgets (month, enterprise_id, cap_co2_t, budget_co2_t,
    intensity_co2_per_10k_cny, basis, profile, cap_source)
SELECT month, enterprise_id, cap_co2_t, budget_co2_t, intensity_co2_per_10k_cny, basis,
       profile, cap_source FROM _budgets
ON CONFLICT ((coalesce(enterprise_id, '')), month) DO UPDATE SET
    cap_co2_t = excluded.cap_co2_t, budget_co2_t = excluded.budget_co2_t,
    intensity_co2_per_10k_cny = excluded.intensity_co2_per_10k_cny,
    basis = excluded.basis, profile = excluded.profile, cap_source = excluded.cap_source,
    updated_at = now()
WHERE (carbon_budgets.cap_co2_t, carbon_budgets.budget_co2_t,
       carbon_budgets.intensity_co2_per_10k_cny, carbon_budgets.basis,
       carbon_budgets.profile, carbon_budgets.cap_source)
      IS DISTINCT FROM (excluded.cap_co2_t, excluded.budget_co2_t,
                        excluded.intensity_co2_per_10k_cny, excluded.basis,
                        excluded.profile, excluded.cap_source)
"""
# The stored budgets of a year (park: enterprise_id NULL), for reports and the demo.
BUDGETS_OF_YEAR = """
SELECT month, enterprise_id, cap_co2_t, budget_co2_t, intensity_co2_per_10k_cny, basis,
       profile, cap_source
FROM carbon_budgets WHERE month >= %s AND month < %s
ORDER BY enterprise_id NULLS FIRST, month
"""

# --- process emissions (process.sync_production, accounting.emissions) -------------

PROCESS_TEMP = """
CREATE TEMP TABLE IF NOT EXISTS _process (
    enterprise_id text, month date, product text, output_t float8, parameters jsonb,
    method text, co2_t float8, unconfirmed boolean, method_source text, source text
) ON COMMIT DROP;
TRUNCATE _process
"""
COPY_PROCESS = (
    "COPY _process (enterprise_id, month, product, output_t, parameters, method, co2_t, "
    "unconfirmed, method_source, source) FROM STDIN"
)
DELETE_STALE_PROCESS = """
DELETE FROM process_emissions p
WHERE NOT EXISTS (SELECT 1 FROM _process n WHERE n.enterprise_id = p.enterprise_id
                  AND n.month = p.month AND n.product = p.product)
"""
UPSERT_PROCESS = """
INSERT INTO process_emissions (enterprise_id, month, product, output_t, parameters, method,
    co2_t, unconfirmed, method_source, source)
SELECT enterprise_id, month, product, output_t, parameters, method, co2_t, unconfirmed,
       method_source, source FROM _process
ON CONFLICT (enterprise_id, month, product) DO UPDATE SET
    output_t = excluded.output_t, parameters = excluded.parameters,
    method = excluded.method, co2_t = excluded.co2_t, unconfirmed = excluded.unconfirmed,
    method_source = excluded.method_source, source = excluded.source, updated_at = now()
WHERE (process_emissions.output_t, process_emissions.parameters, process_emissions.method,
       process_emissions.co2_t, process_emissions.source)
      IS DISTINCT FROM (excluded.output_t, excluded.parameters, excluded.method,
                        excluded.co2_t, excluded.source)
"""
# Process tCO2 per enterprise and local day of [d0, d1): each month's figure spread
# evenly over its days ({where}: AND_PROCESS_ENTERPRISE or nothing).
PROCESS_DAILY = """
SELECT p.enterprise_id, d::date AS day,
       sum(p.co2_t / extract(day FROM (p.month + INTERVAL '1 month' - INTERVAL '1 day'))),
       bool_or(p.unconfirmed), string_agg(DISTINCT p.method, ' ')
FROM process_emissions p,
     generate_series(greatest(p.month, %(d0)s::date),
                     least(p.month + INTERVAL '1 month', %(d1)s::date) - INTERVAL '1 day',
                     INTERVAL '1 day') AS d
WHERE p.month < %(d1)s AND p.month + INTERVAL '1 month' > %(d0)s {where}
GROUP BY 1, 2
"""
AND_PROCESS_ENTERPRISE = "AND p.enterprise_id = %(ent)s"

# --- green certificate register (certificates.sync_register) -----------------------

DELETE_CERTIFICATES = "DELETE FROM green_certificates"
INSERT_CERTIFICATE = """
INSERT INTO green_certificates (enterprise_id, serials, serial_prefix, serial_first,
    serial_last, mwh, generation_from, generation_to, cancelled_on, contract_id, source)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""
# (enterprise, local day) pairs with metered figures in [d0, d1): the days with data of
# targets status (process emissions alone do not make a day covered).
METERED_DAYS = """SELECT DISTINCT enterprise_id, day FROM emissions_daily
           WHERE day >= %s AND day < %s"""
# Process tCO2 per enterprise on days of [d0, d1) without metered figures of it.
PROCESS_UNMETERED = """
SELECT p.enterprise_id,
       sum(p.co2_t / extract(day FROM (p.month + INTERVAL '1 month' - INTERVAL '1 day')))
FROM process_emissions p,
     generate_series(greatest(p.month, %(d0)s::date),
                     least(p.month + INTERVAL '1 month', %(d1)s::date) - INTERVAL '1 day',
                     INTERVAL '1 day') AS d
WHERE p.month < %(d1)s AND p.month + INTERVAL '1 month' > %(d0)s
  AND NOT EXISTS (SELECT 1 FROM emissions_daily e
                  WHERE e.enterprise_id = p.enterprise_id AND e.day = d::date)
GROUP BY 1
"""
