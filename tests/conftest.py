"""Shared fixtures. Tests talk to the real PostgreSQL and Mosquitto.

PostgreSQL: ``PARKCARBON_TEST_DSN`` (default ``postgresql://127.0.0.1:5432/postgres``),
an account allowed to create databases. Each test that needs a database gets a new
one, dropped afterwards, so tests run alone, in any order and side by side.
The whole run aborts with one line if the server is unreachable.

``PARKCARBON_TEST_STORAGE_MODE`` (``plain`` by default, or ``timescale``) is the storage
mode ``migrated_dsn`` sets up; ``timescale`` needs ``PARKCARBON_TEST_DSN`` pointing at a
server with TimescaleDB preloaded (see docs/timescale.md).

Storage-mode sensitive tests (those using ``migrated_dsn`` or ``storage_mode``, and
everything under tests/schema/) get the marker ``storage``. ``scripts/test`` runs the
suite in plain mode, then runs those tests a second time in timescale mode on a private
cluster with TimescaleDB preloaded (``pytest -m storage``, or
``PARKCARBON_TEST_STORAGE_ONLY=1``, which deselects the others whatever else selects).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo, sql

from support import ADMIN_DSN, EXAMPLE_REGISTRY, Broker, project_broker

STORAGE_MODE = os.environ.get("PARKCARBON_TEST_STORAGE_MODE", "plain")
STORAGE_ONLY = os.environ.get("PARKCARBON_TEST_STORAGE_ONLY", "") not in ("", "0")
STORAGE_FIXTURES = frozenset({"migrated_dsn", "storage_mode"})
SCHEMA_TESTS = Path(__file__).resolve().parent / "schema"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "storage: storage-mode sensitive: runs again in timescale mode"
    )


def _storage_sensitive(item: pytest.Item) -> bool:
    if STORAGE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    return item.path.is_relative_to(SCHEMA_TESTS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    deselected = []
    for item in items:
        if _storage_sensitive(item):
            item.add_marker(pytest.mark.storage)
        elif STORAGE_ONLY:
            deselected.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]


def pytest_sessionstart(session: pytest.Session) -> None:
    if STORAGE_MODE not in ("plain", "timescale"):
        pytest.exit(f"PARKCARBON_TEST_STORAGE_MODE={STORAGE_MODE!r}: use plain or timescale", 3)
    try:
        with psycopg.connect(ADMIN_DSN, connect_timeout=5) as conn:
            # a setting the timescaledb loader defines only when preloaded
            preloaded = conn.execute(
                "SELECT current_setting('timescaledb.max_background_workers', true)"
            ).fetchone()
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0]
        pytest.exit(f"PostgreSQL is not reachable at {ADMIN_DSN}: {first}", returncode=3)
    if STORAGE_MODE == "timescale" and (preloaded is None or preloaded[0] is None):
        pytest.exit(
            f"PARKCARBON_TEST_STORAGE_MODE=timescale but {ADMIN_DSN} does not "
            "preload timescaledb (set PARKCARBON_TEST_DSN)",
            returncode=3,
        )


def _create_db() -> str:
    name = f"pctest_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return conninfo.make_conninfo(ADMIN_DSN, dbname=name)


def _drop_db(dsn: str) -> None:
    name = conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def fresh_dsn() -> Iterator[str]:
    """An empty database of its own; dropped after the test."""
    dsn = _create_db()
    try:
        yield dsn
    finally:
        _drop_db(dsn)


@pytest.fixture
def db_factory() -> Iterator[callable]:  # type: ignore[valid-type]
    """Create as many empty databases as a test needs; all dropped afterwards."""
    made: list[str] = []

    def make() -> str:
        made.append(_create_db())
        return made[-1]

    yield make
    for dsn in made:
        _drop_db(dsn)


@pytest.fixture
def migrated_dsn(fresh_dsn: str) -> str:
    """A database with the schema (``STORAGE_MODE``, plain by default) and the example
    registry loaded."""
    from parkcarbon.db import connect
    from parkcarbon.registry import load_registry
    from parkcarbon.schema import migrate
    from parkcarbon.sync import sync_registry

    migrate(fresh_dsn, mode=STORAGE_MODE, timezone="Asia/Shanghai", create_database=False)
    with connect(fresh_dsn) as conn:
        sync_registry(conn, load_registry(EXAMPLE_REGISTRY))
    return fresh_dsn


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A running mosquitto with the project's config on a free port; stopped afterwards."""
    b = project_broker(tmp_path / "mosquitto")
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def storage_mode() -> str:
    """The storage mode ``migrated_dsn`` uses (``PARKCARBON_TEST_STORAGE_MODE``)."""
    return STORAGE_MODE


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A folder an unprivileged service user can reach (pytest's tmp_path is 0700 when
    tests run as root): the embedded PostgreSQL runs as user ``parkcarbon`` there."""
    path = Path(tempfile.mkdtemp(prefix="pc-data-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
