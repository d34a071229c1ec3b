"""What ingest remembers about its persistent broker sessions, to notice when one is lost.

A broker that answers "session present: false" to a client that had a session has
dropped it, and with it every QoS 1 message it was queueing: a broker crash before its
persistence saved the session, a clean-session client connecting with ingest's client
id, an expired session. ``ingest_sessions`` keeps, per (broker, client id), when the
session began and when ingest last knew it existed; the service compares that with the
CONNACK, and records what it finds in ``ingest_incidents`` (the alerts read it).

Database problems here are logged, never raised: they must not stop ingest, whose
readings path has its own retries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import psycopg

from parkcarbon.db import connect
from parkcarbon.errors import DatabaseError
from parkcarbon.ingest import queries as Q
from parkcarbon.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionRecord:
    established_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class Incident:
    id: int
    at: datetime
    kind: str  # session_lost | session_taken_over
    broker: str
    client_id: str
    window_start: datetime | None
    window_end: datetime | None
    detail: str


def broker_key(settings: Settings) -> str:
    return f"{settings.mqtt_host}:{settings.mqtt_port}"


def load_session(settings: Settings) -> SessionRecord | None:
    """The session ingest last held with this broker and client id (None: none known,
    or the database cannot tell)."""
    try:
        with connect(settings) as conn:
            row = conn.execute(Q.SELECT_SESSION, (broker_key(settings),
                                                  settings.mqtt_client_id)).fetchone()
    except (DatabaseError, psycopg.Error) as exc:
        log.warning("cannot read the last broker session from the database: %s", exc)
        return None
    return None if row is None else SessionRecord(row[0], row[1])


def record_session(settings: Settings, *, new: bool) -> None:
    """The broker holds a session for ingest now (``new``: it just created it)."""
    try:
        with connect(settings) as conn:
            conn.execute(Q.UPSERT_NEW_SESSION if new else Q.TOUCH_SESSION,
                         (broker_key(settings), settings.mqtt_client_id))
    except (DatabaseError, psycopg.Error) as exc:
        log.warning("cannot record the broker session in the database: %s", exc)


def record_incident(settings: Settings, kind: str, detail: str, *,
                    window_start: datetime | None = None,
                    window_end: datetime | None = None) -> None:
    try:
        with connect(settings) as conn:
            conn.execute(Q.INSERT_INCIDENT, (kind, broker_key(settings),
                                             settings.mqtt_client_id, window_start,
                                             window_end, detail))
    except (DatabaseError, psycopg.Error) as exc:
        log.warning("cannot record the %s incident in the database: %s", kind, exc)


def list_incidents(conn: psycopg.Connection, *, limit: int = 50) -> list[Incident]:
    """Newest first."""
    return [Incident(*r) for r in conn.execute(Q.SELECT_INCIDENTS, (limit,)).fetchall()]
