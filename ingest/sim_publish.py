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
from paho.mqtt.enums import CallbackAPIVersion

from parkcarbon.ingest.errors import BrokerAuthError, BrokerError

if TYPE_CHECKING:
    from parkcarbon.ingest.simulate import SimMessage

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10.0
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


def _connect(host: str, port: int, username: str | None, password: str | None,
             client_id: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv311, clean_session=True)
    client.max_inflight_messages_set(MAX_INFLIGHT)
    if username is not None:
        client.username_pw_set(username, password)
    done = threading.Event()
    result: dict[str, Any] = {}

    def on_connect(_c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        result["reason"] = reason
        done.set()

    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=30)
    except OSError as exc:
        raise BrokerError(f"cannot connect to MQTT broker {host}:{port}: {exc}",
                          hint="is the broker running? set PARKCARBON_MQTT_HOST/PORT") from exc
    client.loop_start()
    if not done.wait(CONNECT_TIMEOUT_SECONDS) or result["reason"].is_failure:
        client.loop_stop()
        client.disconnect()
        reason = result.get("reason", "no answer")
        if str(reason).lower().startswith(("not authorized", "bad user")):
            raise BrokerAuthError(f"MQTT broker {host}:{port} refused the credentials: {reason}",
                                  hint="set PARKCARBON_MQTT_USERNAME / PARKCARBON_MQTT_PASSWORD")
        raise BrokerError(f"MQTT broker {host}:{port} refused the connection: {reason}")
    return client


def _wait_acked(infos: list[mqtt.MQTTMessageInfo]) -> None:
    deadline = time.monotonic() + ACK_TIMEOUT_SECONDS
    for info in infos:
        info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        if not info.is_published():
            raise BrokerError("the broker did not acknowledge every message in time")


def publish(
    messages: Iterable[SimMessage],
    *,
    host: str,
    port: int,
    username: str | None = None,
    password: str | None = None,
    qos: int = 1,
    realtime: bool = False,
    speed: float | None = None,
    topic_prefix: str = "park",
    progress: Callable[[int, int], None] | None = None,
    client_id: str | None = None,
) -> PublishStats:
    """Publish ``messages`` to ``<topic_prefix>/<message.topic>``; wait for broker acks.

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
    client = _connect(host, port, username, password,
                      client_id or f"parkcarbon-sim-{threading.get_native_id()}")
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
