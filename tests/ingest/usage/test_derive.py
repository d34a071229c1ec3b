"""derive_usage against real PostgreSQL: late and out-of-order data, rollover, reset,
replacement, gap; incremental runs write only what changed and equal a full run."""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from click.testing import CliRunner

from parkcarbon.db import connect
from parkcarbon.ingest.errors import DeriveError
from parkcarbon.ingest.usage.counters import CounterSpec, derive_slots
from parkcarbon.ingest.usage.derive import ChangedRange, derive_usage

T0 = datetime(2026, 2, 1, 16, tzinfo=UTC)  # local midnight in Kuqa (Asia/Shanghai)
RECEIVED = datetime(2026, 2, 10, tzinfo=UTC)


def series(n: int, seed: int = 0, start: float = 5_000.0) -> list[tuple[datetime, float]]:
    rng = random.Random(seed)
    out, reg = [], start
    for i in range(n):
        out.append((T0 + timedelta(minutes=15 * i), round(reg, 3)))
        reg += rng.uniform(5, 15)
    return out


def insert(conn: psycopg.Connection, meter_id: str, rows: Sequence[tuple[datetime, float]],
           received_at: datetime | None = None) -> None:
    """Store readings as ingest would; received a minute after their time by default."""
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO readings (meter_id, ts, value, received_at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (meter_id, ts) DO NOTHING",
            [(meter_id, ts, v, received_at or ts + timedelta(minutes=1)) for ts, v in rows],
        )


def usage(conn: psycopg.Connection, meter_id: str) -> list[tuple[datetime, float, bool]]:
    return conn.execute(
        "SELECT ts, quantity, estimated FROM usage WHERE meter_id = %s ORDER BY ts", (meter_id,)
    ).fetchall()


def derived_at(conn: psycopg.Connection, meter_id: str) -> dict[datetime, datetime]:
    return dict(conn.execute(
        "SELECT ts, derived_at FROM usage WHERE meter_id = %s", (meter_id,)).fetchall())


def test_full_derivation_matches_counter_rules(migrated_dsn: str) -> None:
    rows = series(300)
    with connect(migrated_dsn) as conn:
        insert(conn, "E01-ELEC-1", rows)  # multiplier 400
        result = derive_usage(conn)
        expected = derive_slots(rows, CounterSpec("E01-ELEC-1", multiplier=400))
        assert usage(conn, "E01-ELEC-1") == [(s.ts, s.quantity, s.estimated)
                                             for s in expected.slots]
        assert result.meters == 52
        assert result.readings_used == 300
        assert result.slots_written == 299
        assert result.changed == (ChangedRange("E01-ELEC-1", T0, rows[-2][0], 299),)
        # a second run finds nothing new: it reads and writes nothing
        again = derive_usage(conn)
        assert (again.slots_written, again.slots_deleted, again.changed) == (0, 0, ())
        assert (again.meters, again.readings_used) == (0, 0)
        full = derive_usage(conn, full=True)
        assert (full.slots_written, full.slots_deleted, full.changed) == (0, 0, ())


def test_late_reading_restates_only_the_affected_slots(migrated_dsn: str) -> None:
    rows = series(400, seed=3)
    late = rows[250]
    with connect(migrated_dsn) as conn:
        insert(conn, "E03-ELEC-1", [r for r in rows if r is not late])
        derive_usage(conn, meter_ids=["E03-ELEC-1"])
        before = derived_at(conn, "E03-ELEC-1")
        insert(conn, "E03-ELEC-1", [late], received_at=RECEIVED + timedelta(days=1))
        result = derive_usage(conn, meter_ids=["E03-ELEC-1"])
        # only the two slots either side of the late reading changed
        slot_a, slot_b = rows[249][0], rows[250][0]
        assert result.changed == (ChangedRange("E03-ELEC-1", slot_a, slot_b, 2),)
        assert result.readings_used < 400  # incremental: loaded from shortly before
        after = derived_at(conn, "E03-ELEC-1")
        assert {ts for ts in after if after[ts] != before.get(ts)} == {slot_a, slot_b}
        got = usage(conn, "E03-ELEC-1")
        expected = derive_slots(rows, CounterSpec("m", multiplier=200)).slots
        assert got == [(s.ts, s.quantity, s.estimated) for s in expected]
        recorded = conn.execute(
            "SELECT first_slot, last_slot, slots FROM usage_changes WHERE meter_id = %s "
            "ORDER BY id DESC LIMIT 1", ("E03-ELEC-1",)).fetchone()
        assert recorded == (slot_a, slot_b, 2)


