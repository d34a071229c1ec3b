"""`parkcarbon run`: the scheduler, job providers, the health check, graceful shutdown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest

from parkcarbon.registry import load_registry
from parkcarbon.runtime.schedule import (
    JobContext,
    ScheduledJob,
    add_job_provider,
    collect_jobs,
    remove_job_provider,
)
from parkcarbon.runtime.supervisor import MAX_CONSECUTIVE_FAILURES, ServiceError, Supervisor
from parkcarbon.settings import Settings, load_settings
from support import EXAMPLE_REGISTRY, Broker, free_port

REGISTRY = load_registry(EXAMPLE_REGISTRY)


def _settings(**kw: Any) -> Settings:
    return load_settings(registry_file=EXAMPLE_REGISTRY, metrics_port=0, **kw)


def _get(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def test_scheduled_jobs_run_with_context_and_health_reports_them() -> None:
    fixed = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)
    seen: list[JobContext] = []
    ran = threading.Event()

    def record(ctx: JobContext) -> None:
        seen.append(ctx)
        ran.set()

    jobs = [ScheduledJob("record", record, interval_seconds=3600, run_at_start=True)]
    port = free_port()
    sup = Supervisor(
        _settings(),
        REGISTRY,
        parts=("scheduler",),
        jobs=jobs,
        health_port=port,
        clock=lambda: fixed,
    )
    sup.start()
    try:
        assert ran.wait(10)
        status, body = _get(port)
        assert status == 200
        assert body["healthy"] is True and body["parts"] == ["scheduler"]
        job = body["scheduler"]["jobs"]["record"]
        assert job["runs"] == 1 and job["failures"] == 0
        assert job["last_success"] == fixed.isoformat()
    finally:
        sup.stop()
    assert seen[0].now == fixed and seen[0].registry is REGISTRY
    assert sup.scheduler is None
    assert not any(t.name == "parkcarbon-health" for t in threading.enumerate())


def _wait_for(predicate: Any, timeout_seconds: float = 10.0) -> bool:
    done = threading.Event()
    for _ in range(int(timeout_seconds / 0.02)):
        if predicate():
            return True
        done.wait(0.02)
    return bool(predicate())


def test_failing_job_turns_health_red_after_repeated_failures() -> None:
    def boom(ctx: JobContext) -> None:
        raise RuntimeError("database on fire")

    port = free_port()
    sup = Supervisor(
        _settings(),
        REGISTRY,
        parts=("scheduler",),
        health_port=port,
        jobs=[ScheduledJob("boom", boom, interval_seconds=3600)],
    )
    sup.start()
    try:
        assert sup.scheduler is not None
        assert _get(port)[0] == 200
        for n in range(1, MAX_CONSECUTIVE_FAILURES + 1):
            sup.scheduler.get_job("boom").modify(next_run_time=datetime.now(UTC))
            assert _wait_for(lambda n=n: sup.job_health["boom"].runs == n)
            expect = 200 if n < MAX_CONSECUTIVE_FAILURES else 503
            assert _get(port)[0] == expect, n
        body = _get(port)[1]
        assert body["healthy"] is False
        assert body["scheduler"]["jobs"]["boom"]["last_error"] == ("RuntimeError: database on fire")
    finally:
        sup.stop()


def test_job_providers_extend_the_schedule_and_names_are_unique() -> None:
    def provider(settings: Settings) -> list[ScheduledJob]:
        return [ScheduledJob("monthly_report", lambda ctx: None, cron={"day": "1", "hour": "6"})]

    def clash(settings: Settings) -> list[ScheduledJob]:
        return [ScheduledJob("monthly_report", lambda c: None, interval_seconds=5)]

    add_job_provider(provider)
    try:
        names = [j.name for j in collect_jobs(_settings())]
        assert "monthly_report" in names
        add_job_provider(clash)
        with pytest.raises(ValueError, match="duplicate scheduled job names: monthly_report"):
            collect_jobs(_settings())
    finally:
        remove_job_provider(clash)
        remove_job_provider(provider)
    assert "monthly_report" not in [j.name for j in collect_jobs(_settings())]


def test_job_needs_exactly_one_trigger() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ScheduledJob("x", lambda c: None)
    with pytest.raises(ValueError, match="exactly one"):
        ScheduledJob("x", lambda c: None, interval_seconds=1, cron={"hour": "1"})


def test_unknown_part_is_a_user_error() -> None:
    with pytest.raises(ServiceError, match="unknown service parts"):
        Supervisor(_settings(), REGISTRY, parts=("alerts",))  # type: ignore[arg-type]


def test_cron_jobs_use_the_park_timezone() -> None:
    sup = Supervisor(
        _settings(),
        REGISTRY,
        parts=("scheduler",),
        health_port=0,
        jobs=[ScheduledJob("daily", lambda c: None, cron={"hour": "0"})],
    )
    sup.start()
    try:
        assert sup.scheduler is not None
        next_run = sup.scheduler.get_job("daily").next_run_time
        assert next_run.utcoffset().total_seconds() == 8 * 3600  # Asia/Shanghai
        assert next_run.hour == 0
    finally:
        sup.stop()


# --- the real service as a subprocess ------------------------------------------------


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout_seconds: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"service exited early with {proc.returncode}"
        try:
            if _get(port)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"service not healthy on port {port} after {timeout_seconds}s")


def _count(dsn: str, sql: str) -> Any:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql).fetchone()
        return row[0] if row else None


def test_sigterm_during_ingest_loses_nothing(
    migrated_dsn: str, broker: Broker, tmp_path: Path
) -> None:
    meters = [m for m in REGISTRY.meters if m.counter.value == "cumulative" and m.unit == "kWh"]
    meters = meters[:10]
    assert len(meters) == 10
    per_meter = 500
    total = per_meter * len(meters)
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=7)
    health_port = free_port()
    env = {
        **os.environ,
        "PARKCARBON_DATABASE_URL": migrated_dsn,
        "PARKCARBON_REGISTRY_FILE": str(EXAMPLE_REGISTRY),
        "PARKCARBON_MQTT_PORT": str(broker.port),
        "PARKCARBON_MQTT_USERNAME": broker.username,
        "PARKCARBON_MQTT_PASSWORD": broker.password,
        "PARKCARBON_MQTT_CLIENT_ID": f"test-run-{uuid.uuid4().hex[:8]}",
        "PARKCARBON_METRICS_PORT": str(health_port),
    }
    env.pop("PARKCARBON_CONFIG_FILE", None)
    log_path = tmp_path / "service.log"

    def launch() -> subprocess.Popen[bytes]:
        with log_path.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "parkcarbon", "run"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
            )

    proc = launch()
    try:
        _wait_healthy(health_port, proc)
        published = threading.Event()
        pub = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="test-meters", protocol=mqtt.MQTTv5
        )
        pub.username_pw_set(broker.username, broker.password)
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()

        def publish_all() -> None:
            # Paced (~2,000 msg/s) so the SIGTERM below lands while messages still flow.
            infos = []
            for i in range(per_meter):
                ts = (start + timedelta(minutes=15 * i)).isoformat()
                for k, m in enumerate(meters):
                    payload = json.dumps({"ts": ts, "value": 1000.0 + k + 2.5 * i, "unit": "kWh"})
                    infos.append(pub.publish(f"park/{m.enterprise}/{m.id}", payload, qos=1))
                time.sleep(0.005)
            for info in infos:
                info.wait_for_publish(30)
            published.set()

        publisher = threading.Thread(target=publish_all)
        publisher.start()
        try:
            deadline = time.monotonic() + 30
            while _count(migrated_dsn, "SELECT count(*) FROM readings") < 300:
                assert time.monotonic() < deadline, "service stored nothing"
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            sent_mid_stream = not published.is_set()
            assert proc.wait(timeout=60) == 0
            after_stop = _count(migrated_dsn, "SELECT count(*) FROM readings")
        finally:
            publisher.join(timeout=60)
            pub.disconnect()
            pub.loop_stop()
        assert sent_mid_stream, "the publisher finished before SIGTERM; pace it slower"
        assert published.is_set()
        assert 0 < after_stop < total

        # The broker kept the rest for the persistent session; a restart stores it all.
        proc = launch()
        _wait_healthy(health_port, proc)
        deadline = time.monotonic() + 60
        while _count(migrated_dsn, "SELECT count(*) FROM readings") < total:
            assert time.monotonic() < deadline, "readings missing after restart"
            time.sleep(0.1)
        time.sleep(1.0)  # anything redelivered twice would show up now
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log_text = log_path.read_text(encoding="utf-8")
    assert "SIGTERM received: stopping gracefully" in log_text
    assert _count(migrated_dsn, "SELECT count(*) FROM readings") == total
    expected_sum = sum(1000.0 + k + 2.5 * i for i in range(per_meter) for k in range(10))
    assert _count(migrated_dsn, "SELECT sum(value) FROM readings") == pytest.approx(expected_sum)
    assert _count(migrated_dsn, "SELECT count(*) FROM dead_letters") == 0


def _service_env(dsn: str, broker: Broker, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKCARBON_")}
    env.update(
        PARKCARBON_DATABASE_URL=dsn,
        PARKCARBON_REGISTRY_FILE=str(EXAMPLE_REGISTRY),
        PARKCARBON_MQTT_PORT=str(broker.port),
        PARKCARBON_MQTT_USERNAME=broker.username,
        PARKCARBON_MQTT_PASSWORD=broker.password,
        PARKCARBON_MQTT_CLIENT_ID=f"test-run-{uuid.uuid4().hex[:8]}",
        PARKCARBON_METRICS_PORT="0",
    )
    env.update(extra)
    return env


def test_bad_broker_credentials_stop_the_service_with_exit_code_5(
    migrated_dsn: str, broker: Broker, tmp_path: Path
) -> None:
    env = _service_env(migrated_dsn, broker, PARKCARBON_MQTT_PASSWORD="wrong")
    proc = subprocess.run(
        [sys.executable, "-m", "parkcarbon", "run", "--only", "ingest"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 5, proc.stderr
    assert "parkcarbon: error: broker" in proc.stderr
    assert "hint: check PARKCARBON_MQTT_USERNAME" in proc.stderr


def test_run_one_job_now_from_the_command_line(
    migrated_dsn: str, broker: Broker, tmp_path: Path
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "parkcarbon", "run", "--job", "derive_usage", "--json"],
        env=_service_env(migrated_dsn, broker),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["job"] == "derive_usage"
    assert "slots_written=0" in out["result"]  # nothing ingested yet
    unknown = subprocess.run(
        [sys.executable, "-m", "parkcarbon", "run", "--job", "nope"],
        env=_service_env(migrated_dsn, broker),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 1
    assert "no scheduled job named 'nope'" in unknown.stderr
