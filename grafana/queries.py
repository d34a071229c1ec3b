"""Every panel's SQL, by name (habit 14), as Grafana receives it: with macros.

Rules every statement follows (issue #14):

- Days and months are the park's local ones: the range CTE ``r`` turns the dashboard's
  ``$__timeFrom()`` / ``$__timeTo()`` into the local days whose start lies in
  ``[from, to)`` (``d0`` first, ``d1`` the day after the last), ``y0``/``y1`` the local
  year of the last day. ``$__timeGroup`` (UTC-aligned) is never used; timestamps are
  compared half-open (``ts >= $__timeFrom() AND ts < $__timeTo()``), never with
  ``$__timeFilter`` (BETWEEN, inclusive at both ends).
- Only rollups and accounting tables: ``emissions_daily`` (one row per meter and local
  day), ``carbon_budgets``, ``green_power``, ``enterprise_economics``, ``usage_daily`` and
  ``usage_day_quality`` (views in plain mode, continuous aggregates in timescale mode),
  15-minute ``usage`` only for one enterprise's meters over at most 31 days (load curves)
  or the park over at most 2 days (ingest rate), the newest reading of each meter by
  its primary key, meter events and dead letters.
- Figures are those of ``parkcarbon.carbon``: Scope 1+2 water excluded, market-based
  Scope 2 electricity reduced by the enterprise-month's green power share
  ``min(1, green / grid import of the whole month)``, budgets per local day as the month's
  budget over its days (``targets status``), ratios NULL where the denominator is zero.

Placeholders filled when a board is built (never user input): ``{tz}`` the park
timezone as a SQL literal, ``{tce}`` the emissions_daily tce column of the energy basis,
``{min_coverage}`` the setting targets_min_coverage_pct, ``{slot}`` the usage slot length
in seconds (``parkcarbon.units.SLOT_SECONDS``: usage is 15-minute slots whatever the
meter's reading interval).
``$enterprise`` is the enterprise board's template variable (single value: Grafana
doubles its quotes, the SQL quotes it).
"""

from __future__ import annotations

# --- fragments ---------------------------------------------------------------------

# Local days [d0, d1) whose start lies in [from, to); the local year [y0, y1) of d1 - 1.
# NOT MATERIALIZED: referenced many times, it would be computed once and joined, and
# `e.day >= r.d0` could not bound an index scan; inlined, the bounds are expressions of
# the query's constants and emissions_daily is read by its (day, meter_id) key.
RANGE = """r AS NOT MATERIALIZED (
  SELECT d0, d1, date_trunc('year', (d1 - 1)::timestamp)::date AS y0,
         (date_trunc('year', (d1 - 1)::timestamp) + interval '1 year')::date AS y1,
         (d0::timestamp AT TIME ZONE {tz}) AS t0, (d1::timestamp AT TIME ZONE {tz}) AS t1
  FROM (SELECT (($__timeFrom()::timestamptz AT TIME ZONE {tz})
                 - interval '1 microsecond')::date + 1 AS d0,
               (($__timeTo()::timestamptz AT TIME ZONE {tz})
                 - interval '1 microsecond')::date + 1 AS d1) x
)"""


