"""Adaptive commit: a broker with a narrow in-flight window is not made to wait out the
group-commit interval, and a wide window still gets large batches."""

from __future__ import annotations

import json
import time

import pytest

from parkcarbon.ingest.service import IngestService
from parkcarbon.registry import Registry, load_registry
from support import EXAMPLE_REGISTRY, Broker, mqtt_publish
from support.brokers import RabbitMQBroker, rabbitmq_unavailable
from support.ingest import running, settings_for


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(EXAMPLE_REGISTRY)


def burst(registry: Registry, n: int) -> list[tuple[str, bytes]]:
    meters = [m for m in registry.meters if m.carrier.value == "electricity"]
    start = int(time.time()) - n
    return [(f"park/{meters[i % len(meters)].enterprise}/{meters[i % len(meters)].id}",
             json.dumps({"ts": start + i // len(meters), "value": float(i), "unit": "kWh",
                         "seq": i}).encode()) for i in range(n)]


def drain(service: IngestService, n: int, timeout_seconds: float) -> float:
    """Seconds until ``n`` messages are committed and acknowledged (fails past the
    timeout)."""
    t0 = time.monotonic()
    while service.stats().messages_acked < n:
        assert time.monotonic() - t0 < timeout_seconds, (
            f"{service.stats().messages_acked} of {n} acknowledged after {timeout_seconds} s")
        time.sleep(0.01)
    return time.monotonic() - t0


def test_narrow_window_commits_without_waiting_the_interval(
        migrated_dsn: str, registry: Registry) -> None:
    # RabbitMQ's mqtt.prefetch (ten by default) is a window Mosquitto does not give an
    # MQTT 5 client with a Receive Maximum (measured: 100 of 100 in flight with
    # max_inflight_messages 10), so the narrow window is RabbitMQ's
    why = rabbitmq_unavailable()
    if why:
        pytest.skip(why)
    rabbit = RabbitMQBroker.create()
    try:
        window = rabbit.prefetch()
        n = 20 * window
        # one second of group commit: 20 windows would take >= 20 s if each waited it out
        settings = settings_for(migrated_dsn, rabbit, flush_interval_seconds=1.0)
        with running(settings, registry) as svc:
            mqtt_publish(rabbit, burst(registry, n))
            seconds = drain(svc, n, 60)
            st = svc.stats()
    finally:
        rabbit.delete()
    assert st.readings_stored == n
    assert seconds < 10, f"{seconds:.1f} s for {n} messages through a window of {window}"
    assert st.batches >= n // window  # a commit per window at least


def test_wide_window_keeps_large_batches(migrated_dsn: str, broker: Broker,
                                         registry: Registry) -> None:
    n = 6_000
    settings = settings_for(migrated_dsn, broker)
    with running(settings, registry) as svc:
        pass  # the session exists now: the burst is queued for it while it is down
    mqtt_publish(broker, burst(registry, n))
    with running(settings, registry) as svc:
        drain(svc, n, 60)
        st = svc.stats()
    assert st.readings_stored == n
    # the 4,000-message window is refilled while a batch is collected: batches of
    # hundreds, not one per chunk or per flush (measured: 6 to 20 commits)
    assert st.batches <= n // 100, f"{st.batches} commits for {n} messages"
