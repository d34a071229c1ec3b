"""Options of ``parkcarbon demo``: what to simulate, and the settings it runs with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from parkcarbon.demo.errors import DemoError
from parkcarbon.demo.feed import DEMO_CLIENT_ID
from parkcarbon.demo.services import DemoServices
from parkcarbon.settings import Settings

DEMO_FAULTS = ("reset", "gap", "late", "garbage")
DEMO_SESSION_EXPIRY_SECONDS = 600  # a demo's session should not outlive it for long
LIVE_HOURS = 24  # live mode simulates this far ahead (one series: counters stay continuous)


@dataclass(frozen=True)
class DemoOptions:
    month: date | None = None  # first day of the month to simulate; None: previous month
    days: int | None = None  # only the first N days
    step_seconds: int = 900
    seed: int = 0
    faults: bool = True
    embedded: Literal["auto", "always", "never"] = "auto"
    data_dir: Path | None = None
    live: bool = False
    progress: bool = True
    fmt: str = "table"  # summary: table (text), csv or json


def demo_period(
    tz_name: str, options: DemoOptions, now: datetime
) -> tuple[str, datetime, datetime]:
    """(YYYY-MM label, start, end) in UTC: the month (or its first ``days``), never past now."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(tz_name)
    if options.month is not None:
        first = options.month.replace(day=1)
    else:
        this = now.astimezone(tz).date().replace(day=1)
        first = (this - timedelta(days=1)).replace(day=1)
    nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    start = datetime(first.year, first.month, first.day, tzinfo=tz)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
    if options.days is not None:
        end = min(end, start + timedelta(days=options.days))
    step = timedelta(seconds=options.step_seconds)
    latest = start + ((now - start) // step) * step
    end = min(end, latest)
    if end <= start:
        raise DemoError(f"{first:%Y-%m} has not started yet", hint="pick an earlier --month")
    return f"{first:%Y-%m}", start.astimezone(UTC), end.astimezone(UTC)


def demo_settings(settings: Settings, services: DemoServices) -> Settings:
    """The user's settings pointed at the services the demo uses."""
    update: dict[str, Any] = {
        "database_url": SecretStr(services.dsn),
        "mqtt_host": services.mqtt_host,
        "mqtt_port": services.mqtt_port,
        "mqtt_protocol": services.mqtt_protocol,
        "mqtt_client_id": DEMO_CLIENT_ID,
        # Its own topics: a production ingest on the same broker never stores demo data,
        # and the demo never stores someone else's.
        "topic_prefix": f"{settings.topic_prefix}-demo",
        "mqtt_shared_group": None,
        "mqtt_session_expiry_seconds": DEMO_SESSION_EXPIRY_SECONDS,
        "metrics_port": None,
    }
    if services.broker is not None:  # our own anonymous broker
        update.update(mqtt_username=None, mqtt_password=None, mqtt_tls=False)
    return settings.model_copy(update=update)