def figures(lo: str, hi: str, enterprise: str | None = None) -> str:
    """CTEs ``gp`` (green power share per enterprise and month), ``pe`` (process
    emissions, Scope 1: each month's figure spread evenly over its local days), ``m``
    (metered figures) and ``d``: figures per enterprise and local day over days
    [lo, hi) (expressions over ``r``), one enterprise's only if given."""
    where_e = "true" if enterprise is None else f"e.enterprise_id = '{enterprise}'"
    where_p = "true" if enterprise is None else f"p.enterprise_id = '{enterprise}'"
    return f"""gp AS (
  SELECT g.enterprise_id, g.month,
         least(1.0, (g.contract_kwh + g.certificate_kwh) / nullif(m.grid_kwh, 0)) AS share
  FROM green_power g
  JOIN (SELECT e.enterprise_id, date_trunc('month', e.day::timestamp)::date AS month,
               sum(e.quantity) AS grid_kwh
        FROM emissions_daily e, r
        WHERE e.carrier = 'electricity' AND e.scope = '2'
          AND e.day >= date_trunc('month', ({lo})::timestamp)::date
          AND e.day < (date_trunc('month', ({hi} - 1)::timestamp) + interval '1 month')::date
        GROUP BY 1, 2) m USING (enterprise_id, month)
),
pe AS (
  SELECT p.enterprise_id, x.day::date AS day,
         sum(p.co2_t / ((p.month + interval '1 month')::date - p.month)) AS co2
  FROM process_emissions p CROSS JOIN r,
       generate_series(greatest(p.month, {lo})::timestamp,
                       (least((p.month + interval '1 month')::date, {hi}) - 1)::timestamp,
                       interval '1 day') AS x(day)
  WHERE p.month < {hi} AND (p.month + interval '1 month')::date > {lo} AND {where_p}
  GROUP BY 1, 2
),
m AS (
  SELECT e.enterprise_id, e.day,
    coalesce(sum(e.co2_location_t) FILTER (WHERE e.scope = '1'), 0) AS s1_location,
    coalesce(sum(e.co2_market_t) FILTER (WHERE e.scope = '1'), 0) AS s1_market,
    coalesce(sum(e.co2_location_t) FILTER (WHERE e.scope = '2'), 0) AS s2_location,
    coalesce(sum(e.co2_market_t * CASE WHEN e.carrier = 'electricity'
                 THEN 1 - coalesce(gp.share, 0) ELSE 1 END)
             FILTER (WHERE e.scope = '2'), 0) AS s2_market,
    coalesce(sum(e.{{tce}}) FILTER (WHERE e.scope <> '3'), 0) AS tce,
    coalesce(sum(e.quantity) FILTER (WHERE e.carrier = 'electricity' AND e.scope = '2'), 0)
      AS grid_kwh,
    coalesce(sum(e.quantity * coalesce(gp.share, 0))
             FILTER (WHERE e.carrier = 'electricity' AND e.scope = '2'), 0) AS green_kwh,
    coalesce(sum(e.quantity) FILTER (WHERE e.carrier = 'electricity' AND e.scope = 'pv'), 0)
      AS pv_kwh,
    coalesce(sum(e.quantity) FILTER (WHERE e.carrier = 'electricity' AND e.scope = 'export'),
             0) AS export_kwh
  FROM emissions_daily e
  CROSS JOIN r
  LEFT JOIN gp ON gp.enterprise_id = e.enterprise_id
              AND gp.month = date_trunc('month', e.day::timestamp)::date
  WHERE e.day >= {lo} AND e.day < {hi} AND {where_e}
  GROUP BY 1, 2
),
d AS (
  SELECT enterprise_id, day,
         coalesce(m.s1_location, 0) + coalesce(pe.co2, 0) AS s1_location,
         coalesce(m.s1_market, 0) + coalesce(pe.co2, 0) AS s1_market,
         coalesce(m.s2_location, 0) AS s2_location, coalesce(m.s2_market, 0) AS s2_market,
         coalesce(pe.co2, 0) AS s1_process, m.enterprise_id IS NOT NULL AS metered,
         coalesce(m.tce, 0) AS tce,
         coalesce(m.grid_kwh, 0) AS grid_kwh, coalesce(m.green_kwh, 0) AS green_kwh,
         coalesce(m.pv_kwh, 0) AS pv_kwh, coalesce(m.export_kwh, 0) AS export_kwh
  FROM m FULL JOIN pe USING (enterprise_id, day)
)"""


# The Scope 1+2 of a row of ``d`` on a basis column ``basis`` (location | market).
SCOPE12_BY_BASIS = (
    "CASE WHEN {basis} = 'market' THEN {d}.s1_market + {d}.s2_market "
    "ELSE {d}.s1_location + {d}.s2_location END"
)


def _scope12(basis: str, d: str = "d") -> str:
    return SCOPE12_BY_BASIS.format(basis=basis, d=d)


# --- board 1: park overview ----------------------------------------------------------

# Period (the dashboard range) against the prorated budget; the basis of the budgets.
PERIOD_VS_BUDGET = """WITH {range},
{figures},
b AS (
  SELECT b.month, b.budget_co2_t, b.basis,
         ((b.month + interval '1 month')::date - b.month) AS n
  FROM carbon_budgets b, r
  WHERE {subject} AND b.month >= date_trunc('month', r.d0::timestamp)::date AND b.month < r.d1
),
k AS (SELECT coalesce(min(basis), 'location') AS basis FROM b)
SELECT (SELECT coalesce(sum({scope12}), 0) FROM d, k) AS period_co2_t,
       (SELECT sum(b.budget_co2_t * greatest(0, least(r.d1, b.month + b.n)
                                              - greatest(r.d0, b.month))::float8 / b.n)
        FROM b, r) AS period_budget_co2_t,
       100 * (SELECT coalesce(sum({scope12}), 0) FROM d, k)
         / nullif((SELECT sum(b.budget_co2_t * greatest(0, least(r.d1, b.month + b.n)
                                                     - greatest(r.d0, b.month))::float8 / b.n)
                   FROM b, r), 0) AS period_vs_budget_pct,
       (SELECT basis FROM k) AS basis"""


def period_vs_budget(enterprise: str | None) -> str:
    """The park (None) or the ``$enterprise`` variable's enterprise."""
    if enterprise is None:
        subject = "b.enterprise_id IS NULL"
    else:
        subject = f"b.enterprise_id = '{enterprise}'"
    return PERIOD_VS_BUDGET.format(
        range=RANGE,
        figures=figures("r.d0", "r.d1", enterprise),
        subject=subject,
        scope12=_scope12("k.basis"),
    )


