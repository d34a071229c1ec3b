"""Ingest benchmark: bare paho QoS 1 subscriber vs ingest end to end, and batched payloads.

Usage::

    .venv/bin/python bench/ingest.py [--messages 30000] [--repeat 3] [--batch-messages 2000]
                                     [--readings-per-batch 100]

Starts a mosquitto from the project's config/mosquitto/mosquitto.conf on a free port
(like the tests) and a scratch database on PARKCARBON_BENCH_DSN's server (default
postgresql://127.0.0.1:5432/postgres, the database is created and dropped).

Method ("drain"): for each subscriber, its persistent session is created first, then a
separate publisher process publishes the messages (QoS 1) while the subscriber is
offline, so the broker holds the backlog. The clock runs from the subscriber's connect
to its last message: the bare subscriber acknowledges in paho's receive loop; ingest is
timed until every reading is committed in PostgreSQL and every message acknowledged.
The publisher is never the bottleneck because it is not running during the timing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from psycopg import conninfo, sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from parkcarbon import mqtt as pcmqtt  # noqa: E402
from parkcarbon.db import connect  # noqa: E402
from parkcarbon.ingest.service import IngestService  # noqa: E402
from parkcarbon.registry import load_registry  # noqa: E402
from parkcarbon.schema import migrate  # noqa: E402
from parkcarbon.settings import Settings  # noqa: E402
from parkcarbon.sync import sync_registry  # noqa: E402
from support import EXAMPLE_REGISTRY, Broker, project_broker  # noqa: E402

ADMIN_DSN = "postgresql://127.0.0.1:5432/postgres"


# --- publisher (runs in its own process) -------------------------------------------


def messages(kind: str, count: int, per_batch: int, base_ts: int) -> list[tuple[str, bytes]]:
    meters = load_registry(EXAMPLE_REGISTRY).meters
    elec = [m for m in meters if m.carrier.value == "electricity"]
    out = []
    for i in range(count):
        m = elec[i % len(elec)]
        topic = f"park/{m.enterprise}/{m.id}"
        if kind == "single":
            ts = base_ts + i // len(elec)
            body: dict = {"ts": ts, "value": 1000.0 + i, "unit": "kWh", "seq": i}
        else:
            first = base_ts + (i // len(elec)) * per_batch
            body = {"readings": [{"ts": first + k, "value": 1000.0 + k, "unit": "kWh"}
                                 for k in range(per_batch)]}
        out.append((topic, json.dumps(body).encode()))
    return out


def publish_main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int)
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--kind")
    p.add_argument("--count", type=int)
    p.add_argument("--per-batch", type=int)
    p.add_argument("--base-ts", type=int)
    a = p.parse_args(argv)
    msgs = messages(a.kind, a.count, a.per_batch, a.base_ts)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex}")
    client.username_pw_set(a.user, a.password)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", a.port)
    client.loop_start()
    t0 = time.perf_counter()
    infos = [client.publish(t, body, qos=1) for t, body in msgs]
    for info in infos:
        info.wait_for_publish(120)
    elapsed = time.perf_counter() - t0
    client.disconnect()
    client.loop_stop()
    print(json.dumps({"published": sum(i.is_published() for i in infos), "seconds": elapsed}))


def publish(broker: Broker, kind: str, count: int, per_batch: int, base_ts: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "_publish", "--port", str(broker.port), "--user",
         broker.username, "--password", broker.password, "--kind", kind, "--count",
         str(count), "--per-batch", str(per_batch), "--base-ts", str(base_ts)],
        check=True, capture_output=True, text=True, timeout=600,
    )
    return json.loads(out.stdout)


# --- subscribers ------------------------------------------------------------------


def bare_client(broker: Broker, client_id: str) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                    protocol=mqtt.MQTTv311, clean_session=False)
    c.username_pw_set(broker.username, broker.password)
    return c


def drop_session(broker: Broker, client_id: str) -> None:
    """End a persistent session (connect clean), so it stops queueing later publishes."""
    c = pcmqtt.connect(broker.settings(), client_id=client_id, protocol="3.1.1")
    c.disconnect()
    c.loop_stop()


def bare_subscriber_rate(broker: Broker, n: int, base_ts: int) -> float:
    client_id = "bench-bare"
    c = bare_client(broker, client_id)
    subscribed = threading.Event()
    c.on_subscribe = lambda *a: subscribed.set()
    c.connect("127.0.0.1", broker.port)
    c.subscribe("park/+/+", qos=1)
    c.loop_start()
    subscribed.wait(10)
    c.disconnect()
    c.loop_stop()
    publish(broker, "single", n, 1, base_ts)

    got = 0
    done = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        nonlocal got
        got += 1
        if got >= n:
            done.set()

    c = bare_client(broker, client_id)
    c.on_message = on_message
    t0 = time.perf_counter()
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    if not done.wait(300):
        raise SystemExit(f"bare subscriber got {got} of {n}")
    elapsed = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    drop_session(broker, client_id)
    return n / elapsed


def ingest_rate(broker: Broker, dsn: str, kind: str, count: int, per_batch: int,
                base_ts: int, readings_expected: int) -> tuple[float, float, int]:
    """(messages/s, readings/s, readings stored in the table)."""
    registry = load_registry(EXAMPLE_REGISTRY)
    settings = Settings(database_url=dsn, mqtt_port=broker.port,  # type: ignore[arg-type]
                        mqtt_username=broker.username, mqtt_password=broker.password,
                        mqtt_client_id=f"bench-ingest-{kind}", metrics_port=None,
                        mqtt_protocol="3.1.1")
    svc = IngestService(settings, registry)
    svc.start()
    svc.wait_subscribed(10)
    svc.stop()
    publish(broker, kind, count, per_batch, base_ts)
    svc = IngestService(settings, registry)
    # The store worker's process start (an interpreter and its imports, ~1.5 s) is not
    # timed, as the bare subscriber's own process start is not.
    svc.start_worker()
    t0 = time.perf_counter()
    svc.start()
    deadline = time.monotonic() + float(os.environ.get('BENCH_TIMEOUT', '600'))
    while True:
        st = svc.stats()
        if st.messages_acked >= count and st.readings_stored >= readings_expected:
            break
        if time.monotonic() > deadline:
            print(f"timed out: {st}")
            break
        time.sleep(0.005)
    elapsed = time.perf_counter() - t0
    svc.stop()
    drop_session(broker, settings.mqtt_client_id)
    with psycopg.connect(dsn) as conn:
        stored = int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])  # type: ignore[index]
        conn.execute("TRUNCATE readings")
    return count / elapsed, readings_expected / elapsed, stored


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_publish":
        publish_main(sys.argv[2:])
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=30_000)
    p.add_argument("--batch-messages", type=int, default=2_000)
    p.add_argument("--readings-per-batch", type=int, default=100)
    p.add_argument("--repeat", type=int, default=3,
                   help="bare/ingest pairs to run back to back (the machine is shared)")
    a = p.parse_args()

    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = conninfo.make_conninfo(ADMIN_DSN, dbname=name)
    workdir = Path(tempfile.mkdtemp(prefix="parkcarbon-bench-"))
    broker = project_broker(workdir)
    broker.start()
    try:
        migrate(dsn, mode="plain", timezone="Asia/Shanghai", create_database=False)
        with connect(dsn) as conn:
            sync_registry(conn, load_registry(EXAMPLE_REGISTRY))
        base = int(time.time()) - 3 * 86400
        n = a.messages
        print(f"messages: {n} single readings; batched: {a.batch_messages} x "
              f"{a.readings_per_batch} readings; broker: project mosquitto.conf on :{broker.port}")
        ratios, loss = [], 0
        for run in range(1, a.repeat + 1):
            bare = bare_subscriber_rate(broker, n, base + run * n)
            msg_rate, _, stored = ingest_rate(broker, dsn, "single", n, 1, base + run * n, n)
            ratios.append(msg_rate / bare)
            loss += n - stored
            print(f"run {run}: bare paho QoS 1 subscriber {bare:9,.0f} msg/s | ingest end to "
                  f"end (acked after commit) {msg_rate:9,.0f} msg/s | ratio "
                  f"{msg_rate / bare:.2f} | loss {n - stored}")
        if ratios:
            print(f"ratio ingest / bare (best, median): {max(ratios):.2f}, "
                  f"{sorted(ratios)[len(ratios) // 2]:.2f}; total loss {loss}")
        nb, per = a.batch_messages, a.readings_per_batch
        b_msg, b_read, b_stored = ingest_rate(broker, dsn, "batch", nb, per, base, nb * per)
        print(f"ingest batched payloads:          {b_read:10,.0f} readings/s "
              f"({b_msg:,.0f} msg/s)")
        print(f"loss batched (published - stored): {nb * per - b_stored:9d}")
    finally:
        broker.stop()
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))


if __name__ == "__main__":
    main()
