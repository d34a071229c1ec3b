"""Scheduled job of parkcarbon.reports: the previous month's reports, on the 1st.

On the 1st of every month at 06:00 park time (``REPORT_CRON``) the job brings the chain
up to date, writes the park report and every enterprise's report for the previous
local month (language: setting ``report_lang``; all three formats, to ``report_dir``),
then re-checks the months already reported: where a restatement changed a figure, the
next version is written with its change page.
"""

from __future__ import annotations

import logging

from parkcarbon.db import connect
from parkcarbon.periods import local_today, parse_period
from parkcarbon.reports import queries as Q
from parkcarbon.reports.generate import generate_reports, recheck_reported
from parkcarbon.reports.models import WrittenReport
from parkcarbon.scheduling import JobContext, ScheduledJob
from parkcarbon.settings import Settings

log = logging.getLogger(__name__)

# After the night's late data has arrived, before the officers' working day.
REPORT_CRON = {"day": "1", "hour": "6", "minute": "0"}


def monthly_reports_job(ctx: JobContext) -> list[WrittenReport]:
    """The previous month's park and enterprise reports, then re-check reported months."""
    from parkcarbon.carbon.current import bring_up_to_date

    today = local_today(ctx.settings.tz, ctx.now)
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    period = parse_period(f"{year:04d}-{month:02d}")
    with connect(ctx.settings) as conn:
        bring_up_to_date(conn, ctx.settings)
        conn.commit()
        ids = [r[0] for r in conn.execute(Q.ENTERPRISE_IDS).fetchall()]
        written = generate_reports(conn, ctx.settings, period, [None, *ids], now=ctx.now)
        written += recheck_reported(conn, ctx.settings, skip=period, now=ctx.now)
    log.info(
        "monthly reports %s: %d written (%d new versions)", period.label, len(written),
        sum(w.new_version for w in written),
    )
    return written


def jobs(settings: Settings) -> list[ScheduledJob]:
    del settings
    return [
        ScheduledJob(
            "monthly_reports",
            monthly_reports_job,
            cron=dict(REPORT_CRON),
            description="previous month's carbon reports (park and enterprises), "
            "new versions after restatements",
        )
    ]
