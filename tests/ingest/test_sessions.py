"""Loss ingest used to miss, on a real Mosquitto (#11 points 1, 3 and 8).

- a broker crash with the shipped config keeps ingest's session and queue;
- a broker that lost the session (a crash before it saved it, a clean-session client with
  ingest's client id) is an ERROR naming the loss window, a metric and an incident row;
- two ingest instances with one client id: one ERROR line, a long backoff, then one of
  them stops (MQTT 5 reason code; the connection pattern for MQTT 3.1.1);
- a broker or database that cannot be reached at start is a WARNING at once.

Each test starts private mosquittos on free ports (never the system one).
"""

from __future__ import annotations

import json
import logging
import time
import uuid

import paho.mqtt.client as mqtt
import psycopg
import pytest

from parkcarbon.errors import BrokerError
from parkcarbon.ingest import constants as C
from parkcarbon.ingest.service import IngestService, flush_and_wait_idle
from parkcarbon.registry import Registry, load_registry
from parkcarbon.settings import Settings
from support import EXAMPLE_REGISTRY, Broker, free_port, mqtt_publish
from support.ingest import running, settings_for


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(EXAMPLE_REGISTRY)


def readings(n: int, meter: str = "park/E04/E04-ELEC-1") -> list[tuple[str, bytes]]:
    now = time.time()
    return [(meter, json.dumps({"ts": now - n + i, "value": float(i), "seq": i}).encode())
            for i in range(n)]


def count(dsn: str, sql: str = "SELECT count(*) FROM readings") -> int:
    with psycopg.connect(dsn) as conn:
        return int(conn.execute(sql).fetchone()[0])  # type: ignore[index]


def incidents(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT kind, client_id, window_start, window_end, detail "
                            "FROM ingest_incidents ORDER BY id").fetchall()


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def with_autosave(broker: Broker, seconds: int) -> None:
    text = broker.conf.read_text()
    assert "autosave_interval 1\n" in text  # the shipped setting
    broker.conf.write_text(text.replace("autosave_interval 1\n", f"autosave_interval {seconds}\n"))


# --- a broker crash (SIGKILL) ---------------------------------------------------------