# targets status for the year of the range end, as `parkcarbon targets status --as-of`
# the range's last day (or today, whichever is earlier) prints it: one row per subject
# with budgets (PARK and enterprises). Coverage: days with data of the days elapsed;
# the YTD budget is that of the days with data, the pace YTD / that budget, the forecast
# the days with data plus the other days of the year at that pace ({min_coverage}: the
# setting targets_min_coverage_pct). Days with data are an enterprise's days with
# metered figures (process emissions alone, from monthly production data, do not cover
# a day: those days are projected at the pace); the park's, days any enterprise has.
TARGETS_STATUS = """WITH {range},
{figures},
e AS (
  SELECT least(r.d1 - 1, (now() AT TIME ZONE {{tz}})::date) AS end_day, r.y0, r.y1 FROM r
),
b AS (
  SELECT coalesce(b.enterprise_id, 'PARK') AS subject, b.month, b.budget_co2_t, b.cap_co2_t,
         b.basis, b.cap_source, ((b.month + interval '1 month')::date - b.month) AS n
  FROM carbon_budgets b, r WHERE b.month >= r.y0 AND b.month < r.y1
),
s AS (
  SELECT subject, min(basis) AS basis, max(cap_co2_t) AS cap_co2_t,
         min(cap_source) AS cap_source, sum(budget_co2_t) AS year_budget
  FROM b GROUP BY subject
),
ds AS (
  SELECT x.* FROM (
    SELECT enterprise_id AS subject, day, s1_location + s2_location AS loc,
           s1_market + s2_market AS mkt FROM d WHERE metered
    UNION ALL
    SELECT 'PARK', day, sum(s1_location + s2_location), sum(s1_market + s2_market)
    FROM d WHERE metered GROUP BY day
  ) x, e WHERE x.day <= e.end_day
),
a AS (
  SELECT s.subject, max(ds.day) AS data_through, count(ds.day) AS days_with_data,
         coalesce(sum(CASE WHEN s.basis = 'market' THEN ds.mkt ELSE ds.loc END), 0) AS ytd,
         sum(bd.budget_co2_t / bd.n) AS ytd_budget
  FROM s LEFT JOIN ds USING (subject)
  LEFT JOIN b bd ON bd.subject = s.subject
                AND bd.month = date_trunc('month', ds.day::timestamp)::date
  GROUP BY s.subject
),
f AS (
  SELECT s.subject, s.basis, s.cap_co2_t, s.cap_source, a.data_through, a.days_with_data,
         greatest(0, e.end_day - e.y0 + 1) AS days_elapsed, a.ytd, a.ytd_budget,
         CASE WHEN a.ytd_budget > 0 THEN a.ytd / a.ytd_budget ELSE 0 END AS pace,
         s.year_budget
  FROM s JOIN a USING (subject) CROSS JOIN e
),
g AS (
  SELECT f.*, f.ytd + f.pace * (f.year_budget - f.ytd_budget) AS forecast,
         (100.0 * f.days_with_data / nullif(f.days_elapsed, 0))::float8 AS coverage_pct
  FROM f
),
pj AS (
  SELECT g.subject, x.day::date AS day,
         sum(CASE WHEN g.basis = 'market' THEN ds.mkt ELSE ds.loc END)
           OVER (PARTITION BY g.subject ORDER BY x.day) AS cum_actual,
         sum(coalesce(CASE WHEN g.basis = 'market' THEN ds.mkt ELSE ds.loc END,
                      g.pace * b.budget_co2_t / b.n))
           OVER (PARTITION BY g.subject ORDER BY x.day) AS cum_projected
  FROM g CROSS JOIN r
  CROSS JOIN generate_series(r.y0::timestamp, (r.y1 - 1)::timestamp, interval '1 day') x(day)
  JOIN b ON b.subject = g.subject AND b.month = date_trunc('month', x.day)::date
  LEFT JOIN ds ON ds.subject = g.subject AND ds.day = x.day::date
  WHERE g.data_through IS NOT NULL AND (g.ytd >= g.cap_co2_t OR g.forecast > g.cap_co2_t)
),
ro AS (
  SELECT g.subject,
         CASE WHEN g.ytd >= g.cap_co2_t THEN min(pj.day) FILTER (WHERE pj.cum_actual >= g.cap_co2_t)
              ELSE min(pj.day) FILTER (WHERE pj.cum_projected >= g.cap_co2_t) END AS runout_date
  FROM g JOIN pj USING (subject)
  GROUP BY g.subject, g.ytd, g.cap_co2_t
)
SELECT g.subject, g.basis, g.cap_co2_t, g.cap_source, g.data_through, g.days_with_data,
       g.days_elapsed, g.coverage_pct,
       g.ytd AS ytd_co2_t, g.ytd_budget AS ytd_budget_co2_t,
       CASE WHEN g.data_through IS NOT NULL THEN 100 * g.pace END AS ytd_vs_budget_pct,
       CASE WHEN g.data_through IS NOT NULL THEN 100 * g.ytd / nullif(g.cap_co2_t, 0) END
         AS burn_pct,
       g.forecast AS forecast_co2_t,
       100 * g.forecast / nullif(g.cap_co2_t, 0) AS forecast_vs_cap_pct,
       ro.runout_date,
       CASE
         WHEN g.data_through IS NULL THEN 'no_data'
         WHEN g.ytd >= g.cap_co2_t THEN 'over_cap'
         WHEN g.coverage_pct < {{min_coverage}} THEN 'insufficient_data'
         WHEN g.forecast > g.cap_co2_t THEN 'at_risk'
         ELSE 'on_track'
       END AS status
FROM g LEFT JOIN ro USING (subject) {where}
ORDER BY g.subject = 'PARK' DESC, g.subject"""


