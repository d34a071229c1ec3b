"""Two ingest workers on one MQTT 5 shared subscription (``$share/<group>/...``) on a
real private Mosquitto: a burst is split between them and stored exactly once."""

from __future__ import annotations

import json
import time

import psycopg

from parkcarbon.registry import load_registry
from support import EXAMPLE_REGISTRY, Broker, mqtt_publish
from support.ingest import running, settings_for


def test_two_workers_store_a_burst_exactly_once(migrated_dsn: str, broker: Broker) -> None:
    registry = load_registry(EXAMPLE_REGISTRY)
    meters = [m for m in registry.meters if m.carrier.value == "electricity"]
    n = 4_000
    start = int(time.time()) - n
    burst = [(f"park/{meters[i % len(meters)].enterprise}/{meters[i % len(meters)].id}",
              json.dumps({"ts": start + i // len(meters), "value": float(i), "unit": "kWh",
                          "seq": i}).encode()) for i in range(n)]
    a = settings_for(migrated_dsn, broker, mqtt_shared_group="ingest")
    b = settings_for(migrated_dsn, broker, mqtt_shared_group="ingest")
    with running(a, registry) as svc_a, running(b, registry) as svc_b:
        mqtt_publish(broker, burst)
        deadline = time.monotonic() + 60
        while svc_a.stats().messages_acked + svc_b.stats().messages_acked < n:
            assert time.monotonic() < deadline, "not every message was committed and acked"
            time.sleep(0.05)
        time.sleep(0.3)  # anything delivered twice would arrive now
        st_a, st_b = svc_a.stats(), svc_b.stats()
    assert st_a.messages > 0 and st_b.messages > 0, "the group did not split the load"
    assert st_a.messages + st_b.messages == n  # each message went to one worker
    assert st_a.readings_duplicate + st_b.readings_duplicate == 0
    with psycopg.connect(migrated_dsn) as conn:
        got = conn.execute("SELECT count(*), count(DISTINCT seq), min(seq), max(seq), "
                           "sum(seq) FROM readings").fetchone()
        dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
    assert got == (n, n, 0, n - 1, n * (n - 1) // 2)
    assert dead == (0,)
