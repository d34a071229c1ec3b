"""Roles kept up to date by ``db migrate``: names, password files, idempotence, an
enterprise leaving the registry, meter ownership periods."""

from __future__ import annotations

import stat
from pathlib import Path

import psycopg
import pytest

from parkcarbon.security import ensure_roles, roles
from parkcarbon.settings import load_settings

from .conftest import E1, E2, SecuredDb


def test_role_names_follow_the_convention() -> None:
    s = load_settings(db_role_prefix="pk")
    assert roles.reader_role(s) == "pk_reader"
    assert roles.ingest_role(s) == "pk_ingest"
    assert roles.service_role(s) == "pk_service"
    assert roles.enterprise_role(s, "E01") == "pk_e_e01"
    # ids with characters a role name should not carry, or too long, stay distinct
    a, b = roles.enterprise_role(s, "E-1"), roles.enterprise_role(s, "E_1")
    assert a != b and a.startswith("pk_e_e_1_")
    long = roles.enterprise_role(s, "x" * 64)
    assert len(long) <= 63
    assert roles.grafana_password_reference("pk_e_e01") == (
        "$__file{/run/secrets/parkcarbon/pk_e_e01.password}")
    assert roles.reader_role(load_settings()) == "parkcarbon_reader"


def test_password_files_are_private_and_kept(secured_db: SecuredDb) -> None:
    s = secured_db.settings
    directory = Path(s.secrets_dir)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = sorted(p.name for p in directory.iterdir())
    expected = {f"{r}.password" for r in (roles.ingest_role(s), roles.service_role(s),
                                          roles.reader_role(s))}
    assert expected <= set(files)
    assert len(files) == 3 + 14
    before = {}
    for path in directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        before[path.name] = path.read_text()
        assert len(path.read_text().strip()) >= 40
    again = ensure_roles(s)  # idempotent: same roles, same passwords
    assert len(again.enterprise_roles) == 14 and not again.removed
    assert {p.name: p.read_text() for p in directory.iterdir()} == before
    with psycopg.connect(secured_db.dsn) as conn:
        rows = conn.execute(
            "SELECT rolname, rolcanlogin, rolbypassrls, rolsuper FROM pg_roles "
            "WHERE rolname LIKE %s ORDER BY 1", (f"{s.db_role_prefix}%",)).fetchall()
    by_name = {r[0]: r[1:] for r in rows}
    assert by_name[roles.enterprise_role(s, E1)] == (True, False, False)
    assert by_name[roles.ingest_role(s)] == (True, True, False)
    assert by_name[roles.enterprise_group(s)] == (False, False, False)


def _scram_matches(verifier: str, password: str) -> bool:
    """Whether a SCRAM-SHA-256 verifier (pg_authid.rolpassword) is of ``password``."""
    import base64
    import hashlib
    import hmac

    _, rest = verifier.split("$", 1)
    params, keys = rest.split("$")
    iterations, salt = params.split(":")
    stored_key = keys.split(":")[0]
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt),
                                 int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return hashlib.sha256(client_key).digest() == base64.b64decode(stored_key)


def test_passwords_reach_the_server_hashed(secured_db: SecuredDb) -> None:
    """Each role's password is the one in its file, sent as a SCRAM verifier (the clear
    password never reaches the server or its log)."""
    s = secured_db.settings
    for role in (roles.enterprise_role(s, E1), roles.service_role(s)):
        with secured_db.connect(role) as conn:
            (user,) = conn.execute("SELECT current_user").fetchone()  # type: ignore[misc]
        assert user == role
        with psycopg.connect(secured_db.dsn) as conn:
            (verifier,) = conn.execute(  # type: ignore[misc]
                "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)).fetchone()
        password = roles.read_secret(roles.password_file(s, role))
        assert verifier.startswith("SCRAM-SHA-256$") and password not in verifier
        assert _scram_matches(verifier, password)
        assert not _scram_matches(verifier, password + "x")


def test_enterprise_removed_from_registry_loses_its_role(secured_db: SecuredDb) -> None:
    s = secured_db.settings
    gone = roles.enterprise_role(s, E2)
    with psycopg.connect(secured_db.dsn) as conn:
        conn.execute("UPDATE enterprises SET active = false WHERE id = %s", (E2,))
    result = ensure_roles(s)
    assert result.removed == [gone]
    assert not roles.password_file(s, gone).exists()
    with psycopg.connect(secured_db.dsn) as conn:
        assert not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                (gone,)).fetchone()
        assert not conn.execute("SELECT 1 FROM security_roles WHERE role_name = %s",
                                (gone,)).fetchone()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(psycopg.conninfo.make_conninfo(secured_db.dsn, user=gone)).close()
    # back in the registry: back with a new role and password
    with psycopg.connect(secured_db.dsn) as conn:
        conn.execute("UPDATE enterprises SET active = true WHERE id = %s", (E2,))
    assert gone in ensure_roles(s).enterprise_roles.values()
    with secured_db.connect(gone) as conn:
        (n,) = conn.execute("SELECT count(*) FROM emissions_daily").fetchone()  # type: ignore[misc]
        assert n > 0


