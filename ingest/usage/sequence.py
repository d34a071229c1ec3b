"""Gaps in a meter's sequence numbers: loss upstream of ingest, seen end to end.

A meter (or its gateway) may number its messages (``seq`` in the payload contract). A
broker that drops queued messages (Mosquitto's default ``max_queued_messages 1000``
dropped 9,000 of 10,000 in a test; only its own log said so), a gateway that loses a
buffer, a QoS 0 publish that never arrived: all leave a hole in the numbers. Derivation
reads the numbers in time order and emits one ``sequence_gap`` meter event per hole,
with the missing range. Pure: no database.

A number that goes down or repeats is a sender restart or a resend, not a gap. A late
reading that fills the hole makes the next derivation drop the event (derivation
rewrites the events of the range it recomputes).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from parkcarbon.ingest.usage.counters import Event

KIND = "sequence_gap"


def sequence_gaps(rows: Iterable[tuple[float, int]]) -> list[Event]:
    """``rows``: (epoch seconds, seq) in time order. One event per jump of seq by more
    than one: ``ts_start`` the reading before the hole, ``ts`` the one after it."""
    events: list[Event] = []
    prev: tuple[float, int] | None = None
    for epoch, seq in rows:
        if prev is not None and seq > prev[1] + 1:
            first, last = prev[1] + 1, seq - 1
            events.append(Event(
                KIND, datetime.fromtimestamp(epoch, UTC),
                datetime.fromtimestamp(prev[0], UTC),
                detail={"seq_from": first, "seq_to": last, "missing": last - first + 1}))
        prev = (epoch, seq)
    return events
