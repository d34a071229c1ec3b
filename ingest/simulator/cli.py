"""Command ``parkcarbon simulate``: publish readings of the example park to the broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import click

from parkcarbon.clikit import AppContext, emit_mapping, format_option, pass_app
from parkcarbon.periods import local_midnight_utc


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
@format_option
@pass_app
def simulate_command(app: AppContext, start: str | None, days: int | None, end: str | None,
                     step_seconds: int, realtime: bool, speed: float | None, faults: str,
                     seed: int, dry_run: bool, fmt: str) -> None:
    """Publish realistic readings of the example park to the configured MQTT broker.

    Prints a summary; progress goes to stderr (only with --format table).
    """
    from collections import Counter

    from parkcarbon.ingest.simulator.simulate import FAULTS, generate, publish
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
        t0 = local_midnight_utc(start, tz, "--start")
    elif realtime:  # live: from the current step on, each reading sent at its own time
        epoch = int(datetime.now(UTC).timestamp()) // step_seconds * step_seconds
        t0 = datetime.fromtimestamp(epoch, tz=UTC)
    else:
        today = datetime.now(tz).date() - timedelta(days=(days or 1))
        t0 = datetime(today.year, today.month, today.day, tzinfo=tz).astimezone(UTC)
    t1 = local_midnight_utc(end, tz, "--end") if end else t0 + timedelta(days=days or 1)
    quiet = fmt != "table"
    if not quiet:
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
            if not quiet and tenth > shown[0]:
                shown[0] = tenth
                click.echo(f"  {sent}/{total} messages published", err=True)

        stats = publish(messages, settings, realtime=realtime, speed=speed, progress=progress)
        summary.update(seconds=round(stats.seconds, 2), payload_bytes=stats.payload_bytes,
                       broker=f"{settings.mqtt_host}:{settings.mqtt_port}")
    verb = "published" if not dry_run else "generated (dry run)"
    where = f" to {summary['broker']} in {summary['seconds']}s" if not dry_run else ""
    line = (f"{verb} {summary['messages']} messages ({summary['readings']} readings) "
            f"for {summary['meters']} meters, {t0.isoformat()} .. {t1.isoformat()}{where}"
            + (f"; faults: {','.join(chosen)}" if chosen else ""))
    emit_mapping(summary, fmt, lambda: [line])
