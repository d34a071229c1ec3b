"""The accounting run: usage per meter and local day x factor plan -> emissions_daily.

The heavy work is one SQL statement: usage rows are summed per meter and local day
(park timezone) and joined to the small factor plan (see ``plan``); pandas only builds
the plan. A run recomputes

* every (meter, day) whose usage was derived since the previous run's watermark
  (``usage.derived_at``, with ``WATERMARK_OVERLAP`` re-read), or listed in
  ``usage_changes`` since then (usage that went away);
* every stored (meter, day) whose factor versions differ from today's plan (a factor
  changed, an override was added, a setting picks another factor);
* everything, on the first run or with ``force`` (optionally limited to a period).

Rows whose figures change are logged in ``restatements`` with old and new values.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from parkcarbon.carbon.factors import FactorLibrary, load_library, sync_factors
from parkcarbon.carbon.models import Period, RefreshResult, parse_period
from parkcarbon.carbon.plan import build_plan

log = logging.getLogger(__name__)

LOCK_KEY = 0x636F3274  # "co2t": one accounting run at a time per database
WATERMARK_OVERLAP = "10 minutes"  # usage committed late with an older derived_at
# Relative difference below which a recomputed figure is not a restatement (sums of
# floats in parallel workers differ in the last bits from run to run).
EPSILON = 1e-9
# One hash entry per meter and local day: a year of 1,200 meters is ~440,000 groups
# (~120 MB per worker). Below that the aggregate spills to disk and runs 3x slower.
WORK_MEM = "256MB"

_PLAN_DDL = """
CREATE TEMP TABLE _plan (
    meter_id text, enterprise_id text, carrier text, role text, scope text, unit text,
    d0 date, d1 date, m_location float8, m_market float8, m_ets float8, m_tce_eq float8,
    m_tce_ev float8, m_gj float8, plan_id integer
) ON COMMIT DROP
"""

_COMPUTE = """
CREATE TEMP TABLE _rows ON COMMIT DROP AS
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

# Converting every usage row to local time is the most expensive part of the run, so
# where the park's UTC offset is constant over the span (Asia/Shanghai: always) rows are
# binned to local days with date_bin from a local-midnight origin, and only the grouped
# rows are converted. Zones with daylight saving take the per-row conversion.
_AGG_RANGE_FIXED = """
SELECT b.meter_id, (b.bucket AT TIME ZONE %(tz)s)::date AS day, b.quantity, b.estimated,
       b.slots
FROM (SELECT u.meter_id, date_bin(INTERVAL '1 day', u.ts, %(origin)s) AS bucket,
             sum(u.quantity) AS quantity, bool_or(u.estimated) AS estimated,
             count(*)::int AS slots
      FROM usage u
      WHERE u.ts >= %(t0)s AND u.ts < %(t1)s
      GROUP BY 1, 2) b
"""

_AGG_RANGE = """
SELECT u.meter_id, (u.ts AT TIME ZONE %(tz)s)::date AS day, sum(u.quantity) AS quantity,
       bool_or(u.estimated) AS estimated, count(*)::int AS slots
FROM usage u
WHERE u.ts >= %(t0)s AND u.ts < %(t1)s
GROUP BY 1, 2
"""

_AGG_DIRTY = """
SELECT d.meter_id, d.day, sum(u.quantity) AS quantity,
       bool_or(u.estimated) AS estimated, count(*)::int AS slots
FROM _dirty d
JOIN usage u ON u.meter_id = d.meter_id
            AND u.ts >= (d.day::timestamp AT TIME ZONE %(tz)s)
            AND u.ts < ((d.day + 1)::timestamp AT TIME ZONE %(tz)s)
GROUP BY 1, 2
"""

_RESTATE = """
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
FROM emissions_daily o
JOIN _dirty s ON s.meter_id = o.meter_id AND s.day = o.day
LEFT JOIN _rows n ON n.meter_id = o.meter_id AND n.day = o.day
WHERE n.meter_id IS NULL
   OR o.plan_id IS DISTINCT FROM n.plan_id
   OR abs(o.quantity - n.quantity) > %(eps)s * greatest(abs(o.quantity), 1)
   OR abs(o.co2_location_t - n.co2_location_t) > %(eps)s * greatest(abs(o.co2_location_t), 1)
   OR abs(o.co2_market_t - n.co2_market_t) > %(eps)s * greatest(abs(o.co2_market_t), 1)
   OR abs(o.tce_equivalent - n.tce_equivalent) > %(eps)s * greatest(abs(o.tce_equivalent), 1)
"""


def _row(conn: psycopg.Connection, query: str, params: Any = None) -> tuple[Any, ...]:
    """The one row an aggregate query returns."""
    row = conn.execute(query, params).fetchone()
    assert row is not None, query
    return row


def _timezone(conn: psycopg.Connection, fallback: str) -> str:
    row = conn.execute("SELECT value FROM parkcarbon_meta WHERE key = 'timezone'").fetchone()
    return row[0] if row else fallback