def targets_status(subject: str | None = None) -> str:
    """Every subject, or one (``'PARK'`` or an enterprise id / ``$enterprise``)."""
    where = "" if subject is None else f"WHERE g.subject = '{subject}'"
    return TARGETS_STATUS.format(range=RANGE, figures=figures("r.y0", "r.d1"), where=where)



# Scope 1 (fuels and process) and 2 (location-based) per local day, park total.
DAILY_EMISSIONS = f"""WITH {RANGE},
{figures("r.d0", "r.d1")}
SELECT (d.day::timestamp AT TIME ZONE {{tz}}) AS "time",
       sum(d.s1_location) AS scope1_co2_t, sum(d.s2_location) AS scope2_co2_t,
       sum(d.s1_location + d.s2_location) AS scope12_co2_t
FROM d GROUP BY d.day ORDER BY d.day"""

# Energy by carrier (canonical physical unit and tce), park or one enterprise.
ENERGY_BY_CARRIER = """WITH {range}
SELECT e.carrier, e.scope, sum(e.quantity) AS quantity, min(e.unit) AS unit,
       sum(e.{{tce}}) AS tce, sum(e.co2_location_t) AS co2_location_t
FROM emissions_daily e, r
WHERE e.day >= r.d0 AND e.day < r.d1 AND {where}
GROUP BY 1, 2
ORDER BY 1, 2"""


def energy_by_carrier(enterprise: str | None = None) -> str:
    where = "true" if enterprise is None else f"e.enterprise_id = '{enterprise}'"
    return ENERGY_BY_CARRIER.format(range=RANGE, where=where)


# Location- and market-based Scope 2 per local day (park).
SCOPE2_BASES = """WITH {range},
{figures}
SELECT (d.day::timestamp AT TIME ZONE {{tz}}) AS "time",
       sum(d.s2_location) AS scope2_location_co2_t, sum(d.s2_market) AS scope2_market_co2_t
FROM d GROUP BY d.day ORDER BY d.day""".format(range=RANGE, figures=figures("r.d0", "r.d1"))

# Cumulative actual against the budget line and the cap for every day of the year, and
# the forecast line: the days with (metered) data, the other days at the YTD pace, as
# targets status counts them.
PATHWAY = """WITH {range},
{figures},
e AS (SELECT least(r.d1 - 1, (now() AT TIME ZONE {{tz}})::date) AS end_day FROM r),
k AS (
  SELECT coalesce(min(b.basis), 'location') AS basis FROM carbon_budgets b, r
  WHERE b.enterprise_id IS NULL AND b.month >= r.y0 AND b.month < r.y1
),
pd AS (
  SELECT d.day, sum({scope12}) AS co2 FROM d, k, e
  WHERE d.metered AND d.day <= e.end_day GROUP BY d.day
),
pb AS (
  SELECT b.month, b.budget_co2_t, b.cap_co2_t,
         ((b.month + interval '1 month')::date - b.month) AS n
  FROM carbon_budgets b, r
  WHERE b.enterprise_id IS NULL AND b.month >= r.y0 AND b.month < r.y1
),
s AS (
  SELECT x.day::date AS day, pd.co2, pb.budget_co2_t / pb.n AS day_budget, pb.cap_co2_t
  FROM r CROSS JOIN generate_series(r.y0::timestamp, (r.y1 - 1)::timestamp, interval '1 day')
         AS x(day)
  LEFT JOIN pd ON pd.day = x.day::date
  LEFT JOIN pb ON pb.month = date_trunc('month', x.day)::date
),
kk AS (
  SELECT CASE WHEN sum(day_budget) FILTER (WHERE co2 IS NOT NULL) > 0
              THEN sum(co2) / sum(day_budget) FILTER (WHERE co2 IS NOT NULL)
              ELSE 0 END AS pace
  FROM s
),
c AS (
  SELECT s.day, sum(coalesce(s.co2, 0)) OVER w AS cum_actual,
         sum(s.day_budget) OVER w AS cum_budget,
         sum(coalesce(s.co2, kk.pace * s.day_budget)) OVER w AS cum_projected, s.cap_co2_t
  FROM s CROSS JOIN kk WINDOW w AS (ORDER BY s.day)
),
last AS (SELECT max(day) AS day FROM pd)
SELECT (c.day::timestamp AT TIME ZONE {{tz}}) AS "time",
       CASE WHEN c.day <= last.day THEN c.cum_actual END AS cumulative_co2_t,
       c.cum_budget AS cumulative_budget_co2_t,
       c.cap_co2_t AS cap_co2_t,
       CASE WHEN c.day >= last.day THEN c.cum_projected END AS forecast_co2_t
FROM c CROSS JOIN last
ORDER BY c.day""".format(
    range=RANGE, figures=figures("r.y0", "r.d1"), scope12=_scope12("k.basis")
)