def test_out_of_order_batches_give_the_same_usage_as_one_batch(migrated_dsn: str) -> None:
    rows = series(500, seed=5)
    batches = [rows[i::5] for i in range(5)]  # interleaved: every batch lands in history
    random.Random(2).shuffle(batches)
    with connect(migrated_dsn) as conn:
        for k, batch in enumerate(batches):
            insert(conn, "E05-ELEC-1", batch, received_at=RECEIVED + timedelta(days=k))
            derive_usage(conn, meter_ids=["E05-ELEC-1"])
        got = usage(conn, "E05-ELEC-1")
        expected = derive_slots(rows, CounterSpec("m", multiplier=300)).slots
        assert got == [(s.ts, s.quantity, s.estimated) for s in expected]
        assert conn.execute("SELECT count(*) FROM meter_events WHERE meter_id = 'E05-ELEC-1'"
                            ).fetchone() == (0,)
        full = derive_usage(conn, meter_ids=["E05-ELEC-1"], full=True)
        assert full.slots_written == 0


def test_late_data_closing_a_gap_removes_the_gap_event(migrated_dsn: str) -> None:
    rows = series(200, seed=9)
    hole = rows[100:112]  # three hours missing
    with connect(migrated_dsn) as conn:
        insert(conn, "E04-GAS-1", [r for r in rows if r not in hole])
        first = derive_usage(conn, meter_ids=["E04-GAS-1"])
        assert first.events_by_kind == {"gap": 1}
        gap = conn.execute("SELECT ts_start, ts, detail FROM meter_events WHERE kind = 'gap'"
                           ).fetchone()
        assert gap[:2] == (rows[99][0], rows[112][0])
        assert gap[2]["seconds"] == 13 * 900
        estimated = [ts for ts, _q, est in usage(conn, "E04-GAS-1") if est]
        assert estimated == [rows[i][0] for i in range(99, 112)]
        insert(conn, "E04-GAS-1", hole, received_at=RECEIVED + timedelta(days=1))
        derive_usage(conn, meter_ids=["E04-GAS-1"])
        assert conn.execute("SELECT count(*) FROM meter_events").fetchone() == (0,)
        assert not any(est for _ts, _q, est in usage(conn, "E04-GAS-1"))


def test_rollover_and_reset_events_in_the_database(migrated_dsn: str) -> None:
    # E14-ELEC-1: rollover 1 000 000 kWh, multiplier 5
    wrap = [(T0 + timedelta(minutes=15 * i), (999_950.0 + 10 * i) % 1_000_000) for i in range(12)]
    # E14-WATER-1 (hourly, no rollover): reset to zero at the 6th reading
    water = [(T0 + timedelta(hours=i), 100.0 + 2 * i if i < 6 else 2.0 * (i - 5))
             for i in range(12)]
    with connect(migrated_dsn) as conn:
        insert(conn, "E14-ELEC-1", wrap)
        insert(conn, "E14-WATER-1", water)
        result = derive_usage(conn, meter_ids=["E14-ELEC-1", "E14-WATER-1"])
        assert result.events_by_kind == {"rollover": 1, "reset": 1}
        elec = usage(conn, "E14-ELEC-1")
        assert [q for _ts, q, _e in elec] == [50.0] * 11  # 10 kWh x 5 each, across the wrap
        row = conn.execute("SELECT value_before, value_after, quantity FROM meter_events "
                           "WHERE kind = 'rollover'").fetchone()
        assert row == (999_990.0, 0.0, 50.0)
        water_q = [q for _ts, q, _e in usage(conn, "E14-WATER-1")]
        assert sum(water_q) == pytest.approx(22.0)  # 11 hours x 2 m³, reset hour estimated
        assert min(water_q) >= 0


