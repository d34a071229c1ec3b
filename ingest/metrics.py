"""Ingest counters and their Prometheus text (served by ``parkcarbon.http``).

``Metrics`` holds monotonically increasing counters updated by the writer thread and
the MQTT callbacks (under a lock: cheap next to a database commit). ``snapshot()``
returns the frozen ``IngestStats``; ``prometheus_text`` renders them for ``/metrics``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestStats:
    """A snapshot of the counters since the service started."""

    messages: int = 0  # MQTT messages taken off the broker
    messages_acked: int = 0  # acknowledged after their commit
    redeliveries: int = 0  # messages flagged DUP by the broker
    readings_stored: int = 0  # new rows in readings
    readings_duplicate: int = 0  # readings already stored (redelivery, resend)
    dead_letters: int = 0  # rows written to dead_letters
    dead_letters_by_reason: dict[str, int] = field(default_factory=dict)
    batches: int = 0  # committed transactions
    db_errors: int = 0  # failed commits (retried)
    readings_conflicting: int = 0  # same meter and ts as a stored reading, other value
    sessions_lost: int = 0  # the broker had no session although ingest held one
    session_takeovers: int = 0  # another client connected with ingest's client id
    broker_connect_failures: int = 0  # connection attempts that failed
    broker_dropped: int | None = None  # the broker's own count of dropped messages ($SYS)
    queued: int = 0  # received, not yet committed
    last_reading_ts: datetime | None = None  # newest reading timestamp stored
    last_commit_monotonic: float | None = None
    connected: bool = False  # MQTT session up
    db_ok: bool = True  # the last database operation succeeded
    started_monotonic: float = 0.0

    @property
    def lag_seconds(self) -> float | None:
        """How far the newest stored reading is behind the clock."""
        if self.last_reading_ts is None:
            return None
        return (datetime.now(UTC) - self.last_reading_ts).total_seconds()


class Metrics:
    """Thread-safe counters behind ``IngestStats``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._n: Counter[str] = Counter()
        self._reasons: Counter[str] = Counter()
        self._last_ts_us: int | None = None
        self._last_commit: float | None = None
        self.connected = False
        self.db_ok = True
        self.broker_dropped: int | None = None
        self.queued_fn: Callable[[], int] = lambda: 0
        self._started = time.monotonic()

    def add(self, **amounts: int) -> None:
        with self._lock:
            self._n.update(amounts)

    def committed(self, *, messages: int, stored: int, duplicates: int,
                  reasons: Counter[str], newest_ts_us: int | None,
                  conflicting: int = 0) -> None:
        with self._lock:
            self._n.update(batches=1, readings_stored=stored, readings_duplicate=duplicates,
                           dead_letters=sum(reasons.values()), messages_committed=messages,
                           readings_conflicting=conflicting)
            self._reasons.update(reasons)
            if newest_ts_us is not None and (
                self._last_ts_us is None or newest_ts_us > self._last_ts_us
            ):
                self._last_ts_us = newest_ts_us
            self._last_commit = time.monotonic()

    def snapshot(self) -> IngestStats:
        with self._lock:
            n = dict(self._n)
            reasons = dict(self._reasons)
            last_us = self._last_ts_us
            last_commit = self._last_commit
        last = None if last_us is None else datetime.fromtimestamp(last_us / 1e6, UTC)
        return IngestStats(
            messages=n.get("messages", 0),
            messages_acked=n.get("messages_acked", 0),
            redeliveries=n.get("redeliveries", 0),
            readings_stored=n.get("readings_stored", 0),
            readings_duplicate=n.get("readings_duplicate", 0),
            dead_letters=n.get("dead_letters", 0),
            dead_letters_by_reason=reasons,
            batches=n.get("batches", 0),
            db_errors=n.get("db_errors", 0),
            readings_conflicting=n.get("readings_conflicting", 0),
            sessions_lost=n.get("sessions_lost", 0),
            session_takeovers=n.get("session_takeovers", 0),
            broker_connect_failures=n.get("broker_connect_failures", 0),
            broker_dropped=self.broker_dropped,
            queued=self.queued_fn(),
            last_reading_ts=last,
            last_commit_monotonic=last_commit,
            connected=self.connected,
            db_ok=self.db_ok,
            started_monotonic=self._started,
        )


def summary_text(stats: IngestStats, messages_per_second: float) -> str:
    """The periodic one-line log summary."""
    st = stats
    lag = "-" if st.lag_seconds is None else f"{st.lag_seconds:.1f} s"
    return (f"ingest: {messages_per_second:.1f} msg/s, {st.readings_stored} readings stored "
            f"({st.readings_duplicate} duplicate), {st.dead_letters} dead letters, "
            f"{st.redeliveries} redeliveries, queue {st.queued}, lag {lag}, "
            f"broker {'up' if st.connected else 'DOWN'}, "
            f"database {'ok' if st.db_ok else 'DOWN'}")


_HELP = [
    ("messages", "counter", "MQTT messages received"),
    ("messages_acked", "counter", "MQTT messages acknowledged after commit"),
    ("redeliveries", "counter", "MQTT messages redelivered by the broker (DUP)"),
    ("readings_stored", "counter", "Readings stored as new rows"),
    ("readings_duplicate", "counter", "Readings already stored (idempotent no-op)"),
    ("batches", "counter", "Committed write transactions"),
    ("db_errors", "counter", "Failed database writes (retried)"),
    ("readings_conflicting", "counter",
     "Readings for a stored meter and time with another value (kept as dead letters)"),
    ("sessions_lost", "counter",
     "Broker had no session although ingest held one (queued readings lost)"),
    ("session_takeovers", "counter", "Another client connected with ingest's client id"),
    ("broker_connect_failures", "counter", "Failed attempts to connect to the broker"),
    ("queued", "gauge", "Messages received and not yet committed"),
]


def prometheus_text(stats: IngestStats) -> str:
    """The stats in Prometheus text exposition format 0.0.4."""
    out = []
    for name, kind, text in _HELP:
        metric = f"parkcarbon_ingest_{name}" + ("_total" if kind == "counter" else "")
        out += [f"# HELP {metric} {text}", f"# TYPE {metric} {kind}",
                f"{metric} {getattr(stats, name)}"]
    out += ["# HELP parkcarbon_ingest_dead_letters_total Dead letters written, by reason",
            "# TYPE parkcarbon_ingest_dead_letters_total counter"]
    out += [f'parkcarbon_ingest_dead_letters_total{{reason="{code}"}} {n}'
            for code, n in sorted(stats.dead_letters_by_reason.items())]
    gauges: dict[str, tuple[str, float | None]] = {
        "connected": ("MQTT session is up (1) or not (0)", int(stats.connected)),
        "database_ok": ("Last database write succeeded (1) or not (0)", int(stats.db_ok)),
    }
    if stats.broker_dropped is not None:
        gauges["broker_messages_dropped"] = (
            "Messages the broker says it dropped ($SYS/broker/publish/messages/dropped)",
            stats.broker_dropped)
    if stats.last_reading_ts is not None:
        gauges["last_reading_timestamp_seconds"] = (
            "Timestamp of the newest stored reading", stats.last_reading_ts.timestamp())
        gauges["lag_seconds"] = ("Age of the newest stored reading", stats.lag_seconds)
    for name, (text, value) in gauges.items():
        metric = f"parkcarbon_ingest_{name}"
        out += [f"# HELP {metric} {text}", f"# TYPE {metric} gauge", f"{metric} {value}"]
    return "\n".join(out) + "\n"