# Top emitters (location-based Scope 1+2): share of the park, month-on-month change
# (the same range one month earlier).
TOP_EMITTERS = f"""WITH {RANGE},
{figures("(r.d0 - interval '1 month')::date", "r.d1")},
cur AS (
  SELECT d.enterprise_id, sum(d.s1_location + d.s2_location) AS co2
  FROM d, r WHERE d.day >= r.d0 GROUP BY 1
),
prev AS (
  SELECT d.enterprise_id, sum(d.s1_location + d.s2_location) AS co2
  FROM d, r
  WHERE d.day >= (r.d0 - interval '1 month')::date AND d.day < (r.d1 - interval '1 month')::date
  GROUP BY 1
)
SELECT c.enterprise_id, en.name_zh, c.co2 AS scope12_co2_t,
       100 * c.co2 / nullif(sum(c.co2) OVER (), 0) AS share_pct,
       p.co2 AS previous_co2_t, 100 * (c.co2 - p.co2) / nullif(p.co2, 0) AS mom_change_pct
FROM cur c LEFT JOIN prev p USING (enterprise_id)
LEFT JOIN enterprises en ON en.id = c.enterprise_id
ORDER BY c.co2 DESC, c.enterprise_id
LIMIT 10"""

# Intensities, non-fossil and green-power share per enterprise and for the park
# (`parkcarbon indicators`, location-based). Like with like: the intensities divide the
# tCO2 of the days with metered figures by the value added matched to those days (a
# month's value added x its days with figures / its days).
INDICATORS = """WITH {range},
{figures},
em AS (
  SELECT enterprise_id, sum(s1_location + s2_location) AS co2_t, sum(tce) AS tce,
         sum(grid_kwh) AS grid_kwh, greatest(0, sum(pv_kwh) - sum(export_kwh)) AS pv_self_kwh,
         sum(green_kwh) AS green_kwh,
         coalesce(sum(s1_process) FILTER (WHERE NOT metered), 0) AS co2_unmetered_t
  FROM d GROUP BY 1
),
dd AS (
  SELECT enterprise_id, date_trunc('month', day::timestamp)::date AS month, count(*) AS n
  FROM d WHERE metered GROUP BY 1, 2
),
mv AS (
  SELECT x.enterprise_id,
         sum(x.value_added_10k_cny * dd.n / ((x.month + interval '1 month')::date - x.month))
           AS va_matched
  FROM enterprise_economics x JOIN dd USING (enterprise_id, month) GROUP BY 1
),
ec AS (
  SELECT x.enterprise_id, sum(x.value_added_10k_cny) AS va, sum(x.tax_10k_cny) AS tax,
         sum(x.investment_10k_cny) AS inv
  FROM enterprise_economics x, r WHERE x.month >= r.d0 AND x.month < r.d1 GROUP BY 1
),
rows AS (
  SELECT coalesce(em.enterprise_id, ec.enterprise_id) AS enterprise_id, en.name_zh,
         en.land_area_mu, em.co2_t, em.tce, em.grid_kwh, em.pv_self_kwh, em.green_kwh,
         ec.va, ec.tax, ec.inv, em.co2_unmetered_t, mv.va_matched
  FROM em FULL JOIN ec USING (enterprise_id)
  LEFT JOIN mv ON mv.enterprise_id = coalesce(em.enterprise_id, ec.enterprise_id)
  LEFT JOIN enterprises en ON en.id = coalesce(em.enterprise_id, ec.enterprise_id)
),
t AS (
  SELECT * FROM rows
  UNION ALL
  SELECT 'PARK', (SELECT name_zh FROM park LIMIT 1), (SELECT land_area_mu FROM park LIMIT 1),
         sum(co2_t), sum(tce), sum(grid_kwh), sum(pv_self_kwh), sum(green_kwh),
         sum(va), sum(tax), sum(inv), sum(co2_unmetered_t), sum(va_matched)
  FROM rows
),
k AS (
  SELECT sum(e.{{tce}}) / nullif(sum(e.quantity), 0) AS tce_per_kwh
  FROM emissions_daily e, r
  WHERE e.carrier = 'electricity' AND e.scope IN ('2', 'pv') AND e.day >= r.d0 AND e.day < r.d1
)
SELECT t.enterprise_id, t.name_zh, t.co2_t, t.tce,
       (t.co2_t - coalesce(t.co2_unmetered_t, 0)) / nullif(t.va_matched, 0) AS co2_per_10k_cny,
       t.tce / nullif(t.va_matched, 0) AS tce_per_10k_cny,
       t.co2_t / nullif(t.tce, 0) AS co2_per_tce,
       t.co2_t / nullif(t.land_area_mu, 0) AS co2_per_mu,
       t.tce / nullif(t.land_area_mu, 0) AS tce_per_mu,
       100 * (coalesce(t.pv_self_kwh, 0) + coalesce(t.green_kwh, 0)) * k.tce_per_kwh
         / nullif(t.tce, 0) AS non_fossil_share_pct,
       100 * (coalesce(t.pv_self_kwh, 0) + coalesce(t.green_kwh, 0))
         / nullif(coalesce(t.grid_kwh, 0) + coalesce(t.pv_self_kwh, 0), 0)
         AS green_power_share_pct
FROM t CROSS JOIN k {where}
ORDER BY t.enterprise_id = 'PARK', t.enterprise_id"""