def test_declared_replacement_change_triggers_recomputation(migrated_dsn: str) -> None:
    old = [(T0 + timedelta(minutes=15 * i), 500.0 + 10 * i) for i in range(8)]
    new = [(T0 + timedelta(minutes=15 * i), 1.0 + 10 * (i - 8)) for i in range(8, 16)]
    with connect(migrated_dsn) as conn:
        insert(conn, "E02-GAS-1", old + new)
        first = derive_usage(conn, meter_ids=["E02-GAS-1"])
        assert first.events_by_kind == {"reset": 1}
        # the park declares the swap: old register 575 at 02:00 local, new one from -9
        conn.execute("INSERT INTO meter_replacements VALUES (%s, %s, %s, %s, 'swap')",
                     ("E02-GAS-1", T0 + timedelta(minutes=112.5), 575.0, -9.0 + 5))
        conn.commit()
        second = derive_usage(conn, meter_ids=["E02-GAS-1"])
        assert second.events_by_kind == {"replacement": 1}
        assert [q for _ts, q, _e in usage(conn, "E02-GAS-1")] == [10.0] * 15
        assert conn.execute("SELECT kind FROM meter_events").fetchall() == [("replacement",)]


def test_unknown_meter_is_a_user_error(migrated_dsn: str) -> None:
    with connect(migrated_dsn) as conn, pytest.raises(DeriveError, match="NOPE"):
        derive_usage(conn, meter_ids=["NOPE"])


