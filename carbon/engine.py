"""The accounting run: usage per meter and local day x factor plan -> emissions_daily.

The heavy work is one SQL statement: usage per meter and local day (park timezone) is
joined to the small factor plan (see ``plan``); pandas only builds the plan. Plain
PostgreSQL reads the per-day totals kept by triggers (``usage_day_totals``); TimescaleDB
mode sums the usage rows. A run recomputes

* every (meter, day) whose usage was derived since the previous run's watermark
  (``usage.derived_at``), or listed in ``usage_changes`` since then (usage that went
  away). The watermark is the start of the oldest transaction open when the run began
  (so usage committed later by an older transaction is not missed), or now minus
  ``WATERMARK_OVERLAP`` where other sessions cannot be seen;
* every stored (meter, day) whose factor versions differ from today's plan (a factor
  changed, an override was added, a setting picks another factor);
* everything, on the first run or with ``force`` (optionally limited to a period).

Recomputed rows are compared with the stored ones (``changes``): only new, changed and
vanished rows are written or removed, and only real changes of a stored figure of a
complete day are logged in ``restatements`` with old and new values.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from parkcarbon.carbon.changes import CHANGED, RESTATE, STORE, STORE_CHANGED, STORE_NEW
from parkcarbon.carbon.factors import FactorLibrary, load_library, sync_factors
from parkcarbon.carbon.models import Period, RefreshResult, parse_period
from parkcarbon.carbon.plan import build_plan
from parkcarbon.db import LockKey

log = logging.getLogger(__name__)

# Usage committed late with an older derived_at: re-read this much before the watermark
# when other sessions' transactions cannot be seen in pg_stat_activity (see _watermark).
WATERMARK_OVERLAP = "10 minutes"
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

_SELECT_ROWS = """
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
_COMPUTE = "CREATE TEMP TABLE _rows ON COMMIT DROP AS " + _SELECT_ROWS

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

# Plain PostgreSQL keeps usage per meter and local day in usage_day_totals (migration
# 0005, exact through triggers on usage): the run reads ~440,000 rows for a year of
# 1,200 meters instead of grouping 42 million. TimescaleDB mode groups usage (above).
_TOTALS = "usage_day_totals"
_AGG_TOTALS_RANGE = """
SELECT t.meter_id, (t.bucket AT TIME ZONE %(tz)s)::date AS day, t.quantity,
       t.estimated_slots > 0 AS estimated, t.slots
FROM usage_day_totals t
WHERE t.bucket >= %(t0)s AND t.bucket < %(t1)s
"""