def _fixed_origin(zone: ZoneInfo, first: date, end: date) -> datetime | None:
    """A local midnight (as an aware datetime) if the UTC offset is constant over
    [first, end], else None."""
    offsets = {
        datetime(d.year, d.month, d.day, tzinfo=zone).utcoffset()
        for d in (first + timedelta(days=i) for i in range((end - first).days + 1))
    }
    if len(offsets) != 1:
        return None
    return datetime(2000, 1, 1, tzinfo=zone)


def _usage_range(conn: psycopg.Connection, tz: str) -> tuple[date, date] | None:
    row = conn.execute(
        "SELECT (min(ts) AT TIME ZONE %s)::date, (max(ts) AT TIME ZONE %s)::date FROM usage",
        (tz, tz),
    ).fetchone()
    if row is None or row[0] is None:
        return None
    return row[0], row[1] + timedelta(days=1)


def _plan_ids(conn: psycopg.Connection, plan: Any) -> list[int]:
    """carbon_plans ids of the plan's (factor_ids, flags) pairs, stored if new."""
    keys = sorted(
        {(tuple(f), tuple(g)) for f, g in zip(plan["factor_ids"], plan["flags"], strict=True)}
    )
    ids: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = {}
    for factor_ids, flags in keys:
        row = _row(
            conn,
            """WITH ins AS (INSERT INTO carbon_plans (factor_ids, flags) VALUES (%s, %s)
                            ON CONFLICT (factor_ids, flags) DO NOTHING RETURNING plan_id)
               SELECT plan_id FROM ins UNION ALL
               SELECT plan_id FROM carbon_plans WHERE factor_ids = %s AND flags = %s""",
            (list(factor_ids), list(flags), list(factor_ids), list(flags)),
        )
        ids[(factor_ids, flags)] = int(row[0])
    return [
        ids[(tuple(f), tuple(g))] for f, g in zip(plan["factor_ids"], plan["flags"], strict=True)
    ]


def _copy_plan(conn: psycopg.Connection, plan: Any) -> None:
    plan = plan.assign(plan_id=_plan_ids(conn, plan)).drop(columns=["factor_ids", "flags"])
    conn.execute(_PLAN_DDL)
    with conn.cursor().copy(f"COPY _plan ({', '.join(plan.columns)}) FROM STDIN") as copy:
        for rec in plan.itertuples(index=False):
            copy.write_row(list(rec))


def _mark_dirty(conn: psycopg.Connection, tz: str, watermark: Any) -> None:
    """_dirty(meter_id, day): late usage since the watermark and factor changes."""
    conn.execute("CREATE TEMP TABLE _raw (meter_id text, day date) ON COMMIT DROP")
    params = {"tz": tz, "wm": watermark, "overlap": WATERMARK_OVERLAP}
    conn.execute(
        """
        INSERT INTO _raw
        SELECT DISTINCT meter_id, (ts AT TIME ZONE %(tz)s)::date FROM usage
        WHERE derived_at > %(wm)s::timestamptz - %(overlap)s::interval
        """,
        params,
    )
    if _row(conn, "SELECT to_regclass('usage_changes') IS NOT NULL")[0]:
        conn.execute(
            """
            INSERT INTO _raw
            SELECT DISTINCT c.meter_id, d::date
            FROM usage_changes c,
                 generate_series((c.first_slot AT TIME ZONE %(tz)s)::date,
                                 (c.last_slot AT TIME ZONE %(tz)s)::date,
                                 INTERVAL '1 day') AS d
            WHERE c.changed_at > %(wm)s::timestamptz - %(overlap)s::interval
            """,
            params,
        )
    conn.execute(
        """
        INSERT INTO _raw
        SELECT e.meter_id, e.day FROM emissions_daily e
        JOIN _plan p ON p.meter_id = e.meter_id AND e.day >= p.d0 AND e.day < p.d1
        WHERE e.plan_id IS DISTINCT FROM p.plan_id OR e.scope <> p.scope
           OR e.enterprise_id <> p.enterprise_id
        """
    )
    # Meters no longer accounted (declared a sub-meter since).
    conn.execute(
        """
        INSERT INTO _raw
        SELECT e.meter_id, e.day FROM emissions_daily e
        WHERE NOT EXISTS (SELECT 1 FROM _plan p WHERE p.meter_id = e.meter_id)
        """
    )
    conn.execute(
        "CREATE TEMP TABLE _dirty ON COMMIT DROP AS SELECT DISTINCT meter_id, day FROM _raw"
    )