def test_cli_derive_and_gaps(migrated_dsn: str) -> None:
    from parkcarbon.cli import cli

    rows = series(50)
    with connect(migrated_dsn) as conn:
        insert(conn, "E07-GAS-1", rows[:20] + rows[30:])
    runner = CliRunner()
    out = runner.invoke(cli, ["--database-url", migrated_dsn, "usage", "derive", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["events_by_kind"] == {"gap": 1}
    assert data["changed"][0]["meter_id"] == "E07-GAS-1"
    gaps = runner.invoke(cli, ["--database-url", migrated_dsn, "usage", "gaps", "--json"])
    assert gaps.exit_code == 0, gaps.output
    listed = json.loads(gaps.stdout)
    assert [(g["meter_id"], g["kind"]) for g in listed if g["kind"] == "gap"] == [
        ("E07-GAS-1", "gap")]
    # silent is relative to the park's newest reading: E07-GAS-1 holds it, so only the
    # 51 meters that never reported are listed (a finished feed is not 52 silent meters)
    silent = {s["meter_id"]: s["ts_start"] for s in listed if s["kind"] == "silent"}
    assert len(silent) == 51 and "E07-GAS-1" not in silent
    assert len(listed) == 52
    as_csv = runner.invoke(cli, ["--database-url", migrated_dsn, "usage", "gaps",
                                 "--format", "csv"])
    assert as_csv.exit_code == 0, as_csv.output
    csv_rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(r["meter_id"], r["kind"]) for r in csv_rows] == [
        (g["meter_id"], g["kind"]) for g in listed]
    assert json.loads(csv_rows[0]["detail"]) == listed[0]["detail"]  # detail as JSON text
    text = runner.invoke(cli, ["--database-url", migrated_dsn, "usage", "events"])
    assert "E07-GAS-1" in text.output and "gap" in text.output
    assert "silent since" in runner.invoke(
        cli, ["--database-url", migrated_dsn, "usage", "gaps"]).output
    events = runner.invoke(cli, ["--database-url", migrated_dsn, "usage", "events",
                                 "--format", "json", "--kind", "reset"])
    assert events.exit_code == 0 and json.loads(events.stdout) == []
    empty_csv = runner.invoke(cli, ["--database-url", migrated_dsn, "usage", "events",
                                    "--format", "csv", "--kind", "reset"])
    assert empty_csv.stdout.splitlines() == [
        "meter_id,kind,ts_start,ts,value_before,value_after,quantity,detail"]
    # gaps: the events' header plus the unit of the quantities, empty or not
    assert ",".join(csv_rows[0]) == empty_csv.stdout.strip() + ",unit"
    empty_gaps = runner.invoke(cli, ["--database-url", migrated_dsn, "usage", "gaps",
                                     "--format", "csv", "--meter", "E07-GAS-1",
                                     "--since", "2026-03-01"])
    assert empty_gaps.stdout.splitlines()[0] == ",".join(csv_rows[0])
    summary = runner.invoke(cli, ["--database-url", migrated_dsn, "usage", "derive",
                                  "--format", "csv"])
    assert summary.exit_code == 0 and "meters,0" in summary.stdout.splitlines()


def messy(n: int, seed: int) -> list[tuple[datetime, float]]:
    """A register with noise, a declared rollover (1e6), a reset, a gap and a jump."""
    rng = random.Random(seed)
    out, reg = [], 999_000.0
    for i in range(n):
        reg += rng.uniform(5, 15)
        if 150 <= i < 160:
            continue  # gap
        if i == 250:
            reg = 2.0  # undeclared reset
        if i == 320:
            reg += 50_000  # absurd jump
        out.append((T0 + timedelta(minutes=15 * i), round(reg % 1_000_000, 3)))
    return out


@pytest.mark.parametrize(("seed", "shuffled"), [(1, True), (2, False)])
def test_incremental_runs_over_random_batches_equal_one_full_run(
    migrated_dsn: str, seed: int, shuffled: bool
) -> None:
    rows = messy(420, seed)
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(rows)), 6))
    if shuffled:  # random subsets: every batch reaches back into history
        order = rows[:]
        rng.shuffle(order)
        batches = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True)]
    else:  # contiguous stretches arriving in random order: partial recomputations
        batches = [rows[a:b] for a, b in zip([0, *cuts], [*cuts, len(rows)], strict=True)]
        rng.shuffle(batches)
    diesel = [(T0 + timedelta(hours=i), rng.uniform(0, 40)) for i in range(120) if i % 17]
    partial = False
    with connect(migrated_dsn) as conn:
        for k, batch in enumerate(batches):
            received = RECEIVED + timedelta(hours=k)
            insert(conn, "E14-ELEC-1", batch, received_at=received)
            insert(conn, "E09-DIESEL-1", diesel[k::len(batches)], received_at=received)
            stored = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
            partial |= derive_usage(conn).readings_used < stored
        expected = derive_slots(rows, CounterSpec("m", multiplier=5, rollover_value=1e6))
        assert usage(conn, "E14-ELEC-1") == [(s.ts, s.quantity, s.estimated)
                                             for s in expected.slots]
        events = conn.execute("SELECT kind, ts FROM meter_events WHERE meter_id = "
                              "'E14-ELEC-1' ORDER BY ts, kind").fetchall()
        assert events == sorted(((e.kind, e.ts) for e in expected.events),
                                key=lambda kt: (kt[1], kt[0]))
        assert {k for k, _ts in events} == {"rollover", "gap", "reset", "absurd"}
        interval = derive_slots(diesel, CounterSpec("d", "interval", interval_seconds=3600))
        assert usage(conn, "E09-DIESEL-1") == [(s.ts, s.quantity, s.estimated)
                                               for s in interval.slots]
        full = derive_usage(conn, full=True)
        assert (full.slots_written, full.slots_deleted) == (0, 0)
    assert partial or shuffled  # the contiguous case exercised partial recomputation
