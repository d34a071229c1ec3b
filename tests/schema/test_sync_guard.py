"""A registry sync that would switch off much of the park is refused unless confirmed,
and says at WARNING what it deactivates (#11 point 4); PostgreSQL 15's missing CREATE
privilege on schema public is one line with the fix (#11 point 7)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo, sql

from parkcarbon.errors import ConfigError
from parkcarbon.registry import load_registry
from parkcarbon.sync import deactivation_limit, sync_registry
from support import ADMIN_DSN, EXAMPLE_REGISTRY, ROOT


def active_meters(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return int(conn.execute("SELECT count(*) FROM meters WHERE active").fetchone()[0])  # type: ignore[index]


def test_sync_that_would_deactivate_most_meters_is_refused(migrated_dsn: str) -> None:
    registry = load_registry(EXAMPLE_REGISTRY)
    one_left = registry.model_copy(update={"meters": registry.meters[-1:]})
    with psycopg.connect(migrated_dsn) as conn, pytest.raises(ConfigError) as info:
        sync_registry(conn, one_left)
    message = str(info.value)
    assert "would deactivate 51 of the 52 active meters" in message
    assert "--allow-deactivate" in (info.value.hint or "")
    assert active_meters(migrated_dsn) == 52  # nothing changed


def test_small_deactivation_passes_with_a_warning(migrated_dsn: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    registry = load_registry(EXAMPLE_REGISTRY)
    assert deactivation_limit(52) == 5
    fewer = registry.model_copy(update={"meters": registry.meters[5:]})
    gone = [m.id for m in registry.meters[:5]]
    with caplog.at_level(logging.WARNING, "parkcarbon.sync"), \
            psycopg.connect(migrated_dsn) as conn:
        assert sync_registry(conn, fewer).deactivated_meters == 5
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning == [f"registry sync deactivated 5 meter(s) no longer in {registry.source}: "
                       f"{', '.join(sorted(gone))}; ingest dead-letters their readings from "
                       "now on"]


def test_confirmed_mass_deactivation(migrated_dsn: str) -> None:
    registry = load_registry(EXAMPLE_REGISTRY)
    one_left = registry.model_copy(update={"meters": registry.meters[-1:]})
    with psycopg.connect(migrated_dsn) as conn:
        assert sync_registry(conn, one_left, allow_deactivate=True).deactivated_meters == 51
    assert active_meters(migrated_dsn) == 1


def _cli(dsn: str, *args: str, registry: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKCARBON_")}
    env.update({"PARKCARBON_DATABASE_URL": dsn, "PARKCARBON_REGISTRY_FILE": str(registry),
                "PARKCARBON_STORAGE_MODE": os.environ.get("PARKCARBON_TEST_STORAGE_MODE",
                                                          "plain")})
    return subprocess.run([sys.executable, "-m", "parkcarbon", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=180)


def test_db_migrate_refuses_a_truncated_registry_and_takes_the_flag(
        migrated_dsn: str, tmp_path: Path) -> None:
    # the example registry cut after its first five meters (a truncated copy)
    text = EXAMPLE_REGISTRY.read_text(encoding="utf-8")
    head, _, rest = text.partition("\nmeters:\n")
    entries = rest.split("\n  - id: ")
    short = tmp_path / "park.yaml"
    short.write_text(head + "\nmeters:\n" + "\n  - id: ".join(entries[:5]) + "\n",
                     encoding="utf-8")
    assert len(load_registry(short).meters) == 5
    proc = _cli(migrated_dsn, "db", "migrate", registry=short)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "would deactivate 47 of the 52 active meters" in proc.stderr
    assert "hint: " in proc.stderr and "--allow-deactivate" in proc.stderr
    assert active_meters(migrated_dsn) == 52
    proc = _cli(migrated_dsn, "db", "migrate", "--allow-deactivate", registry=short)
    assert proc.returncode == 0, proc.stderr
    assert "WARNING parkcarbon.sync: registry sync deactivated 47 meter(s)" in proc.stderr
    assert active_meters(migrated_dsn) == 5


@pytest.fixture
def unprivileged_dsn() -> object:
    """A database owned by postgres and a login role without CREATE on schema public
    (PostgreSQL 15's default for everyone but the database owner)."""
    suffix = uuid.uuid4().hex[:10]
    role, db = f"pc_noprivs_{suffix}", f"pctest_noprivs_{suffix}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        if conn.info.server_version < 150000:
            pytest.skip("PostgreSQL before 15 grants CREATE on public to everyone")
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    try:
        yield conninfo.make_conninfo(ADMIN_DSN, dbname=db, user=role)
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(db)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_missing_create_privilege_on_public_is_one_line(unprivileged_dsn: str) -> None:
    proc = _cli(unprivileged_dsn, "db", "migrate", registry=EXAMPLE_REGISTRY)
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    role = conninfo.conninfo_to_dict(unprivileged_dsn)["user"]
    assert f"parkcarbon: error: role '{role}' may not create tables in database" in proc.stderr
    assert "permission denied for schema public" in proc.stderr
    assert f"GRANT CREATE ON SCHEMA public TO {role}" in proc.stderr
