"""Ingest benchmark: bare paho QoS 1 subscriber vs ingest end to end on several brokers,
and batched payloads.

Usage::

    .venv/bin/python bench/ingest.py [--brokers mosquitto,mosquitto-stock,rabbitmq,nats]
                                     [--messages 10000] [--repeat 1]
                                     [--batch-messages 2000] [--readings-per-batch 100]
    .venv/bin/python bench/ingest.py --broker-port 1883 --protocol 3.1.1 \
                                     --broker-user U --broker-password P   # any broker

Brokers (each as the tests start it, see tests/support): ``mosquitto``, the project's
config/mosquitto/mosquitto.conf (max_inflight_messages 4000) on a free port;
``mosquitto-stock``, the same with Mosquitto's stock max_inflight_messages 20 (ingest
on MQTT 3.1.1 there: to an MQTT 5 client Mosquitto grants its Receive Maximum instead);
``rabbitmq``, the system RabbitMQ's MQTT plugin (mqtt.prefetch as configured, 10 by
default) in a virtual host of its own (needs root; skipped with one line otherwise);
``nats``, a private nats-server with JetStream and MQTT (max_ack_pending 1024). Ingest
speaks MQTT 5 to the project's Mosquitto and 3.1.1 to the others, and so does the bare
subscriber. A scratch database ``pcbench_*`` on PARKCARBON_BENCH_DSN's server (default
postgresql://127.0.0.1:5432/postgres) is created and dropped.

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
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
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
from support.brokers import (  # noqa: E402
    NatsBroker,
    RabbitMQBroker,
    nats_unavailable,
    rabbitmq_unavailable,
)

ADMIN_DSN = os.environ.get("PARKCARBON_BENCH_DSN", "postgresql://127.0.0.1:5432/postgres")
BROKERS = ("mosquitto", "mosquitto-stock", "rabbitmq", "nats")
MOSQUITTO_STOCK_INFLIGHT = 20  # Mosquitto 2's default max_inflight_messages


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


class ExternalBroker:
    """A broker already running on 127.0.0.1 (``--broker-port``)."""

    def __init__(self, port: int, protocol: str, username: str, password: str) -> None:
        self.port, self.protocol, self.username, self.password = (
            port, protocol, username, password)
        self.name = f"127.0.0.1:{port}"

    def settings(self, **more: object) -> Settings:
        return Settings(**{"mqtt_port": self.port, "mqtt_username": self.username,  # type: ignore[arg-type]
                           "mqtt_password": self.password, "mqtt_protocol": self.protocol,
                           "metrics_port": None, **more})


def bare_client(broker: Broker, client_id: str) -> mqtt.Client:
    """paho with a persistent session, in the MQTT version ingest uses on ``broker``
    (paho decodes an MQTT 5 PUBLISH's properties: ~30 % of its receive time here)."""
    if broker.protocol == "5":
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                        protocol=mqtt.MQTTv5)
    else:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                        protocol=mqtt.MQTTv311, clean_session=False)
    c.username_pw_set(broker.username, broker.password)
    return c


def bare_connect(c: mqtt.Client, broker: Broker) -> None:
    if broker.protocol == "5":
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        c.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
    else:
        c.connect("127.0.0.1", broker.port)


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
    bare_connect(c, broker)
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
    bare_connect(c, broker)
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
    settings = broker.settings(database_url=dsn,
                               mqtt_client_id=f"bench-ingest-{kind}-{uuid.uuid4().hex[:6]}")
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


def shared_ingest_rate(broker: Broker, dsn: str, count: int, base_ts: int,
                       workers: int) -> tuple[float, int, list[int]]:
    """``workers`` ingest services in one MQTT 5 shared-subscription group drain
    ``count`` messages: (messages/s, rows stored, messages per worker)."""
    registry = load_registry(EXAMPLE_REGISTRY)
    run = uuid.uuid4().hex[:6]
    settings = [broker.settings(database_url=dsn, mqtt_client_id=f"bench-shared-{i}-{run}",
                                mqtt_shared_group="bench") for i in range(workers)]
    for s in settings:  # create the sessions, so the broker queues the burst for them
        svc = IngestService(s, registry)
        svc.start()
        svc.wait_subscribed(10)
        svc.stop()
    publish(broker, "single", count, 1, base_ts)
    services = [IngestService(s, registry) for s in settings]
    for svc in services:
        svc.start_worker()
    t0 = time.perf_counter()
    for svc in services:
        svc.start()
    deadline = time.monotonic() + float(os.environ.get("BENCH_TIMEOUT", "600"))
    while sum(svc.stats().messages_acked for svc in services) < count:
        if time.monotonic() > deadline:
            print("timed out:", [svc.stats() for svc in services])
            break
        time.sleep(0.005)
    elapsed = time.perf_counter() - t0
    split = [svc.stats().messages for svc in services]
    for svc in services:
        svc.stop()
    for s in settings:
        drop_session(broker, s.mqtt_client_id)
    with psycopg.connect(dsn) as conn:
        stored = int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])  # type: ignore[index]
        conn.execute("TRUNCATE readings")
    return count / elapsed, stored, split