def test_moved_meter_keeps_its_history_with_the_old_owner(secured_db: SecuredDb) -> None:
    s = secured_db.settings
    meter = "E01-ELEC-1"
    old, new = roles.enterprise_role(s, E1), roles.enterprise_role(s, E2)
    with psycopg.connect(secured_db.dsn) as conn:
        (before,) = conn.execute(  # type: ignore[misc]
            "SELECT count(*) FROM readings WHERE meter_id = %s", (meter,)).fetchone()
        assert before > 0
        conn.execute("UPDATE meters SET enterprise_id = %s WHERE id = %s", (E2, meter))
        conn.commit()
        # readings measured after the move
        conn.execute("INSERT INTO readings (meter_id, ts, value) "
                     "SELECT %s, now() + i * interval '15 minutes', 100 + i "
                     "FROM generate_series(1, 3) i", (meter,))
        periods = conn.execute("SELECT enterprise_id, valid_to IS NULL FROM meter_ownership "
                               "WHERE meter_id = %s ORDER BY valid_from", (meter,)).fetchall()
    assert periods == [(E1, False), (E2, True)]
    with secured_db.connect(old) as conn:
        (n,) = conn.execute("SELECT count(*) FROM readings WHERE meter_id = %s",  # type: ignore[misc]
                            (meter,)).fetchone()
        assert n == before  # its history, nothing after the move
        assert not conn.execute("SELECT 1 FROM meters WHERE id = %s", (meter,)).fetchone()
    with secured_db.connect(new) as conn:
        (n,) = conn.execute("SELECT count(*) FROM readings WHERE meter_id = %s",  # type: ignore[misc]
                            (meter,)).fetchone()
        assert n == 3  # only what came after
        assert conn.execute("SELECT 1 FROM meters WHERE id = %s", (meter,)).fetchone()


def _role_env(db: SecuredDb, role: str, tmp_path: Path) -> dict[str, str]:
    """Environment of a `parkcarbon` process logging in as ``role`` (password file)."""
    import os

    password_file = roles.password_file(db.settings, role)
    return {**os.environ, "PARKCARBON_DATABASE_URL": db.dsn, "PARKCARBON_DATABASE_USER": role,
            "PARKCARBON_DATABASE_PASSWORD_FILE": str(password_file),
            "PARKCARBON_REGISTRY_FILE": str(db.settings.registry_file),
            "PARKCARBON_REPORT_DIR": str(tmp_path / "reports"),
            "PARKCARBON_METRICS_PORT": "0"}


