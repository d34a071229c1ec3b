"""Command group ``parkcarbon usage``: derive usage from readings, list meter events and gaps."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click

from parkcarbon.clikit import AppContext, Column, emit_mapping, emit_rows, format_option, pass_app
from parkcarbon.periods import local_midnight_utc

if TYPE_CHECKING:
    from parkcarbon.ingest.usage.events import MeterEvent, SilentMeter

# The keys of an event row (CSV header when there are none); the table is laid out by hand.
_EVENT_COLUMNS: list[Column] = [
    ("meter_id", "meter", 0), ("kind", "kind", 0), ("ts_start", "from", 0), ("ts", "to", 0),
    ("value_before", "value before", 3), ("value_after", "value after", 3),
    ("quantity", "quantity", 3), ("detail", "detail", 0),
]


@click.group("usage")
def usage_group() -> None:
    """Derive 15-minute usage from readings; list gaps and counter events."""


@usage_group.command("derive")
@click.option("--meter", "meters", multiple=True, help="Only this meter (repeatable).")
@click.option("--full", is_flag=True, help="Recompute the whole history, not just new data.")
@format_option
@pass_app
def usage_derive(app: AppContext, meters: tuple[str, ...], full: bool, fmt: str) -> None:
    """Turn new readings into usage slots and events (incremental and idempotent)."""
    from parkcarbon.ingest.usage.derive import derive_committed

    result = derive_committed(app.settings(), meter_ids=list(meters) or None, full=full)

    def text() -> Iterator[str]:
        events = ", ".join(f"{k} {v}" for k, v in sorted(result.events_by_kind.items()))
        yield (f"derived {result.meters} meters from {result.readings_used} readings: "
               f"{result.slots_written} slots written, {result.slots_deleted} removed; "
               f"events: {events or 'none'} ({result.seconds:.2f}s)")
        if result.changed_from is not None:
            yield (f"usage changed from {result.changed_from.isoformat()} "
                   f"({len(result.changed)} meters)")

    emit_mapping(result.as_dict(), fmt, text)


def _event_line(e: MeterEvent, tz: ZoneInfo, units: dict[str, str] | None = None) -> str:
    start = e.ts_start.astimezone(tz).strftime("%Y-%m-%d %H:%M") if e.ts_start else "-"
    unit = (units or {}).get(e.meter_id)
    shown = "-" if e.quantity is None else f"{e.quantity:.3f}" + (f" {unit}" if unit else "")
    return (f"{e.meter_id:<14} {e.kind:<21} {start} -> "
            f"{e.ts.astimezone(tz).strftime('%Y-%m-%d %H:%M')}  quantity {shown}")


def _emit(rows: Sequence[dict[str, Any]], fmt: str,
          extra: tuple[Column, ...] = ()) -> None:
    """CSV or JSON of event rows (CSV: ``detail`` as JSON text). ``extra``: columns
    beyond the event's own, so an empty CSV has the same header as a full one."""
    if fmt == "csv":
        rows = [{**r, "detail": None if r["detail"] is None else json.dumps(r["detail"])}
                for r in rows]
    emit_rows(rows, fmt, (*_EVENT_COLUMNS, *extra))


def _load(app: AppContext, kinds: list[str] | None, meter: str | None, since: str | None,
          limit: int, with_silent: bool) -> tuple[list[MeterEvent], list[SilentMeter], ZoneInfo]:
    from parkcarbon.db import connect
    from parkcarbon.ingest.usage.events import list_events, silent_meters

    settings = app.settings()
    since_ts = local_midnight_utc(since, settings.tz, "--since") if since else None
    with connect(settings) as conn:
        events = list_events(conn, kinds=kinds, meter_id=meter, since=since_ts, limit=limit)
        silent = silent_meters(conn, meter) if with_silent else []
    return events, silent, settings.tz


_common = [
    click.option("--meter", default=None, help="Only this meter."),
    click.option("--since", default=None, help="Local day (YYYY-MM-DD)."),
    click.option("--limit", type=int, default=200, show_default=True),
    format_option,
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
                 since: str | None, limit: int, fmt: str) -> None:
    """List counter events found by `usage derive` (times in the park timezone)."""
    events, _, tz = _load(app, list(kinds) or None, meter, since, limit, with_silent=False)
    if fmt != "table":
        _emit([e.as_dict() for e in events], fmt)
        return
    click.echo("\n".join(_event_line(e, tz) for e in events) if events else "no events")


@usage_group.command("gaps")
@_with_common
@pass_app
def usage_gaps(app: AppContext, meter: str | None, since: str | None, limit: int,
               fmt: str) -> None:
    """List gaps (usage across them is spread evenly and marked estimated), then meters
    silent right now (no reading for more than twice their interval).

    CSV and JSON: one row per gap event, then one of kind "silent" per silent meter
    (ts_start: its last reading, null if it never reported; ts: null).
    """
    from parkcarbon.db import connect
    from parkcarbon.ingest.usage import queries as Q

    gaps, silent, tz = _load(app, ["gap"], meter, since, limit, with_silent=True)
    with connect(app.settings()) as conn:
        units: dict[str, str] = dict(conn.execute(Q.METER_UNITS).fetchall())
        newest, age = conn.execute(Q.PARK_LAST_READING).fetchone() or (None, None)
    if fmt != "table":
        rows = [{**g.as_dict(), "unit": units.get(g.meter_id)} for g in gaps] + [
            {"meter_id": s.meter_id, "kind": "silent", "ts_start": s.last_reading, "ts": None,
             "value_before": None, "value_after": None, "quantity": None, "detail": None,
             "unit": units.get(s.meter_id)}
            for s in silent
        ]
        _emit(rows, fmt, extra=(("unit", "unit", 0),))
        return
    click.echo("\n".join(_event_line(g, tz, units) for g in gaps) if gaps else "no events")
    if newest is not None and age is not None and age.total_seconds() > 3600:
        click.echo(f"no reading from any meter since {newest.astimezone(tz):%Y-%m-%d %H:%M} "
                   f"({age.total_seconds() / 3600:,.1f} h ago): is data arriving? (meters "
                   "below are silent relative to that newest reading)")
    for s in silent:
        last = s.last_reading.astimezone(tz).strftime("%Y-%m-%d %H:%M") if s.last_reading \
            else "never"
        click.echo(f"{s.meter_id:<14} silent since {last}")