def indicators(park_only: bool = False) -> str:
    return INDICATORS.format(
        range=RANGE,
        figures=figures("r.d0", "r.d1"),
        where="WHERE t.enterprise_id = 'PARK'" if park_only else "",
    )


# --- board 2: enterprise detail ------------------------------------------------------

# The enterprise variable: id as value, "id 名称" as text.
ENTERPRISE_VARIABLE = (
    "SELECT id AS __value, id || ' ' || name_zh AS __text FROM enterprises "
    "WHERE active ORDER BY id"
)

# The default value of the enterprise variable (`grafana check`).
FIRST_ENTERPRISE = "SELECT min(id) FROM enterprises WHERE active"

# Electricity load of the enterprise's meters in kW: 15-minute slots over ranges up to
# 31 days, the daily mean (usage_daily) beyond.
LOAD_CURVE = f"""WITH {RANGE}
SELECT u.ts AS "time", u.meter_id AS metric, u.quantity * 3600.0 / {{slot}} AS kw
FROM meters m JOIN usage u ON u.meter_id = m.id
WHERE m.enterprise_id = '$enterprise' AND m.carrier = 'electricity'
  AND u.ts >= $__timeFrom() AND u.ts < $__timeTo()
  AND $__timeTo()::timestamptz - $__timeFrom()::timestamptz <= interval '31 days'
UNION ALL
SELECT u.bucket, u.meter_id, u.quantity * 3600.0 / (u.slots * {{slot}})
FROM meters m JOIN usage_daily u ON u.meter_id = m.id CROSS JOIN r
WHERE m.enterprise_id = '$enterprise' AND m.carrier = 'electricity'
  AND u.bucket >= r.t0 AND u.bucket < r.t1
  AND $__timeTo()::timestamptz - $__timeFrom()::timestamptz > interval '31 days'
ORDER BY 1, 2"""

# The enterprise's meters: newest reading up to the range end, completeness (measured
# slots of the expected ones, up to now), estimated slots, events in the range.
METERS = """WITH {range},
q AS (
  SELECT u.meter_id, sum(u.slots - u.estimated_slots) AS measured,
         sum(u.estimated_slots) AS estimated
  FROM usage_day_quality u JOIN meters m ON m.id = u.meter_id CROSS JOIN r
  WHERE {where} AND u.bucket >= r.t0 AND u.bucket < r.t1
  GROUP BY 1
),
ev AS (
  SELECT x.meter_id, count(*) AS events
  FROM meter_events x JOIN meters m ON m.id = x.meter_id
  WHERE {where} AND x.ts >= $__timeFrom() AND x.ts < $__timeTo()
  GROUP BY 1
)
SELECT m.enterprise_id, m.id AS meter_id, m.carrier, m.role, m.unit,
       lr.ts AS last_reading_at, lr.value AS last_value,
       (100.0 * coalesce(q.measured, 0)
         / nullif(extract(epoch FROM least(r.t1, now()) - r.t0) / {{slot}}, 0))::float8
         AS completeness_pct,
       coalesce(q.estimated, 0) AS estimated_slots,
       coalesce(ev.events, 0) AS events
FROM meters m CROSS JOIN r
LEFT JOIN LATERAL (
  SELECT x.ts, x.value FROM readings x
  WHERE x.meter_id = m.id AND x.ts < $__timeTo() ORDER BY x.ts DESC LIMIT 1
) lr ON true
LEFT JOIN q ON q.meter_id = m.id
LEFT JOIN ev ON ev.meter_id = m.id
WHERE {where}
ORDER BY m.enterprise_id, m.id"""


def meters(enterprise: str | None) -> str:
    where = "m.active" if enterprise is None else f"m.enterprise_id = '{enterprise}'"
    return METERS.format(range=RANGE, where=where)


# Meter events in the range (newest first), park or one enterprise.
EVENTS = """SELECT x.ts AS "time", m.enterprise_id, x.meter_id, x.kind, x.ts_start,
       x.quantity, x.detail::text AS detail
FROM meter_events x JOIN meters m ON m.id = x.meter_id
WHERE {where} AND x.ts >= $__timeFrom() AND x.ts < $__timeTo()
ORDER BY x.ts DESC, x.meter_id, x.kind
LIMIT 500"""


def events(enterprise: str | None) -> str:
    where = "true" if enterprise is None else f"m.enterprise_id = '{enterprise}'"
    return EVENTS.format(where=where)


# --- board 3: data quality -----------------------------------------------------------

# Active meters without a reading for more than three intervals, as of the range end
# (or now, whichever is earlier).
SILENT_METERS = """WITH ref AS (SELECT least(now(), $__timeTo()::timestamptz) AS at)
SELECT m.enterprise_id, m.id AS meter_id, m.carrier, lr.ts AS last_reading_at,
       (extract(epoch FROM ref.at - lr.ts) / 3600.0)::float8 AS silent_hours
FROM meters m CROSS JOIN ref
LEFT JOIN LATERAL (
  SELECT x.ts FROM readings x WHERE x.meter_id = m.id AND x.ts <= ref.at
  ORDER BY x.ts DESC LIMIT 1
) lr ON true
WHERE m.active
  AND (lr.ts IS NULL OR ref.at - lr.ts > 3 * m.interval_seconds * interval '1 second')
ORDER BY lr.ts NULLS FIRST, m.id"""

