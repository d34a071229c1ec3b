"""Checks ingest (and ``parkcarbon run``) make before taking any message.

An unmigrated database is a mistake the operator fixes with one command: stop at once
with that hint (``DatabaseError``, exit code 4) instead of holding every message
unacknowledged while reporting "database ok". An unreachable database or broker can be
a blip (both are retried): say so at WARNING immediately and keep going.
"""

from __future__ import annotations

import logging
import socket

from parkcarbon.db import redact_dsn
from parkcarbon.errors import DatabaseError
from parkcarbon.settings import Settings

log = logging.getLogger("parkcarbon.ingest.service")

BROKER_PROBE_TIMEOUT_SECONDS = 3.0


def check_database(settings: Settings) -> bool:
    """True if the database is reachable and its schema is up to date; False (with a
    WARNING) if it cannot be reached; raises ``DatabaseError`` if it is reachable but
    was never migrated, or is behind this version of parkcarbon."""
    from parkcarbon.schema import status

    where = redact_dsn(settings.database_url.get_secret_value())
    try:
        st = status(settings)
    except DatabaseError as exc:
        log.warning("database not reachable at start: %s; messages stay unacknowledged "
                    "in the broker until it is (retrying)", exc)
        return False
    if st.mode is None or st.version == 0:
        raise DatabaseError(f"database {where} has no parkcarbon schema",
                            hint="run `parkcarbon db migrate`")
    if st.pending:
        raise DatabaseError(
            f"database {where} is behind this parkcarbon: pending migrations "
            f"{', '.join(st.pending)}", hint="run `parkcarbon db migrate`")
    return True


def check_broker(settings: Settings) -> bool:
    """True if something accepts a TCP connection at the broker's address; else a
    WARNING naming it (paho keeps retrying)."""
    address = (settings.mqtt_host, settings.mqtt_port)
    try:
        with socket.create_connection(address, timeout=BROKER_PROBE_TIMEOUT_SECONDS):
            return True
    except OSError as exc:
        log.warning("MQTT broker %s:%d not reachable at start: %s; retrying every 1 to "
                    "30 s (meters' messages queue in the broker only once it is up)",
                    settings.mqtt_host, settings.mqtt_port, exc.strerror or exc)
        return False
