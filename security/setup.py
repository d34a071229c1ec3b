"""Create and keep up to date the database roles and their privileges (``db migrate``).

Runs after the numbered migrations and the registry sync, as the owner (a superuser
in the shipped docker-compose: only a superuser can give the park roles BYPASSRLS,
which ingest's ``COPY ... FROM`` into a table with row-level security needs).

Idempotent: roles are created when missing, passwords set from their files (generated
once), privileges revoked and granted again from the tables that exist now, so a table
a later migration adds is covered by the next ``db migrate``. An enterprise removed
from the registry loses its mapping, its privileges and (if nothing else holds it) its
role and password file.

Roles are cluster-wide: two databases on one server each need their own
``db_role_prefix``. Statements on roles are retried when another session changes the
same role at the same moment (PostgreSQL's "tuple concurrently updated").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import psycopg
from psycopg import sql

from parkcarbon.db import LockKey, connect
from parkcarbon.errors import ConfigError, DatabaseError
from parkcarbon.security import queries as Q
from parkcarbon.security import roles as R
from parkcarbon.security.rls import discover

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRIES = 8
RETRY_PAUSE_SECONDS = 0.1


@dataclass
class RolesResult:
    owner: str
    bypassrls: bool
    park_roles: list[str] = field(default_factory=list)
    enterprise_roles: dict[str, str] = field(default_factory=dict)  # id -> role
    removed: list[str] = field(default_factory=list)


def _retry(action: Callable[[], T]) -> T:
    for attempt in range(RETRIES):
        try:
            return action()
        except (psycopg.errors.InternalError_, psycopg.errors.UniqueViolation) as exc:
            if attempt == RETRIES - 1:
                raise
            log.debug("role statement raced another session (%s); retrying", exc)
            time.sleep(RETRY_PAUSE_SECONDS * (attempt + 1))
    raise AssertionError("unreachable")


def _exec(conn: psycopg.Connection, stmt: sql.Composed | sql.SQL) -> None:
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.execute(stmt)  # inside a transaction: the caller retries it whole
        return
    _retry(lambda: conn.execute(stmt))


def _grants_atomically(conn: psycopg.Connection, settings: R.RoleSettings, database: str,
                       owner: str, enterprise_roles: list[str]) -> None:
    """Revoke and grant again in one transaction, so a running service never sees the
    moment between (``db migrate`` on a live park); a race with another session's
    GRANT rolls it back and it is retried whole."""
    def attempt() -> None:
        with conn.transaction():
            _grants(conn, settings, database, owner, enterprise_roles)
    _retry(attempt)


def _ensure_role(conn: psycopg.Connection, role: str, *, login: bool, bypass: bool,
                 password: str | None) -> None:
    ident = sql.Identifier(role)
    attrs = sql.SQL("{} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION {}").format(
        sql.SQL("LOGIN") if login else sql.SQL("NOLOGIN"),
        sql.SQL("BYPASSRLS") if bypass else sql.SQL("NOBYPASSRLS"),
    )
    if not conn.execute(Q.ROLE_EXISTS, (role,)).fetchone():
        try:
            conn.execute(sql.SQL("CREATE ROLE {} {}").format(ident, attrs))
            log.info("created database role %s", role)
        except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
            pass  # another database's migrate created it a moment ago
    _exec(conn, sql.SQL("ALTER ROLE {} {}").format(ident, attrs))
    if password is not None:
        # Hashed here (SCRAM-SHA-256): the clear password never reaches the server's log.
        verifier = conn.pgconn.encrypt_password(
            password.encode(), role.encode(), b"scram-sha-256")
        _exec(conn, sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            ident, sql.Literal(verifier.decode())))


def _tables(conn: psycopg.Connection) -> dict[str, str]:
    return {rel.name: rel.kind for rel in discover(conn)}


def _owner(conn: psycopg.Connection, relation: str) -> str | None:
    row = conn.execute(Q.RELATION_OWNER, (relation,)).fetchone()
    return str(row[0]) if row else None


def _grant(conn: psycopg.Connection, privileges: str, tables: list[str], role: str) -> None:
    if tables:
        _exec(conn, sql.SQL("GRANT {} ON {} TO {}").format(
            sql.SQL(privileges),
            sql.SQL(", ").join(sql.Identifier("public", t) for t in tables),
            sql.Identifier(role)))


def _grants(conn: psycopg.Connection, settings: R.RoleSettings, database: str,
            owner: str, enterprise_roles: list[str]) -> None:
    ingest, service, reader = (R.ingest_role(settings), R.service_role(settings),
                               R.reader_role(settings))
    group = R.enterprise_group(settings)
    managed = [ingest, service, reader, group, *enterprise_roles]
    db = sql.Identifier(database)
    everyone = sql.SQL(", ").join(sql.Identifier(r) for r in managed)
    has_views = bool(conn.execute(Q.SCHEMA_EXISTS, (Q.VIEW_SCHEMA,)).fetchone())
    schemas = (sql.SQL("public, {}").format(sql.Identifier(Q.VIEW_SCHEMA)) if has_views
               else sql.SQL("public"))
    _exec(conn, sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
    _exec(conn, sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, everyone))
    _exec(conn, sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
        db, sql.SQL(", ").join([sql.Identifier(ingest), sql.Identifier(service)])))
    _exec(conn, sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
    _exec(conn, sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schemas, everyone))
    for kind in ("TABLES", "SEQUENCES"):
        _exec(conn, sql.SQL("REVOKE ALL ON ALL {} IN SCHEMA {} FROM {}").format(
            sql.SQL(kind), schemas, everyone))
    has_timescale = bool(conn.execute(Q.HAS_TIMESCALE).fetchone())
    if has_timescale:
        # Chunks copy their hypertable's grants but not its row-level security: the
        # enterprise roles are never granted a hypertable (they read its filtered
        # stand-in), and any chunk grant they might hold is taken back.
        _exec(conn, sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA _timescaledb_internal "
                            "FROM {}").format(sql.SQL(", ").join(
                                sql.Identifier(r) for r in (group, *enterprise_roles))))
    kinds = _tables(conn)
    for name, kind in kinds.items():
        if kind == "c" and _owner(conn, name) != service:
            # Only its owner may refresh a continuous aggregate, and derivation
            # (the service role) refreshes the rollups after late data. Only when it
            # changes: the ALTER locks the aggregate against readers until commit.
            _exec(conn, sql.SQL("ALTER MATERIALIZED VIEW {} OWNER TO {}").format(
                sql.Identifier("public", name), sql.Identifier(service)))
    if has_timescale:
        # ... and writes into its materialization hypertable, which keeps its owner
        # (TimescaleDB refuses to change it); new chunks copy these grants.
        _exec(conn, sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "
                            "_timescaledb_internal TO {}").format(sql.Identifier(service)))
    visible = [t for t in kinds if t not in Q.OWNER_ONLY]
    _grant(conn, "SELECT", visible, reader)
    _grant(conn, "SELECT, INSERT, UPDATE, DELETE, TRUNCATE",
           [t for t in visible if kinds[t] in ("r", "p", "h")], service)
    _grant(conn, "SELECT", [t for t in visible if kinds[t] not in ("r", "p", "h")], service)
    _exec(conn, sql.SQL("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {}")
          .format(sql.Identifier(service)))
    own = [t for t in kinds if t.startswith(Q.INGEST_TABLE_PREFIX)]
    _grant(conn, "SELECT", [t for t in (*Q.INGEST_READS, *own) if t in kinds], ingest)
    _grant(conn, "INSERT", [t for t in (*Q.INGEST_INSERTS, *own) if t in kinds], ingest)
    _grant(conn, "UPDATE", [t for t in (*Q.INGEST_UPDATES, *own) if t in kinds], ingest)
    _grant(conn, "DELETE", [t for t in (*Q.INGEST_DELETES, *own) if t in kinds], ingest)
    _exec(conn, sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}")
          .format(sql.Identifier(ingest)))
    # Enterprises: the per-enterprise tables (RLS), invoker views and a few shared
    # reference tables; never a hypertable, continuous aggregate or materialized view
    # (no RLS there: schema enterprise has their filtered stand-ins), nor an
    # operational table (ingest sessions, accounting runs...) a later migration adds.
    filtered = {r[0] for r in conn.execute(Q.FILTERED_VIEWS).fetchall()}
    per_enterprise = {rel.name for rel in discover(conn) if rel.per_enterprise}
    readable = [t for t in visible if t not in filtered and (
        kinds[t] == "v" or t in Q.SHARED_TABLES
        or (kinds[t] in ("r", "p") and t in per_enterprise))]
    _grant(conn, "SELECT", readable, group)
    if has_views:
        _exec(conn, sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(
            sql.Identifier(Q.VIEW_SCHEMA), sql.Identifier(group)))


def _remove_enterprise_role(conn: psycopg.Connection, settings: R.RoleSettings,
                            role: str, database: str) -> None:
    conn.execute(Q.DELETE_MAPPING, (role,))
    if not conn.execute(Q.ROLE_EXISTS, (role,)).fetchone():
        return
    ident = sql.Identifier(role)
    _exec(conn, sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(
        sql.Identifier(database), ident))
    _exec(conn, sql.SQL("DROP OWNED BY {}").format(ident))  # its privileges here
    try:
        _exec(conn, sql.SQL("DROP ROLE {}").format(ident))
    except psycopg.errors.DependentObjectsStillExist as exc:
        # privileges in another database with the same prefix: not ours to take
        log.warning("enterprise role %s left in place: %s", role, str(exc).splitlines()[0])
        return
    R.password_file(settings, role).unlink(missing_ok=True)
    log.info("dropped database role %s (enterprise no longer in the registry)", role)


def ensure_roles(settings: R.RoleSettings) -> RolesResult:
    """Roles, passwords, the role map and privileges of the database in ``settings``."""
    try:
        with connect(settings, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (LockKey.MIGRATE,))
            try:
                return _ensure_roles(conn, settings)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (LockKey.MIGRATE,))
    except psycopg.errors.InsufficientPrivilege as exc:
        raise DatabaseError(
            f"cannot set up the database roles: {str(exc).strip().splitlines()[0]}",
            hint="run `parkcarbon db migrate` as a superuser (the database owner in the "
            "shipped docker-compose)",
        ) from exc


def _ensure_roles(conn: psycopg.Connection, settings: R.RoleSettings) -> RolesResult:
    (owner,) = conn.execute(Q.CURRENT_USER).fetchone() or ("",)
    (database,) = conn.execute(Q.CURRENT_DATABASE).fetchone() or ("",)
    superuser = bool((conn.execute(Q.IS_SUPERUSER).fetchone() or (False,))[0])
    if not superuser:
        log.warning("db migrate is not running as a superuser: the park roles get no "
                    "BYPASSRLS, so ingest's COPY into readings is refused")
    result = RolesResult(owner=owner, bypassrls=superuser)
    R.ensure_secrets_dir(R.secrets_dir(settings))
    for role in R.service_roles(settings):
        _ensure_role(conn, role, login=True, bypass=superuser,
                     password=R.ensure_password(settings, role))
        result.park_roles.append(role)
    group = R.enterprise_group(settings)
    _ensure_role(conn, group, login=False, bypass=False, password=None)
    active = [e for (e,) in conn.execute(Q.ACTIVE_ENTERPRISES).fetchall()]
    by_role: dict[str, list[str]] = {}
    for enterprise_id in active:
        by_role.setdefault(R.enterprise_role(settings, enterprise_id), []).append(enterprise_id)
    clashes = {r: ids for r, ids in by_role.items() if len(ids) > 1}
    if clashes:  # one login would read both enterprises' rows
        raise ConfigError(
            "; ".join(f"enterprises {', '.join(ids)} map to one database role {r}"
                      for r, ids in sorted(clashes.items())),
            hint="enterprise ids must differ in more than letter case")
    for enterprise_id in active:
        role = R.enterprise_role(settings, enterprise_id)
        _ensure_role(conn, role, login=True, bypass=False,
                     password=R.ensure_password(settings, role))
        _exec(conn, sql.SQL("GRANT {} TO {}").format(sql.Identifier(group),
                                                      sql.Identifier(role)))
        _exec(conn, sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = {}, public")
              .format(sql.Identifier(role), sql.Identifier(database),
                      sql.Identifier(Q.VIEW_SCHEMA)))
        result.enterprise_roles[enterprise_id] = role
    with conn.transaction():
        wanted: dict[str, tuple[str, str | None]] = {owner: ("park", None)}
        wanted.update({r: ("park", None) for r in result.park_roles})
        wanted.update({r: ("enterprise", e) for e, r in result.enterprise_roles.items()})
        for role, (scope, enterprise_id) in wanted.items():
            conn.execute(Q.UPSERT_MAPPING, (role, scope, enterprise_id))
        stale = [(r, s) for r, s, _e in conn.execute(Q.MAPPED_ROLES).fetchall()
                 if r not in wanted]
    mine = f"{R.prefix(settings)}_e_"
    for role, scope in stale:
        if scope == "enterprise" and role.startswith(mine):
            _remove_enterprise_role(conn, settings, role, database)
            result.removed.append(role)
        else:  # e.g. a former owner: it only loses its place in the map
            conn.execute(Q.DELETE_MAPPING, (role,))
    _grants_atomically(conn, settings, database, owner,
                       list(result.enterprise_roles.values()))
    log.info("database roles up to date: %d park roles, %d enterprise roles%s",
             len(result.park_roles), len(result.enterprise_roles),
             f", {len(result.removed)} removed" if result.removed else "")
    return result


def drop_roles(admin: psycopg.Connection, prefix: str) -> list[str]:
    """Drop every role named ``<prefix>_...`` (tests: after their database is dropped)."""
    pattern = prefix.replace("_", r"\_") + r"\_%"
    names = [r[0] for r in admin.execute(Q.ROLES_WITH_PREFIX, (pattern,)).fetchall()]
    for name in names:
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
    return names
