"""The accounting run: usage per meter and local day x factor plan -> emissions_daily.

The heavy work is one SQL statement: usage per meter and local day (park timezone) is
joined to the small factor plan (see ``plan``); pandas only builds the plan, whose
rows carry the enterprise that owned the meter on those days (``meter_ownership``: a
meter moved to another enterprise keeps its history with the old owner). Plain
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

Recomputed rows are compared with the stored ones (change detection, in ``queries``):
only new, changed and vanished rows are written or removed, and only real changes of a
stored figure of a complete day are logged in ``restatements`` with old and new values.

A run with nothing to do (an incremental run that finds no (meter, day) to recompute,
or no usage and nothing stored at all) records no ``accounting_runs`` row and logs at
DEBUG only: the next run starts from the same, earlier watermark, so nothing is missed.
Plain vs TimescaleDB is ``parkcarbon.db.storage_mode``; the day timezone is the one the
database was set up with (``parkcarbon_meta``). All SQL is in ``queries``.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from parkcarbon.carbon import queries as Q
from parkcarbon.carbon.factors import FactorLibrary, load_library, sync_factors
from parkcarbon.carbon.models import Period, RefreshResult, parse_period
from parkcarbon.carbon.plan import Ownership, build_plan
from parkcarbon.db import LockKey, meta_value, storage_mode
from parkcarbon.units import SLOT_SECONDS

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

def _row(conn: psycopg.Connection, query: str, params: Any = None) -> tuple[Any, ...]:
    """The one row an aggregate query returns."""
    row = conn.execute(query, params).fetchone()
    assert row is not None, query
    return row


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
    conn.execute(Q.CLEAR_STAT_SNAPSHOT)  # stats are cached per transaction
    return _row(conn, Q.WATERMARK, (WATERMARK_OVERLAP,))[0]


def _usage_range(conn: psycopg.Connection, tz: str) -> tuple[date, date] | None:
    row = conn.execute(Q.USAGE_RANGE, (tz, tz)).fetchone()
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
            conn, Q.PLAN_ID, (list(factor_ids), list(flags), list(factor_ids), list(flags))
        )
        ids[(factor_ids, flags)] = int(row[0])
    return [
        ids[(tuple(f), tuple(g))] for f, g in zip(plan["factor_ids"], plan["flags"], strict=True)
    ]


def _copy_plan(conn: psycopg.Connection, plan: Any) -> None:
    plan = plan.assign(plan_id=_plan_ids(conn, plan)).drop(columns=["factor_ids", "flags"])
    conn.execute(Q.PLAN_DDL)
    with conn.cursor().copy(Q.COPY_PLAN.format(columns=", ".join(plan.columns))) as copy:
        for rec in plan.itertuples(index=False):
            copy.write_row(list(rec))


def _owners(conn: psycopg.Connection, tz: str) -> dict[str, list[Ownership]]:
    """Meter id -> its ownership periods in local days (one query for all meters)."""
    owners: dict[str, list[Ownership]] = {}
    for meter_id, enterprise_id, day_from, day_to in conn.execute(
        Q.METER_OWNERSHIP, {"tz": tz}
    ):
        owners.setdefault(meter_id, []).append((enterprise_id, day_from, day_to))
    return owners


def _mark_dirty(conn: psycopg.Connection, tz: str, watermark: Any) -> None:
    """_dirty(meter_id, day): late usage since the watermark and factor changes."""
    conn.execute(Q.RAW_DDL)
    params = {"tz": tz, "wm": watermark}
    conn.execute(Q.RAW_DERIVED, params)
    if _row(conn, Q.HAS_USAGE_CHANGES)[0]:
        conn.execute(Q.RAW_CHANGED, params)
    conn.execute(Q.RAW_REPLANNED)
    conn.execute(Q.RAW_UNPLANNED)  # meters no longer accounted (declared a sub-meter since)
    conn.execute(Q.DIRTY_FROM_RAW)


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
        conn.execute(Q.ACCOUNTING_LOCK, (LockKey.ACCOUNTING,))
        conn.execute(Q.DROP_RUN_TEMPS)
        conn.execute(Q.SET_WORK_MEM.format(work_mem=WORK_MEM))
        added = sync_factors(conn, library)
        tz = meta_value(conn, "timezone") or settings.timezone
        prev = _row(conn, Q.LAST_WATERMARK)[0]
        full = force or prev is None or period is not None
        reason = "first run" if prev is None and not force else "refresh"
        if force:
            reason = f"force {period.label if period else 'all'}"
        track = period is None  # only whole-history runs move the watermark
        # Taken before any usage is read, stored only if the run has work (see module doc).
        watermark = _watermark(conn)
        run_id: int | None = None

        def start_run() -> int:
            """Record the run: only once it is known to have work."""
            row = _row(conn, Q.INSERT_RUN, (reason, json.dumps(options), track, watermark))
            return int(row[0])

        if period is not None:
            span: tuple[date, date] | None = (period.start, period.end)
        else:
            span = _usage_range(conn, tz)
            stored = _row(conn, Q.STORED_RANGE)
            if stored[0] is not None:
                lo, hi = stored[0], stored[1] + timedelta(days=1)
                span = (min(span[0], lo), max(span[1], hi)) if span else (lo, hi)
        written = restated = checked = filled = removed = 0
        if span is not None:
            meters = conn.execute(Q.ACCOUNTED_METERS).fetchall()
            plan = build_plan(
                library,
                meters,
                span[0],
                span[1],
                region=settings.electricity_region,
                gas_kind=settings.natural_gas_kind,
                owners=_owners(conn, tz),
            )
            _copy_plan(conn, plan)
            params: dict[str, Any] = {"tz": tz, "eps": EPSILON, "slot_seconds": SLOT_SECONDS}
            # plain: per-day totals kept by triggers; timescale: group the usage rows
            totals = storage_mode(conn) == "plain"
            fresh = False
            if full:
                run_id = params["run"] = start_run()
                zone = ZoneInfo(tz)
                t0, t1 = Period("span", span[0], span[1], "span").utc_bounds(zone)
                origin = None if totals else _fixed_origin(zone, span[0], span[1])
                if totals:
                    agg = Q.AGG_TOTALS_RANGE
                else:
                    agg = Q.AGG_RANGE if origin is None else Q.AGG_RANGE_FIXED
                params.update(t0=t0, t1=t1, origin=origin)
                # Nothing stored for the span (its first accounting): every row is new,
                # nothing to compare or restate, so the rows go straight to the table.
                fresh = not _row(conn, Q.STORED_IN_SPAN, span)[0]
                if fresh:
                    written = checked = conn.execute(
                        Q.STORE_NEW.format(rows=f"({Q.SELECT_ROWS.format(agg=agg)})"), params
                    ).rowcount
                else:
                    conn.execute(Q.COMPUTE.format(agg=agg), params)
                    conn.execute(Q.DIRTY_SPAN, span)
            else:
                _mark_dirty(conn, tz, prev)
                if _row(conn, Q.ANY_DIRTY)[0]:
                    run_id = params["run"] = start_run()
                    conn.execute(
                        Q.COMPUTE.format(agg=Q.AGG_TOTALS_DIRTY if totals else Q.AGG_DIRTY),
                        params,
                    )
            if run_id is not None and not fresh:
                conn.execute(Q.ANALYZE_RUN_TEMPS)
                conn.execute(Q.CHANGED, params)
                restated = conn.execute(Q.RESTATE, params).rowcount
                checked, filled, removed = _row(conn, Q.CHANGE_COUNTS)
                conn.execute(Q.DELETE_CHANGED)
                written = conn.execute(
                    Q.STORE.format(rows="_rows") + Q.STORE_CHANGED, params
                ).rowcount
        if run_id is not None:
            conn.execute(Q.FINISH_RUN, (written, restated, run_id))
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
    if run_id is None:
        log.debug(
            "accounting: nothing to do (no usage derived and no factor change since the "
            "last run), %d new factor versions, %.2f s",
            added,
            result.seconds,
        )
        return result
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