# Completeness per enterprise and local day: measured (not estimated) slots of the
# expected ones of its active meters; the 90 % rule is the panel's threshold.
COMPLETENESS_DAILY = f"""WITH {RANGE},
x AS (
  SELECT enterprise_id, count(*) / {{slot}}.0 AS slots_per_second
  FROM meters WHERE active GROUP BY 1
),
q AS (
  SELECT m.enterprise_id, u.bucket, sum(u.slots - u.estimated_slots) AS measured
  FROM usage_day_quality u JOIN meters m ON m.id = u.meter_id AND m.active CROSS JOIN r
  WHERE u.bucket >= r.t0 AND u.bucket < r.t1
  GROUP BY 1, 2
),
days AS (
  SELECT (g::timestamp AT TIME ZONE {{tz}}) AS bucket,
         extract(epoch FROM ((g + interval '1 day')::timestamp AT TIME ZONE {{tz}})
                            - (g::timestamp AT TIME ZONE {{tz}})) AS seconds
  FROM r, generate_series(r.d0::timestamp, (r.d1 - 1)::timestamp, interval '1 day') g
)
SELECT days.bucket AS "time", x.enterprise_id AS metric,
       (100.0 * coalesce(q.measured, 0) / (days.seconds * x.slots_per_second))::float8
         AS measured_pct
FROM days CROSS JOIN x
LEFT JOIN q ON q.enterprise_id = x.enterprise_id AND q.bucket = days.bucket
WHERE days.bucket < now()
ORDER BY 1, 2"""

# Per enterprise over the range: days below the 90 % rule, measured and estimated share.
COMPLETENESS_SUMMARY = """WITH {range},
x AS (
  SELECT enterprise_id, count(*) / {{slot}}.0 AS slots_per_second
  FROM meters WHERE active GROUP BY 1
),
q AS (
  SELECT m.enterprise_id, u.bucket, sum(u.slots - u.estimated_slots) AS measured,
         sum(u.estimated_slots) AS estimated, sum(u.slots) AS slots
  FROM usage_day_quality u JOIN meters m ON m.id = u.meter_id AND m.active CROSS JOIN r
  WHERE u.bucket >= r.t0 AND u.bucket < r.t1
  GROUP BY 1, 2
),
days AS (
  SELECT (g::timestamp AT TIME ZONE {{tz}}) AS bucket,
         extract(epoch FROM ((g + interval '1 day')::timestamp AT TIME ZONE {{tz}})
                            - (g::timestamp AT TIME ZONE {{tz}})) AS seconds
  FROM r, generate_series(r.d0::timestamp, (r.d1 - 1)::timestamp, interval '1 day') g
  WHERE (g::timestamp AT TIME ZONE {{tz}}) < now()
),
ed AS (
  SELECT x.enterprise_id, days.bucket, days.seconds * x.slots_per_second AS expected,
         coalesce(q.measured, 0) AS measured, coalesce(q.estimated, 0) AS estimated,
         coalesce(q.slots, 0) AS slots
  FROM days CROSS JOIN x
  LEFT JOIN q ON q.enterprise_id = x.enterprise_id AND q.bucket = days.bucket
),
t AS (
  SELECT enterprise_id, count(*) AS days,
         count(*) FILTER (WHERE measured < 0.9 * expected) AS days_below_90,
         sum(measured) AS measured, sum(estimated) AS estimated, sum(slots) AS slots,
         sum(expected) AS expected
  FROM ed GROUP BY 1
)
SELECT enterprise_id, days, days_below_90,
       (100.0 * measured / nullif(expected, 0))::float8 AS measured_pct,
       (100.0 * estimated / nullif(slots, 0))::float8 AS estimated_pct
FROM (
  SELECT * FROM t
  UNION ALL
  SELECT 'PARK', max(days), sum(days_below_90), sum(measured), sum(estimated), sum(slots),
         sum(expected) FROM t
) s {where}
ORDER BY enterprise_id = 'PARK', enterprise_id"""


def completeness_summary(park_only: bool = False) -> str:
    where = "WHERE enterprise_id = 'PARK'" if park_only else ""
    return COMPLETENESS_SUMMARY.format(range=RANGE, where=where)


# Meter events by enterprise and kind in the range.
EVENTS_BY_KIND = """SELECT m.enterprise_id, x.kind, count(*) AS events
FROM meter_events x JOIN meters m ON m.id = x.meter_id
WHERE x.ts >= $__timeFrom() AND x.ts < $__timeTo()
GROUP BY 1, 2
ORDER BY 1, 2"""

