"""Read and replay the dead-letter store.

``replay_dead_letters`` re-parses stored payloads with the *current* registry (after
someone fixed it): accepted readings are stored idempotently, the dead letter is marked
``replayed_at`` with a ``replay_result``; readings still rejected become new dead letters
when part of the message got through, or leave the row open (result updated) when none did.
A dead letter whose payload was cut to ``dead_letter_keep_bytes`` cannot be replayed and
stays open. ``purge_dead_letters`` applies the retention (``dead_letter_retention_days``):
replayed ones, and any received, before the horizon are deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg

from parkcarbon.ingest import queries as Q
from parkcarbon.ingest.errors import DeadLetterError
from parkcarbon.ingest.parse import Parser
from parkcarbon.ingest.writer import Writer

log = logging.getLogger(__name__)

_PREVIEW_CHARS = 120


@dataclass(frozen=True)
class DeadLetter:
    id: int
    received_at: datetime
    topic: str
    reason_code: str
    reason: str
    enterprise_id: str | None
    meter_id: str | None
    reading_index: int | None
    payload_bytes: int
    payload_preview: str  # UTF-8 text (invalid bytes replaced), truncated
    replayed_at: datetime | None
    replay_result: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ReplayOutcome:
    id: int
    replayed: bool  # marked replayed (at least one reading stored, or nothing left)
    stored: int
    duplicates: int
    still_rejected: int
    result: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _preview(payload: bytes) -> str:
    text = payload.decode("utf-8", errors="replace")
    return text if len(text) <= _PREVIEW_CHARS else text[:_PREVIEW_CHARS] + "..."


def list_dead_letters(
    conn: psycopg.Connection, *, limit: int = 50, include_replayed: bool = False,
    reason_code: str | None = None,
) -> list[DeadLetter]:
    """Newest first."""
    params: list[Any] = [reason_code] if reason_code else []
    params.append(limit)
    sql = Q.select_dead_letters(include_replayed=include_replayed, by_reason=bool(reason_code))
    rows = conn.execute(sql, params).fetchall()
    return [
        DeadLetter(id=r[0], received_at=r[1], topic=r[2], reason_code=r[3], reason=r[4],
                   enterprise_id=r[5], meter_id=r[6], reading_index=r[7],
                   payload_bytes=len(r[8]) if r[11] is None else r[11],
                   payload_preview=_preview(bytes(r[8])),
                   replayed_at=r[9], replay_result=r[10])
        for r in rows
    ]


def count_by_reason(conn: psycopg.Connection, *, include_replayed: bool = False) -> dict[str, int]:
    rows = conn.execute(Q.count_dead_letters_by_reason(include_replayed=include_replayed)
                        ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def purge_dead_letters(conn: psycopg.Connection, *, retention_days: float) -> int:
    """Delete dead letters replayed, or received, more than ``retention_days`` ago;
    commits and returns how many went."""
    with conn.transaction():
        cur = conn.execute(Q.PURGE_DEAD_LETTERS, {"seconds": retention_days * 86400.0})
        purged = max(cur.rowcount, 0)
    if purged:
        log.info("purged %d dead letter(s) older than %g days", purged, retention_days)
    return purged


def table_bytes(conn: psycopg.Connection) -> int:
    """Size of the dead_letters table with its indexes and TOAST, in bytes."""
    row = conn.execute(Q.DEAD_LETTERS_TABLE_BYTES).fetchone()
    return int(row[0]) if row else 0


def replay_dead_letters(
    conn: psycopg.Connection, parser: Parser, *, ids: Sequence[int] | None = None,
    limit: int | None = None,
) -> list[ReplayOutcome]:
    """Replay open dead letters (all, or ``ids``), oldest first, each in its own
    transaction. Raises ``DeadLetterError`` if an id does not exist or was replayed."""
    if ids:
        found = {r[0]: r[1] for r in conn.execute(Q.SELECT_DEAD_LETTER_STATES, (list(ids),))}
        conn.commit()
        missing = sorted(set(ids) - set(found))
        if missing:
            raise DeadLetterError(f"no dead letter with id {', '.join(map(str, missing))}",
                                  hint="list them with `parkcarbon deadletters list`")
        done = sorted(i for i, at in found.items() if at is not None)
        if done:
            raise DeadLetterError(f"dead letter(s) {', '.join(map(str, done))} already replayed")
        todo = sorted(ids)
    else:
        todo = [r[0] for r in conn.execute(Q.select_open_dead_letter_ids(limit))]
        conn.commit()
    writer = Writer(conn)
    outcomes = []
    for dl_id in todo:
        with conn.transaction():
            row = conn.execute(Q.LOCK_OPEN_DEAD_LETTER, (dl_id,)).fetchone()
            if row is None:
                continue  # replayed meanwhile by someone else
            topic, payload = row[0], bytes(row[1])
            if row[2] is not None and row[2] > len(payload):
                text = (f"not replayable: only the first {len(payload)} of {row[2]} payload "
                        "bytes were kept (dead_letter_keep_bytes)")
                conn.execute(Q.SET_REPLAY_RESULT, (text, dl_id))
                outcomes.append(ReplayOutcome(dl_id, False, 0, 0, 0, text))
                continue
            result = parser.parse(topic, payload)
            outcomes.append(_apply(conn, writer, dl_id, topic, result))
    return outcomes


def _apply(conn: psycopg.Connection, writer: Writer, dl_id: int, topic: str,
           result: Any) -> ReplayOutcome:
    rejected = result.rejections
    reasons = "; ".join(f"{r.reason_code.value}: {r.reason}" for r in rejected[:3])
    if not result.readings:
        text = f"still rejected: {reasons}"
        conn.execute(Q.SET_REPLAY_RESULT, (text, dl_id))
        return ReplayOutcome(dl_id, False, 0, 0, len(rejected), text)
    written = writer.write(result.readings, [(topic, r) for r in rejected],
                           record_conflicts=False)
    text = f"stored {written.stored} reading(s), {written.duplicates} already stored"
    if rejected:
        text += f"; {len(rejected)} rejected again as new dead letters ({reasons})"
    conn.execute(Q.MARK_REPLAYED, (text, dl_id))
    log.info("dead letter %d replayed: %s", dl_id, text)
    return ReplayOutcome(dl_id, True, written.stored, written.duplicates, len(rejected), text)
