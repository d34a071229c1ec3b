"""Database access: connections, DSN handling, the storage mode, advisory-lock keys.
Every module goes through here.

Connections are psycopg 3 connections with ``dict_row``-free defaults (tuples) and
UTC session time zone, so ``timestamptz`` values come back as aware UTC datetimes
whatever the server's configuration.
"""

from __future__ import annotations

import logging
import re
from enum import IntEnum
from typing import Any, Literal

import psycopg
from psycopg import conninfo, sql

from parkcarbon import queries as Q
from parkcarbon.errors import DatabaseError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5  # fail fast on an unreachable server; the CLI says so in one line

StorageMode = Literal["timescale", "plain"]


class LockKey(IntEnum):
    """Keys of the PostgreSQL advisory locks parkcarbon takes, all in one place so no two
    jobs ever share one by accident (each is its name in ASCII)."""

    MIGRATE = 0x7061726B  # "park": one ``db migrate`` at a time (session lock)
    DERIVE = 0x75736167  # "usag": one usage derivation at a time (transaction lock)
    ACCOUNTING = 0x636F3274  # "co2t": one accounting run at a time (transaction lock)
    ALERTS = 0x616C7274  # "alrt": one alert evaluation at a time (transaction lock)
    QUALITY = 0x7175616C  # "qual": one sum of usage_quality_enterprise_day at a time
    # (transaction lock; its value is also written in schema/0015_usage_quality_day.sql)


def meta_value(conn: psycopg.Connection, key: str) -> str | None:
    """A value the migration runner stored in ``parkcarbon_meta`` (None if unset)."""
    row = conn.execute(Q.META_VALUE, (key,)).fetchone()
    return row[0] if row else None


def storage_mode(conn: psycopg.Connection) -> StorageMode | None:
    """The storage mode the database was set up with, or None before ``db migrate``.

    The one place that decides it: ``db migrate`` records the mode it chose (or was
    forced to) in ``parkcarbon_meta``; everything else reads it from there.
    """
    mode = meta_value(conn, "storage_mode")
    if mode not in (None, "timescale", "plain"):
        raise DatabaseError(f"parkcarbon_meta holds an unknown storage mode {mode!r}")
    return mode  # type: ignore[return-value]


_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ``***`` (URL and key=value forms); every
    other part, URL parameters included, is kept."""
    scheme = _URL_SCHEME.match(dsn)
    if not scheme:
        return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", dsn, flags=re.I)
    head, rest = dsn[: scheme.end()], dsn[scheme.end():]
    query = rest.find("?")
    # The user info ends at the last '@' before the parameters; a raw '?' or '@' in
    # the password moves it further right, never left (all of the password is masked).
    cut = rest.rfind("@", 0, query if query >= 0 else len(rest))
    if cut < 0:
        cut = rest.rfind("@")
        if cut >= 0 and "/" in rest[:cut]:
            cut = -1  # an '@' in a parameter, not a user info
    if cut >= 0 and ":" in rest[:cut]:
        rest = rest[:cut].split(":", 1)[0] + ":***" + rest[cut:]
    return head + re.sub(r"([?&]password=)[^&#]*", r"\1***", rest, flags=re.I)


def dsn_of(settings_or_dsn: Any) -> str:
    """Accept a Settings object, a SecretStr or a plain DSN string.

    With Settings, the ``database_host/port/user/name/password`` parts override the
    URL's (the result is then a key=value string, quoted by libpq's rules).
    """
    value = getattr(settings_or_dsn, "database_url", settings_or_dsn)
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    dsn = str(value)
    parts: dict[str, Any] = {}
    for field, key in (("database_host", "host"), ("database_port", "port"),
                       ("database_user", "user"), ("database_name", "dbname"),
                       ("database_password", "password")):
        part: Any = getattr(settings_or_dsn, field, None)
        if hasattr(part, "get_secret_value"):
            part = part.get_secret_value()
        if part is not None:
            parts[key] = part
    return conninfo.make_conninfo(dsn, **parts) if parts else dsn


def database_label(settings_or_dsn: Any) -> str:
    """Where the settings connect, for messages and logs: never the password."""
    try:
        params = conninfo.conninfo_to_dict(dsn_of(settings_or_dsn))
    except psycopg.ProgrammingError:
        return "(unparsable connection string)"
    user = f"{params['user']}@" if params.get("user") else ""
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql://{user}{params.get('host', '')}{port}/{params.get('dbname', '')}"


def _kwargs() -> dict[str, Any]:
    return {"connect_timeout": CONNECT_TIMEOUT_SECONDS, "options": "-c timezone=UTC"}


def connect(settings_or_dsn: Any, *, autocommit: bool = False) -> psycopg.Connection:
    """Open one connection. Raises ``DatabaseError`` (password redacted) if unreachable."""
    dsn = dsn_of(settings_or_dsn)
    try:
        return psycopg.connect(dsn, autocommit=autocommit, **_kwargs())
    except psycopg.ProgrammingError as exc:  # its message quotes the string: not shown
        raise DatabaseError(
            "the database connection string is not a PostgreSQL URL or key=value string",
            hint="e.g. postgresql://user@host:5432/dbname; a password with special "
            "characters goes in PARKCARBON_DATABASE_PASSWORD",
        ) from exc
    except psycopg.OperationalError as exc:
        raise DatabaseError(
            f"cannot connect to {redact_dsn(dsn)}: {_first_line(exc)}",
            hint="is PostgreSQL running? set PARKCARBON_DATABASE_URL",
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def database_name(dsn: str) -> str | None:
    return conninfo.conninfo_to_dict(dsn).get("dbname")  # type: ignore[return-value]


def ensure_database(settings_or_dsn: Any) -> bool:
    """Create the target database if it does not exist. Returns True if it was created.

    Connects to the ``postgres`` maintenance database of the same server. Does nothing
    (and returns False) when the database already exists or cannot be created because
    of permissions; the following connect then reports the real problem.
    """
    dsn = dsn_of(settings_or_dsn)
    try:
        name = database_name(dsn)
    except psycopg.ProgrammingError:
        return False  # the following connect says what is wrong
    if not name:
        return False
    try:
        with psycopg.connect(dsn, **_kwargs()):
            return False
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise DatabaseError(
                f"cannot connect to {redact_dsn(dsn)}: {_first_line(exc)}",
                hint="is PostgreSQL running? set PARKCARBON_DATABASE_URL",
            ) from exc
    admin = conninfo.make_conninfo(dsn, dbname="postgres")
    try:
        with psycopg.connect(admin, autocommit=True, **_kwargs()) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.errors.DuplicateDatabase:
        return False
    except psycopg.Error as exc:
        raise DatabaseError(
            f"database {name!r} does not exist and cannot be created: {_first_line(exc)}"
        ) from exc
    log.info("created database %s", name)
    return True
