"""Store a batch of readings and dead letters in one transaction.

Readings are COPYed (binary format) straight into ``readings``: the fast path, taken
whenever the batch holds only new readings, three round trips (BEGIN, COPY, COMMIT; a
savepoint around the COPY cost two more, ~0.2 ms of a 10-message commit, which is what
bounds ingest on a broker with a small window). If any reading is already stored (a
redelivery after a crash, a meter resending), that transaction is rolled back and the
batch goes, in a new one, through a session-local staging table and
``INSERT ... ON CONFLICT (meter_id, ts) DO NOTHING``: the same meter and timestamp twice
is one row, so a redelivered message double-counts nothing. Dead letters go in the same
transaction, so a message is either wholly stored (readings and dead letters) or not at
all, and is acknowledged only afterwards.

A reading for a stored (meter, ts) with a *different* value is a conflict, not a
duplicate: the stored value stays (the first committed wins) and the new one becomes a
``conflicting_value`` dead letter naming both values, so an operator sees it in
``parkcarbon deadletters list`` and ``/metrics`` counts it.

Every dead letter keeps at most ``keep_bytes`` of its payload and records the size
received (``payload_bytes``).
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC

import psycopg

from parkcarbon.ingest import queries as Q
from parkcarbon.ingest.models import Reading, ReasonCode, Rejection

log = logging.getLogger(__name__)

# PostgreSQL binary COPY: a header, then per row a field count and length-prefixed
# fields (timestamptz: int64 microseconds since 2000-01-01 UTC), then a -1 trailer.
_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_TRAILER = struct.pack("!h", -1)
_PG_EPOCH_US = 946_684_800_000_000
_ROW_HEAD = struct.Struct("!hi")  # 5 fields, length of meter_id
_TS_VALUE = struct.Struct("!iqid")  # 8, ts, 8, value
_INT8 = struct.Struct("!iq")
_LEN = struct.Struct("!i")
_NULL = _LEN.pack(-1)


@dataclass(frozen=True)
class WriteResult:
    stored: int  # new rows in readings
    duplicates: int  # readings already there with the same value (redelivery, resend)
    dead_letters: int  # including the conflicts
    conflicts: int = 0  # readings already there with another value: dead letters


def copy_binary(readings: Sequence[Reading]) -> bytes:
    """Readings as a binary COPY stream for columns (meter_id, ts, value, seq, quality)."""
    parts = [_HEADER]
    add = parts.append
    for meter_id, ts_us, value, seq, quality in readings:
        mid = meter_id.encode()
        add(_ROW_HEAD.pack(5, len(mid)))
        add(mid)
        add(_TS_VALUE.pack(8, ts_us - _PG_EPOCH_US, 8, value))
        add(_NULL if seq is None else _INT8.pack(8, seq))
        if quality is None:
            add(_NULL)
        else:
            q = quality.encode()
            add(_LEN.pack(len(q)))
            add(q)
    add(_TRAILER)
    return b"".join(parts)


class Writer:
    """Writes batches through one connection (not autocommit). Not thread-safe: one
    writer per thread. Database errors propagate; the caller decides to retry."""

    def __init__(self, conn: psycopg.Connection, *, keep_bytes: int | None = None,
                 meter_info: Callable[[str], tuple[str, str | None]] | None = None) -> None:
        """``keep_bytes``: most payload bytes a dead letter keeps (None: all);
        ``meter_info``: (topic, canonical unit) of a meter, for conflict dead letters."""
        self.conn = conn
        self.keep_bytes = keep_bytes
        self.meter_info = meter_info or (lambda meter_id: (meter_id, None))
        with conn.transaction():
            conn.execute(Q.CREATE_STAGE)

    def write(
        self, readings: Sequence[Reading], dead: Sequence[tuple[str, Rejection]] = (),
        *, record_conflicts: bool = True,
    ) -> WriteResult:
        """Store ``readings`` and ``dead`` letters ((topic, rejection) pairs); commit.

        ``record_conflicts``: a reading that conflicts with a stored one becomes a dead
        letter (replaying such a dead letter passes False: it was recorded once)."""
        dead = list(dead)
        data = copy_binary(readings) if readings else b""
        try:
            with self.conn.transaction(), self.conn.cursor() as cur:
                if readings:
                    with cur.copy(Q.COPY_READINGS) as copy:
                        copy.write(data)
                self._insert_dead(cur, dead)
            return WriteResult(stored=len(readings), duplicates=0, dead_letters=len(dead))
        except psycopg.errors.UniqueViolation:
            pass  # some are stored already (rolled back): the idempotent path
        conflicts = 0
        with self.conn.transaction(), self.conn.cursor() as cur:
            with cur.copy(Q.COPY_STAGE) as copy:
                copy.write(data)
            cur.execute(Q.MOVE_STAGED_READINGS)
            stored = max(cur.rowcount, 0)
            if record_conflicts:
                found = self._conflicts(cur)
                conflicts = len(found)
                dead += found
            self._insert_dead(cur, dead)
        return WriteResult(stored=stored, duplicates=len(readings) - stored - conflicts,
                           dead_letters=len(dead), conflicts=conflicts)

    def _insert_dead(self, cur: psycopg.Cursor, dead: Sequence[tuple[str, Rejection]]) -> None:
        if not dead:
            return
        keep = self.keep_bytes
        cur.executemany(
            Q.INSERT_DEAD_LETTER,
            [
                (topic, r.payload if keep is None else r.payload[:keep],
                 r.reason_code.value, r.reason, r.enterprise_id, r.meter_id,
                 r.reading_index, len(r.payload))
                for topic, r in dead
            ],
        )

    def _conflicts(self, cur: psycopg.Cursor) -> list[tuple[str, Rejection]]:
        out = []
        for meter_id, ts, stored_value, new_value, seq, quality in cur.execute(
                Q.SELECT_CONFLICTING_STAGED).fetchall():
            when = ts.astimezone(UTC)
            topic, unit = self.meter_info(meter_id)
            body: dict[str, object] = {"ts": when.isoformat().replace("+00:00", "Z"),
                                       "value": new_value}
            if unit is not None:
                body["unit"] = unit
            if seq is not None:
                body["seq"] = seq
            if quality is not None:
                body["quality"] = quality
            reason = (f"meter {meter_id} at {when:%Y-%m-%dT%H:%M:%SZ}: new value "
                      f"{new_value!r} differs from the stored value {stored_value!r} "
                      f"{unit or ''} (before the multiplier); the stored one is kept")
            log.warning("dead letter conflicting_value on %s: %s", topic, reason)
            out.append((topic, Rejection(
                ReasonCode.conflicting_value, reason, json.dumps(body).encode(),
                _enterprise_of(topic), meter_id, None)))
        return out


def _enterprise_of(topic: str) -> str | None:
    levels = topic.split("/")
    return levels[1] if len(levels) == 3 else None



