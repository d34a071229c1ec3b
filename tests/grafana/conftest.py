"""The seeded database the panel tests share: the demo's park and month, in the storage
mode of the run (``PARKCARBON_TEST_STORAGE_MODE``), made once per session (seeding a
month takes ~20 s) and dropped at the end. It depends on ``storage_mode``, so the tests
that read it carry the ``storage`` marker and run again in timescale mode.

Seeding as the demo does: the example park, a simulated month with the demo's faults
(reset, gap, late, garbage) through ingest's own parser and writer (no broker: the MQTT
path is tested elsewhere), then usage derived, the economics file loaded and the
figures accounted (``bring_up_to_date``, which also writes ``carbon_budgets``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import conninfo, sql

from parkcarbon.carbon.current import bring_up_to_date
from parkcarbon.db import connect
from parkcarbon.demo.options import DEMO_FAULTS
from parkcarbon.ingest.parse import Parser
from parkcarbon.ingest.simulator.simulate import generate
from parkcarbon.ingest.writer import Writer
from parkcarbon.registry import load_registry
from parkcarbon.settings import Settings, load_settings
from support import ADMIN_DSN, EXAMPLE_REGISTRY, ROOT

MODE = os.environ.get("PARKCARBON_TEST_STORAGE_MODE", "plain")


TZ = ZoneInfo("Asia/Shanghai")
MONTH = date(2026, 11, 1)  # the demo's month on the day this was written (the previous one)
BATCH = 5000


def month_range(first: date = MONTH, days: int | None = None) -> tuple[datetime, datetime]:
    """[start, end) of the local month (or its first ``days``), as aware datetimes."""
    nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    start = datetime(first.year, first.month, 1, tzinfo=TZ)
    end = datetime(nxt.year, nxt.month, 1, tzinfo=TZ)
    if days is not None:
        end = start + timedelta(days=days)
    return start, end


def seed_settings(dsn: str) -> Settings:
    return load_settings(
        database_url=dsn,
        registry_file=EXAMPLE_REGISTRY,
        targets_file=ROOT / "config" / "targets.yaml",
        economics_file=ROOT / "config" / "economics.yaml",
        timezone="Asia/Shanghai",
    )


def seed_demo_month(dsn: str, *, days: int | None = None, seed: int = 0) -> Settings:
    """Simulate, store, derive and account ``MONTH`` (or its first ``days``) in ``dsn``
    (migrated, registry loaded). Returns the settings the data was made with."""
    registry = load_registry(EXAMPLE_REGISTRY)
    start, end = month_range(days=days)
    settings = seed_settings(dsn)
    parser = Parser(registry, clock=lambda: end.timestamp() + 3600)
    readings = []
    dead = []
    for msg in generate(registry, start=start, end=end, faults=DEMO_FAULTS, seed=seed):
        topic = f"{settings.topic_prefix}/{msg.topic}"
        result = parser.parse(topic, msg.payload)
        readings.extend(result.readings)
        dead.extend((topic, r) for r in result.rejections)
    with connect(dsn) as conn:
        writer = Writer(conn)
        for i in range(0, len(readings), BATCH):
            writer.write(readings[i : i + BATCH], dead if i == 0 else ())
        if not readings:
            writer.write([], dead)
    with connect(dsn) as conn:
        bring_up_to_date(conn, settings)
        conn.commit()
    return settings


# Alert state as the alerts engine stores it (schema/0010_alerts.sql): a budget alert of
# E05 firing since 20 November, a silent-meter alert pending, a park rule normal; their
# history; a webhook delivered and an e-mail failing twice.
ALERT_ROWS = """
INSERT INTO alert_instances (id, rule_id, subject, enterprise_id, meter_id, kind, severity,
    state, value, threshold, active_since, last_eval_at, episode) VALUES
 (1, 'budget-burn', 'E05', 'E05', NULL, 'budget_burn', 'warning', 'firing', 104.2, 100,
  '2026-11-20 08:00+08', '2026-11-30 23:45+08', 1),
 (2, 'meter-silent', 'E05-GAS-1', 'E05', 'E05-GAS-1', 'silent', 'critical', 'pending',
  7200, 3600, NULL, '2026-11-30 23:45+08', 0),
 (3, 'park-cap', 'PARK', NULL, NULL, 'cap_forecast', 'warning', 'normal', 80, 100, NULL,
  '2026-11-30 23:45+08', 0);
INSERT INTO alert_history (instance_id, enterprise_id, at, from_state, to_state, value, note)
VALUES (1, 'E05', '2026-11-19 08:00+08', 'normal', 'pending', 100.4, NULL),
       (1, 'E05', '2026-11-20 08:00+08', 'pending', 'firing', 101.0, 'for 1d'),
       (2, 'E05', '2026-11-30 21:45+08', 'normal', 'pending', 7200, NULL);
INSERT INTO alert_outbox (id, dedup_key, group_key, recipient, channel, enterprise_id, status,
    reason, message, created_at, attempts, next_attempt_at, sent_at, last_error) VALUES
 (1, 'k1', 'g1', 'ops', 'webhook', 'E05', 'sent', 'new', '{}', '2026-11-20 08:00+08', 1,
  '2026-11-20 08:00+08', '2026-11-20 08:00:01+08', NULL),
 (2, 'k2', 'g1', 'hse', 'email', 'E05', 'failed', 'new', '{}', '2026-11-20 08:00+08', 2,
  '2026-11-20 08:10+08', NULL, '550 mailbox unavailable');
INSERT INTO alert_delivery_attempts (outbox_id, enterprise_id, channel, at, ok, detail,
    duration_ms, worker) VALUES
 (1, 'E05', 'webhook', '2026-11-20 08:00:01+08', true, 'HTTP 200', 40, 'w1'),
 (2, 'E05', 'email', '2026-11-20 08:00:02+08', false, '550 mailbox unavailable', 120, 'w1'),
 (2, 'E05', 'email', '2026-11-20 08:05:02+08', false, '550 mailbox unavailable', 110, 'w1');
"""


def seed_alerts(dsn: str) -> None:
    with connect(dsn) as conn:
        conn.execute(ALERT_ROWS)
        conn.commit()


@pytest.fixture(scope="session")
def storage_mode() -> str:
    """The run's storage mode, session-scoped here so ``seeded_dsn`` can depend on it:
    every test using the seeded database then carries the ``storage`` marker."""
    return MODE


@contextmanager
def seeded_database(prefix: str, storage_mode: str, *, days: int | None = None,
                    alerts: bool = True) -> Iterator[str]:
    """A database of its own (``<prefix><hex>``): migrated in ``storage_mode``, the
    example registry, the demo month (or its first ``days``) and, with ``alerts``, the
    alert rows; dropped afterwards."""
    from parkcarbon.schema import migrate
    from parkcarbon.sync import sync_registry

    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = conninfo.make_conninfo(ADMIN_DSN, dbname=name)
    try:
        migrate(dsn, mode=storage_mode, timezone="Asia/Shanghai", create_database=False)
        with connect(dsn) as conn:
            sync_registry(conn, load_registry(EXAMPLE_REGISTRY))
        seed_demo_month(dsn, days=days)
        if alerts:
            seed_alerts(dsn)
        yield dsn
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def seeded_dsn(storage_mode: str) -> Iterator[str]:
    with seeded_database("pctest_grafana_", storage_mode) as dsn:
        yield dsn
