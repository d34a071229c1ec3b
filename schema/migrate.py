"""Versioned, idempotent, concurrency-safe migrations for both storage modes."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from importlib import resources

import psycopg
from psycopg import sql

from parkcarbon.db import LockKey, StorageMode, connect, ensure_database, meta_value
from parkcarbon.errors import MigrationError
from parkcarbon.schema import queries as Q
from parkcarbon.security.rls import apply_row_security

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")



@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    common: str
    timescale: str = ""
    plain: str = ""

    def body(self, mode: StorageMode, timezone: str) -> str:
        text = self.common + "\n" + (self.timescale if mode == "timescale" else self.plain)
        return text.replace("{{timezone}}", _literal(timezone))

    @property
    def checksum(self) -> str:
        digest = hashlib.sha256((self.common + self.timescale + self.plain).encode())
        return digest.hexdigest()[:16]


@dataclass
class MigrationResult:
    mode: StorageMode
    version: int
    applied: list[str] = field(default_factory=list)
    mode_reason: str = ""


@dataclass
class SchemaStatus:
    version: int
    latest: int
    mode: str | None
    timezone: str | None
    timescaledb_version: str | None
    timescaledb_available: bool
    pending: list[str]
    hypertables: list[str]
    continuous_aggregates: list[str]

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _literal(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_+\-/]+", value):
        raise MigrationError(f"refusing unsafe timezone literal {value!r}")
    return "'" + value + "'"


def discover() -> list[Migration]:
    """All migrations shipped in this package, by version."""
    files = {p.name: p for p in resources.files("parkcarbon.schema").iterdir()}
    found: list[Migration] = []
    for name in sorted(files):
        m = _NAME.match(name)
        if not m:
            continue
        stem = name[: -len(".sql")]
        extra = {
            mode: files[f"{stem}.{mode}.sql"].read_text(encoding="utf-8")
            if f"{stem}.{mode}.sql" in files
            else ""
            for mode in ("timescale", "plain")
        }
        found.append(
            Migration(
                version=int(m.group(1)),
                name=m.group(2),
                common=files[name].read_text(encoding="utf-8"),
                **extra,
            )
        )
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {versions}")
    return found


def _set_meta(conn: psycopg.Connection, key: str, value: str) -> None:
    conn.execute(
        Q.SET_META,
        (key, value),
    )


def _timescale_available(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        Q.TIMESCALE_AVAILABLE
    ).fetchone()
    return row is not None


def _timescale_preloaded(conn: psycopg.Connection) -> bool:
    """True if the timescaledb loader is in shared_preload_libraries.

    Reads a setting the loader defines when preloaded (shared_preload_libraries
    itself is readable only by privileged roles).
    """
    row = conn.execute(
        Q.TIMESCALE_PRELOADED
    ).fetchone()
    return row is not None and row[0] is not None


def _choose_mode(conn: psycopg.Connection, wanted: str) -> tuple[StorageMode, str]:
    """Decide the storage mode of a new database; create the extension if timescale."""
    if wanted == "plain":
        return "plain", "forced by storage_mode=plain"
    if not _timescale_available(conn):
        if wanted == "timescale":
            raise MigrationError(
                "storage_mode=timescale but the timescaledb extension is not installed "
                "on this server",
                hint="install TimescaleDB or use storage_mode=auto/plain",
            )
        return "plain", "timescaledb extension not installed on the server"
    if not _timescale_preloaded(conn):
        # CREATE EXTENSION would fail with FATAL and end the session: ask first.
        if wanted == "timescale":
            raise MigrationError(
                "storage_mode=timescale but timescaledb is not in the server's "
                "shared_preload_libraries",
                hint="add timescaledb to shared_preload_libraries and restart PostgreSQL",
            )
        return "plain", "timescaledb installed but not preloaded (shared_preload_libraries)"
    try:
        with conn.transaction():
            conn.execute(Q.CREATE_TIMESCALE)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0]
        if wanted == "timescale" or conn.broken:
            raise MigrationError(f"cannot create the timescaledb extension: {reason}") from exc
        return "plain", f"timescaledb present but unusable ({reason})"
    return "timescale", "timescaledb extension available"


# TimescaleDB releases with bugs that break a promise of this project.
# < 2.18.1: one INSERT ... ON CONFLICT DO NOTHING that meets a duplicate in a
# compressed chunk silently drops the statement's remaining new rows
# (timescale/timescaledb#7672), so late readings redelivered with new ones get lost.
TIMESCALE_FIXED_VERSION = (2, 18, 1)


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def _warn_known_timescale_bugs(conn: psycopg.Connection) -> None:
    row = conn.execute(Q.TIMESCALE_VERSION).fetchone()
    if row and _version_tuple(row[0]) < TIMESCALE_FIXED_VERSION:
        log.warning(
            "TimescaleDB %s loses new rows of an INSERT ... ON CONFLICT DO NOTHING that "
            "meets a duplicate in a compressed chunk (timescale/timescaledb#7672); "
            "late readings can be lost: upgrade to >= %s",
            row[0],
            ".".join(map(str, TIMESCALE_FIXED_VERSION)),
        )


def migrate(
    settings_or_dsn: object,
    *,
    mode: str = "auto",
    timezone: str = "Asia/Shanghai",
    create_database: bool = True,
) -> MigrationResult:
    """Bring the schema up to date. Safe to run twice, and from two processes at once."""
    if create_database:
        ensure_database(settings_or_dsn)
    migrations = discover()
    with connect(settings_or_dsn, autocommit=True) as conn:
        conn.execute(Q.LOCK, (LockKey.MIGRATE,))
        try:
            return _migrate_locked(conn, migrations, mode, timezone)
        finally:
            conn.execute(Q.UNLOCK, (LockKey.MIGRATE,))


def _migrate_locked(
    conn: psycopg.Connection, migrations: list[Migration], wanted: str, timezone: str
) -> MigrationResult:
    try:
        with conn.transaction():
            conn.execute(Q.BOOTSTRAP)
    except psycopg.errors.InsufficientPrivilege as exc:
        # PostgreSQL 15 no longer grants CREATE on schema public to every role.
        user = conn.info.user
        raise MigrationError(
            f"role {user!r} may not create tables in database {conn.info.dbname!r}: "
            f"{str(exc).strip().splitlines()[0]}",
            hint=f"as a superuser: ALTER DATABASE {conn.info.dbname} OWNER TO {user}; "
            f"or GRANT CREATE ON SCHEMA public TO {user} (PostgreSQL 15 no longer grants "
            "it to everyone)") from exc
    stored_mode = meta_value(conn, "storage_mode")
    if stored_mode is None:
        chosen, reason = _choose_mode(conn, wanted)
        with conn.transaction():
            _set_meta(conn, "storage_mode", chosen)
            _set_meta(conn, "storage_mode_reason", reason)
            _set_meta(conn, "timezone", timezone)
        log.info("storage mode %s (%s)", chosen, reason)
    else:
        if wanted not in ("auto", stored_mode):
            raise MigrationError(
                f"this database was set up in {stored_mode} mode; storage_mode={wanted} "
                "cannot switch an existing database",
                hint="use a new database, or storage_mode=auto",
            )
        chosen = stored_mode  # type: ignore[assignment]
        reason = meta_value(conn, "storage_mode_reason") or ""
        stored_tz = meta_value(conn, "timezone")
        if stored_tz and stored_tz != timezone:
            raise MigrationError(
                f"this database keeps daily rollups in timezone {stored_tz}; "
                f"the settings say {timezone}",
                hint=f"set PARKCARBON_TIMEZONE={stored_tz} or use a new database",
            )
    applied_rows: dict[int, str] = dict(
        conn.execute(Q.APPLIED_CHECKSUMS).fetchall()
    )
    if chosen == "timescale":
        _warn_known_timescale_bugs(conn)
    result = MigrationResult(mode=chosen, version=0, mode_reason=reason)
    for migration in migrations:
        if migration.version in applied_rows:
            if applied_rows[migration.version] != migration.checksum:
                log.warning(
                    "migration %04d_%s changed after it was applied (checksum %s, now %s)",
                    migration.version,
                    migration.name,
                    applied_rows[migration.version],
                    migration.checksum,
                )
            continue
        label = f"{migration.version:04d}_{migration.name}"
        try:
            with conn.transaction():
                conn.execute(sql.SQL(migration.body(chosen, timezone)))
                conn.execute(
                    Q.RECORD_MIGRATION,
                    (migration.version, migration.name, migration.checksum, chosen),
                )
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0]
            raise MigrationError(f"migration {label} failed: {first}") from exc
        log.info("applied migration %s (%s mode)", label, chosen)
        result.applied.append(label)
    result.version = max([m.version for m in migrations], default=0)
    try:  # after every numbered migration: covers the tables they just added
        apply_row_security(conn)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise MigrationError(f"row-level security step failed: {first}") from exc
    return result


def status(settings_or_dsn: object) -> SchemaStatus:
    """Schema version, storage mode and what TimescaleDB objects exist."""
    latest = max((m.version for m in discover()), default=0)
    with connect(settings_or_dsn, autocommit=True) as conn:
        has_meta = conn.execute(Q.HAS_MIGRATIONS_TABLE).fetchone()
        version, mode, tz, done = 0, None, None, set()
        if has_meta and has_meta[0]:
            rows = conn.execute(Q.APPLIED_VERSIONS).fetchall()
            done = {r[0] for r in rows}
            version = max(done, default=0)
            mode = meta_value(conn, "storage_mode")
            tz = meta_value(conn, "timezone")
        ext = conn.execute(Q.TIMESCALE_VERSION).fetchone()
        hypertables: list[str] = []
        caggs: list[str] = []
        if ext:
            hypertables = [
                r[0]
                for r in conn.execute(Q.HYPERTABLES).fetchall()
            ]
            caggs = [
                r[0]
                for r in conn.execute(Q.CONTINUOUS_AGGREGATES).fetchall()
            ]
        pending = [f"{m.version:04d}_{m.name}" for m in discover() if m.version not in done]
        return SchemaStatus(
            version=version,
            latest=latest,
            mode=mode,
            timezone=tz,
            timescaledb_version=ext[0] if ext else None,
            timescaledb_available=_timescale_available(conn),
            pending=pending,
            hypertables=hypertables,
            continuous_aggregates=caggs,
        )
