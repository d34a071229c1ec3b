"""Send simulator messages to an MQTT broker (paho), as fast as possible or paced."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt

from parkcarbon import mqtt as pcmqtt
from parkcarbon.ingest.errors import BrokerError
from parkcarbon.settings import Settings

if TYPE_CHECKING:
    from parkcarbon.ingest.simulator.simulate import SimMessage

log = logging.getLogger(__name__)

ACK_TIMEOUT_SECONDS = 60.0  # after the last publish, wait this long for broker acks
MAX_INFLIGHT = 500  # QoS 1 messages awaiting PUBACK at once
PROGRESS_EVERY = 2000  # messages between progress callbacks
# Messages handed to paho but not yet acknowledged: paho's message ids wrap at 65535,
# so the publisher waits for the oldest acks beyond this many.
MAX_PENDING = 20_000


@dataclass(frozen=True)
class PublishStats:
    messages: int
    readings: int
    payload_bytes: int
    seconds: float
    by_kind: dict[str, int] = field(default_factory=dict)
    by_fault: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"messages": self.messages, "readings": self.readings,
                "payload_bytes": self.payload_bytes, "seconds": round(self.seconds, 3),
                "by_kind": self.by_kind, "by_fault": self.by_fault}


def _wait_acked(infos: list[mqtt.MQTTMessageInfo]) -> None:
    deadline = time.monotonic() + ACK_TIMEOUT_SECONDS
    for info in infos:
        info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        if not info.is_published():
            raise BrokerError("the broker did not acknowledge every message in time")


def publish(
    messages: Iterable[SimMessage],
    settings: Settings,
    *,
    qos: int = 1,
    realtime: bool = False,
    speed: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    client_id: str | None = None,
) -> PublishStats:
    """Publish ``messages`` to ``<topic_prefix>/<message.topic>`` on the broker of
    ``settings`` (host, port, credentials, TLS); wait for broker acks.

    ``realtime``: each message waits until the wall clock reaches its ``sim_time`` (live
    data; messages already due go at once). ``speed=N``: the run is paced N times faster
    than the span of ``sim_time`` (``speed=1`` replays history at its own pace).
    Neither: as fast as the broker takes them. ``progress(sent,
    total)`` is called every few thousand messages (total is -1 when unknown).
    """
    items = messages if isinstance(messages, list) else list(messages)
    pace = speed
    if pace is not None and pace <= 0:
        raise ValueError("speed must be positive")
    client = pcmqtt.connect(
        settings, client_id=client_id or f"parkcarbon-sim-{threading.get_native_id()}",
        protocol="3.1.1", max_inflight=MAX_INFLIGHT,
    )
    topic_prefix = settings.topic_prefix
    started = time.monotonic()
    kinds: Counter[str] = Counter()
    faults: Counter[str] = Counter()
    readings = size = 0
    pending = []
    try:
        first = items[0].sim_time if items else None
        for n, msg in enumerate(items, 1):
            if realtime:
                wait = (msg.sim_time - datetime.now(UTC)).total_seconds()
                if wait > 0:
                    time.sleep(wait)
            elif pace is not None and first is not None:
                due = (msg.sim_time - first).total_seconds() / pace
                wait = due - (time.monotonic() - started)
                if wait > 0:
                    time.sleep(wait)
            info = client.publish(f"{topic_prefix}/{msg.topic}", msg.payload, qos=qos)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise BrokerError(f"publish failed: {mqtt.error_string(info.rc)}")
            pending.append(info)
            if len(pending) > MAX_PENDING:
                _wait_acked(pending[: MAX_PENDING // 2])
                del pending[: MAX_PENDING // 2]
            kinds[msg.kind] += 1
            if msg.fault:
                faults[msg.fault] += 1
            readings += msg.readings if msg.kind != "garbage" else 0
            size += len(msg.payload)
            if progress is not None and n % PROGRESS_EVERY == 0:
                progress(n, len(items))
        _wait_acked(pending)
        if progress is not None:
            progress(len(items), len(items))
    finally:
        client.disconnect()
        client.loop_stop()
    stats = PublishStats(messages=len(items), readings=readings, payload_bytes=size,
                         seconds=time.monotonic() - started, by_kind=dict(kinds),
                         by_fault=dict(faults))
    log.info("published %d messages (%d readings) in %.2fs", stats.messages, stats.readings,
             stats.seconds)
    return stats
