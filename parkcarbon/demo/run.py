"""``parkcarbon demo``: the whole system on a fresh machine, in about a minute.

1. services: the configured PostgreSQL and MQTT broker when reachable, else an embedded
   PostgreSQL and a local broker (``parkcarbon.demo.embedded``);
2. schema and the example park (``db migrate`` + registry sync);
3. a simulated month (``parkcarbon.ingest.simulator.simulate``) with faults (a counter reset, a
   gap, a late burst, garbage), published over MQTT and stored by the real ingest
   service;
4. usage derivation and the accounting refresh, then the summary
   (``parkcarbon.demo.summary``);
5. with ``--live``: the park keeps reporting in real time, ingest and the scheduler keep
   deriving and accounting, a status line every half minute, until Ctrl-C.

The figures printed come from the accounting API (``park_summary``); nothing is
computed here.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import click

from parkcarbon.clikit import AppContext, emit_mapping
from parkcarbon.demo.errors import DemoError
from parkcarbon.demo.feed import (
    Progress,
    derive_and_account,
    publish_and_ingest,
)
from parkcarbon.demo.options import DEMO_FAULTS, LIVE_HOURS, DemoOptions, demo_period, demo_settings
from parkcarbon.demo.services import DemoServices, resolve_services
from parkcarbon.demo.summary import DemoSummary, build_summary, render_text
from parkcarbon.periods import utc_now
from parkcarbon.registry import Registry, load_registry
from parkcarbon.settings import Settings

log = logging.getLogger(__name__)

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


def service_settings(settings: Settings) -> Settings:
    """Create the database roles (as ``db migrate`` does) and return the settings that
    log in as the service role, as ``parkcarbon run`` does in docker-compose: the demo
    ingests, derives and accounts with the roles' privileges, not the owner's."""
    import tempfile
    from pathlib import Path

    from pydantic import SecretStr

    from parkcarbon.errors import DatabaseError
    from parkcarbon.security import ensure_roles, roles

    # The role passwords are generated into a private folder that lives only as long
    # as this call: the demo keeps the service password in its settings.
    with tempfile.TemporaryDirectory(prefix="parkcarbon-demo-secrets-") as folder:
        owner = settings.model_copy(update={"secrets_dir": Path(folder)})
        try:
            ensure_roles(owner)
        except DatabaseError as exc:  # e.g. an owner that may not create roles
            log.warning("demo runs as the database owner: %s", exc)
            return settings
        role = roles.service_role(owner)
        password = roles.read_secret(roles.password_file(owner, role))
    return settings.model_copy(
        update={"database_user": role, "database_password": SecretStr(password),
                "database_password_file": None})


def simulate(registry: Registry, options: DemoOptions, start: datetime, end: datetime) -> list[Any]:
    """The park's messages from ``start`` to ``end`` as one series (one simulator call,
    so cumulative registers run on continuously), in sending order."""
    from parkcarbon.ingest.simulator.simulate import generate

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
    now: Callable[[], datetime] = utc_now,
) -> tuple[DemoSummary, list[Any]]:
    """Steps 2-4 on services already chosen (the tests call this).

    Returns the summary and, with ``options.live``, the simulated messages still to send
    (up to ``LIVE_HOURS`` ahead).
    """
    from parkcarbon.db import connect
    from parkcarbon.ingest.service import IngestService

    settings = demo_settings(settings, services)
    mode = prepare_database(settings, registry, progress)
    settings = service_settings(settings)
    if settings.database_user:
        progress(f"database roles ready; ingest and accounting run as {settings.database_user}")
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
        if not ingest.wait_subscribed(15.0):
            raise DemoError(f"ingest cannot subscribe at the broker {services.broker_label}")
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
        summary = dataclasses.replace(summary, report=write_report(conn, settings, label))
    from parkcarbon.alerts.demo import demo_alerts

    alerts = demo_alerts(settings, registry, start, end)  # None without an alerts file
    if alerts is not None:
        progress(f"alerts: {alerts.line()}")
        summary = dataclasses.replace(summary, alerts=alerts.as_dict() | {"line": alerts.line()})
    return summary, rest


def write_report(conn: Any, settings: Settings, label: str) -> str:
    """The month's park report (PDF, XLSX, CSV in ``report_dir``); the PDF's path."""
    from parkcarbon.reports.figures import month_period
    from parkcarbon.reports.generate import generate_reports

    [park] = generate_reports(conn, settings, month_period(label), [None])
    return str(next(f for f in park.files if f.suffix == ".pdf").resolve())


def run_demo(app: AppContext, options: DemoOptions) -> DemoSummary:
    """The ``parkcarbon demo`` command: choose services, run, print, clean up."""
    settings: Settings = app.settings()
    progress = Progress(options.progress)
    if settings.log_level == "INFO":
        # The [demo] lines tell the story; the services' lifecycle lines would bury it.
        logging.getLogger().setLevel(logging.WARNING)
    registry = load_registry(settings.registry_file)
    with resolve_services(settings, options.embedded, options.data_dir, progress) as services:
        summary, rest = run_demo_on(settings, registry, services, options, progress)
        if options.fmt == "table":
            click.echo(render_text(summary))
        else:
            emit_mapping(summary.as_dict(), options.fmt, list)
        if options.live:
            from parkcarbon.demo.live import run_live

            run_live(settings, registry, services, rest, options, progress, click.echo)
        elif sys.stdin.isatty() and options.fmt == "table":
            click.echo(
                "\nTo keep the park running live (ingest + scheduler, real-time "
                "readings): parkcarbon demo --live"
            )
    return summary
