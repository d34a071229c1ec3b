"""The outbox worker: claim due messages, send them, retry with backoff, log every try.

Rows are claimed per channel with ``FOR UPDATE SKIP LOCKED`` and stay locked while they
are sent, until the transaction that marks them sent (or schedules the retry) commits:
a second ``parkcarbon run`` against the same database skips them, so an HA pair sends
every message once. A failing channel only delays its own rows (exponential backoff,
``delivery.backoff_initial`` doubling up to ``delivery.backoff_max``, given up after
``delivery.max_attempts``); the others go on. Robots take every due row at once and
send one digest, and are held below ``ROBOT_MESSAGES_PER_MINUTE``: rows over the limit
wait for the next minute, they are never dropped.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg

from parkcarbon.alerts import queries as Q
from parkcarbon.alerts.constants import CLAIM_BATCH, ROBOT_MESSAGES_PER_MINUTE
from parkcarbon.alerts.errors import AlertsConfigError, DeliveryError
from parkcarbon.alerts.models import AlertsConfig
from parkcarbon.alerts.notify import notifier_for
from parkcarbon.alerts.templates import Renderer
from parkcarbon.db import connect

log = logging.getLogger(__name__)

WORKER = f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class DeliveryResult:
    sent: int = 0
    failed: int = 0  # attempts that failed (rows stay pending unless given up)
    given_up: int = 0
    deferred: int = 0
    channels: dict[str, str] = field(default_factory=dict)  # channel -> last outcome


def backoff(config: AlertsConfig, attempts: int) -> float:
    d = config.delivery
    return float(min(d.backoff_initial * 2 ** max(attempts - 1, 0), d.backoff_max))


def deliver(settings: Any, config: AlertsConfig, *, now: datetime, worker: str = WORKER,
            renderer: Renderer | None = None) -> DeliveryResult:
    """Send everything due at ``now``; one transaction per claimed batch."""
    renderer = renderer or Renderer(settings.tz)
    result = DeliveryResult()
    with connect(settings) as conn:
        channels = [r[0] for r in conn.execute(Q.DUE_CHANNELS, {"now": now}).fetchall()]
        conn.commit()
        for channel_id in channels:
            _deliver_channel(conn, settings, config, renderer, channel_id, now, worker, result)
    return result


def _deliver_channel(conn: psycopg.Connection, settings: Any, config: AlertsConfig,
                     renderer: Renderer, channel_id: str, now: datetime, worker: str,
                     result: DeliveryResult) -> None:
    try:
        channel = config.channel(channel_id)
        notifier = notifier_for(channel, settings, renderer)
    except KeyError:
        notifier = None
    with conn.transaction():
        rows = conn.execute(Q.CLAIM_DUE, {"now": now, "channel": channel_id,
                                          "limit": CLAIM_BATCH}).fetchall()
        if not rows:
            return
        if notifier is None:
            _failed(conn, config, rows, now, worker, channel_id,
                    DeliveryError(f"channel {channel_id!r} is not in the alerts file"),
                    result)
            return
        if notifier.batches:
            since = now - timedelta(seconds=60)
            sent_recently = conn.execute(Q.SENT_SINCE, {"channel": channel_id,
                                                        "since": since}).fetchone()
            if sent_recently and sent_recently[0] >= ROBOT_MESSAGES_PER_MINUTE:
                conn.execute(Q.DEFER, {"next": now + timedelta(seconds=60),
                                       "ids": [r[0] for r in rows]})
                result.deferred += len(rows)
                result.channels[channel_id] = "rate limit: deferred"
                return
            # one digest carries whole messages only; the rest stay due (this
            # transaction's claim ends with it) and go in the next pass's digest
            n = notifier.fitting([r[7] for r in rows])
            _attempt(conn, config, notifier, rows[:n], now, worker, channel_id, result)
            return
        for row in rows:
            if not _attempt(conn, config, notifier, [row], now, worker, channel_id, result):
                break  # the channel is failing: the rest wait, untried, for the next pass


def _attempt(conn: psycopg.Connection, config: AlertsConfig, notifier: Any,
             rows: list[Any], now: datetime, worker: str, channel_id: str,
             result: DeliveryResult) -> bool:
    messages = [r[7] for r in rows]
    t0 = time.perf_counter()
    try:
        detail = notifier.send(messages)
    except (DeliveryError, AlertsConfigError) as exc:
        err = exc if isinstance(exc, DeliveryError) else DeliveryError(str(exc), retry=False)
        _failed(conn, config, rows, now, worker, channel_id, err, result,
                (time.perf_counter() - t0) * 1000)
        return False
    except Exception as exc:  # a notifier bug must not block its channel (nor the others)
        log.exception("alerts: %s failed unexpectedly", channel_id)
        _failed(conn, config, rows, now, worker, channel_id,
                DeliveryError(f"{type(exc).__name__}: {exc}"), result,
                (time.perf_counter() - t0) * 1000)
        return False
    ms = (time.perf_counter() - t0) * 1000
    conn.execute(Q.MARK_SENT, {"now": now, "ids": [r[0] for r in rows]})
    with conn.cursor() as cur:
        cur.executemany(Q.LOG_ATTEMPT, [(r[0], r[5], channel_id, now, True, detail, ms, worker)
                                        for r in rows])
    result.sent += len(rows)
    result.channels[channel_id] = detail
    log.info("alerts: %d message(s) sent on %s: %s", len(rows), channel_id, detail)
    return True


def _failed(conn: psycopg.Connection, config: AlertsConfig, rows: list[Any], now: datetime,
            worker: str, channel_id: str, exc: DeliveryError, result: DeliveryResult,
            ms: float = 0.0) -> None:
    attempts = max(r[9] for r in rows) + 1
    limit = config.delivery.max_attempts if exc.retry else 0
    nxt = now + timedelta(seconds=backoff(config, attempts))
    conn.execute(Q.MARK_RETRY, {"error": exc.detail[:500], "next": nxt, "max": limit,
                                "ids": [r[0] for r in rows]})
    with conn.cursor() as cur:
        cur.executemany(Q.LOG_ATTEMPT, [(r[0], r[5], channel_id, now, False, exc.detail[:500],
                                         ms, worker) for r in rows])
    result.failed += len(rows)
    result.channels[channel_id] = exc.detail
    if not exc.retry or attempts >= config.delivery.max_attempts:
        result.given_up += len(rows)
        log.error("alerts: giving up %d message(s) on %s after %d attempt(s): %s",
                  len(rows), channel_id, attempts, exc.detail)
    else:
        log.warning("alerts: %s failed (attempt %d), retry at %s: %s", channel_id, attempts,
                    nxt.isoformat(timespec="seconds"), exc.detail)
