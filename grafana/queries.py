"""Every panel's SQL, by name (habit 14), as Grafana receives it: with macros.

Rules every statement follows (issue #14):

- Days and months are the park's local ones: the range CTE ``r`` turns the dashboard's
  ``$__timeFrom()`` / ``$__timeTo()`` into the local days whose start lies in
  ``[from, to)`` (``d0`` first, ``d1`` the day after the last), ``y0``/``y1`` the local
  year of the last day. ``$__timeGroup`` (UTC-aligned) is never used; timestamps are
  compared half-open (``ts >= $__timeFrom() AND ts < $__timeTo()``), never with
  ``$__timeFilter`` (BETWEEN, inclusive at both ends).
- Only rollups and accounting tables: ``emissions_enterprise_day`` and
  ``emissions_park_day`` (migration 0013: emissions_daily per enterprise and local day,
  and per local day of the park; market-based grid Scope 2 before green power),
  ``emissions_daily`` (one row per meter and local day) for energy by carrier only,
  ``carbon_budgets``, ``green_power``, ``enterprise_economics``, ``usage_daily`` and
  ``usage_day_quality`` (views in plain mode, continuous aggregates in timescale mode),
  ``usage_quality_enterprise_day`` (migration 0015: its slots per enterprise and day),
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


def green(lo: str, hi: str) -> str:
    """CTE ``gp``: the green power share of each enterprise-month overlapping days
    [lo, hi), of the whole month's grid import (read by the enterprise's key).
    MATERIALIZED: inlined into a join, the month's sum would run once per joined day."""
    return f"""gp AS MATERIALIZED (
  SELECT g.enterprise_id, g.month,
         least(1.0, (g.contract_kwh + g.certificate_kwh) / nullif(m.grid_kwh, 0)) AS share
  FROM green_power g CROSS JOIN r
  CROSS JOIN LATERAL (
    SELECT sum(e.grid_kwh) AS grid_kwh FROM emissions_enterprise_day e
    WHERE e.enterprise_id = g.enterprise_id AND e.day >= g.month
      AND e.day < (g.month + interval '1 month')::date
  ) m
  WHERE g.month >= date_trunc('month', ({lo})::timestamp)::date AND g.month < {hi}
)"""


