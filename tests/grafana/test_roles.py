"""Every panel under the database roles Grafana logs in as (issue #14, security #12).

The park's Grafana reads as ``<prefix>_reader`` (every board); each enterprise
organisation reads as its enterprise's role (the enterprise board only). On the seeded
demo month: no panel gets a permission error under either role; the reader sees what the
owner sees; the enterprise role sees its own enterprise's figures exactly as the owner
does, and with the board's variable set to another enterprise it gets no rows, or rows
of zeros and NULLs naming nobody else.

The roles (prefix ``pcg<hex>``) are made here with ``ensure_roles`` on the shared seeded
database and dropped at the end of the module (after their privileges there).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import conninfo, sql

from parkcarbon.grafana.build import build_boards
from parkcarbon.grafana.check import PanelResult, panel_queries, run_query
from parkcarbon.grafana.macros import TimeRange, Variable
from parkcarbon.security import drop_roles, ensure_roles, roles
from parkcarbon.settings import Settings, load_settings
from support import ADMIN_DSN, EXAMPLE_REGISTRY

from .conftest import TZ

BOARDS = build_boards()
MONTH = TimeRange(datetime(2026, 11, 1, tzinfo=TZ), datetime(2026, 12, 1, tzinfo=TZ))
OWN, OTHER = "E05", "E01"  # E05: budget, green power, alerts; E01: figures of its own


@pytest.fixture(scope="module")
def role_settings(
    seeded_dsn: str, storage_mode: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    settings = load_settings(
        database_url=seeded_dsn, db_role_prefix=f"pcg{uuid.uuid4().hex[:10]}",
        secrets_dir=Path(tmp_path_factory.mktemp("secrets")), storage_mode=storage_mode,
        registry_file=EXAMPLE_REGISTRY,
    )
    try:
        ensure_roles(settings)
        yield settings
    finally:
        prefix = settings.db_role_prefix
        with psycopg.connect(seeded_dsn, autocommit=True) as conn:
            names = [r[0] for r in conn.execute(
                "SELECT rolname FROM pg_roles WHERE rolname LIKE %s",
                (prefix.replace("_", r"\_") + r"\_%",)).fetchall()]
            if names:  # the seeded database lives on: hand back what they own there
                idents = sql.SQL(", ").join(sql.Identifier(n) for n in names)
                conn.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(idents))
                conn.execute(sql.SQL("DROP OWNED BY {}").format(idents))
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            drop_roles(admin, prefix)


def login(dsn: str, settings: Settings, role: str) -> psycopg.Connection:
    password = roles.read_secret(roles.password_file(settings, role))
    return psycopg.connect(conninfo.make_conninfo(dsn, user=role, password=password))


def run_board(conn: psycopg.Connection, board: str, timescaledb: bool,
              enterprise: str) -> dict[str, PanelResult]:
    return {
        q.title: run_query(conn, q, MONTH, timescaledb=timescaledb,
                           variables={"enterprise": Variable(enterprise)})
        for q in panel_queries(BOARDS[board])
    }


@pytest.fixture(scope="module")
def owner(seeded_dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(seeded_dsn) as conn:
        yield conn


def _comparable(r: PanelResult) -> list[tuple[Any, ...]]:
    assert r.error is None, (r.query.title, r.error)
    return [tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in r.rows]


def _nobody_else(value: Any) -> bool:
    """A cell of a panel read for another enterprise: nothing of theirs."""
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, int | float):
        return value == 0
    if isinstance(value, str):
        return OTHER not in value
    return isinstance(value, date)  # a day or time with no figure of theirs beside it


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_the_reader_role_runs_every_panel_and_sees_what_the_owner_sees(
    seeded_dsn: str, role_settings: Settings, owner: psycopg.Connection, board: str,
    storage_mode: str,
) -> None:
    tsdb = storage_mode == "timescale"
    want = run_board(owner, board, tsdb, OWN)
    with login(seeded_dsn, role_settings, roles.reader_role(role_settings)) as conn:
        got = run_board(conn, board, tsdb, OWN)
    assert [t for t, r in got.items() if r.error] == []
    assert {t: _comparable(r) for t, r in got.items()} == {
        t: _comparable(r) for t, r in want.items()}
    assert any(r.rows for r in got.values())


def test_an_enterprise_role_sees_its_own_figures_on_the_enterprise_board(
    seeded_dsn: str, role_settings: Settings, owner: psycopg.Connection, storage_mode: str
) -> None:
    tsdb = storage_mode == "timescale"
    want = run_board(owner, "enterprise", tsdb, OWN)
    with login(seeded_dsn, role_settings, roles.enterprise_role(role_settings, OWN)) as conn:
        got = run_board(conn, "enterprise", tsdb, OWN)
        variable = conn.execute(
            "SELECT id FROM enterprises ORDER BY id").fetchall()  # the variable's source
    assert [(t, r.error) for t, r in got.items() if r.error] == []
    assert {t: _comparable(r) for t, r in got.items()} == {
        t: _comparable(r) for t, r in want.items()}
    with_rows = [t for t, r in got.items() if r.rows]
    assert len(with_rows) >= len(got) - 1  # all but its meter events (none this month)
    assert variable == [(OWN,)]


def test_an_enterprise_role_gets_nothing_of_another_enterprise(
    seeded_dsn: str, role_settings: Settings, owner: psycopg.Connection, storage_mode: str
) -> None:
    tsdb = storage_mode == "timescale"
    theirs = run_board(owner, "enterprise", tsdb, OTHER)
    assert sum(len(r.rows) for r in theirs.values()) > 5  # the owner sees E01's figures
    with login(seeded_dsn, role_settings, roles.enterprise_role(role_settings, OWN)) as conn:
        got = run_board(conn, "enterprise", tsdb, OTHER)
    assert [(t, r.error) for t, r in got.items() if r.error] == []
    leaks = {t: r.rows for t, r in got.items()
             if not all(_nobody_else(v) for row in r.rows for v in row)}
    assert leaks == {}
