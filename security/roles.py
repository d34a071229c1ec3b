"""Names and passwords of the database roles parkcarbon keeps up to date.

Roles are cluster-wide, so every name starts with the ``db_role_prefix`` setting
(default ``parkcarbon``); each database on a shared server can have its own role set.

=============================  ==========================================================
``<prefix>_ingest``            login: inserts readings and dead letters, reads the registry
``<prefix>_service``           login: derivation, accounting, alerts, reports
``<prefix>_reader``            login: read-only, every enterprise (park officers' Grafana)
``<prefix>_e_<enterprise>``    login: read-only, its own enterprise's rows only (RLS)
``<prefix>_enterprise``        group (no login) holding the grants every enterprise role has
=============================  ==========================================================

The owner role (whoever runs ``db migrate``, the database owner in production) owns the
tables and applies migrations; it is not created here.

Login passwords are generated once into ``<secrets_dir>/<role>.password`` (directory
0700, file 0600) and never printed; Grafana provisioning references them as
``$__file{/run/secrets/parkcarbon/<role>.password}`` (:func:`grafana_password_reference`).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import Protocol

from parkcarbon.errors import ConfigError

#: PostgreSQL truncates identifiers longer than this (NAMEDATALEN - 1).
MAX_ROLE_LENGTH = 63
#: Where Grafana (and the service containers) find the password files.
CONTAINER_SECRETS_DIR = "/run/secrets/parkcarbon"
#: 32 URL-safe bytes: ~190 bits, and no character that needs quoting anywhere.
PASSWORD_BYTES = 32
DEFAULT_PREFIX = "parkcarbon"

_SAFE = re.compile(r"[^a-z0-9_]")


class RoleSettings(Protocol):
    """The part of ``parkcarbon.settings.Settings`` these functions read."""

    @property
    def db_role_prefix(self) -> str: ...

    @property
    def secrets_dir(self) -> Path: ...


def prefix(settings: RoleSettings) -> str:
    return getattr(settings, "db_role_prefix", DEFAULT_PREFIX) or DEFAULT_PREFIX


def ingest_role(settings: RoleSettings) -> str:
    return f"{prefix(settings)}_ingest"


def service_role(settings: RoleSettings) -> str:
    return f"{prefix(settings)}_service"


def reader_role(settings: RoleSettings) -> str:
    """The read-only role of park officers (every enterprise, nothing writable)."""
    return f"{prefix(settings)}_reader"


def enterprise_group(settings: RoleSettings) -> str:
    """The NOLOGIN group every enterprise role is a member of (holds the grants)."""
    return f"{prefix(settings)}_enterprise"


def enterprise_role(settings: RoleSettings, enterprise_id: str) -> str:
    """The login role of one enterprise: ``<prefix>_e_<id lower-cased>``.

    Characters outside ``[a-z0-9_]`` (registry ids may hold ``.`` and ``-``) become
    ``_``; then, and when the name would be longer than PostgreSQL keeps, a short hash
    of the id is appended so two ids never share a role.
    """
    lowered = enterprise_id.lower()
    safe = _SAFE.sub("_", lowered)
    name = f"{prefix(settings)}_e_{safe}"
    if safe != lowered or len(name) > MAX_ROLE_LENGTH:
        digest = hashlib.sha256(enterprise_id.encode()).hexdigest()[:8]
        name = f"{name[: MAX_ROLE_LENGTH - 9]}_{digest}"
    return name


def service_roles(settings: RoleSettings) -> list[str]:
    """The fixed login roles (without the enterprise roles)."""
    return [ingest_role(settings), service_role(settings), reader_role(settings)]


def secrets_dir(settings: RoleSettings) -> Path:
    return Path(getattr(settings, "secrets_dir", Path("secrets")))


def password_file(settings: RoleSettings, role: str) -> Path:
    """``<secrets_dir>/<role>.password``."""
    return secrets_dir(settings) / f"{role}.password"


def grafana_password_reference(role: str) -> str:
    """What Grafana provisioning writes for a datasource password of ``role``."""
    return f"$__file{{{CONTAINER_SECRETS_DIR}/{role}.password}}"


def ensure_secrets_dir(directory: Path) -> Path:
    """Create the secrets directory with mode 0700 (tighten it if it exists)."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if directory.stat().st_mode & 0o077:
            directory.chmod(0o700)
    except OSError as exc:
        raise ConfigError(
            f"secrets_dir {directory}: cannot create it ({exc.strerror})",
            hint="set PARKCARBON_SECRETS_DIR to a writable directory",
        ) from exc
    return directory


def write_secret(path: Path, value: str) -> None:
    """Write ``value`` to ``path`` with mode 0600 from the first byte (atomic replace)."""
    ensure_secrets_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_secret(path: Path) -> str:
    """A secret file's content without the trailing newline (Docker secrets style)."""
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the secret ({exc.strerror})") from exc


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def ensure_password(settings: RoleSettings, role: str, *, rotate: bool = False) -> str:
    """The password of a login role, generated into its file once when missing."""
    path = password_file(settings, role)
    if not rotate and path.is_file():
        value = read_secret(path)
        if value:
            return value
    value = new_password()
    write_secret(path, value)
    return value