def figures(lo: str, hi: str, enterprise: str | None = None, *,
            enterprises: str | None = None) -> str:
    """CTEs ``gp`` (green power share per enterprise and month), ``pe`` (process
    emissions, Scope 1: each month's figure spread evenly over its local days), ``m``
    (metered figures, from emissions_enterprise_day) and ``d``: figures per enterprise
    and local day over days [lo, hi) (expressions over ``r``), one enterprise's only if
    given, or those of the ``enterprises`` subquery."""
    if enterprise is not None:
        where_e = f"e.enterprise_id = '{enterprise}'"
        where_p = f"p.enterprise_id = '{enterprise}'"
    elif enterprises is not None:
        where_e = f"e.enterprise_id IN ({enterprises})"
        where_p = f"p.enterprise_id IN ({enterprises})"
    else:
        where_e = where_p = "true"
    return f"""{green(lo, hi)},
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
    e.scope1_location_co2_t AS s1_location, e.scope1_market_co2_t AS s1_market,
    e.scope2_location_co2_t AS s2_location,
    e.scope2_market_grid_co2_t * (1 - coalesce(gp.share, 0)) + e.scope2_market_other_co2_t
      AS s2_market,
    e.{{tce}} AS tce, e.grid_kwh, e.grid_kwh * coalesce(gp.share, 0) AS green_kwh,
    e.pv_kwh, e.export_kwh
  FROM emissions_enterprise_day e
  CROSS JOIN r
  LEFT JOIN gp ON gp.enterprise_id = e.enterprise_id
              AND gp.month = date_trunc('month', e.day::timestamp)::date
  WHERE e.day >= {lo} AND e.day < {hi} AND {where_e}
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


def park_figures(lo: str, hi: str, *, with_green: bool = True) -> str:
    """CTEs ``pgd`` (the market-based grid tCO2 and kWh green power covers, per day),
    ``ppe`` (process emissions per day; ``metered_co2``: of the enterprises with metered
    figures that day) and ``pk``: the park's figures per local day over [lo, hi), from
    emissions_park_day (one row a day); ``gp`` too unless ``figures`` gives it. The
    ``*_metered`` Scope 1 adds only the process emissions of metered enterprise-days (the
    days with data of targets status); ``metered``: any enterprise has figures.
    ``pgd`` is MATERIALIZED (joined by a misestimate, it would be summed once per day)
    and reads each green enterprise-month by the enterprise's key (LATERAL with OFFSET 0,
    which the planner cannot flatten into a join: hashing a year of the rollup for the
    green power of 30 enterprises cost ~50-90 ms)."""
    gp = f"{green(lo, hi)},\n" if with_green else ""
    return f"""{gp}pgd AS MATERIALIZED (
  SELECT x.day, sum(x.green_co2) AS green_co2, sum(x.green_kwh) AS green_kwh
  FROM gp CROSS JOIN r
  CROSS JOIN LATERAL (
    SELECT e.day, e.scope2_market_grid_co2_t * gp.share AS green_co2,
           e.grid_kwh * gp.share AS green_kwh
    FROM emissions_enterprise_day e
    WHERE e.enterprise_id = gp.enterprise_id AND e.day >= greatest(gp.month, {lo})
      AND e.day < least((gp.month + interval '1 month')::date, {hi})
    OFFSET 0
  ) x
  WHERE gp.share IS NOT NULL
  GROUP BY 1
),
ppe AS (
  SELECT day, sum(co2) AS co2, coalesce(sum(co2) FILTER (WHERE metered), 0) AS metered_co2
  FROM (
    SELECT x.day::date AS day, p.co2_t / ((p.month + interval '1 month')::date - p.month) AS co2,
           EXISTS (SELECT 1 FROM emissions_enterprise_day e
                   WHERE e.enterprise_id = p.enterprise_id AND e.day = x.day::date) AS metered
    FROM process_emissions p CROSS JOIN r,
         generate_series(greatest(p.month, {lo})::timestamp,
                         (least((p.month + interval '1 month')::date, {hi}) - 1)::timestamp,
                         interval '1 day') AS x(day)
    WHERE p.month < {hi} AND (p.month + interval '1 month')::date > {lo}
  ) x
  GROUP BY 1
),
pk AS (
  SELECT day,
         coalesce(p.scope1_location_co2_t, 0) + coalesce(ppe.co2, 0) AS s1_location,
         coalesce(p.scope1_market_co2_t, 0) + coalesce(ppe.co2, 0) AS s1_market,
         coalesce(p.scope1_location_co2_t, 0) + coalesce(ppe.metered_co2, 0)
           AS s1_location_metered,
         coalesce(p.scope1_market_co2_t, 0) + coalesce(ppe.metered_co2, 0)
           AS s1_market_metered,
         coalesce(p.scope2_location_co2_t, 0) AS s2_location,
         coalesce(p.scope2_market_grid_co2_t - coalesce(pgd.green_co2, 0)
                  + p.scope2_market_other_co2_t, 0) AS s2_market,
         coalesce(ppe.co2, 0) AS s1_process, p.day IS NOT NULL AS metered
  FROM (SELECT x.* FROM emissions_park_day x, r WHERE x.day >= {lo} AND x.day < {hi}) p
  FULL JOIN ppe USING (day)
  LEFT JOIN pgd USING (day)
)"""


def enterprise_months(lo: str, hi: str) -> str:
    """CTEs ``gp``, ``mm`` (metered figures per enterprise and month of days [lo, hi):
    ``n`` days with figures), ``pm`` (process emissions of those days: ``days`` of the
    month in the range, ``per_day`` tCO2 a day) and ``em_m``: location-based figures per
    enterprise and month, what ``figures`` gives per day summed by month, without a
    row per enterprise-day (``co2_unmetered_t``: process emissions of days without
    metered figures)."""
    return f"""{green(lo, hi)},
