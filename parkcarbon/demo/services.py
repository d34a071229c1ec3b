"""Which PostgreSQL and MQTT broker the demo uses: configured ones, else embedded ones.

``resolve_services(settings, "auto", data_dir, progress)`` is a context manager: it
checks the configured database (creating the database if the server allows it) and
broker, starts ``parkcarbon.demo.embedded`` fallbacks for what is unreachable, and stops
those on exit. ``"always"`` skips the checks; ``"never"`` fails with the reason.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from parkcarbon.db import redact_dsn
from parkcarbon.demo.embedded import EmbeddedPostgres, default_data_dir
from parkcarbon.demo.errors import DemoError
from parkcarbon.demo.local_broker import LocalBroker
from parkcarbon.errors import ParkcarbonError
from parkcarbon.mqtt import broker_problem as mqtt_broker_problem
from parkcarbon.settings import Settings

log = logging.getLogger(__name__)

BROKER_CHECK_SECONDS = 3.0  # a local broker answers CONNECT in milliseconds


@dataclass
class DemoServices:
    """The database and broker the demo runs on, and whether it started them."""

    dsn: str
    mqtt_host: str
    mqtt_port: int
    mqtt_protocol: Literal["5", "3.1.1"]
    postgres: EmbeddedPostgres | None = None  # set when embedded
    broker: LocalBroker | None = None  # set when local fallback

    @property
    def database_label(self) -> str:
        kind = "embedded PostgreSQL" if self.postgres else "PostgreSQL"
        where = f" (data in {self.postgres.pgdata})" if self.postgres else ""
        return f"{kind} {redact_dsn(self.dsn)}{where}"

    @property
    def broker_label(self) -> str:
        if self.broker is not None:
            return (
                f"local {self.broker.kind} broker {self.mqtt_host}:{self.mqtt_port} "
                f"(MQTT {self.mqtt_protocol}, started by the demo)"
            )
        return f"MQTT broker {self.mqtt_host}:{self.mqtt_port}"

    @property
    def psql_command(self) -> str:
        if self.postgres is not None:
            return self.postgres.psql_command
        client = shutil.which("psql") or "psql"
        return f"{client} '{redact_dsn(self.dsn)}'"


def database_problem(dsn: str) -> str | None:
    """None if the database is usable (created if missing), else why not."""
    from parkcarbon.db import connect, ensure_database
    from parkcarbon.demo.queries import ping

    try:
        ensure_database(dsn)
        with connect(dsn) as conn:
            ping(conn)
    except ParkcarbonError as exc:
        return str(exc)
    return None


def broker_problem(settings: Settings) -> str | None:
    """None if the configured broker accepts a connection with the configured credentials."""
    return mqtt_broker_problem(settings, client_id="parkcarbon-demo-check")


@contextmanager
def resolve_services(
    settings: Settings,
    embedded: Literal["auto", "always", "never"],
    data_dir: Path | None,
    progress: Callable[[str], None],
) -> Iterator[DemoServices]:
    """The services to use; embedded ones are stopped when the block exits."""
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    dsn = settings.database_url.get_secret_value()
    with ExitStack() as stack:
        db_problem = "--embedded always" if embedded == "always" else database_problem(dsn)
        postgres = None
        if db_problem is None:
            progress(f"database: {redact_dsn(dsn)}")
        elif embedded == "never":
            raise DemoError(
                f"database unavailable: {db_problem}",
                hint="start PostgreSQL or drop --embedded never",
            )
        else:
            progress(
                f"not using {redact_dsn(dsn)} ({db_problem}); starting the embedded "
                f"PostgreSQL in {folder / 'postgres'}"
            )
            postgres = EmbeddedPostgres(folder / "postgres", database="parkcarbon")
            dsn = postgres.start()
            stack.callback(postgres.stop)
            progress(f"database: embedded PostgreSQL {dsn}")

        mq_problem = "--embedded always" if embedded == "always" else broker_problem(settings)
        broker = None
        host, port = settings.mqtt_host, settings.mqtt_port
        protocol: Literal["5", "3.1.1"] = settings.mqtt_protocol
        if mq_problem is None:
            progress(f"broker: {host}:{port}")
        elif embedded == "never":
            raise DemoError(
                f"MQTT broker unavailable: {mq_problem}",
                hint="start the broker or drop --embedded never",
            )
        else:
            broker = LocalBroker(folder / "broker")
            progress(f"not using the broker {host}:{port} ({mq_problem}); starting a local one")
            broker.start()
            stack.callback(broker.stop)
            assert broker.port is not None
            host, port, protocol = broker.host, broker.port, broker.protocol
            progress(f"broker: local {broker.kind} on {host}:{port}")
        yield DemoServices(
            dsn=dsn,
            mqtt_host=host,
            mqtt_port=port,
            mqtt_protocol=protocol,
            postgres=postgres,
            broker=broker,
        )
