"""Keep the usage rollups (``usage_hourly``, ``usage_daily``, ``usage_day_quality`` and
the table ``usage_quality_enterprise_day``) exact right after a write.

Plain mode: the usage rollups are ordinary views, always exact; only
``usage_quality_enterprise_day`` (slots per enterprise and local day, migration 0015)
is summed again for the window.

Timescale mode: they are continuous aggregates with real-time aggregation. Buckets
newer than the aggregate's watermark are computed from ``usage`` at query time, but
a bucket already materialised keeps its stored value until a refresh: usage written
into it later (late readings, a re-derivation, a deleted slot) shows up only when the
refresh policy next runs (every 5 minutes for hourly, 30 for daily). A caller that
reads the rollups right after changing ``usage`` and needs the exact figures calls
:func:`refresh_rollups` first. Only invalidated ranges are recomputed, so a refresh
after a small change is cheap.

Both modes: ``usage_quality_enterprise_day`` is then summed again (deleted and
inserted, never adjusted by a difference) from the refreshed ``usage_day_quality`` for
every local day that overlaps the window, in one transaction: a day later than the
window start by less than a day is included, so a window starting mid-day covers it.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

import psycopg

from parkcarbon.db import LockKey, connect, storage_mode
from parkcarbon.errors import DatabaseError
from parkcarbon.schema import queries as Q

log = logging.getLogger(__name__)

ROLLUP_VIEWS = ("usage_hourly", "usage_daily", "usage_day_quality")
# A refresh meeting a concurrent one of the same aggregate waits for it: up to 30 s.
CONCURRENT_REFRESH_TRIES = 60
CONCURRENT_REFRESH_PAUSE_SECONDS = 0.5

# A local day is at most 25 hours long (a DST change): buckets starting this much before
# the window start may overlap it.
_LONGEST_DAY = timedelta(hours=25)


def refresh_rollups(
    target: psycopg.Connection | object,
    start: datetime | None = None,
    end: datetime | None = None,
) -> bool:
    """Materialise the rollups over ``[start, end)`` (None: unbounded), then sum again
    ``usage_quality_enterprise_day`` over the days overlapping it (both modes).

    ``target`` is a connection, or a Settings object / DSN (a connection of its own is
    opened and closed). Returns True if continuous aggregates were refreshed (timescale
    mode), False in plain mode. A connection must be idle (no open transaction): TimescaleDB refuses
    to refresh in a transaction block, so autocommit is switched on for the call and
    restored after. Buckets only partly inside the window are left alone; pass None to
    cover everything.
    """
    if not isinstance(target, psycopg.Connection):
        with connect(target, autocommit=True) as conn:
            return refresh_rollups(conn, start, end)
    conn = target
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise DatabaseError(
            "refresh_rollups needs a connection outside a transaction",
            hint="commit first, or pass the DSN so it uses a connection of its own",
        )
    was_autocommit = conn.autocommit
    conn.autocommit = True
    try:
        timescale = storage_mode(conn) == "timescale"
        if timescale:
            for view in ROLLUP_VIEWS:
                _refresh_aggregate(conn, view, start, end)
        resum_quality(conn, start, end)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise DatabaseError(f"cannot refresh the usage rollups: {first}") from exc
    finally:
        if not conn.broken:
            conn.autocommit = was_autocommit
    if timescale:
        log.debug("refreshed %s over [%s, %s)", ", ".join(ROLLUP_VIEWS), start, end)
    return timescale


def _refresh_aggregate(conn: psycopg.Connection, view: str, start: datetime | None,
                       end: datetime | None) -> None:
    """One continuous aggregate over [start, end). TimescaleDB refuses a refresh while
    another one of the same aggregate runs (its refresh policy, another process):
    wait for it, a few seconds at most, then refresh (what it did may not cover ours)."""
    for attempt in range(CONCURRENT_REFRESH_TRIES):
        try:
            conn.execute(Q.REFRESH_AGGREGATE, (view, start, end))
            return
        except psycopg.Error as exc:
            if "concurrent refresh" not in str(exc) or attempt == CONCURRENT_REFRESH_TRIES - 1:
                raise
            log.debug("%s: a concurrent refresh runs; waiting", view)
            time.sleep(CONCURRENT_REFRESH_PAUSE_SECONDS)


def resum_quality(
    conn: psycopg.Connection, start: datetime | None, end: datetime | None
) -> int:
    """Sum ``usage_quality_enterprise_day`` again from ``usage_day_quality`` for the local
    days overlapping ``[start, end)`` (None: unbounded), in one transaction; returns the
    enterprise-days written. In timescale mode, refresh ``usage_day_quality`` first."""
    with conn.transaction():
        conn.execute(Q.LOCK_QUALITY, (int(LockKey.QUALITY),))
        if end is None:  # an open window also covers what earlier derivations left due
            due = [r[0] for r in conn.execute(Q.TAKE_QUALITY_PENDING).fetchall()]
            if due and start is not None:
                start = min([start, *due])
        since = None if start is None else start - _LONGEST_DAY
        row = conn.execute(Q.RESUM_QUALITY, (since, end)).fetchone()
    written = int(row[0]) if row and row[0] is not None else 0
    log.debug("usage_quality_enterprise_day: %d enterprise-days from %s", written, since)
    return written


def mark_rollups_due(conn: psycopg.Connection, since: datetime) -> None:
    """Record, in the caller's transaction (the one that writes ``usage``), that the
    rollups are due from ``since``: if the process dies before its
    :func:`refresh_rollups`, the next one (see :func:`rollups_due`) covers it."""
    conn.execute(Q.MARK_QUALITY_PENDING, (since,))


def rollups_due(conn: psycopg.Connection) -> datetime | None:
    """The oldest window recorded by :func:`mark_rollups_due` and not refreshed yet
    (None: none). Leaves the connection idle."""
    row = conn.execute(Q.QUALITY_PENDING_SINCE).fetchone()
    if not conn.autocommit:
        conn.commit()
    return row[0] if row else None