def start_broker(name: str, workdir: Path) -> tuple[object | None, str]:
    """(broker, description) started for the run, or (None, why it is skipped)."""
    if name in ("mosquitto", "mosquitto-stock"):
        broker = project_broker(workdir / name)
        if name == "mosquitto":
            broker.start()
            return broker, "Mosquitto 2, max_inflight_messages 4000, MQTT 5"
        # Mosquitto gives an MQTT 5 client the window of its own Receive Maximum (4,000
        # for ingest) whatever max_inflight_messages says (measured: 100 of 100 in
        # flight with max_inflight_messages 10), so the stock window needs MQTT 3.1.1
        text = broker.conf.read_text().replace(
            "max_inflight_messages 4000", f"max_inflight_messages {MOSQUITTO_STOCK_INFLIGHT}")
        broker.conf.write_text(text)
        broker.protocol = "3.1.1"
        broker.start()
        return broker, (f"Mosquitto 2, max_inflight_messages {MOSQUITTO_STOCK_INFLIGHT}, "
                        "MQTT 3.1.1")
    if name == "rabbitmq":
        why = rabbitmq_unavailable()
        if why:
            return None, why
        try:
            rabbit = RabbitMQBroker.create()
        except RuntimeError as exc:
            return None, str(exc)
        return rabbit, f"RabbitMQ 3.10 MQTT plugin, mqtt.prefetch {rabbit.prefetch()}, MQTT 3.1.1"
    if name == "nats":
        why = nats_unavailable()
        if why:
            return None, why
        nats = NatsBroker(workdir / "nats")
        nats.start()
        return nats, "NATS 2.9 MQTT (JetStream), max_ack_pending 1024, MQTT 3.1.1"
    raise SystemExit(f"--brokers: unknown broker {name!r}; use {', '.join(BROKERS)}")


def stop_broker(broker: object) -> None:
    if isinstance(broker, RabbitMQBroker):
        broker.delete()
    elif isinstance(broker, (Broker, NatsBroker)):
        broker.stop()


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_publish":
        publish_main(sys.argv[2:])
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--brokers", default=",".join(BROKERS),
                   help=f"comma-separated, of {', '.join(BROKERS)} (default: all)")
    p.add_argument("--broker-port", type=int,
                   help="benchmark a broker already running on 127.0.0.1:PORT instead")
    p.add_argument("--protocol", choices=("5", "3.1.1"), default="3.1.1",
                   help="MQTT version ingest uses with --broker-port")
    p.add_argument("--broker-user", default="ingest")
    p.add_argument("--broker-password", default="")
    p.add_argument("--messages", type=int, default=10_000)
    p.add_argument("--batch-messages", type=int, default=2_000,
                   help="batched payloads on Mosquitto (0: skip)")
    p.add_argument("--readings-per-batch", type=int, default=100)
    p.add_argument("--shared-workers", type=int, default=2,
                   help="ingest workers in one shared-subscription group on Mosquitto "
                   "(0: skip)")
    p.add_argument("--repeat", type=int, default=1,
                   help="bare/ingest pairs to run back to back per broker (the machine "
                   "is shared)")
    a = p.parse_args()
    names = [] if a.broker_port else [b.strip() for b in a.brokers.split(",") if b.strip()]

    name = f"pcbench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = conninfo.make_conninfo(ADMIN_DSN, dbname=name)
    workdir = Path(tempfile.mkdtemp(prefix="parkcarbon-bench-"))
    rows: list[str] = []
    try:
        migrate(dsn, mode="plain", timezone="Asia/Shanghai", create_database=False)
        with connect(dsn) as conn:
            sync_registry(conn, load_registry(EXAMPLE_REGISTRY))
        base = int(time.time()) - 3 * 86400
        n = a.messages
        print(f"{n} QoS 1 single-reading messages per run, publish -> committed row, "
              f"persistent sessions; {load()}")
        targets: list[tuple[str, object | None, str]] = []
        if a.broker_port:
            ext = ExternalBroker(a.broker_port, a.protocol, a.broker_user, a.broker_password)
            targets.append((ext.name, ext, f"127.0.0.1:{a.broker_port}, MQTT {a.protocol}"))
        else:
            targets.extend((b, None, "") for b in names)
        run_no = 0
        for label, given, desc in targets:
            broker, desc = (given, desc) if given is not None else start_broker(label, workdir)
            if broker is None:
                print(f"{label}: skipped: {desc}")
                continue
            try:
                for _ in range(a.repeat):
                    run_no += 1
                    ts = base + run_no * n
                    bare = bare_subscriber_rate(broker, n, ts)  # type: ignore[arg-type]
                    msg_rate, _, stored = ingest_rate(broker, dsn, "single", n, 1, ts, n)  # type: ignore[arg-type]
                    row = (f"| {desc} | {bare:,.0f}/s | {msg_rate:,.0f}/s | "
                           f"{msg_rate / bare:.2f} | {n - stored} | {load()} |")
                    print(row, flush=True)
                    rows.append(row)
            finally:
                if given is None:
                    stop_broker(broker)
        print()
        print("| broker | bare subscriber | ingest | ratio | loss | load (1/5/15 min) |")
        print("|---|---|---|---|---|---|")
        for row in rows:
            print(row)
        if a.shared_workers and not a.broker_port:
            for label in ("mosquitto",):
                broker, desc = start_broker(label, workdir)
                try:
                    rate, stored, split = shared_ingest_rate(  # type: ignore[arg-type]
                        broker, dsn, n, base - 2 * n, a.shared_workers)
                finally:
                    stop_broker(broker)
                print(f"{a.shared_workers} ingest workers, shared subscription, {desc}: "
                      f"{rate:,.0f} msg/s, split {split}, stored {stored} of {n} "
                      f"(loss {n - stored}); {load()}")
        nb, per = a.batch_messages, a.readings_per_batch
        if nb and not a.broker_port:
            broker, desc = start_broker("mosquitto", workdir)
            try:
                b_msg, b_read, b_stored = ingest_rate(broker, dsn, "batch", nb, per, base,  # type: ignore[arg-type]
                                                      nb * per)
            finally:
                stop_broker(broker)
            print(f"ingest batched payloads on {desc}: {b_read:,.0f} readings/s "
                  f"({b_msg:,.0f} msg/s of {per} readings), loss {nb * per - b_stored}; "
                  f"{load()}")
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))


if __name__ == "__main__":
    main()
