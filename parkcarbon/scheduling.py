"""What a scheduled job is: the model every feature package uses to offer its jobs.

A feature package offers jobs through a *provider*, a function
``jobs(settings) -> Iterable[ScheduledJob]`` in its ``jobs`` module; ``parkcarbon run``
lists the providers explicitly (``parkcarbon.runtime.schedule.PROVIDERS``). Each job
runs with a ``JobContext``: settings, the registry and ``now`` from the supervisor's
injectable clock; it opens its own database connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from parkcarbon.registry import Registry
from parkcarbon.settings import Settings


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
