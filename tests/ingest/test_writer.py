"""The writer: binary COPY fast path, idempotent fallback, dead letters in one transaction."""

from __future__ import annotations

import psycopg

from parkcarbon.ingest.models import Reading, ReasonCode, Rejection
from parkcarbon.ingest.writer import Writer

T0 = 1_764_216_000_000_000  # 2025-11-27T04:00:00Z in microseconds


def test_new_then_overlapping_batches(migrated_dsn: str) -> None:
    with psycopg.connect(migrated_dsn) as conn:
        writer = Writer(conn)
        first = [Reading("E01-ELEC-1", T0 + i * 900_000_000, 10.0 + i, i, None) for i in range(3)]
        assert writer.write(first).stored == 3
        overlap = [*first[1:], Reading("E01-ELEC-1", T0 + 3 * 900_000_000, 99.5, None, "est\t1")]
        result = writer.write(overlap + overlap)  # duplicates inside the batch as well
        assert (result.stored, result.duplicates) == (1, 5)
        rows = conn.execute("SELECT ts, value, seq, quality FROM readings ORDER BY ts").fetchall()
    assert [r[1] for r in rows] == [10.0, 11.0, 12.0, 99.5]
    assert rows[0][0].isoformat() == "2025-11-27T04:00:00+00:00"
    assert rows[3][2:] == (None, "est\t1")


def test_dead_letters_commit_with_the_readings(migrated_dsn: str) -> None:
    rejection = Rejection(ReasonCode.unknown_meter, "meter 'X' is not in the registry",
                          b'{"ts": 1, "value": 2}', "E01", "X", None)
    with psycopg.connect(migrated_dsn) as conn:
        writer = Writer(conn)
        result = writer.write([Reading("E01-GAS-1", T0, 1.0, None, None)],
                              [("park/E01/X", rejection)])
        assert (result.stored, result.dead_letters) == (1, 1)
        row = conn.execute("SELECT topic, payload, reason_code, enterprise_id, meter_id "
                           "FROM dead_letters").fetchone()
    assert row == ("park/E01/X", b'{"ts": 1, "value": 2}', "unknown_meter", "E01", "X")