def test_broker_crash_with_the_shipped_config_keeps_session_and_queue(
        migrated_dsn: str, broker: Broker, registry: Registry,
        caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_for(migrated_dsn, broker)
    with running(settings, registry):
        pass  # the session exists from here on; ingest is down afterwards
    mqtt_publish(broker, readings(500))
    time.sleep(2.5)  # > autosave_interval (1 s) of the shipped config
    broker.stop(kill=True)  # a crash: no save on the way out
    broker.start()
    with caplog.at_level(logging.INFO), running(settings, registry) as svc:
        assert flush_and_wait_idle(svc, min_messages=500, timeout_seconds=30)
        assert svc.stats().sessions_lost == 0
    assert count(migrated_dsn) == 500
    assert errors(caplog) == []
    assert "session present: True" in caplog.text


def test_session_lost_in_a_crash_is_an_error_with_the_window(
        migrated_dsn: str, broker: Broker, registry: Registry,
        caplog: pytest.LogCaptureFixture) -> None:
    """The old config (autosave_interval 60): the crash comes before the first save."""
    broker.stop()
    with_autosave(broker, 60)
    broker.start()
    settings = settings_for(migrated_dsn, broker, metrics_port=free_port())
    with running(settings, registry):
        pass
    mqtt_publish(broker, readings(300))
    broker.stop(kill=True)
    broker.start()
    with caplog.at_level(logging.INFO), running(settings, registry) as svc:
        mqtt_publish(broker, readings(10, "park/E05/E05-ELEC-1"))
        assert flush_and_wait_idle(svc, min_messages=10, timeout_seconds=30)
        assert svc.stats().sessions_lost == 1
        assert "parkcarbon_ingest_sessions_lost_total 1" in svc.metrics_text()
    lost = errors(caplog)
    assert len(lost) == 1, lost
    assert lost[0].startswith(f"broker 127.0.0.1:{broker.port} has no session for client id "
                              f"{settings.mqtt_client_id} although ingest held one (last "
                              "known to exist at ")
    assert "were not queued for ingest and are probably lost" in lost[0]
    assert count(migrated_dsn) == 10  # the 300 are gone: the point is that it is said
    (kind, client_id, start, end, detail), = incidents(migrated_dsn)
    assert (kind, client_id) == ("session_lost", settings.mqtt_client_id)
    assert start < end and "has no session" in detail


def test_session_wiped_by_a_clean_session_client(
        migrated_dsn: str, broker: Broker, registry: Registry,
        caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_for(migrated_dsn, broker)
    with running(settings, registry):
        pass
    mqtt_publish(broker, readings(1000))
    # an operator's tool connects once with ingest's client id and a clean session
    tool = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=settings.mqtt_client_id,
                       protocol=mqtt.MQTTv311, clean_session=True)
    tool.username_pw_set(broker.username, broker.password)
    tool.connect("127.0.0.1", broker.port)
    tool.loop_start()
    time.sleep(0.5)
    tool.disconnect()
    tool.loop_stop()
    with caplog.at_level(logging.INFO), running(settings, registry) as svc:
        time.sleep(1.0)
        assert svc.stats().sessions_lost == 1
    assert count(migrated_dsn) == 0  # the 1,000 queued readings went with the session
    assert len(errors(caplog)) == 1 and "has no session for client id" in errors(caplog)[0]
    assert [i[0] for i in incidents(migrated_dsn)] == ["session_lost"]


def test_first_start_and_a_kept_session_are_not_errors(
        migrated_dsn: str, broker: Broker, registry: Registry,
        caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_for(migrated_dsn, broker)
    with caplog.at_level(logging.INFO):
        with running(settings, registry):
            pass  # session present: False, but ingest never had one here
        broker.restart()  # graceful: mosquitto saves on the way out
        with running(settings, registry) as svc:
            assert svc.stats().sessions_lost == 0
    assert errors(caplog) == [] and incidents(migrated_dsn) == []


# --- two instances with one client id --------------------------------------------------


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_two_instances_with_one_client_id(
        migrated_dsn: str, broker: Broker, registry: Registry, protocol: str,
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    # production: back off 60 s; a connection under 10 s is "dropped right after
    # CONNACK". Scaled down, keeping backoff > suspect window as in production (while one
    # instance backs off, the other's connection is a stable one).
    monkeypatch.setattr(C, "TAKEOVER_BACKOFF_SECONDS", 5.0)
    monkeypatch.setattr(C, "TAKEOVER_SUSPECT_SECONDS", 2.5)
    settings = settings_for(migrated_dsn, broker, mqtt_protocol=protocol)
    a, b = IngestService(settings, registry), IngestService(settings, registry)
    caplog.set_level(logging.INFO)
    try:
        a.start()
        assert a.wait_subscribed(20)
        b.start()
        deadline = time.monotonic() + 60
        while a.fatal_error is None and b.fatal_error is None:
            assert time.monotonic() < deadline, "neither instance gave up"
            time.sleep(0.1)
        stopped, survivor = (a, b) if a.fatal_error is not None else (b, a)
        assert isinstance(stopped.fatal_error, BrokerError)
        assert "another ingest instance uses the same client id" in str(stopped.fatal_error)
        assert survivor.wait_subscribed(30)
        time.sleep(1.0)
        takeovers = a.stats().session_takeovers + b.stats().session_takeovers
        mqtt_publish(broker, readings(50))
        assert flush_and_wait_idle(survivor, min_messages=50, timeout_seconds=30)
        assert survivor.fatal_error is None and survivor.healthy()
    finally:
        a.stop(timeout_seconds=10)
        b.stop(timeout_seconds=10)
    assert takeovers <= 4, takeovers  # was ~1 a second, for ever
    assert count(migrated_dsn) == 50
    lines = errors(caplog)
    assert any("another client took over the MQTT session of client id "
               f"{settings.mqtt_client_id}" in line for line in lines), lines
    assert len(lines) <= 4, lines


# --- start-up checks -----------------------------------------------------------------


def test_unreachable_broker_and_database_are_warnings_at_once(
        migrated_dsn: str, registry: Registry, caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    settings = Settings(database_url=f"postgresql://127.0.0.1:{port}/x", mqtt_port=port,
                        metrics_port=None, mqtt_client_id=f"ingest-{uuid.uuid4().hex[:8]}")
    service = IngestService(settings, registry)
    started = time.monotonic()
    with caplog.at_level(logging.INFO):
        service.start()
        try:
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert time.monotonic() - started < 15
            assert any(w.startswith("database not reachable at start") for w in warnings)
            assert any(w.startswith(f"MQTT broker 127.0.0.1:{port} not reachable at start")
                       for w in warnings)
            assert not service.stats().db_ok and "database DOWN" in service.summary_line()
        finally:
            service.stop(timeout_seconds=5)
