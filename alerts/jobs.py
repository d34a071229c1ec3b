"""Scheduled job of parkcarbon.alerts, and the HTTP route ``parkcarbon run`` mounts.

``alerts_cycle`` runs every minute: it loads the alerts file (so an edit takes effect
at the next cycle; an invalid file fails the job with every problem listed and the
previous state untouched), evaluates, dispatches and delivers. Without an alerts file
it does nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from parkcarbon.alerts.constants import ACK_PATH
from parkcarbon.scheduling import JobContext, ScheduledJob
from parkcarbon.settings import Settings

log = logging.getLogger(__name__)

# Offline and threshold alerts should be at most a minute late; one cycle of 5 rules x
# 1,200 meters takes well under a second (bench/alerts.py).
ALERTS_INTERVAL_SECONDS = 60.0


def alerts_cycle_job(ctx: JobContext) -> dict[str, Any] | None:
    """Evaluate every rule at ``ctx.now``, enqueue due notifications, deliver."""
    from parkcarbon.alerts.engine import run_cycle
    from parkcarbon.alerts.rules import load_alerts

    if not ctx.settings.alerts_file.is_file():
        log.debug("alerts: no alerts file %s; nothing to evaluate", ctx.settings.alerts_file)
        return None
    config = load_alerts(ctx.settings.alerts_file, ctx.registry)
    return run_cycle(ctx.settings, ctx.registry, config, ctx.now).summary()


def jobs(settings: Settings) -> list[ScheduledJob]:
    del settings
    return [
        ScheduledJob(
            "alerts_cycle",
            alerts_cycle_job,
            interval_seconds=ALERTS_INTERVAL_SECONDS,
            description="evaluate alert rules, notify, deliver the outbox",
        )
    ]


def http_routes(settings: Settings) -> dict[str, Any]:
    """``{ACK_PATH: handler}`` when the alerts file configures an acknowledge secret;
    empty otherwise (the endpoint then answers 404 there)."""
    from parkcarbon.alerts.ack import AckHandler
    from parkcarbon.alerts.errors import AlertsConfigError
    from parkcarbon.alerts.rules import load_alerts

    if not settings.alerts_file.is_file():
        return {}
    try:
        config = load_alerts(settings.alerts_file)
        if config.ack.secret is None:
            return {}
        return {ACK_PATH: AckHandler(settings, config)}
    except AlertsConfigError as exc:
        log.warning("alerts: acknowledge links are not served: %s", exc)
        return {}
