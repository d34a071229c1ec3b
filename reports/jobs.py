"""Scheduled job of parkcarbon.reports: the previous month's reports, on the 1st.

On the 1st of every month at 06:00 park time (``REPORT_CRON``) the job brings the chain
up to date, writes the park report and every enterprise's report for the previous
local month (language: setting ``report_lang``; all three formats, to ``report_dir``),
then re-checks the months already reported: where a restatement changed a figure, the
next version is written with its change page. Every report it wrote is then e-mailed
(setting ``report_email``; ``reports.delivery``): the park's to the park officers, each
enterprise's to its own contacts; a delivery that failed transiently before is tried
again, one already sent is not sent twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import psycopg

from parkcarbon.db import connect
from parkcarbon.periods import local_today, parse_period
from parkcarbon.reports import queries as Q
from parkcarbon.reports.delivery import Delivery
from parkcarbon.reports.generate import generate_reports, recheck_reported
from parkcarbon.reports.models import WrittenReport
from parkcarbon.scheduling import JobContext, ScheduledJob
from parkcarbon.settings import Settings

log = logging.getLogger(__name__)

# After the night's late data has arrived, before the officers' working day.
REPORT_CRON = {"day": "1", "hour": "6", "minute": "0"}
# Report e-mails a 4xx or an unreachable server held back: tried again every hour.
EMAIL_RETRY_CRON = {"minute": "20"}


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
        if ctx.settings.report_email:
            _send(conn, ctx.settings, written)
    log.info(
        "monthly reports %s: %d written (%d new versions)", period.label, len(written),
        sum(w.new_version for w in written),
    )
    return written


def _send(conn: psycopg.Connection, settings: Settings, written: Sequence[WrittenReport]
          ) -> None:
    """E-mail the reports; a missing or bad alerts file is logged, never fatal (the
    reports are written and recorded; `report --send` can deliver them later)."""
    from parkcarbon.alerts.rules import load_alerts
    from parkcarbon.errors import ParkcarbonError
    from parkcarbon.reports.delivery import deliver_reports

    if not settings.alerts_file.is_file():
        log.warning("monthly reports: not e-mailed, no alerts file %s (its e-mail channels "
                    "name the recipients)", settings.alerts_file)
        return
    try:
        config = load_alerts(settings.alerts_file)
        deliveries = deliver_reports(conn, settings, config, written,
                                     lang=settings.report_lang)
    except ParkcarbonError as exc:
        log.error("monthly reports: not e-mailed: %s", exc)
        return
    _log_deliveries("monthly reports e-mailed", deliveries)


def email_retry_job(ctx: JobContext) -> list[Delivery]:
    """Hourly: the report e-mails left to retry (4xx reply, server unreachable)."""
    from parkcarbon.alerts.rules import load_alerts
    from parkcarbon.errors import ParkcarbonError
    from parkcarbon.reports.delivery import retry_pending

    if not ctx.settings.report_email or not ctx.settings.alerts_file.is_file():
        return []
    with connect(ctx.settings) as conn:
        if not conn.execute(Q.ANY_PENDING_DELIVERY).fetchone():
            return []
        try:
            deliveries = retry_pending(conn, ctx.settings, load_alerts(ctx.settings.alerts_file))
        except ParkcarbonError as exc:
            log.error("report e-mail retry: %s", exc)
            return []
    _log_deliveries("report e-mails retried", deliveries)
    return deliveries


def _log_deliveries(what: str, deliveries: Sequence[Delivery]) -> None:
    if not deliveries:
        return
    log.info("%s: %d sent, %d to retry, %d failed, %d skipped", what,
             *(sum(d.status == s for d in deliveries)
               for s in ("sent", "retry", "failed", "skipped")))


def jobs(settings: Settings) -> list[ScheduledJob]:
    del settings
    return [
        ScheduledJob(
            "monthly_reports",
            monthly_reports_job,
            cron=dict(REPORT_CRON),
            description="previous month's carbon reports (park and enterprises), "
            "new versions after restatements, e-mailed",
        ),
        ScheduledJob(
            "report_email_retry",
            email_retry_job,
            cron=dict(EMAIL_RETRY_CRON),
            description="report e-mails held back by a 4xx reply or an unreachable server",
        ),
    ]