def test_every_scheduled_job_runs_as_the_service_role(secured_db: SecuredDb,
                                                      tmp_path: Path) -> None:
    """`parkcarbon run` in docker-compose logs in as the service role: each of its jobs
    works with that role's privileges (no owner rights, no superuser)."""
    import subprocess

    from support import ROOT

    env = _role_env(secured_db, roles.service_role(secured_db.settings), tmp_path)
    listed = subprocess.run([str(ROOT / ".venv/bin/parkcarbon"), "run", "--list-jobs",
                             "--format", "json"], capture_output=True, text=True, env=env,
                            cwd=ROOT, timeout=60)
    assert listed.returncode == 0, listed.stderr
    import json

    jobs = [j["name"] for j in json.loads(listed.stdout)]
    assert "derive_usage" in jobs and "accounting_refresh" in jobs
    for job in jobs:
        run = subprocess.run([str(ROOT / ".venv/bin/parkcarbon"), "run", "--job", job],
                             capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
        assert run.returncode == 0, f"{job} as the service role: {run.stderr[-2000:]}"
        assert "permission denied" not in (run.stdout + run.stderr).lower(), job
    with psycopg.connect(secured_db.dsn) as conn:
        (n,) = conn.execute("SELECT count(*) FROM usage_derive_state").fetchone()  # type: ignore[misc]
    assert n > 0


def test_two_databases_sharing_a_prefix_migrate_at_once(db_factory: object,
                                                         tmp_path: Path) -> None:
    """Roles are cluster-wide: two `db migrate` of different databases with one prefix,
    at the same moment, both succeed (statements on a role another session is changing
    are retried)."""
    import threading

    from parkcarbon.db import connect
    from parkcarbon.registry import load_registry
    from parkcarbon.schema import migrate
    from parkcarbon.sync import sync_registry
    from support import EXAMPLE_REGISTRY

    from .conftest import drop_database_and_roles, make_settings

    first = make_settings(db_factory(), tmp_path / "a", "plain")  # type: ignore[operator]
    second = make_settings(db_factory(), tmp_path / "b", "plain")  # type: ignore[operator]
    second = second.model_copy(update={"db_role_prefix": first.db_role_prefix})
    errors: list[BaseException] = []
    try:
        for s in (first, second):
            migrate(s, mode="plain", create_database=False)
            with connect(s) as conn:
                sync_registry(conn, load_registry(EXAMPLE_REGISTRY))

        def work(s: object) -> None:
            try:
                for _ in range(2):
                    ensure_roles(s)  # type: ignore[arg-type]
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(s,)) for s in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
    finally:
        drop_database_and_roles(second.database_url.get_secret_value(), "pct-none")
        drop_database_and_roles(first.database_url.get_secret_value(), first.db_role_prefix)


def test_roles_refresh_on_a_live_database_never_denies_a_running_session(
        secured_db: SecuredDb) -> None:
    """``db migrate`` revokes and grants again in one transaction: a service and an
    enterprise reading all the while never get a permission error."""
    import threading

    s = secured_db.settings
    errors: list[str] = []
    reads = {"n": 0}
    stop = threading.Event()

    def read(role: str, table: str) -> None:
        with secured_db.connect(role, autocommit=True) as conn:
            while not stop.is_set():
                try:
                    conn.execute(f"SELECT count(*) FROM {table}").fetchone()
                    reads["n"] += 1
                except psycopg.Error as exc:
                    errors.append(f"{role}: {str(exc).splitlines()[0]}")

    readers = [threading.Thread(target=read, args=(roles.service_role(s), "usage")),
               threading.Thread(target=read, args=(roles.enterprise_role(s, E1),
                                                   "emissions_daily"))]
    for t in readers:
        t.start()
    try:
        for _ in range(5):
            ensure_roles(s)
    finally:
        stop.set()
        for t in readers:
            t.join(timeout=30)
    assert reads["n"] > 10
    assert errors == []


def test_enterprise_ids_that_share_a_role_are_refused(secured_db: SecuredDb) -> None:
    from parkcarbon.errors import ConfigError

    s = secured_db.settings
    with psycopg.connect(secured_db.dsn) as conn:
        conn.execute("INSERT INTO enterprises (id, name_zh, sector, land_area_mu) "
                     "VALUES ('e01', '重名企业', 'chemicals', 10)")
    with pytest.raises(ConfigError) as info:
        ensure_roles(s)
    assert "enterprises E01, e01 map to one database role" in str(info.value)
    assert info.value.hint == "enterprise ids must differ in more than letter case"
    # nothing half-done: E01's login still reads its own rows only
    with secured_db.connect(roles.enterprise_role(s, E1)) as conn:
        owners = {r[0] for r in conn.execute(
            "SELECT DISTINCT enterprise_id FROM emissions_daily").fetchall()}
    assert owners == {E1}