# Dead letters received in the range by reason and enterprise (open: not replayed).
DEAD_LETTERS = """SELECT reason_code, coalesce(enterprise_id, '-') AS enterprise_id,
       count(*) AS dead_letters, count(*) FILTER (WHERE replayed_at IS NULL) AS open
FROM dead_letters
WHERE received_at >= $__timeFrom() AND received_at < $__timeTo()
GROUP BY 1, 2
ORDER BY 3 DESC, 1, 2"""

# Ingest rate: 15-minute slots stored per hour (hourly over ranges up to 2 days, as the
# daily mean per hour beyond), and dead letters per hour.
INGEST_RATE = f"""WITH {RANGE}
SELECT date_bin(interval '1 hour', u.ts, r.t0) AS "time", count(*)::float8 AS slots_per_hour
FROM usage u CROSS JOIN r
WHERE u.ts >= $__timeFrom() AND u.ts < $__timeTo()
  AND $__timeTo()::timestamptz - $__timeFrom()::timestamptz <= interval '2 days'
GROUP BY 1
UNION ALL
SELECT u.bucket, (sum(u.slots) / 24.0)::float8
FROM usage_day_quality u CROSS JOIN r
WHERE u.bucket >= r.t0 AND u.bucket < r.t1
  AND $__timeTo()::timestamptz - $__timeFrom()::timestamptz > interval '2 days'
GROUP BY 1
ORDER BY 1"""

DEAD_LETTERS_PER_HOUR = """SELECT date_trunc('hour', received_at) AS "time",
       count(*) AS dead_letters_per_hour
FROM dead_letters
WHERE received_at >= $__timeFrom() AND received_at < $__timeTo()
GROUP BY 1
ORDER BY 1"""


# --- board 4: alerts (tables of schema/0010_alerts.sql) --------------------------------

# Instances not normal now (firing, pending, recovering, nodata, error), worst first;
# one enterprise's with {where}.
ALERTS_ACTIVE = """SELECT i.rule_id, i.subject, i.enterprise_id, i.meter_id, i.kind, i.severity,
       i.state, i.value, i.threshold, i.active_since, i.last_eval_at, i.ack_by, i.ack_until
FROM alert_instances i
WHERE i.state <> 'normal' AND {where}
ORDER BY i.state = 'firing' DESC, i.severity, i.active_since NULLS LAST, i.rule_id, i.subject"""


def alerts_active(enterprise: str | None = None) -> str:
    where = "true" if enterprise is None else f"i.enterprise_id = '{enterprise}'"
    return ALERTS_ACTIVE.format(where=where)


# Count of instances per state now (the stat panel).
ALERTS_BY_STATE = """SELECT count(*) FILTER (WHERE state = 'firing') AS firing,
       count(*) FILTER (WHERE state = 'pending') AS pending,
       count(*) FILTER (WHERE state = 'recovering') AS recovering,
       count(*) FILTER (WHERE state IN ('nodata', 'error')) AS nodata_or_error
FROM alert_instances"""

# State changes in the range, newest first.
ALERT_HISTORY = """SELECT h.at AS "time", i.rule_id, i.subject, h.enterprise_id, h.from_state,
       h.to_state, h.value, h.note
FROM alert_history h JOIN alert_instances i ON i.id = h.instance_id
WHERE h.at >= $__timeFrom() AND h.at < $__timeTo() AND {where}
ORDER BY h.at DESC, h.id DESC
LIMIT 500"""


def alert_history(enterprise: str | None = None) -> str:
    where = "true" if enterprise is None else f"h.enterprise_id = '{enterprise}'"
    return ALERT_HISTORY.format(where=where)


# Notifications queued in the range per channel: sent, failed, pending; attempts and
# failed attempts, mean attempt duration.
DELIVERIES = """WITH o AS (
  SELECT channel, count(*) FILTER (WHERE status = 'sent') AS sent,
         count(*) FILTER (WHERE status = 'failed') AS failed,
         count(*) FILTER (WHERE status = 'pending') AS pending
  FROM alert_outbox WHERE created_at >= $__timeFrom() AND created_at < $__timeTo()
  GROUP BY 1
),
a AS (
  SELECT channel, count(*) AS attempts, count(*) FILTER (WHERE NOT ok) AS failed_attempts,
         avg(duration_ms) AS mean_ms
  FROM alert_delivery_attempts WHERE at >= $__timeFrom() AND at < $__timeTo()
  GROUP BY 1
)
SELECT channel, coalesce(o.sent, 0) AS sent, coalesce(o.failed, 0) AS failed,
       coalesce(o.pending, 0) AS pending, coalesce(a.attempts, 0) AS attempts,
       coalesce(a.failed_attempts, 0) AS failed_attempts, a.mean_ms
FROM o FULL JOIN a USING (channel)
ORDER BY channel"""

# Failed delivery attempts in the range, newest first.
DELIVERY_FAILURES = """SELECT d.at AS "time", d.channel, d.enterprise_id, o.recipient, o.reason,
       d.detail, d.duration_ms, o.attempts, o.status
FROM alert_delivery_attempts d JOIN alert_outbox o ON o.id = d.outbox_id
WHERE NOT d.ok AND d.at >= $__timeFrom() AND d.at < $__timeTo()
ORDER BY d.at DESC, d.id DESC
LIMIT 500"""
