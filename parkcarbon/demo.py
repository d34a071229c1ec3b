"""``parkcarbon demo``: the whole system on a fresh machine, in about a minute.

1. services: the configured PostgreSQL and MQTT broker when reachable, else an embedded
   PostgreSQL and a local broker (``parkcarbon.embedded``);
2. schema and the example park (``db migrate`` + registry sync);
3. a simulated month (``parkcarbon.ingest.simulate``) with faults (a counter reset, a
   gap, a late burst, garbage), published over MQTT and stored by the real ingest
   service;
4. usage derivation and the accounting refresh, then the summary
   (``parkcarbon.demo_report``);
5. with ``--live``: the park keeps reporting in real time, ingest and the scheduler keep
   deriving and accounting, a status line every half minute, until Ctrl-C.

The figures printed come from the accounting API (``park_summary``); nothing is
computed here.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import click
from pydantic import SecretStr

from parkcarbon.demo_feed import (
    DEMO_CLIENT_ID,
    DemoError,
    Progress,
    derive_and_account,
    publish_and_ingest,
)
from parkcarbon.demo_report import DemoSummary, build_summary, render_text
from parkcarbon.demo_services import DemoServices, resolve_services
from parkcarbon.registry import Registry, load_registry
from parkcarbon.settings import Settings

log = logging.getLogger(__name__)

DEMO_FAULTS = ("reset", "gap", "late", "garbage")
DEMO_SESSION_EXPIRY_SECONDS = 600  # a demo's session should not outlive it for long
LIVE_HOURS = 24  # live mode simulates this far ahead (one series: counters stay continuous)


@dataclass(frozen=True)
class DemoOptions:
    month: date | None = None  # first day of the month to simulate; None: previous month
    days: int | None = None  # only the first N days
    step_seconds: int = 900
    seed: int = 0
    faults: bool = True
    embedded: Literal["auto", "always", "never"] = "auto"
    data_dir: Path | None = None
    live: bool = False
    progress: bool = True
    as_json: bool = False


def demo_period(
    tz_name: str, options: DemoOptions, now: datetime
) -> tuple[str, datetime, datetime]:
    """(YYYY-MM label, start, end) in UTC: the month (or its first ``days``), never past now."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(tz_name)
    if options.month is not None:
        first = options.month.replace(day=1)
    else:
        this = now.astimezone(tz).date().replace(day=1)
        first = (this - timedelta(days=1)).replace(day=1)
    nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    start = datetime(first.year, first.month, first.day, tzinfo=tz)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
    if options.days is not None:
        end = min(end, start + timedelta(days=options.days))
    step = timedelta(seconds=options.step_seconds)
    latest = start + ((now - start) // step) * step
    end = min(end, latest)
    if end <= start:
        raise DemoError(f"{first:%Y-%m} has not started yet", hint="pick an earlier --month")
    return f"{first:%Y-%m}", start.astimezone(UTC), end.astimezone(UTC)


def demo_settings(settings: Settings, services: DemoServices) -> Settings:
    """The user's settings pointed at the services the demo uses."""
    update: dict[str, Any] = {
        "database_url": SecretStr(services.dsn),
        "mqtt_host": services.mqtt_host,
        "mqtt_port": services.mqtt_port,
        "mqtt_protocol": services.mqtt_protocol,
        "mqtt_client_id": DEMO_CLIENT_ID,
        # Its own topics: a production ingest on the same broker never stores demo data,
        # and the demo never stores someone else's.
        "topic_prefix": f"{settings.topic_prefix}-demo",
        "mqtt_shared_group": None,
        "mqtt_session_expiry_seconds": DEMO_SESSION_EXPIRY_SECONDS,
        "metrics_port": None,
    }
    if services.broker is not None:  # our own anonymous broker
        update.update(mqtt_username=None, mqtt_password=None, mqtt_tls=False)
    return settings.model_copy(update=update)


def prepare_database(settings: Settings, registry: Registry, progress: Progress) -> str:
    """Migrate and load the registry; returns the storage mode."""
    from parkcarbon.db import connect
    from parkcarbon.schema import migrate
    from parkcarbon.sync import sync_registry

    result = migrate(settings, mode=settings.storage_mode, timezone=settings.timezone)
    with connect(settings) as conn:
        synced = sync_registry(conn, registry)
    progress(
        f"schema version {result.version} ({result.mode} mode), park "
        f"{registry.park.name_zh or registry.park.name}: {synced.enterprises} enterprises, "
        f"{synced.meters} meters"
    )
    return result.mode


def simulate(registry: Registry, options: DemoOptions, start: datetime, end: datetime) -> list[Any]:
    """The park's messages from ``start`` to ``end`` as one series (one simulator call,
    so cumulative registers run on continuously), in sending order."""
    from parkcarbon.ingest.simulate import generate

    faults = DEMO_FAULTS if options.faults else ()
    return list(
        generate(
            registry,
            start=start,
            end=end,
            step_seconds=options.step_seconds,
            faults=faults,
            seed=options.seed,
        )
    )


def run_demo_on(
    settings: Settings,
    registry: Registry,
    services: DemoServices,
    options: DemoOptions,
    progress: Progress,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> tuple[DemoSummary, list[Any]]:
    """Steps 2-4 on services already chosen (the tests call this).

    Returns the summary and, with ``options.live``, the simulated messages still to send
    (up to ``LIVE_HOURS`` ahead).
    """
    from parkcarbon.db import connect
    from parkcarbon.ingest.service import IngestService

    settings = demo_settings(settings, services)
    mode = prepare_database(settings, registry, progress)
    label, start, end = demo_period(settings.timezone, options, now())
    horizon = now() + timedelta(hours=LIVE_HOURS) if options.live else end
    faults = DEMO_FAULTS if options.faults else ()
    progress(
        f"simulating {label} ({start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC) for "
        f"{len(registry.meters)} meters every {options.step_seconds // 60} min, faults: "
        f"{', '.join(faults) or 'none'}"
    )
    messages = simulate(registry, options, start, horizon)
    cut = next((i for i, m in enumerate(messages) if m.sim_time > end), len(messages))
    month, rest = messages[:cut], messages[cut:]
    ingest = IngestService(settings, registry)
    started = time.monotonic()
    ingest.start()
    try:
        if not ingest.wait_connected(15.0):
            raise DemoError(f"ingest cannot connect to the broker at {services.broker_label}")
        time.sleep(0.3)  # let the SUBACK land before the first publish
        pub = publish_and_ingest(settings, ingest, month, progress, label)
    finally:
        ingest.stop()
    st = ingest.stats()
    progress(
        f"ingest: {st.readings_stored:,} readings stored, {st.readings_duplicate:,} "
        f"duplicates, {st.dead_letters:,} dead letters"
    )
    derive_and_account(settings, progress)
    seconds = time.monotonic() - started
    with connect(settings) as conn:
        summary = build_summary(
            conn,
            settings,
            registry,
            period=label,
            start=start,
            end=end,
            services=services,
            storage_mode=mode,
            ingest_stats=st,
            published=pub,
            seconds=seconds,
        )
    return summary, rest


def run_demo(app: Any, options: DemoOptions) -> DemoSummary:
    """The ``parkcarbon demo`` command: choose services, run, print, clean up."""
    from parkcarbon.cli import echo_json

    settings: Settings = app.settings()
    progress = Progress(options.progress)
    if settings.log_level == "INFO":
        # The [demo] lines tell the story; the services' lifecycle lines would bury it.
        logging.getLogger().setLevel(logging.WARNING)
    registry = load_registry(settings.registry_file)
    with resolve_services(settings, options.embedded, options.data_dir, progress) as services:
        summary, rest = run_demo_on(settings, registry, services, options, progress)
        if options.as_json:
            echo_json(summary.as_dict())
        else:
            click.echo(render_text(summary))
        if options.live:
            from parkcarbon.demo_live import run_live

            run_live(settings, registry, services, rest, options, progress, click.echo)
        elif sys.stdin.isatty() and not options.as_json:
            click.echo(
                "\nTo keep the park running live (ingest + scheduler, real-time "
                "readings): parkcarbon demo --live"
            )
    return summary
