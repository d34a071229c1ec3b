"""Scheduled jobs of ``parkcarbon run``: what runs, how often, and how other parts add theirs.

A job is a ``ScheduledJob`` (name, function, trigger). Jobs come from *providers*,
functions ``provider(settings) -> Iterable[ScheduledJob]``:

- ``core_jobs`` (here): usage derivation from readings, then the accounting refresh;
- every module listed in ``JOB_MODULES`` that is installed, through its
  ``jobs(settings)`` function (the alerts and monthly-report packages add themselves
  there);
- anything registered at run time with ``add_job_provider(provider)``.

Only jobs whose code exists are scheduled: a missing package is skipped with one log
line, never replaced by a stub. Each job runs with a ``JobContext`` (settings, the
registry and ``now`` from an injectable clock) and opens its own database connection.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from parkcarbon.registry import Registry
from parkcarbon.settings import Settings

log = logging.getLogger(__name__)

# Modules that contribute scheduled jobs through ``jobs(settings) -> Iterable[ScheduledJob]``.
# Later packages append themselves here (one line), like COMMAND_MODULES in cli.py.
JOB_MODULES: list[str] = [
    "parkcarbon.alerts.jobs",
    "parkcarbon.reports.jobs",
]

# Usage is derived every minute: ingest commits within a second, so dashboards lag
# readings by at most a minute plus the derivation time.
DERIVE_INTERVAL_SECONDS = 60.0
# Emissions change only when usage does; every five minutes keeps boards current
# without recomputing the month on every derivation.
ACCOUNTING_INTERVAL_SECONDS = 300.0


@dataclass(frozen=True)
class JobContext:
    """What a job function receives."""

    settings: Settings
    registry: Registry
    now: datetime  # aware UTC, from the supervisor's clock


@dataclass(frozen=True)
class ScheduledJob:
    """One periodic job.

    Give either ``interval_seconds`` or ``cron`` (APScheduler ``CronTrigger`` fields,
    e.g. ``{"day": "1", "hour": "6"}``, evaluated in the park's timezone).
    ``run_at_start`` runs it once as soon as the scheduler starts.
    """

    name: str
    func: Callable[[JobContext], Any]
    interval_seconds: float | None = None
    cron: dict[str, str] = field(default_factory=dict)
    run_at_start: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if (self.interval_seconds is None) == (not self.cron):
            raise ValueError(f"job {self.name}: give exactly one of interval_seconds or cron")
        if self.interval_seconds is not None and self.interval_seconds <= 0:
            raise ValueError(f"job {self.name}: interval_seconds must be > 0")


JobProvider = Callable[[Settings], Iterable[ScheduledJob]]
_providers: list[JobProvider] = []


def add_job_provider(provider: JobProvider) -> None:
    """Register a provider of scheduled jobs (idempotent)."""
    if provider not in _providers:
        _providers.append(provider)


def remove_job_provider(provider: JobProvider) -> None:
    if provider in _providers:
        _providers.remove(provider)


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- core jobs ---------------------------------------------------------------------


def derive_usage_job(ctx: JobContext) -> Any:
    """Fill ``usage`` from new readings (counter deltas, resets, gaps)."""
    from parkcarbon.ingest.derive import derive_committed

    result = derive_committed(ctx.settings)
    log.debug("derive_usage: %s", result)
    return result


def accounting_refresh_job(ctx: JobContext) -> Any:
    """Recompute emissions and standard coal for the periods whose usage changed."""
    from parkcarbon.carbon.accounting import refresh
    from parkcarbon.db import connect

    with connect(ctx.settings) as conn:
        result = refresh(conn, ctx.settings)
        conn.commit()
    log.debug("accounting refresh: %s", result)
    return result


def _available(module: str, attr: str) -> bool:
    try:
        return hasattr(importlib.import_module(module), attr)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            return False
        raise


def core_jobs(settings: Settings) -> list[ScheduledJob]:
    """Usage derivation and accounting refresh, where their packages are installed."""
    del settings
    jobs: list[ScheduledJob] = []
    if _available("parkcarbon.ingest.derive", "derive_usage"):
        jobs.append(
            ScheduledJob(
                "derive_usage",
                derive_usage_job,
                interval_seconds=DERIVE_INTERVAL_SECONDS,
                run_at_start=True,
                description="usage per 15-minute slot from readings",
            )
        )
    else:
        log.warning("usage derivation not installed (parkcarbon.ingest.derive); not scheduled")
    if _available("parkcarbon.carbon.accounting", "refresh"):
        jobs.append(
            ScheduledJob(
                "accounting_refresh",
                accounting_refresh_job,
                interval_seconds=ACCOUNTING_INTERVAL_SECONDS,
                run_at_start=True,
                description="emissions by scope and standard coal from usage",
            )
        )
    else:
        log.warning("carbon accounting not installed (parkcarbon.carbon.accounting); not scheduled")
    return jobs


def _module_jobs(settings: Settings) -> list[ScheduledJob]:
    jobs: list[ScheduledJob] = []
    for name in JOB_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                log.debug("job module %s not installed", name)
                continue
            raise
        jobs.extend(module.jobs(settings))
    return jobs


def collect_jobs(settings: Settings) -> list[ScheduledJob]:
    """Every job to schedule: core, installed JOB_MODULES, registered providers.

    Raises ``ValueError`` on a duplicate job name.
    """
    jobs = [*core_jobs(settings), *_module_jobs(settings)]
    for provider in list(_providers):
        jobs.extend(provider(settings))
    names = [j.name for j in jobs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate scheduled job names: {', '.join(dupes)}")
    return jobs
