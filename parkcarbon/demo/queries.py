"""SQL of the demo: the data-quality figures of its summary."""

from __future__ import annotations

from datetime import datetime

import psycopg

PING = "SELECT 1"

SLOTS_MEASURED_ESTIMATED = """
SELECT count(*) FILTER (WHERE NOT estimated), count(*) FILTER (WHERE estimated)
FROM usage WHERE ts >= %s AND ts < %s
"""

READINGS_IN = "SELECT count(*) FROM readings WHERE ts >= %s AND ts <= %s"

EVENTS_BY_KIND = """
SELECT kind, count(*) FROM meter_events WHERE ts > %s AND ts <= %s GROUP BY 1 ORDER BY 1
"""


def ping(conn: psycopg.Connection) -> None:
    conn.execute(PING)


def slot_counts(conn: psycopg.Connection, start: datetime, end: datetime) -> tuple[int, int]:
    """(measured, estimated) usage slots in ``[start, end)``."""
    row = conn.execute(SLOTS_MEASURED_ESTIMATED, (start, end)).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def readings_count(conn: psycopg.Connection, start: datetime, end: datetime) -> int:
    """Readings stamped in ``[start, end]``."""
    row = conn.execute(READINGS_IN, (start, end)).fetchone()
    return int(row[0]) if row else 0


def events_by_kind(conn: psycopg.Connection, start: datetime, end: datetime) -> dict[str, int]:
    """Meter events in ``(start, end]`` by kind."""
    return {str(k): int(v) for k, v in conn.execute(EVENTS_BY_KIND, (start, end)).fetchall()}