mm AS (
  SELECT e.enterprise_id, date_trunc('month', e.day::timestamp)::date AS month,
         count(*) AS n, sum(e.scope1_location_co2_t + e.scope2_location_co2_t) AS co2_t,
         sum(e.{{tce}}) AS tce, sum(e.grid_kwh) AS grid_kwh, sum(e.pv_kwh) AS pv_kwh,
         sum(e.export_kwh) AS export_kwh
  FROM emissions_enterprise_day e, r WHERE e.day >= {lo} AND e.day < {hi}
  GROUP BY 1, 2
),
pm AS (
  SELECT p.enterprise_id, p.month,
         least((p.month + interval '1 month')::date, {hi}) - greatest(p.month, {lo}) AS days,
         sum(p.co2_t / ((p.month + interval '1 month')::date - p.month)) AS per_day
  FROM process_emissions p, r
  WHERE p.month < {hi} AND (p.month + interval '1 month')::date > {lo}
  GROUP BY 1, 2, 3
),
em_m AS (
  SELECT enterprise_id, month, coalesce(mm.n, 0) AS n,
         coalesce(mm.co2_t, 0) + coalesce(pm.per_day * pm.days, 0) AS co2_t,
         coalesce(mm.tce, 0) AS tce, coalesce(mm.grid_kwh, 0) AS grid_kwh,
         coalesce(mm.pv_kwh, 0) AS pv_kwh, coalesce(mm.export_kwh, 0) AS export_kwh,
         coalesce(mm.grid_kwh * gp.share, 0) AS green_kwh,
         coalesce(pm.per_day * (pm.days - coalesce(mm.n, 0)), 0) AS co2_unmetered_t
  FROM mm FULL JOIN pm USING (enterprise_id, month)
  LEFT JOIN gp USING (enterprise_id, month)
)"""


# The Scope 1+2 of a row of ``pk`` on metered enterprise-days only.
SCOPE12_METERED_BY_BASIS = (
    "CASE WHEN {basis} = 'market' THEN {d}.s1_market_metered + {d}.s2_market "
    "ELSE {d}.s1_location_metered + {d}.s2_location END"
)


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
SELECT (SELECT coalesce(sum({scope12}), 0) FROM {rows}, k) AS period_co2_t,
       (SELECT sum(b.budget_co2_t * greatest(0, least(r.d1, b.month + b.n)
                                              - greatest(r.d0, b.month))::float8 / b.n)
        FROM b, r) AS period_budget_co2_t,
       100 * (SELECT coalesce(sum({scope12}), 0) FROM {rows}, k)
         / nullif((SELECT sum(b.budget_co2_t * greatest(0, least(r.d1, b.month + b.n)
                                                     - greatest(r.d0, b.month))::float8 / b.n)
                   FROM b, r), 0) AS period_vs_budget_pct,
       (SELECT basis FROM k) AS basis"""


