"""Scheduled job of parkcarbon.ingest: the dead-letter retention.

Without it the dead-letter store grows without bound (1,000 rejected 250 KB messages
added 250 MB). Payloads are cut to ``dead_letter_keep_bytes`` when stored; this job
deletes dead letters replayed, or received, more than ``dead_letter_retention_days``
ago, daily, and logs the table's size.
"""

from __future__ import annotations

import logging

from parkcarbon.db import connect
from parkcarbon.ingest.deadletters import purge_dead_letters, table_bytes
from parkcarbon.scheduling import JobContext, ScheduledJob
from parkcarbon.settings import Settings

log = logging.getLogger(__name__)


def purge_dead_letters_job(ctx: JobContext) -> int:
    """Apply the dead-letter retention; returns how many rows were deleted."""
    with connect(ctx.settings) as conn:
        purged = purge_dead_letters(conn, retention_days=ctx.settings.dead_letter_retention_days)
        size = table_bytes(conn)
    log.info("purge_dead_letters: %d purged, dead_letters table %.1f MB", purged, size / 1e6)
    return purged


def jobs(settings: Settings) -> list[ScheduledJob]:
    del settings
    return [
        ScheduledJob(
            "purge_dead_letters",
            purge_dead_letters_job,
            cron={"hour": "3", "minute": "17"},  # park time, off the monthly-report hour
            description="delete dead letters past dead_letter_retention_days",
        )
    ]
