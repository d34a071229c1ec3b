"""Commands ``parkcarbon simulate`` and ``parkcarbon usage derive|events|gaps``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import click
import psycopg

from parkcarbon.cli import AppContext, echo_json, pass_app
from parkcarbon.errors import ParkcarbonError


def register(group: click.Group) -> None:
    """Add this module's commands to the `parkcarbon` group."""
    group.add_command(simulate_command)
    group.add_command(usage_group)


def _local_day(value: str, tz: ZoneInfo, option: str) -> datetime:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ParkcarbonError(f"{option} {value!r} is not a date (YYYY-MM-DD)") from None
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


@click.command("simulate")
@click.option("--start", default=None, help="First local day (YYYY-MM-DD; default: today "
              "minus --days, so the data ends today; with --realtime: now).")
@click.option("--days", type=click.IntRange(min=1), default=None, help="Days to simulate "
              "(default 1; 30 = a month).")
@click.option("--end", default=None, help="Local day after the last one (instead of --days).")
@click.option("--step", "step_seconds", type=int, default=900, show_default=True,
              help="Simulation step in seconds; a meter reports every max(step, its interval).")
@click.option("--realtime", is_flag=True, help="Live: send each reading when the clock "
              "reaches its time.")
@click.option("--speed", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Replay N times faster than real time (1: at its own pace).")
@click.option("--faults", default="", help="Comma-separated: reset,rollover,gap,duplicate,"
              "late,out_of_order,garbage (or 'all').")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--dry-run", is_flag=True, help="Generate but do not publish.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_app
def simulate_command(app: AppContext, start: str | None, days: int | None, end: str | None,
                     step_seconds: int, realtime: bool, speed: float | None, faults: str,
                     seed: int, dry_run: bool, as_json: bool) -> None:
    """Publish realistic readings of the example park to the configured MQTT broker."""
    from collections import Counter

    from parkcarbon.ingest.simulate import FAULTS, generate, publish
    from parkcarbon.registry import load_registry

    settings = app.settings()
    registry = load_registry(settings.registry_file)
    tz = ZoneInfo(registry.park.timezone)
    if days is not None and end is not None:
        raise click.UsageError("give --days or --end, not both")
    if realtime and speed is not None:
        raise click.UsageError("give --realtime or --speed, not both")
    chosen = [f.strip() for f in faults.split(",") if f.strip()]
    if chosen == ["all"]:
        chosen = list(FAULTS)
    if start is not None:
        t0 = _local_day(start, tz, "--start")
    elif realtime:  # live: from the current step on, each reading sent at its own time
        epoch = int(datetime.now(UTC).timestamp()) // step_seconds * step_seconds
        t0 = datetime.fromtimestamp(epoch, tz=UTC)
    else:
        today = datetime.now(tz).date() - timedelta(days=(days or 1))
        t0 = datetime(today.year, today.month, today.day, tzinfo=tz).astimezone(UTC)
    t1 = _local_day(end, tz, "--end") if end else t0 + timedelta(days=days or 1)
    if not as_json:
        click.echo(f"generating {len(registry.meters)} meters, {t0.isoformat()} .. "
                   f"{t1.isoformat()} ...", err=True)
    messages = list(generate(registry, start=t0, end=t1, step_seconds=step_seconds,
                             faults=chosen, seed=seed))
    kinds = Counter(m.kind for m in messages)
    summary: dict[str, object] = {
        "start": t0.isoformat(), "end": t1.isoformat(), "meters": len(registry.meters),
        "messages": len(messages), "readings": sum(m.readings for m in messages
                                                   if m.kind != "garbage"),
        "by_kind": dict(kinds), "faults": chosen, "seed": seed, "published": not dry_run,
    }
    if not dry_run:
        shown = [-1]

        def progress(sent: int, total: int) -> None:
            tenth = sent * 10 // max(total, 1)
            if not as_json and tenth > shown[0]:
                shown[0] = tenth
                click.echo(f"  {sent}/{total} messages published", err=True)

        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        stats = publish(messages, host=settings.mqtt_host, port=settings.mqtt_port,
                        username=settings.mqtt_username, password=password,
                        realtime=realtime, speed=speed, topic_prefix=settings.topic_prefix,
                        progress=progress)
        summary.update(seconds=round(stats.seconds, 2), payload_bytes=stats.payload_bytes,
                       broker=f"{settings.mqtt_host}:{settings.mqtt_port}")
    if as_json:
        echo_json(summary)
        return
    verb = "published" if not dry_run else "generated (dry run)"
    where = f" to {summary['broker']} in {summary['seconds']}s" if not dry_run else ""
    click.echo(f"{verb} {summary['messages']} messages ({summary['readings']} readings) "
               f"for {summary['meters']} meters, {t0.isoformat()} .. {t1.isoformat()}{where}"
               + (f"; faults: {','.join(chosen)}" if chosen else ""))


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
    from parkcarbon.ingest.derive import derive_committed

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
    since_ts = _local_day(since, settings.tz, "--since") if since else None
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
        since_ts = _local_day(since, settings.tz, "--since") if since else None
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