def refresh(
    conn: psycopg.Connection,
    settings: Any = None,
    *,
    period: str | Period | None = None,
    force: bool = False,
    library: FactorLibrary | None = None,
) -> RefreshResult:
    """Bring ``emissions_daily`` up to date (see module doc). One transaction.

    ``settings``: a ``parkcarbon.settings.Settings`` (None: load the defaults).
    ``period`` with ``force``: recompute exactly that period (YYYY, YYYY-MM, YYYY-MM-DD).
    """
    from parkcarbon.settings import load_settings

    started = time.monotonic()
    settings = settings or load_settings()
    library = library or load_library(settings.factors_file)
    period = parse_period(period) if isinstance(period, str) else period
    options = {
        "electricity_region": settings.electricity_region,
        "natural_gas_kind": settings.natural_gas_kind,
    }
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        # Inside a caller's transaction this is a savepoint and ON COMMIT DROP waits for
        # the caller's commit: drop leftovers of an earlier run in the same transaction.
        conn.execute("DROP TABLE IF EXISTS _plan, _rows, _raw, _dirty")
        conn.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        added = sync_factors(conn, library)
        tz = _timezone(conn, settings.timezone)
        prev = _row(conn, "SELECT max(watermark) FROM accounting_runs WHERE watermark IS NOT NULL")[
            0
        ]
        full = force or prev is None or period is not None
        reason = "first run" if prev is None and not force else "refresh"
        if force:
            reason = f"force {period.label if period else 'all'}"
        track = period is None  # only whole-history runs move the watermark
        run_id = _row(
            conn,
            "INSERT INTO accounting_runs (reason, settings, watermark) VALUES "
            "(%s, %s, CASE WHEN %s THEN clock_timestamp() END) RETURNING run_id",
            (reason, json.dumps(options), track),
        )[0]
        if period is not None:
            span: tuple[date, date] | None = (period.start, period.end)
        else:
            span = _usage_range(conn, tz)
            stored = _row(conn, "SELECT min(day), max(day) FROM emissions_daily")
            if stored[0] is not None:
                lo, hi = stored[0], stored[1] + timedelta(days=1)
                span = (min(span[0], lo), max(span[1], hi)) if span else (lo, hi)
        written = restated = 0
        if span is not None:
            meters = conn.execute(
                "SELECT id, enterprise_id, carrier, role FROM meters "
                "WHERE role <> 'sub_meter' ORDER BY id"
            ).fetchall()
            plan = build_plan(
                library,
                meters,
                span[0],
                span[1],
                region=settings.electricity_region,
                gas_kind=settings.natural_gas_kind,
            )
            _copy_plan(conn, plan)
            params = {"tz": tz, "run": run_id, "eps": EPSILON}
            if full:
                zone = ZoneInfo(tz)
                t0, t1 = Period("span", span[0], span[1], "span").utc_bounds(zone)
                origin = _fixed_origin(zone, span[0], span[1])
                agg = _AGG_RANGE if origin is None else _AGG_RANGE_FIXED
                conn.execute(
                    _COMPUTE.format(agg=agg), {**params, "t0": t0, "t1": t1, "origin": origin}
                )
                conn.execute(
                    "CREATE TEMP TABLE _dirty ON COMMIT DROP AS "
                    "SELECT meter_id, day FROM emissions_daily WHERE day >= %s AND day < %s "
                    "UNION SELECT meter_id, day FROM _rows",
                    span,
                )
            else:
                _mark_dirty(conn, tz, prev)
                conn.execute(_COMPUTE.format(agg=_AGG_DIRTY), params)
            restated = conn.execute(_RESTATE, params).rowcount
            conn.execute(
                "DELETE FROM emissions_daily e USING _dirty d "
                "WHERE e.meter_id = d.meter_id AND e.day = d.day"
            )
            written = conn.execute(
                """
                INSERT INTO emissions_daily (meter_id, day, enterprise_id, carrier, role,
                    scope, quantity, unit, heat_gj, co2_location_t, co2_market_t, co2_ets_t,
                    tce_equivalent, tce_equal_value, estimated, slots, plan_id,
                    run_id, computed_at)
                SELECT meter_id, day, enterprise_id, carrier, role, scope, quantity, unit,
                       heat_gj, co2_location_t, co2_market_t,
                       CASE WHEN co2_ets_t = 'NaN' THEN NULL ELSE co2_ets_t END,
                       tce_equivalent,
                       CASE WHEN tce_equal_value = 'NaN' THEN NULL ELSE tce_equal_value END,
                       estimated, slots, plan_id, %(run)s, clock_timestamp()
                FROM _rows
                """,
                params,
            ).rowcount
        conn.execute(
            "UPDATE accounting_runs SET finished_at = clock_timestamp(), rows_written = %s, "
            "rows_restated = %s WHERE run_id = %s",
            (written, restated, run_id),
        )
    result = RefreshResult(
        run_id, written, restated, added, reason, round(time.monotonic() - started, 3)
    )
    log.info(
        "accounting run %d (%s): %d day rows written, %d restated in %.2f s",
        run_id,
        reason,
        written,
        restated,
        result.seconds,
    )
    return result
