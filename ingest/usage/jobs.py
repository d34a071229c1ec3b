"""Scheduled job of parkcarbon.ingest.usage: derive usage from new readings."""

from __future__ import annotations

import logging

from parkcarbon.ingest.usage.derive import DeriveResult, derive_committed
from parkcarbon.scheduling import JobContext, ScheduledJob
from parkcarbon.settings import Settings

log = logging.getLogger(__name__)

# Usage is derived every minute: ingest commits within a second, so dashboards lag
# readings by at most a minute plus the derivation time.
DERIVE_INTERVAL_SECONDS = 60.0


def derive_usage_job(ctx: JobContext) -> DeriveResult:
    """Fill ``usage`` from new readings (counter deltas, resets, gaps)."""
    result = derive_committed(ctx.settings)
    log.debug("derive_usage: %s", result)
    return result


def jobs(settings: Settings) -> list[ScheduledJob]:
    del settings
    return [
        ScheduledJob(
            "derive_usage",
            derive_usage_job,
            interval_seconds=DERIVE_INTERVAL_SECONDS,
            run_at_start=True,
            description="usage per 15-minute slot from readings",
        )
    ]
