"""The outbox: a channel down for five minutes loses and doubles nothing and does not
hold up the others; robots batch instead of dropping; two instances (an HA pair)
send every message once; a restart in the middle of pending and of firing keeps timers
and owes the resolve."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from typing import Any

import psycopg
import yaml
from alerts_support import T0, base_config, put_usage, slots

from parkcarbon.alerts.deliver import deliver
from parkcarbon.alerts.engine import run_cycle
from parkcarbon.alerts.rules import parse_alerts
from support import ROOT


def _hot(dsn: str, meter: str, t_from, t_to, kw: float) -> None:
    n = int((t_to - t_from).total_seconds() // 900) + 1
    put_usage(dsn, meter, [(ts, kw / 4) for ts in slots(t_to, n)])


def _attempts(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT outbox_id, channel, ok, detail FROM alert_delivery_attempts "
                            "ORDER BY id").fetchall()


def test_channel_down_five_minutes_nothing_lost_nothing_doubled(settings, registry, sink):
    dsn = settings.database_url.get_secret_value()
    doc = base_config(sink.url)
    doc["routes"] = [{"to": "enterprise"}]
    doc["delivery"] = {"backoff_initial": "30s", "backoff_max": "2m"}
    config = parse_alerts(doc, "a", registry)
    _hot(dsn, "E01-ELEC-1", T0 - timedelta(hours=1), T0 + timedelta(minutes=5), 1500)
    _hot(dsn, "E02-ELEC-1", T0 - timedelta(hours=1), T0 + timedelta(minutes=5), 1500)
    down = {"on": True}

    def reply_for(path: str) -> tuple[int, Any]:
        return (503, {"error": "maintenance"}) if down["on"] and path == "/e01" else (200, {})

    sink.replies = []
    original = sink.requests

    class Replies(list):  # answers by path: E01's endpoint is down, E02's is up
        def __len__(self) -> int:
            return 2

        def pop(self, index: int = -1) -> tuple[int, Any]:
            return reply_for(original[-1]["path"])

    sink.replies = Replies()
    for minute in range(0, 5):
        run_cycle(settings, registry, config, T0 + timedelta(minutes=minute))
    e01 = [r for r in sink.requests if r["path"] == "/e01"]
    e02 = [r for r in sink.requests if r["path"] == "/e02"]
    assert len(e02) == 1  # the other channel was not held up
    assert 2 <= len(e01) <= 4  # retried with backoff (0, 30 s, 90 s, 210 s), not every pass
    down["on"] = False
    # resolved while the channel was down... no: it is still firing; the channel is back
    for minute in range(5, 12):
        run_cycle(settings, registry, config, T0 + timedelta(minutes=minute))
    attempts = _attempts(dsn)
    ok = [a for a in attempts if a[2]]
    assert sorted(a[1] for a in ok) == ["e01-hook", "e02-hook"]  # each sent exactly once
    failed = [a for a in attempts if not a[2]]
    assert failed and all("HTTP 503" in a[3] for a in failed)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT status, count(*) FROM alert_outbox GROUP BY 1"
                            ).fetchall() == [("sent", 2)]
    firing_bodies = [r["json"] for r in sink.requests if r["path"] == "/e01"]
    assert {b["status"] for b in firing_bodies} == {"firing"}


def _e01_robot_hot(settings, registry, sink):
    """E01's meters over a threshold, one WeCom robot (key PC_T_KEY) for its manager, a
    message per meter: (dsn, alerts config)."""
    dsn = settings.database_url.get_secret_value()
    doc = base_config(sink.url)
    doc["channels"] = [{"id": "e01-robot", "type": "wecom", "enterprise": "E01",
                        "key": {"env": "PC_T_KEY"}, "url": f"{sink.url}/wecom"}]
    doc["recipients"] = [{"id": "e01-manager", "enterprise": "E01", "channels": ["e01-robot"],
                          "group_by": ["rule", "meter"]}]
    doc["routes"] = [{"to": "enterprise"}]
    doc["rules"][0]["meters"] = [m.id for m in registry.meters if m.enterprise == "E01"]
    doc["rules"][0]["carriers"] = []
    config = parse_alerts(doc, "a", registry)
    for m in doc["rules"][0]["meters"]:
        _hot(dsn, m, T0 - timedelta(hours=1), T0 + timedelta(hours=1), 1500)
    return dsn, config


def test_robot_rate_limit_batches_instead_of_dropping(settings, registry, sink, monkeypatch):
    from parkcarbon.alerts import deliver as deliver_mod

    monkeypatch.setattr(deliver_mod, "ROBOT_MESSAGES_PER_MINUTE", 2)
    monkeypatch.setenv("PC_T_KEY", "k")
    dsn, config = _e01_robot_hot(settings, registry, sink)
    # 3 groups (one per meter) -> 3 messages due at once: one digest request
    run_cycle(settings, registry, config, T0)
    assert len(sink.requests) == 1
    assert sink.requests[0]["json"]["markdown"]["content"].count("### ") == 3
    # two more singles in the same minute reach the limit; the third waits, not dropped
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO alert_outbox (dedup_key, group_key, recipient, channel, "
                     "reason, message, created_at, next_attempt_at) SELECT 'x' || id, "
                     "group_key, recipient, channel, reason, message, %s, %s FROM alert_outbox "
                     "LIMIT 1", (T0, T0))
    deliver(settings, config, now=T0 + timedelta(seconds=10))
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO alert_outbox (dedup_key, group_key, recipient, channel, "
                     "reason, message, created_at, next_attempt_at) SELECT 'y' || id, "
                     "group_key, recipient, channel, reason, message, %s, %s FROM alert_outbox "
                     "WHERE dedup_key NOT LIKE 'x%%' LIMIT 1", (T0, T0))
    r = deliver(settings, config, now=T0 + timedelta(seconds=20))
    assert r.deferred == 1 and len(sink.requests) == 2
    r = deliver(settings, config, now=T0 + timedelta(seconds=90))
    assert r.sent == 1 and len(sink.requests) == 3
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM alert_outbox WHERE status <> 'sent'"
                            ).fetchone() == (0,)


def test_robot_digest_carries_whole_messages_and_the_rest_follow(settings, registry, sink,
                                                                 monkeypatch):
    """A digest too long for the robot is never cut with messages marked sent behind the
    cut: it carries the messages that fit whole, the rest go in the next pass."""
    from parkcarbon.alerts import deliver as deliver_mod
    from parkcarbon.alerts.notify import robots

    monkeypatch.setattr(deliver_mod, "ROBOT_MESSAGES_PER_MINUTE", 100)
    monkeypatch.setattr(robots, "ROBOT_MAX_BYTES", 1)  # room for one message a digest
    monkeypatch.setenv("PC_T_KEY", "k")
    dsn, config = _e01_robot_hot(settings, registry, sink)
    run_cycle(settings, registry, config, T0)  # 3 messages due, one fits a digest
    deliver(settings, config, now=T0 + timedelta(seconds=10))
    deliver(settings, config, now=T0 + timedelta(seconds=20))
    contents = [r["json"]["markdown"]["content"] for r in sink.requests]
    assert [c.count("### ") for c in contents] == [1, 1, 1]
    assert not any("已截断" in c for c in contents)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM alert_outbox WHERE status <> 'sent'"
                            ).fetchone() == (0,)


def test_ha_pair_delivers_every_message_once(settings, registry, sink):
    dsn = settings.database_url.get_secret_value()
    config = parse_alerts(base_config(sink.url), "a", registry)
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO alert_outbox (dedup_key, group_key, recipient, channel, enterprise_id, "
            "reason, message, created_at, next_attempt_at) VALUES (%s, 'g|rule=x', "
            "'e01-manager', 'e01-hook', 'E01', 'new', %s, %s, %s)",
            [(f"k{n}", psycopg.types.json.Jsonb({**_msg(n)}), T0, T0) for n in range(60)])
    # a slow receiver keeps rows locked while they are being sent
    original = sink.server.RequestHandlerClass.do_POST

    def slow(self: Any) -> None:
        time.sleep(0.02)
        original(self)

    sink.server.RequestHandlerClass.do_POST = slow  # type: ignore[method-assign]
    results = []
    threads = [threading.Thread(target=lambda w=w: results.append(
        deliver(settings, config, now=T0, worker=w))) for w in ("node-a", "node-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    seen = [r["json"]["groupKey"] + r["json"]["alerts"][0]["fingerprint"] for r in sink.requests]
    assert len(seen) == 60 and len(set(seen)) == 60
    assert sum(r.sent for r in results) == 60
    with psycopg.connect(dsn) as conn:
        workers = dict(conn.execute("SELECT worker, count(*) FROM alert_delivery_attempts "
                                    "GROUP BY 1").fetchall())
    assert sum(workers.values()) == 60


def _msg(n: int) -> dict[str, Any]:
    from parkcarbon.alerts.cli import test_message

    m = test_message("e01-hook", "E01", "zh")
    m["alerts"][0]["fingerprint"] = f"{n:016d}"
    return m


def _cli(settings, alerts_file, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PARKCARBON_DATABASE_URL": settings.database_url.get_secret_value(),
           "PARKCARBON_ALERTS_FILE": str(alerts_file), "PARKCARBON_METRICS_PORT": "0"}
    return subprocess.run([sys.executable, "-m", "parkcarbon", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)


def test_restart_in_the_middle_of_pending_and_of_firing(settings, registry, sink, tmp_path):
    """Each cycle is a separate process (a restart between every two)."""
    dsn = settings.database_url.get_secret_value()
    doc = base_config(sink.url)
    doc["routes"] = [{"to": "enterprise"}]
    doc["rules"][0].update({"for": "10m", "meters": ["E01-ELEC-1"]})
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    # real readings of the cumulative register (multiplier 400): 1,500 kW for 45 min,
    # then 40 kW; `alerts evaluate` derives usage from them first
    register, times = 1000.0, []
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        for k in range(-8, 8):
            ts = T0 + timedelta(minutes=15 * k)
            times.append(ts)
            cur.execute("INSERT INTO readings (meter_id, ts, value) VALUES (%s, %s, %s)",
                        ("E01-ELEC-1", ts, register))
            register += (1500 if k < 2 else 40) / 4 / 400

    def at(minutes: int, *extra: str) -> str:
        run = _cli(settings, path, "alerts", "evaluate", "--at",
                   (T0 + timedelta(minutes=minutes)).isoformat(), "--format", "json", *extra)
        assert run.returncode == 0, run.stderr
        return run.stdout

    assert '"to": "pending"' in at(0)
    assert '"to": "firing"' not in at(5)  # pending timer survived the restart
    assert '"to": "firing"' in at(10)
    assert [r["json"]["status"] for r in sink.requests] == ["firing"]
    # it resolves; this process dies before it can deliver (no send)
    assert '"to": "normal"' in at(45, "--no-send")
    assert len(sink.requests) == 1
    at(46)  # the next process delivers the owed resolve
    assert [r["json"]["status"] for r in sink.requests] == ["firing", "resolved"]
    at(60)
    assert len(sink.requests) == 2


def test_resolve_owed_when_the_process_died_between_evaluation_and_dispatch(
        settings, registry, sink):
    dsn = settings.database_url.get_secret_value()
    doc = base_config(sink.url)
    doc["routes"] = [{"to": "enterprise"}]
    config = parse_alerts(doc, "a", registry)
    _hot(dsn, "E01-ELEC-1", T0 - timedelta(hours=1), T0, 1500)
    run_cycle(settings, registry, config, T0)
    assert len(sink.requests) == 1
    # the instance resolves in the database but no dispatch ran (a crash): simulate the
    # committed evaluation alone
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE alert_instances SET state = 'normal', resolved_at = %s",
                      (T0 + timedelta(minutes=1),))
    put_usage(dsn, "E01-ELEC-1", [(ts, 10.0) for ts in slots(T0 + timedelta(minutes=15), 1)])
    run_cycle(settings, registry, config, T0 + timedelta(minutes=15))
    assert [r["json"]["status"] for r in sink.requests] == ["firing", "resolved"]


def test_ha_pair_evaluates_and_notifies_once(settings, registry, sink):
    dsn = settings.database_url.get_secret_value()
    doc = base_config(sink.url)
    doc["routes"] = [{"to": "enterprise"}]
    config = parse_alerts(doc, "a", registry)
    _hot(dsn, "E01-ELEC-1", T0 - timedelta(hours=1), T0 + timedelta(hours=1), 1500)
    _hot(dsn, "E02-ELEC-1", T0 - timedelta(hours=1), T0 + timedelta(hours=1), 1500)
    results: list[Any] = []
    barrier = threading.Barrier(2)

    def node() -> None:
        for minute in range(0, 6):
            barrier.wait(30)
            results.append(run_cycle(settings, registry, config,
                                     T0 + timedelta(minutes=minute)))

    threads = [threading.Thread(target=node) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 12
    assert sorted(r["path"] for r in sink.requests) == ["/e01", "/e02"]
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM alert_history").fetchone() == (2,)


def test_a_notifier_bug_fails_its_messages_and_holds_up_no_other_channel(
        settings, registry, sink, monkeypatch, caplog):
    import logging

    import parkcarbon.alerts.deliver as D

    dsn = settings.database_url.get_secret_value()
    doc = base_config(sink.url)
    doc["routes"] = [{"to": "enterprise"}]
    config = parse_alerts(doc, "a", registry)
    _hot(dsn, "E01-ELEC-1", T0 - timedelta(hours=1), T0 + timedelta(minutes=5), 1500)
    _hot(dsn, "E02-ELEC-1", T0 - timedelta(hours=1), T0 + timedelta(minutes=5), 1500)
    real = D.notifier_for

    class Broken:
        batches = False

        def send(self, messages: list[Any]) -> str:
            raise ZeroDivisionError("a bug in the notifier")

    def patched(channel, settings, renderer):  # E01's webhook notifier has a bug
        return Broken() if channel.id == "e01-hook" else real(channel, settings, renderer)

    monkeypatch.setattr(D, "notifier_for", patched)
    with caplog.at_level(logging.ERROR, logger="parkcarbon.alerts.deliver"):
        run_cycle(settings, registry, config, T0 + timedelta(minutes=5))
    assert [r["path"] for r in sink.requests] == ["/e02"]
    assert "alerts: e01-hook failed unexpectedly" in caplog.text
    attempts = _attempts(dsn)
    assert [(a[1], a[2]) for a in attempts if not a[2]] == [("e01-hook", False)]
    assert any("ZeroDivisionError: a bug in the notifier" in a[3] for a in attempts)
    with psycopg.connect(dsn) as conn:  # kept for a retry, not lost
        assert conn.execute("SELECT channel, status FROM alert_outbox ORDER BY channel"
                            ).fetchall() == [("e01-hook", "pending"), ("e02-hook", "sent")]
    monkeypatch.setattr(D, "notifier_for", real)  # the bug fixed: the message goes out
    run_cycle(settings, registry, config, T0 + timedelta(minutes=30))
    assert sorted(r["path"] for r in sink.requests) == ["/e01", "/e02"]
