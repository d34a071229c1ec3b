"""End to end against the project's mosquitto and a real PostgreSQL."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest

from parkcarbon.ingest.errors import BrokerAuthError
from parkcarbon.ingest.service import IngestService, flush_and_wait_idle
from parkcarbon.registry import Registry, load_registry
from support import EXAMPLE_REGISTRY, Broker, free_port, mqtt_publish
from support.ingest import running as _running
from support.ingest import settings_for

running = functools.partial(_running, subscribe_seconds=10)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(EXAMPLE_REGISTRY)


def rows(dsn: str, query: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()


def reading(ts: float, value: float, **more: object) -> bytes:
    return json.dumps({"ts": ts, "value": value, **more}, ensure_ascii=False).encode()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_published_readings_become_rows(migrated_dsn: str, broker: Broker, registry: Registry,
                                        protocol: str) -> None:
    now = time.time()
    msgs = [("park/E01/E01-ELEC-1", reading(now - 900 * (50 - i), 1000.0 + i, unit="kWh",
                                            seq=i)) for i in range(50)]
    msgs.append(("park/E10/E10-HEAT-1", json.dumps({"readings": [
        {"ts": "2026-01-01T08:00:00+08:00", "value": 1, "unit": "tce"},
        {"ts": int(now * 1000), "value": 2.5},
    ]}).encode()))
    with running(settings_for(migrated_dsn, broker, mqtt_protocol=protocol), registry) as svc:
        mqtt_publish(broker, msgs)
        assert flush_and_wait_idle(svc, min_messages=len(msgs), timeout_seconds=20)
        st = svc.stats()
    assert (st.messages, st.messages_acked, st.readings_stored, st.dead_letters) == (51, 51, 52, 0)
    assert st.last_reading_ts is not None and abs(st.last_reading_ts.timestamp() - now) < 1
    elec = rows(migrated_dsn, "SELECT count(*), min(value), max(value), max(seq) FROM readings "
                              "WHERE meter_id = 'E01-ELEC-1'")
    assert elec == [(50, 1000.0, 1049.0, 49)]
    heat = rows(migrated_dsn, "SELECT ts, value FROM readings WHERE meter_id = 'E10-HEAT-1' "
                              "ORDER BY ts")
    assert heat[0][0].isoformat() == "2026-01-01T00:00:00+00:00"
    assert heat[0][1] == pytest.approx(29.271) and heat[1][1] == 2.5


def test_redelivered_reading_is_stored_once(migrated_dsn: str, broker: Broker,
                                            registry: Registry) -> None:
    now = time.time()
    same = ("park/E02/E02-GAS-1", reading(now - 60, 77.0))
    with running(settings_for(migrated_dsn, broker), registry) as svc:
        mqtt_publish(broker, [same, same, same])
        assert flush_and_wait_idle(svc, min_messages=3, timeout_seconds=20)
        st = svc.stats()
    assert (st.readings_stored, st.readings_duplicate) == (1, 2)
    assert rows(migrated_dsn, "SELECT count(*) FROM readings") == [(1,)]


BAD = [
    ("park/E01/E01-ELEC-1", b"{not json", "bad_json"),
    ("park/E01/E01-ELEC-1", b"\xc3\x28", "bad_encoding"),
    ("park/E99/E99-ELEC-1", b"{}", "unknown_enterprise"),
    ("park/E01/E01-ELEC-9", b"{}", "unknown_meter"),
    ("park/E02/E01-ELEC-1", b"{}", "wrong_enterprise"),
    ("park/E01/E01-GAS-1", None, "unit_mismatch"),
    ("park/E01/E01-ELEC-1", None, "bad_value"),
    ("park/E01/E01-ELEC-1", None, "negative_value"),
    ("park/E01/E01-ELEC-1", None, "absurd_value"),
    ("park/E01/E01-ELEC-1", None, "future_timestamp"),
    ("park/E01/E01-ELEC-1", None, "stale_timestamp"),
    ("park/E01/E01-ELEC-1", b"[" * 3000, "payload_too_large"),
]


def test_every_bad_input_class_is_dead_lettered_and_service_survives(
    migrated_dsn: str, broker: Broker, registry: Registry
) -> None:
    now = time.time()
    generated = {
        "unit_mismatch": reading(now, 1, unit="kWh"),
        "bad_value": b'{"ts": %d, "value": NaN}' % int(now),
        "negative_value": reading(now, -5),
        "absurd_value": reading(now, 1e15),
        "future_timestamp": reading(now + 3600, 1),
        "stale_timestamp": reading(now - 500 * 86400, 1),
    }
    msgs = [(t, p if p is not None else generated[code]) for t, p, code in BAD]
    batch = json.dumps({"readings": [{"ts": now - 10, "value": 5.0},
                                     {"ts": now - 5, "value": -1.0}]}).encode()
    msgs += [("park/E03/E03-ELEC-1", batch), ("park/E03/E03-ELEC-1", reading(now, 6.0))]
    with running(settings_for(migrated_dsn, broker, max_payload_bytes=2048), registry) as svc:
        mqtt_publish(broker, msgs)
        assert flush_and_wait_idle(svc, min_messages=len(msgs), timeout_seconds=20)
        st = svc.stats()
        assert svc.healthy()
    expected = [*(code for _, _, code in BAD), "negative_value"]
    stored = rows(migrated_dsn, "SELECT reason_code, topic, reason, reading_index "
                                "FROM dead_letters ORDER BY reason_code")
    assert sorted(r[0] for r in stored) == sorted(expected)
    assert st.dead_letters == len(expected)
    assert st.dead_letters_by_reason["negative_value"] == 2
    assert st.messages_acked == len(msgs)
    batch_dl = [r for r in stored if r[3] == 1]
    assert batch_dl and batch_dl[0][1] == "park/E03/E03-ELEC-1"
    assert rows(migrated_dsn, "SELECT value FROM readings ORDER BY ts") == [(5.0,), (6.0,)]


def test_broker_keeps_messages_while_ingest_is_down(migrated_dsn: str, broker: Broker,
                                                     registry: Registry) -> None:
    settings = settings_for(migrated_dsn, broker)
    with running(settings, registry):
        pass  # creates the persistent session and its subscription
    now = time.time()
    mqtt_publish(broker, [("park/E04/E04-ELEC-1", reading(now - i, float(i)))
                          for i in range(200)])
    broker.restart()  # the session and its queue survive a broker restart too
    with running(settings, registry) as svc:
        assert flush_and_wait_idle(svc, min_messages=200, timeout_seconds=20)
    assert rows(migrated_dsn, "SELECT count(*) FROM readings") == [(200,)]


def test_shared_subscription_splits_the_load(migrated_dsn: str, broker: Broker,
                                             registry: Registry) -> None:
    now = time.time()
    msgs = [("park/E05/E05-ELEC-1", reading(now - i, float(i))) for i in range(400)]
    a = settings_for(migrated_dsn, broker, mqtt_shared_group="workers")
    b = settings_for(migrated_dsn, broker, mqtt_shared_group="workers")
    with running(a, registry) as svc_a, running(b, registry) as svc_b:
        mqtt_publish(broker, msgs)
        deadline = time.monotonic() + 20
        while svc_a.stats().messages + svc_b.stats().messages < 400:
            assert time.monotonic() < deadline, "not all messages arrived"
            time.sleep(0.05)
        n_a, n_b = svc_a.stats().messages, svc_b.stats().messages
    assert n_a + n_b == 400 and n_a > 0 and n_b > 0
    assert rows(migrated_dsn, "SELECT count(*) FROM readings") == [(400,)]


def test_bad_credentials_stop_with_broker_error(migrated_dsn: str, broker: Broker,
                                                registry: Registry) -> None:
    service = IngestService(settings_for(migrated_dsn, broker, mqtt_password="wrong"), registry)
    service.start()
    try:
        with pytest.raises(BrokerAuthError) as info:
            service.wait_subscribed(10)
        assert info.value.exit_code == 5
        assert not service.healthy()
    finally:
        service.stop(timeout_seconds=5)


def test_metrics_endpoint(migrated_dsn: str, broker: Broker, registry: Registry) -> None:
    threads_before = set(threading.enumerate())
    port = free_port()
    now = time.time()
    with running(settings_for(migrated_dsn, broker, metrics_port=port), registry) as svc:
        mqtt_publish(broker, [("park/E06/E06-ELEC-1", reading(now, 1.0)),
                              ("park/E06/E06-ELEC-1", b"oops")])
        assert flush_and_wait_idle(svc, min_messages=2, timeout_seconds=20)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            assert resp.status == 200
        line = svc.summary_line()
    assert "parkcarbon_ingest_messages_total 2" in text
    assert "parkcarbon_ingest_readings_stored_total 1" in text
    assert 'parkcarbon_ingest_dead_letters_total{reason="bad_json"} 1' in text
    assert "parkcarbon_ingest_connected 1" in text
    assert "1 readings stored" in line and "1 dead letters" in line
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
    leftover = [t.name for t in set(threading.enumerate()) - threads_before if t.is_alive()]
    assert leftover == [], f"threads left behind: {leftover}"


def test_reconnects_after_broker_restart(migrated_dsn: str, broker: Broker,
                                         registry: Registry) -> None:
    now = time.time()
    with running(settings_for(migrated_dsn, broker), registry) as svc:
        mqtt_publish(broker, [("park/E07/E07-GAS-1", reading(now - 10, 1.0))])
        assert flush_and_wait_idle(svc, min_messages=1, timeout_seconds=20)
        broker.restart()
        assert svc.wait_subscribed(20), "ingest did not reconnect"
        mqtt_publish(broker, [("park/E07/E07-GAS-1", reading(now - 5, 2.0))])
        # Not min_messages=2: if the restart beat the first PUBACK out of the socket,
        # the broker redelivers the first message, which counts as a message too.
        deadline = time.monotonic() + 20
        while svc.stats().readings_stored < 2:
            assert time.monotonic() < deadline, "the reading after the restart was not stored"
            time.sleep(0.05)
    assert rows(migrated_dsn, "SELECT value FROM readings ORDER BY ts") == [(1.0,), (2.0,)]


def test_store_worker_death_stops_ingest_with_an_error_and_loses_nothing(
        migrated_dsn: str, broker: Broker, registry: Registry) -> None:
    """The parsing/writing process dies (OOM killer, a crash): the service reports a
    fatal error and turns unhealthy; what it held unacknowledged comes back from the
    broker to the next run."""
    settings = settings_for(migrated_dsn, broker)
    now = time.time()
    service = IngestService(settings, registry)
    service.start()
    try:
        assert service.wait_subscribed(10)
        mqtt_publish(broker, [("park/E07/E07-GAS-1", reading(now - 30, 1.0))])
        assert flush_and_wait_idle(service, min_messages=1, timeout_seconds=20)
        service._process.kill()
        deadline = time.monotonic() + 10
        while service.fatal_error is None:
            assert time.monotonic() < deadline, "worker death not noticed"
            time.sleep(0.05)
        assert "store worker process exited unexpectedly" in str(service.fatal_error)
        assert not service.healthy()
        mqtt_publish(broker, [("park/E07/E07-GAS-1", reading(now - 20, 2.0))])
    finally:
        service.stop(timeout_seconds=5)
    with running(settings, registry) as svc:  # same client id: the session's backlog
        assert flush_and_wait_idle(svc, min_messages=1, timeout_seconds=20)
    assert rows(migrated_dsn, "SELECT value FROM readings ORDER BY ts") == [(1.0,), (2.0,)]


def test_service_starts_from_a_script_without_a_main_guard(
        migrated_dsn: str, broker: Broker, tmp_path: Path) -> None:
    """The worker is a fresh interpreter that never re-runs the caller's script (as
    multiprocessing's spawn would: an unguarded script then fails to start it)."""
    script = tmp_path / "embed.py"
    script.write_text(textwrap.dedent(f"""
        from parkcarbon.ingest.service import IngestService
        from parkcarbon.registry import load_registry
        from parkcarbon.settings import Settings
        settings = Settings(database_url={migrated_dsn!r}, mqtt_port={broker.port},
                            mqtt_username={broker.username!r},
                            mqtt_password={broker.password!r}, metrics_port=None)
        service = IngestService(settings, load_registry({str(EXAMPLE_REGISTRY)!r}))
        service.start()
        assert service.wait_subscribed(10)
        service.stop()
        print("started and stopped")
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "started and stopped"