def period_vs_budget(enterprise: str | None) -> str:
    """The park (None) or the ``$enterprise`` variable's enterprise."""
    if enterprise is None:  # the park's figures per day
        return PERIOD_VS_BUDGET.format(
            range=RANGE, figures=park_figures("r.d0", "r.d1"), rows="pk",
            subject="b.enterprise_id IS NULL", scope12=_scope12("k.basis", "pk"),
        )
    return PERIOD_VS_BUDGET.format(
        range=RANGE, figures=figures("r.d0", "r.d1", enterprise), rows="d",
        subject=f"b.enterprise_id = '{enterprise}'", scope12=_scope12("k.basis"),
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
    {days}
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
    """Every subject, or one (``'PARK'`` or an enterprise id / ``$enterprise``): one
    enterprise's figures only for an enterprise (a year of the park's is ~100,000
    enterprise-day rows)."""
    where = "" if subject is None else f"WHERE g.subject = '{subject}'"
    if subject == "PARK":  # the park's days only
        parts, cte = [PARK_DAYS], park_figures("r.y0", "r.d1")
    elif subject is None:  # the enterprises with budgets this year, and the park
        parts = [ENTERPRISE_DAYS, PARK_DAYS]
        cte = (figures("r.y0", "r.d1", enterprises=BUDGETED) + ",\n"
               + park_figures("r.y0", "r.d1", with_green=False))
    else:  # one enterprise (its own board: enterprise roles cannot read park totals)
        parts, cte = [ENTERPRISE_DAYS], figures("r.y0", "r.d1", subject)
    return TARGETS_STATUS.format(
        range=RANGE, figures=cte, days="\n    UNION ALL\n    ".join(parts), where=where
    )


# Enterprises with a budget in the year of the range (targets status subjects).
BUDGETED = ("SELECT b.enterprise_id FROM carbon_budgets b "
            "WHERE b.month >= r.y0 AND b.month < r.y1 AND b.enterprise_id IS NOT NULL")
# targets status: the days with data of each enterprise subject, and of the park.
ENTERPRISE_DAYS = """SELECT enterprise_id AS subject, day, s1_location + s2_location AS loc,
           s1_market + s2_market AS mkt FROM d
    WHERE metered AND enterprise_id IN (SELECT subject FROM s)"""
PARK_DAYS = """SELECT 'PARK' AS subject, day, s1_location_metered + s2_location AS loc,
           s1_market_metered + s2_market AS mkt
    FROM pk WHERE metered"""


# Scope 1 (fuels and process) and 2 (location-based) per local day, park total.
DAILY_EMISSIONS = f"""WITH {RANGE},
{park_figures("r.d0", "r.d1")}
SELECT (pk.day::timestamp AT TIME ZONE {{tz}}) AS "time",
       pk.s1_location AS scope1_co2_t, pk.s2_location AS scope2_co2_t,
       pk.s1_location + pk.s2_location AS scope12_co2_t
FROM pk ORDER BY pk.day"""

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
SELECT (pk.day::timestamp AT TIME ZONE {{tz}}) AS "time",
       pk.s2_location AS scope2_location_co2_t, pk.s2_market AS scope2_market_co2_t
FROM pk ORDER BY pk.day""".format(range=RANGE, figures=park_figures("r.d0", "r.d1"))

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
  SELECT pk.day, {scope12} AS co2 FROM pk, k, e
  WHERE pk.metered AND pk.day <= e.end_day
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
    range=RANGE, figures=park_figures("r.y0", "r.d1"),
    scope12=SCOPE12_METERED_BY_BASIS.format(basis="k.basis", d="pk"),
)


# Top emitters (location-based Scope 1+2): share of the park, month-on-month change
# (the same range one month earlier).
TOP_EMITTERS = f"""WITH {RANGE},
{enterprise_months("r.d0", "r.d1")},
cur AS (SELECT enterprise_id, sum(co2_t) AS co2 FROM em_m GROUP BY 1),
prev AS (
  SELECT enterprise_id, sum(co2) AS co2 FROM (
    SELECT e.enterprise_id, e.scope1_location_co2_t + e.scope2_location_co2_t AS co2
    FROM emissions_enterprise_day e, r
    WHERE e.day >= (r.d0 - interval '1 month')::date
      AND e.day < (r.d1 - interval '1 month')::date
    UNION ALL
    SELECT p.enterprise_id,
           p.co2_t * (least((p.month + interval '1 month')::date,
                            (r.d1 - interval '1 month')::date)
                      - greatest(p.month, (r.d0 - interval '1 month')::date))
             / ((p.month + interval '1 month')::date - p.month)
    FROM process_emissions p, r
    WHERE p.month < (r.d1 - interval '1 month')::date
      AND (p.month + interval '1 month')::date > (r.d0 - interval '1 month')::date
  ) x GROUP BY 1
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
{months},
em AS (
  SELECT enterprise_id, sum(co2_t) AS co2_t, sum(tce) AS tce, sum(grid_kwh) AS grid_kwh,
         greatest(0, sum(pv_kwh) - sum(export_kwh)) AS pv_self_kwh,
         sum(green_kwh) AS green_kwh, sum(co2_unmetered_t) AS co2_unmetered_t
  FROM em_m GROUP BY 1
),
dd AS (SELECT enterprise_id, month, n FROM em_m WHERE n > 0),
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
  SELECT sum(e.electricity_{{tce}}) / nullif(sum(e.grid_kwh + e.pv_kwh), 0) AS tce_per_kwh
  FROM emissions_enterprise_day e, r
  WHERE e.day >= r.d0 AND e.day < r.d1
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
        months=enterprise_months("r.d0", "r.d1"),
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
# expected ones of its active meters; the 90 % rule is the panel's threshold. The slots
# come from usage_quality_enterprise_day (migration 0015: usage_day_quality of the
# active meters summed per current enterprise and local day).
COMPLETENESS_DAILY = f"""WITH {RANGE},
x AS MATERIALIZED (
  SELECT enterprise_id, count(*) / {{slot}}.0 AS slots_per_second,
         row_number() OVER (ORDER BY enterprise_id) AS rank
  FROM meters WHERE active GROUP BY 1
),
q AS (
  SELECT u.enterprise_id, u.bucket, u.slots - u.estimated_slots AS measured
  FROM usage_quality_enterprise_day u CROSS JOIN r
  WHERE u.bucket >= r.t0 AND u.bucket < r.t1
),
days AS MATERIALIZED (
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
ORDER BY days.bucket, x.rank"""

# Per enterprise over the range: days below the 90 % rule, measured and estimated share.
COMPLETENESS_SUMMARY = """WITH {range},
x AS MATERIALIZED (
  SELECT enterprise_id, count(*) / {{slot}}.0 AS slots_per_second
  FROM meters WHERE active GROUP BY 1
),
q AS (
  SELECT u.enterprise_id, u.bucket, u.slots - u.estimated_slots AS measured,
         u.estimated_slots AS estimated, u.slots
  FROM usage_quality_enterprise_day u CROSS JOIN r
  WHERE u.bucket >= r.t0 AND u.bucket < r.t1
),
days AS MATERIALIZED (
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
