"""Keep the usage rollups (``usage_hourly``, ``usage_daily``) exact right after a write.

Plain mode: the rollups are ordinary views, always exact; nothing to do.

Timescale mode: they are continuous aggregates with real-time aggregation. Buckets
newer than the aggregate's watermark are computed from ``usage`` at query time, but
a bucket already materialised keeps its stored value until a refresh: usage written
into it later (late readings, a re-derivation, a deleted slot) shows up only when the
refresh policy next runs (every 5 minutes for hourly, 30 for daily). A caller that
reads the rollups right after changing ``usage`` and needs the exact figures calls
:func:`refresh_rollups` first. Only invalidated ranges are recomputed, so a refresh
after a small change is cheap.
"""

from __future__ import annotations

import logging
from datetime import datetime

import psycopg

from parkcarbon.db import connect, storage_mode
from parkcarbon.errors import DatabaseError
from parkcarbon.schema import queries as Q

log = logging.getLogger(__name__)

ROLLUP_VIEWS = ("usage_hourly", "usage_daily")


def refresh_rollups(
    target: psycopg.Connection | object,
    start: datetime | None = None,
    end: datetime | None = None,
) -> bool:
    """Materialise the rollups over ``[start, end)`` (None: unbounded). Timescale only.

    ``target`` is a connection, or a Settings object / DSN (a connection of its own is
    opened and closed). Returns True if anything was refreshed (timescale mode), False
    in plain mode. A connection must be idle (no open transaction): TimescaleDB refuses
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
        if storage_mode(conn) != "timescale":
            return False
        for view in ROLLUP_VIEWS:
            conn.execute(Q.REFRESH_AGGREGATE, (view, start, end))
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise DatabaseError(f"cannot refresh the usage rollups: {first}") from exc
    finally:
        if not conn.broken:
            conn.autocommit = was_autocommit
    log.debug("refreshed %s over [%s, %s)", ", ".join(ROLLUP_VIEWS), start, end)
    return True
