"""Command group ``parkcarbon usage``: derive usage from readings, list meter events and gaps."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import click
import psycopg

from parkcarbon.clikit import AppContext, echo_json, pass_app
from parkcarbon.periods import local_midnight_utc


@click.group("usage")
def usage_group() -> None:
    """Derive 15-minute usage from readings; list gaps and counter events."""


@usage_group.command("derive")
@click.option("--meter", "meters", multiple=True, help="Only this meter (repeatable).")
@click.option("--full", is_flag=True, help="Recompute the whole history, not just new data.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def usage_derive(app: AppContext, meters: tuple[str, ...], full: bool, as_json: bool) -> None:
    """Turn new readings into usage slots and events (incremental and idempotent)."""
    from parkcarbon.ingest.usage.derive import derive_committed

    result = derive_committed(app.settings(), meter_ids=list(meters) or None, full=full)
    if as_json:
        echo_json(result.as_dict())
        return
    events = ", ".join(f"{k} {v}" for k, v in sorted(result.events_by_kind.items())) or "none"
    click.echo(f"derived {result.meters} meters from {result.readings_used} readings: "
               f"{result.slots_written} slots written, {result.slots_deleted} removed; "
               f"events: {events} ({result.seconds:.2f}s)")
    if result.changed_from is not None:
        click.echo(f"usage changed from {result.changed_from.isoformat()} "
                   f"({len(result.changed)} meters)")


_EVENT_SQL = """
SELECT meter_id, kind, ts_start, ts, value_before, value_after, quantity, detail
FROM meter_events
WHERE (%(kinds)s::text[] IS NULL OR kind = ANY(%(kinds)s))
  AND (%(meter)s::text IS NULL OR meter_id = %(meter)s)
  AND (%(since)s::timestamptz IS NULL OR ts >= %(since)s)
ORDER BY ts, meter_id, kind
LIMIT %(limit)s
"""


def _events(app: AppContext, kinds: list[str] | None, meter: str | None, since: str | None,
            limit: int, as_json: bool) -> None:
    from parkcarbon.db import connect

    settings = app.settings()
    since_ts = local_midnight_utc(since, settings.tz, "--since") if since else None
    with connect(settings) as conn:
        rows = conn.execute(_EVENT_SQL, {"kinds": kinds, "meter": meter, "since": since_ts,
                                         "limit": limit}).fetchall()
    keys = ("meter_id", "kind", "ts_start", "ts", "value_before", "value_after", "quantity",
            "detail")
    if as_json:
        echo_json([dict(zip(keys, r, strict=True)) for r in rows])
        return
    if not rows:
        click.echo("no events")
        return
    tz = settings.tz
    for meter_id, kind, t0, t1, _vb, _va, qty, _detail in rows:
        start = t0.astimezone(tz).strftime("%Y-%m-%d %H:%M") if t0 else "-"
        shown = "-" if qty is None else f"{qty:.3f}"
        click.echo(f"{meter_id:<14} {kind:<21} {start} -> "
                   f"{t1.astimezone(tz).strftime('%Y-%m-%d %H:%M')}  quantity {shown}")


_common = [
    click.option("--meter", default=None, help="Only this meter."),
    click.option("--since", default=None, help="Local day (YYYY-MM-DD)."),
    click.option("--limit", type=int, default=200, show_default=True),
    click.option("--json", "as_json", is_flag=True, help="Print JSON."),
]


def _with_common(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_common):
        f = option(f)
    return f


@usage_group.command("events")
@click.option("--kind", "kinds", multiple=True, help="gap, reset, absurd, rollover, "
              "replacement, replacement_mismatch, negative (repeatable).")
@_with_common
@pass_app
def usage_events(app: AppContext, kinds: tuple[str, ...], meter: str | None,
                 since: str | None, limit: int, as_json: bool) -> None:
    """List counter events found by `usage derive` (times in the park timezone)."""
    _events(app, list(kinds) or None, meter, since, limit, as_json)


@usage_group.command("gaps")
@_with_common
@pass_app
def usage_gaps(app: AppContext, meter: str | None, since: str | None, limit: int,
               as_json: bool) -> None:
    """List gaps (usage across them is spread evenly and marked estimated), then meters
    silent right now (no reading for more than twice their interval)."""
    from parkcarbon.db import connect

    if as_json:
        settings = app.settings()
        since_ts = local_midnight_utc(since, settings.tz, "--since") if since else None
        with connect(settings) as conn:
            rows = conn.execute(_EVENT_SQL, {"kinds": ["gap"], "meter": meter,
                                             "since": since_ts, "limit": limit}).fetchall()
            silent = _silent(conn, meter)
        keys = ("meter_id", "kind", "ts_start", "ts", "value_before", "value_after",
                "quantity", "detail")
        echo_json({"gaps": [dict(zip(keys, r, strict=True)) for r in rows],
                   "silent": [{"meter_id": m, "last_reading": ts} for m, ts in silent]})
        return
    _events(app, ["gap"], meter, since, limit, as_json=False)
    with connect(app.settings()) as conn:
        silent = _silent(conn, meter)
    tz = app.settings().tz
    for meter_id, ts in silent:
        last = ts.astimezone(tz).strftime("%Y-%m-%d %H:%M") if ts else "never"
        click.echo(f"{meter_id:<14} silent since {last}")


def _silent(conn: psycopg.Connection, meter: str | None) -> list[tuple[str, datetime | None]]:
    """Active meters with no reading for more than 2 x interval_seconds (or none at all)."""
    return conn.execute(
        """
        SELECT m.id, last.ts FROM meters m
        LEFT JOIN LATERAL (SELECT max(ts) AS ts FROM readings r WHERE r.meter_id = m.id) last
               ON true
        WHERE m.active AND (%(meter)s::text IS NULL OR m.id = %(meter)s)
          AND (last.ts IS NULL OR last.ts < now() - 2 * m.interval_seconds * INTERVAL '1 second')
        ORDER BY m.id
        """,
        {"meter": meter},
    ).fetchall()
