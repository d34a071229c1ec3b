"""Store a batch of readings and dead letters in one transaction.

Readings are COPYed (binary format) straight into ``readings`` inside a savepoint: the
fast path, taken whenever the batch holds only new readings. If any reading is already
stored (a redelivery after a crash, a meter resending), the savepoint is rolled back and
the batch goes through a session-local staging table and
``INSERT ... ON CONFLICT (meter_id, ts) DO NOTHING``: the same meter and timestamp twice
is one row, so a redelivered message double-counts nothing. Dead letters go in the same
transaction, so a message is either wholly stored (readings and dead letters) or not at
all, and is acknowledged only afterwards.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from parkcarbon.ingest import queries as Q
from parkcarbon.ingest.models import Reading, Rejection

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
    duplicates: int  # readings already there (redelivery or resend)
    dead_letters: int


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

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        with conn.transaction():
            conn.execute(Q.CREATE_STAGE)

    def write(
        self, readings: Sequence[Reading], dead: Sequence[tuple[str, Rejection]] = ()
    ) -> WriteResult:
        """Store ``readings`` and ``dead`` letters ((topic, rejection) pairs); commit."""
        stored = 0
        with self.conn.transaction(), self.conn.cursor() as cur:
            if readings:
                data = copy_binary(readings)
                try:
                    with self.conn.transaction(), cur.copy(Q.COPY_READINGS) as copy:
                        copy.write(data)
                    stored = len(readings)
                except psycopg.errors.UniqueViolation:
                    # some are stored already: the idempotent path
                    with cur.copy(Q.COPY_STAGE) as copy:
                        copy.write(data)
                    cur.execute(Q.MOVE_STAGED_READINGS)
                    stored = max(cur.rowcount, 0)
            if dead:
                cur.executemany(
                    Q.INSERT_DEAD_LETTER,
                    [
                        (topic, r.payload, r.reason_code.value, r.reason, r.enterprise_id,
                         r.meter_id, r.reading_index)
                        for topic, r in dead
                    ],
                )
        return WriteResult(stored=stored, duplicates=len(readings) - stored,
                           dead_letters=len(dead))
