"""The scheduled jobs of ``parkcarbon run``: the explicit list of job providers.

A provider is a feature package's ``jobs(settings) -> Iterable[ScheduledJob]``
(``parkcarbon.scheduling``). ``PROVIDERS`` names every one; they are imported when this
module is, so a provider that fails to import stops the service at start-up with its
error instead of leaving its jobs silently unscheduled. A package that adds jobs (the
alerts and monthly reports, when they land) adds one line here.

- ``parkcarbon.ingest.usage.jobs``: usage per 15-minute slot from new readings;
- ``parkcarbon.ingest.jobs``: the dead-letter retention (daily);
- ``parkcarbon.carbon.jobs``: the accounting refresh (emissions, standard coal).
- ``parkcarbon.alerts.jobs``: the alert cycle every minute (evaluate, notify, deliver).

Tests and embedders may add providers at run time with ``add_job_provider``.
"""

from __future__ import annotations

import logging

from parkcarbon.alerts import jobs as alerts_jobs
from parkcarbon.carbon import jobs as carbon_jobs
from parkcarbon.ingest import jobs as ingest_jobs
from parkcarbon.ingest.usage import jobs as usage_jobs
from parkcarbon.periods import utc_now
from parkcarbon.reports import jobs as report_jobs
from parkcarbon.scheduling import JobContext, JobProvider, ScheduledJob
from parkcarbon.settings import Settings

__all__ = [
    "PROVIDERS",
    "JobContext",
    "ScheduledJob",
    "add_job_provider",
    "collect_jobs",
    "remove_job_provider",
    "utc_now",
]

log = logging.getLogger(__name__)

PROVIDERS: tuple[JobProvider, ...] = (
    usage_jobs.jobs,
    ingest_jobs.jobs,
    carbon_jobs.jobs,
    alerts_jobs.jobs,
    report_jobs.jobs,
)

_extra: list[JobProvider] = []


def add_job_provider(provider: JobProvider) -> None:
    """Register one more provider of scheduled jobs (idempotent)."""
    if provider not in _extra:
        _extra.append(provider)


def remove_job_provider(provider: JobProvider) -> None:
    if provider in _extra:
        _extra.remove(provider)


def collect_jobs(settings: Settings) -> list[ScheduledJob]:
    """Every job to schedule, from ``PROVIDERS`` then the registered extras.

    Raises ``ValueError`` on a duplicate job name.
    """
    jobs = [job for provider in (*PROVIDERS, *_extra) for job in provider(settings)]
    names = [j.name for j in jobs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate scheduled job names: {', '.join(dupes)}")
    return jobs
