"""Feeding the demo: progress lines, paced publishing into ingest, derive + accounting."""

from __future__ import annotations

import threading
import time
from typing import Any

import click

from parkcarbon.demo.errors import DemoError
from parkcarbon.settings import Settings

CHUNK_MESSAGES = 500  # published per MQTT connection
MAX_BACKLOG = 1000  # published but not yet committed by ingest (see publish_and_ingest)
DEMO_CLIENT_ID = "parkcarbon-demo"  # its own session: never takes a production ingest's


class Progress:
    """Line-based progress on stderr (``enabled=False``: silent)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._last = 0.0

    def __call__(self, text: str) -> None:
        if self.enabled:
            click.echo(f"[demo] {text}", err=True)

    def throttled(self, text: str, every_seconds: float = 1.0) -> None:
        now = time.monotonic()
        if now - self._last >= every_seconds:
            self._last = now
            self(text)


def _merge(total: Any, part: Any) -> Any:
    from collections import Counter

    from parkcarbon.ingest.simulator.simulate import PublishStats

    if total is None:
        return part
    return PublishStats(
        messages=total.messages + part.messages,
        readings=total.readings + part.readings,
        payload_bytes=total.payload_bytes + part.payload_bytes,
        seconds=total.seconds + part.seconds,
        by_kind=dict(Counter(total.by_kind) + Counter(part.by_kind)),
        by_fault=dict(Counter(total.by_fault) + Counter(part.by_fault)),
    )


def publish_and_ingest(
    settings: Settings,
    ingest: Any,
    messages: list[Any],
    progress: Progress,
    what: str,
    stop: threading.Event | None = None,
) -> Any:
    """Publish ``messages`` in chunks, never more than ``MAX_BACKLOG`` ahead of what ingest
    has committed, and wait until ingest has committed every one of them.

    The backlog bound keeps the broker's queue for the ingest session under mosquitto's
    default ``max_queued_messages`` (1000): a stock broker drops the excess of a burst,
    and a demo must not lose readings on a machine with default settings.
    """
    from parkcarbon.ingest.service import flush_and_wait_idle
    from parkcarbon.ingest.simulator.simulate import publish

    if not messages:
        return None
    before = ingest.stats().messages
    total = len(messages)
    deadline = time.monotonic() + max(120.0, total / 200.0)
    stats = None

    def committed() -> int:
        if ingest.fatal_error is not None:
            raise ingest.fatal_error
        if time.monotonic() > deadline:
            done = ingest.stats().messages - before
            raise DemoError(
                f"ingest took {done:,} of {total:,} messages in time",
                hint="is the broker dropping messages? see the log lines above",
            )
        return int(ingest.stats().messages) - before

    for i in range(0, total, CHUNK_MESSAGES):
        if stop is not None and stop.is_set():
            total = i  # what was published is still waited for below
            break
        while i - committed() > MAX_BACKLOG - CHUNK_MESSAGES:
            time.sleep(0.01)
        chunk = messages[i : i + CHUNK_MESSAGES]
        stats = _merge(
            stats,
            publish(chunk, settings, client_id=f"{DEMO_CLIENT_ID}-meters"),
        )
        progress.throttled(
            f"{what}: published {i + len(chunk):,}/{total:,} messages, "
            f"ingest committed {committed():,}",
            every_seconds=2.0,
        )
    while not flush_and_wait_idle(
        ingest, quiet_seconds=0.5, timeout_seconds=1.0, min_messages=before + total
    ):
        committed()
    if stats is None:  # stopped before the first chunk
        return None
    progress(
        f"{what}: {stats.messages:,} messages ({stats.readings:,} readings) published and committed"
    )
    return stats


def derive_and_account(settings: Settings, progress: Progress) -> None:
    """What every read does first (``carbon.current.bring_up_to_date``): derive usage,
    load the economics file (green power) before accounting, refresh the figures and
    the stored budgets, so the summary equals every later read."""
    from parkcarbon.carbon.current import bring_up_to_date
    from parkcarbon.db import connect

    with connect(settings) as conn:
        up = bring_up_to_date(conn, settings)
    d, r = up.derived, up.accounting
    events = ", ".join(f"{k} {v}" for k, v in sorted(d.events_by_kind.items())) or "none"
    progress(
        f"usage derived: {d.slots_written:,} slots from {d.readings_used:,} readings "
        f"of {d.meters} meters (events: {events})"
    )
    econ = "no economics file" if up.economics_months is None else (
        f"economics: {up.economics_months:,} enterprise-months"
    )
    progress(
        f"accounting: {r.days_recomputed:,} meter-days computed in {r.seconds:.1f} s ({econ})"
    )
