"""SQL of parkcarbon.ingest: the writer (hot path) and the dead-letter store.

Every statement the ingest package runs outside ``parkcarbon.ingest.usage`` is here (that
subpackage has its own ``queries`` module). Statements whose shape depends on an
option (the dead-letter listings) are built by small functions, from fixed fragments
only: values always go in as parameters.
"""

from __future__ import annotations

# --- writer (the hot path: one COPY per batch) -------------------------------------

READING_COLUMNS = "(meter_id, ts, value, seq, quality)"

# Session-local staging table of the idempotent path; emptied at every commit.
CREATE_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS ingest_stage (
    meter_id text, ts timestamptz, value double precision, seq bigint, quality text
) ON COMMIT DELETE ROWS
"""

COPY_READINGS = f"COPY readings {READING_COLUMNS} FROM STDIN (FORMAT BINARY)"

COPY_STAGE = "COPY ingest_stage FROM STDIN (FORMAT BINARY)"

MOVE_STAGED_READINGS = f"""
INSERT INTO readings {READING_COLUMNS}
SELECT meter_id, ts, value, seq, quality FROM ingest_stage
ON CONFLICT (meter_id, ts) DO NOTHING
"""

INSERT_DEAD_LETTER = """
INSERT INTO dead_letters (topic, payload, reason_code, reason, enterprise_id, meter_id,
                          reading_index, payload_bytes)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
"""

# After MOVE_STAGED_READINGS: staged readings whose (meter, ts) holds another value
# (stored before, or by another reading of the same batch).
SELECT_CONFLICTING_STAGED = """
SELECT s.meter_id, s.ts, r.value, s.value, s.seq, s.quality
FROM ingest_stage s JOIN readings r ON r.meter_id = s.meter_id AND r.ts = s.ts
WHERE r.value IS DISTINCT FROM s.value
ORDER BY s.meter_id, s.ts
"""

# --- dead letters: list, count, replay ---------------------------------------------


def select_dead_letters(*, include_replayed: bool, by_reason: bool) -> str:
    """Newest first; parameters: ``[reason_code]`` if ``by_reason``, then the limit."""
    where = ["TRUE"]
    if not include_replayed:
        where.append("replayed_at IS NULL")
    if by_reason:
        where.append("reason_code = %s")
    return f"""SELECT id, received_at, topic, reason_code, reason, enterprise_id, meter_id,
                   reading_index, payload, replayed_at, replay_result, payload_bytes
            FROM dead_letters WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT %s"""


def count_dead_letters_by_reason(*, include_replayed: bool) -> str:
    """(reason_code, count), most frequent first."""
    where = "" if include_replayed else "WHERE replayed_at IS NULL"
    return f"SELECT reason_code, count(*) FROM dead_letters {where} GROUP BY 1 ORDER BY 2 DESC"


def select_open_dead_letter_ids(limit: int | None) -> str:
    """Ids of the open dead letters, oldest first, at most ``limit`` (an int, inlined)."""
    sql = "SELECT id FROM dead_letters WHERE replayed_at IS NULL ORDER BY id"
    return sql + (f" LIMIT {int(limit)}" if limit else "")


SELECT_DEAD_LETTER_STATES = "SELECT id, replayed_at FROM dead_letters WHERE id = ANY(%s)"

# Skips a row another replay holds: it is being replayed there.
LOCK_OPEN_DEAD_LETTER = (
    "SELECT topic, payload, payload_bytes FROM dead_letters WHERE id = %s AND "
    "replayed_at IS NULL FOR UPDATE SKIP LOCKED"
)

# Retention: replayed (resolved) dead letters and any received before the horizon.
PURGE_DEAD_LETTERS = """
DELETE FROM dead_letters
WHERE replayed_at < now() - make_interval(secs => %(seconds)s)
   OR received_at < now() - make_interval(secs => %(seconds)s)
"""

DEAD_LETTERS_TABLE_BYTES = "SELECT pg_total_relation_size('dead_letters')"

SET_REPLAY_RESULT = "UPDATE dead_letters SET replay_result = %s WHERE id = %s"

MARK_REPLAYED = (
    "UPDATE dead_letters SET replayed_at = now(), replay_result = %s "
    "WHERE id = %s"
)

# --- broker sessions and incidents (parkcarbon.ingest.session) -----------------------

SELECT_SESSION = (
    "SELECT established_at, last_seen_at FROM ingest_sessions "
    "WHERE broker = %s AND client_id = %s"
)

# A session the broker just created (session present: false) starts now.
UPSERT_NEW_SESSION = """
INSERT INTO ingest_sessions (broker, client_id, established_at, last_seen_at)
VALUES (%s, %s, now(), now())
ON CONFLICT (broker, client_id) DO UPDATE SET established_at = now(), last_seen_at = now()
"""

# The broker confirmed the session (session present: true) or ingest still holds it.
TOUCH_SESSION = """
INSERT INTO ingest_sessions (broker, client_id) VALUES (%s, %s)
ON CONFLICT (broker, client_id) DO UPDATE SET last_seen_at = now()
"""

INSERT_INCIDENT = """
INSERT INTO ingest_incidents (kind, broker, client_id, window_start, window_end, detail)
VALUES (%s, %s, %s, %s, %s, %s)
"""

SELECT_INCIDENTS = """
SELECT id, at, kind, broker, client_id, window_start, window_end, detail
FROM ingest_incidents ORDER BY id DESC LIMIT %s
"""