_AGG_TOTALS_DIRTY = """
SELECT d.meter_id, d.day, t.quantity, t.estimated_slots > 0 AS estimated, t.slots
FROM _dirty d
JOIN usage_day_totals t ON t.meter_id = d.meter_id
                       AND t.bucket >= (d.day::timestamp AT TIME ZONE %(tz)s)
                       AND t.bucket < ((d.day + 1)::timestamp AT TIME ZONE %(tz)s)
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


def _watermark(conn: psycopg.Connection) -> datetime:
    """The instant from which the next run must look for usage: now, or the start of
    the oldest transaction open in this database (its rows carry ``derived_at`` = its
    start and may commit after this run has read usage). Where other sessions cannot be
    seen (no pg_read_all_stats), ``WATERMARK_OVERLAP`` before now."""
    conn.execute("SELECT pg_stat_clear_snapshot()")  # stats are cached per transaction
    return _row(
        conn,
        """SELECT CASE WHEN bool_or(state IS NULL)
                       THEN clock_timestamp() - %s::interval
                       ELSE least(clock_timestamp(), min(xact_start)) END
           FROM pg_stat_activity
           WHERE datname = current_database() AND pid <> pg_backend_pid()
             AND backend_type = 'client backend'""",
        (WATERMARK_OVERLAP,),
    )[0]


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
    params = {"tz": tz, "wm": watermark}
    conn.execute(
        """
        INSERT INTO _raw
        SELECT DISTINCT meter_id, (ts AT TIME ZONE %(tz)s)::date FROM usage
        WHERE derived_at >= %(wm)s
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
            WHERE c.changed_at >= %(wm)s
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
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LockKey.ACCOUNTING,))
        # Inside a caller's transaction this is a savepoint and ON COMMIT DROP waits for
        # the caller's commit: drop leftovers of an earlier run in the same transaction.
        conn.execute("DROP TABLE IF EXISTS _plan, _rows, _raw, _dirty, _changed")
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
            "(%s, %s, CASE WHEN %s THEN %s::timestamptz END) RETURNING run_id",
            (reason, json.dumps(options), track, _watermark(conn)),
        )[0]
        if period is not None:
            span: tuple[date, date] | None = (period.start, period.end)
        else:
            span = _usage_range(conn, tz)
            stored = _row(conn, "SELECT min(day), max(day) FROM emissions_daily")
            if stored[0] is not None:
                lo, hi = stored[0], stored[1] + timedelta(days=1)
                span = (min(span[0], lo), max(span[1], hi)) if span else (lo, hi)
        written = restated = checked = filled = removed = 0
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
            totals = _row(conn, "SELECT to_regclass(%s) IS NOT NULL", (_TOTALS,))[0]
            fresh = False
            if full:
                zone = ZoneInfo(tz)
                t0, t1 = Period("span", span[0], span[1], "span").utc_bounds(zone)
                origin = None if totals else _fixed_origin(zone, span[0], span[1])
                if totals:
                    agg = _AGG_TOTALS_RANGE
                else:
                    agg = _AGG_RANGE if origin is None else _AGG_RANGE_FIXED
                params.update(t0=t0, t1=t1, origin=origin)
                # Nothing stored for the span (its first accounting): every row is new,
                # nothing to compare or restate, so the rows go straight to the table.
                fresh = not _row(
                    conn,
                    "SELECT EXISTS (SELECT 1 FROM emissions_daily WHERE day >= %s AND day < %s)",
                    span,
                )[0]
                if fresh:
                    written = checked = conn.execute(
                        STORE_NEW.format(rows=f"({_SELECT_ROWS.format(agg=agg)})"), params
                    ).rowcount
                else:
                    conn.execute(_COMPUTE.format(agg=agg), params)
                    conn.execute(
                        "CREATE TEMP TABLE _dirty ON COMMIT DROP AS SELECT meter_id, day "
                        "FROM emissions_daily WHERE day >= %s AND day < %s "
                        "UNION SELECT meter_id, day FROM _rows",
                        span,
                    )
            else:
                _mark_dirty(conn, tz, prev)
                conn.execute(
                    _COMPUTE.format(agg=_AGG_TOTALS_DIRTY if totals else _AGG_DIRTY), params
                )
            if not fresh:
                conn.execute("ANALYZE _rows, _dirty")  # temp tables: no autovacuum statistics
                conn.execute(CHANGED, params)
                restated = conn.execute(RESTATE, params).rowcount
                checked, filled, removed = _row(
                    conn,
                    "SELECT (SELECT count(*) FROM _dirty), count(*) FILTER (WHERE filling), "
                    "count(*) FILTER (WHERE had_old AND NOT has_new) FROM _changed",
                )
                conn.execute(
                    "DELETE FROM emissions_daily e USING _changed c "
                    "WHERE e.meter_id = c.meter_id AND e.day = c.day"
                )
                written = conn.execute(STORE.format(rows="_rows") + STORE_CHANGED, params).rowcount
        conn.execute(
            "UPDATE accounting_runs SET finished_at = clock_timestamp(), rows_written = %s, "
            "rows_restated = %s WHERE run_id = %s",
            (written, restated, run_id),
        )
    result = RefreshResult(
        run_id,
        written,
        restated,
        added,
        reason,
        round(time.monotonic() - started, 3),
        days_checked=checked,
        days_removed=removed,
        days_filled=filled,
    )
    log.info(
        "accounting run %d (%s): %d meter-days checked, %d written, %d removed, "
        "%d restated, %d filling in, %.2f s",
        run_id,
        reason,
        checked,
        written,
        removed,
        restated,
        filled,
        result.seconds,
    )
    return result
