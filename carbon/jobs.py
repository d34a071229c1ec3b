"""Scheduled job of parkcarbon.carbon: the accounting refresh."""

from __future__ import annotations

import logging

from parkcarbon.carbon.accounting import refresh
from parkcarbon.carbon.models import RefreshResult
from parkcarbon.db import connect
from parkcarbon.scheduling import JobContext, ScheduledJob
from parkcarbon.settings import Settings

log = logging.getLogger(__name__)

# Emissions change only when usage does; every five minutes keeps boards current
# without recomputing the month on every derivation.
ACCOUNTING_INTERVAL_SECONDS = 300.0


def accounting_refresh_job(ctx: JobContext) -> RefreshResult:
    """Recompute emissions and standard coal for the periods whose usage changed, and
    write the targets file's budgets into ``carbon_budgets``."""
    from parkcarbon.carbon.targets import sync_budgets

    with connect(ctx.settings) as conn:
        result = refresh(conn, ctx.settings)
        sync_budgets(conn, ctx.settings)
        conn.commit()
    log.debug("accounting refresh: %s", result)
    return result


def jobs(settings: Settings) -> list[ScheduledJob]:
    del settings
    return [
        ScheduledJob(
            "accounting_refresh",
            accounting_refresh_job,
            interval_seconds=ACCOUNTING_INTERVAL_SECONDS,
            run_at_start=True,
            description="emissions by scope and standard coal from usage",
        )
    ]
