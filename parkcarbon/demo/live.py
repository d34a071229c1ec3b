"""``parkcarbon demo --live``: the park keeps reporting in real time until stopped."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import TYPE_CHECKING

from parkcarbon.demo.feed import Progress, publish_and_ingest
from parkcarbon.demo.options import DemoOptions, demo_settings
from parkcarbon.demo.services import DemoServices
from parkcarbon.periods import local_today, utc_now
from parkcarbon.registry import Registry
from parkcarbon.scheduling import ScheduledJob
from parkcarbon.settings import Settings
from parkcarbon.signals import stop_on_signals

if TYPE_CHECKING:
    from parkcarbon.ingest.simulator.simulate import SimMessage
    from parkcarbon.runtime.supervisor import Supervisor

LIVE_TICK_SECONDS = 5.0  # how often due messages are published
LIVE_STATUS_SECONDS = 30.0  # one status line this often
LIVE_DERIVE_SECONDS = 15.0  # the demo derives and accounts more often than production
LIVE_ACCOUNTING_SECONDS = 30.0


def run_live(
    settings: Settings,
    registry: Registry,
    services: DemoServices,
    pending: list[SimMessage],
    options: DemoOptions,
    progress: Progress,
    echo: Callable[[str], None],
    stop: threading.Event | None = None,
) -> None:
    """Keep the park reporting in real time with ingest and the scheduler running,
    publishing ``pending`` messages as their time comes, until SIGINT / SIGTERM (or until
    ``stop`` is set, when given: then no signal handlers are installed)."""
    from parkcarbon.carbon.jobs import accounting_refresh_job
    from parkcarbon.ingest.usage.jobs import derive_usage_job
    from parkcarbon.runtime.supervisor import Supervisor

    settings = demo_settings(settings, services)
    jobs = [
        ScheduledJob(
            "derive_usage",
            derive_usage_job,
            interval_seconds=LIVE_DERIVE_SECONDS,
            run_at_start=True,
        ),
        ScheduledJob(
            "accounting_refresh",
            accounting_refresh_job,
            interval_seconds=LIVE_ACCOUNTING_SECONDS,
            run_at_start=True,
        ),
    ]
    supervisor = Supervisor(settings, registry, jobs=jobs, health_port=0)
    with stop_on_signals() if stop is None else nullcontext(stop) as stop:
        supervisor.start()
        try:
            assert supervisor.ingest is not None
            supervisor.ingest.wait_subscribed(15.0)
            echo(
                f"\nlive mode: the park keeps reporting every {options.step_seconds // 60} "
                "min, ingest and the scheduler keep deriving and accounting; Ctrl-C stops"
            )
            status_at = 0.0
            while pending and not stop.is_set():
                now = utc_now()
                cut = next((i for i, m in enumerate(pending) if m.sim_time > now), len(pending))
                due, pending = pending[:cut], pending[cut:]
                if due:
                    what = "catch-up" if len(due) > 1000 else "live"
                    publish_and_ingest(settings, supervisor.ingest, due, progress, what, stop=stop)
                if time.monotonic() - status_at >= LIVE_STATUS_SECONDS:
                    status_at = time.monotonic()
                    echo(_live_status(settings, supervisor))
                stop.wait(LIVE_TICK_SECONDS)
        finally:
            supervisor.stop()
    echo("live mode stopped; everything received is stored")


def _live_status(settings: Settings, supervisor: Supervisor) -> str:
    from zoneinfo import ZoneInfo

    from parkcarbon.carbon.accounting import emissions
    from parkcarbon.db import connect

    today = local_today(ZoneInfo(settings.timezone))
    with connect(settings) as conn:
        day = emissions(conn, period=today.isoformat())
        month = emissions(conn, period=f"{today:%Y-%m}")
    day_co2 = float(day["scope12_co2_t"].astype(float).sum())
    day_tce = float(day["tce"].astype(float).sum())
    month_co2 = float(month["scope12_co2_t"].astype(float).sum())
    assert supervisor.ingest is not None  # the demo's supervisor always runs ingest
    st = supervisor.ingest.stats()
    return (
        f"{utc_now():%H:%M:%S} UTC  today {day_co2:,.1f} tCO2, {day_tce:,.1f} tce; "
        f"{today:%Y-%m} so far {month_co2:,.0f} tCO2; readings stored "
        f"{st.readings_stored:,}, dead letters {st.dead_letters}"
    )
