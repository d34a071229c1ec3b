"""Counter arithmetic (pure): readings of one meter -> 15-minute slots and events.

Each test writes the expected arithmetic out. Times are UTC; slots are 15 minutes.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from parkcarbon.ingest.usage.counters import (
    CounterSpec,
    ReplacementSpec,
    Slot,
    derive_slots,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def every_15(values: list[float], start_minutes: float = 0) -> list[tuple[datetime, float]]:
    return [(at(start_minutes + 15 * i), v) for i, v in enumerate(values)]


def by_slot(slots: list[Slot]) -> dict[float, tuple[float, bool]]:
    """Slot start in minutes after T0 -> (quantity, estimated)."""
    return {(s.ts - T0).total_seconds() / 60: (s.quantity, s.estimated) for s in slots}


def kinds(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.kind for e in result.events]


def test_delta_times_multiplier() -> None:
    # 100 -> 110 -> 125 with a CT ratio of 400: 10*400 = 4000, 15*400 = 6000
    result = derive_slots(every_15([100, 110, 125]), CounterSpec("m", multiplier=400))
    assert by_slot(result.slots) == {0: (4000.0, False), 15: (6000.0, False)}
    assert result.events == []
    assert result.readings_used == 3


def test_apportioned_by_time_overlap() -> None:
    # 00:10 -> 00:40, delta 30: 5 min in slot 00:00 (5), 15 in 00:15 (15), 10 in 00:30 (10)
    result = derive_slots([(at(10), 0.0), (at(40), 30.0)], CounterSpec("m"))
    got = by_slot(result.slots)
    assert got.keys() == {0, 15, 30}
    assert got[0][0] == pytest.approx(5.0)
    assert got[15][0] == pytest.approx(15.0)
    assert got[30][0] == pytest.approx(10.0)


def test_declared_rollover_is_usage() -> None:
    # rollover 1000: 990 -> 5 wraps: 1000 - 990 + 5 = 15, x2 = 30
    values = [950, 960, 970, 980, 990, 5, 15]
    result = derive_slots(every_15(values), CounterSpec("m", multiplier=2, rollover_value=1000))
    got = by_slot(result.slots)
    assert got[60] == (30.0, False)
    assert sum(q for q, _ in got.values()) == pytest.approx((1000 - 950 + 15) * 2)
    assert kinds(result) == ["rollover"]
    event = result.events[0]
    assert (event.value_before, event.value_after, event.quantity) == (990, 5, 30.0)


def test_implausible_wrap_is_a_reset_not_a_rollover() -> None:
    # rollover 1000 but 500 -> 10 would mean 510 in 15 min against 10 per interval
    values = [460, 470, 480, 490, 500, 10, 20, 30]
    result = derive_slots(every_15(values), CounterSpec("m", rollover_value=1000))
    assert kinds(result) == ["reset"]
    got = by_slot(result.slots)
    # the interval 500 -> 10 gets the neighbours' median rate: 10, estimated
    assert got[60] == (10.0, True)
    assert all(q >= 0 for q, _ in got.values())


def test_unexplained_drop_is_flagged_and_estimated() -> None:
    # 100,110,120,130 then reset to 0 and counting 10 per interval again
    values = [100, 110, 120, 130, 0, 10, 20]
    result = derive_slots(every_15(values), CounterSpec("m", multiplier=3))
    got = by_slot(result.slots)
    assert kinds(result) == ["reset"]
    assert got[45] == (30.0, True)  # median neighbour rate 10 per interval, x3
    assert got[60] == (30.0, False)  # new baseline 0 -> 10
    assert got[75] == (30.0, False)
    assert result.events[0].detail["raw_delta"] == -390.0
    assert all(q >= 0 for q, _ in got.values())


def test_absurd_jump_is_flagged_and_estimated() -> None:
    values = [float(10 * i) for i in range(20)] + [190.0 + 100_000, 100_200.0]
    result = derive_slots(every_15(values), CounterSpec("m"))
    assert kinds(result) == ["absurd"]
    got = by_slot(result.slots)
    assert got[19 * 15] == (10.0, True)  # replaced by the median rate, estimated
    assert got[20 * 15] == (10.0, False)  # the jumped value is the new baseline
    assert max(q for q, _ in got.values()) == 10.0


def test_declared_replacement_uses_final_and_initial_readings() -> None:
    # old register 100, 110; removed at 00:25 showing 112; new one starts at 3.0 and
    # reads 18.0 at 00:45. Usage: (112 - 110) over 00:15-00:25 -> slot 00:15;
    # (18 - 3) over 00:25-00:45 -> 5/20 to slot 00:15, 15/20 to slot 00:30. x10.
    readings = [(at(0), 100.0), (at(15), 110.0), (at(45), 18.0), (at(60), 28.0)]
    rep = ReplacementSpec(at(25), final_reading=112.0, initial_reading=3.0)
    result = derive_slots(readings, CounterSpec("m", multiplier=10), [rep])
    got = by_slot(result.slots)
    assert got[0] == (100.0, False)
    assert got[15][0] == pytest.approx((2 + 15 * 5 / 20) * 10)
    assert got[30][0] == pytest.approx(15 * 15 / 20 * 10)
    assert got[45] == (100.0, False)
    assert kinds(result) == ["replacement"]
    assert result.events[0].quantity == pytest.approx(170.0)


def test_replacement_that_does_not_add_up_is_an_anomaly() -> None:
    readings = every_15([100, 110, 120, 130, 2, 12, 22])
    rep = ReplacementSpec(at(50), final_reading=125.0, initial_reading=0.0)  # 125 < 130
    result = derive_slots(readings, CounterSpec("m"), [rep])
    assert kinds(result) == ["replacement_mismatch"]
    assert by_slot(result.slots)[45] == (10.0, True)


def test_gap_is_flagged_and_spread_evenly_as_estimated() -> None:
    # 00:00 100, 00:15 110, then silent until 01:45 (170): 60 over 6 slots = 10 each
    readings = [(at(0), 100.0), (at(15), 110.0), (at(105), 170.0), (at(120), 180.0)]
    result = derive_slots(readings, CounterSpec("m", interval_seconds=900))
    got = by_slot(result.slots)
    assert got[0] == (10.0, False)
    for minute in (15, 30, 45, 60, 75, 90):
        assert got[minute][0] == pytest.approx(10.0)
        assert got[minute][1] is True
    assert got[105] == (10.0, False)
    assert kinds(result) == ["gap"]
    assert result.events[0].detail["seconds"] == 5400
    assert result.events[0].quantity == pytest.approx(60.0)


def test_spacing_up_to_twice_the_interval_is_not_a_gap() -> None:
    readings = [(at(0), 0.0), (at(30), 20.0)]  # one missed 15-minute reading
    result = derive_slots(readings, CounterSpec("m", interval_seconds=900))
    assert by_slot(result.slots) == {0: (10.0, False), 15: (10.0, False)}
    assert result.events == []


def test_interval_meter_amounts_and_missing_reading() -> None:
    # hourly amounts 4 (01:00), 8 (02:00), missing 03:00, 6 (04:00)
    readings = [(at(60), 4.0), (at(120), 8.0), (at(240), 6.0)]
    result = derive_slots(readings, CounterSpec("d", "interval", multiplier=1.0,
                                                interval_seconds=3600))
    got = by_slot(result.slots)
    assert [got[m] for m in (0, 15, 30, 45)] == [(1.0, False)] * 4
    assert [got[m] for m in (60, 75, 90, 105)] == [(2.0, False)] * 4
    # 02:00-03:00 is missing: filled at the median hourly rate (4, 6, 8 -> 6), estimated
    assert [got[m] for m in (120, 135, 150, 165)] == [(1.5, True)] * 4
    assert [got[m] for m in (180, 195, 210, 225)] == [(1.5, False)] * 4
    assert kinds(result) == ["gap"]
    assert result.events[0].quantity == 6.0


def test_duplicates_count_once() -> None:
    readings = every_15([0, 10, 20]) + every_15([10], start_minutes=15)
    result = derive_slots(readings, CounterSpec("m"))
    assert sum(s.quantity for s in result.slots) == 20.0
    assert kinds(result) == ["duplicate"]
    assert result.readings_used == 3


def _messy_series(seed: int, n: int = 600) -> list[tuple[datetime, float]]:
    """15-minute register with noise, a rollover, a reset, a gap and a jump."""
    rng = random.Random(seed)
    out, reg = [], 9_000.0
    for i in range(n):
        if 200 <= i < 212:
            reg += rng.uniform(5, 15)
            continue  # gap: 3 hours missing
        reg += rng.uniform(5, 15)
        if i == 300:
            reg = 3.0  # undeclared reset
        if i == 400:
            reg += 5_000  # absurd jump
        out.append((at(15 * i), round(reg % 10_000, 3)))  # declared rollover 10 000
    return out


def test_any_arrival_order_gives_identical_usage() -> None:
    spec = CounterSpec("m", multiplier=40, rollover_value=10_000)
    readings = _messy_series(1)
    expected = derive_slots(readings, spec)
    assert {"rollover", "reset", "gap", "absurd"} <= set(kinds(expected))
    for seed in range(5):
        shuffled = readings[:]
        random.Random(seed).shuffle(shuffled)
        got = derive_slots(shuffled, spec)
        assert got.slots == expected.slots
        assert got.events == expected.events


def test_usage_is_never_negative_and_is_conserved_on_clean_data() -> None:
    rng = random.Random(7)
    t, reg, readings = 0.0, 500.0, []
    for _ in range(300):
        t += rng.choice([300, 600, 900, 1200])  # irregular spacing, never a gap
        reg += rng.uniform(0, 3)
        readings.append((T0 + timedelta(seconds=t), reg))
    result = derive_slots(readings, CounterSpec("m", multiplier=5, interval_seconds=900))
    total = sum(s.quantity for s in result.slots)
    assert total == pytest.approx((readings[-1][1] - readings[0][1]) * 5)
    assert all(s.quantity >= 0 for s in result.slots)
    assert not any(s.estimated for s in result.slots)


def test_reading_exactly_at_the_replacement_is_the_new_register() -> None:
    # old 100 at 00:00, swap at 00:15 (old shows 104, new starts at 0): the 00:15 reading
    # (0.0) is the new register; then 6 by 00:30. Usage 4 + 0 + 6, nothing lost.
    readings = [(at(0), 100.0), (at(15), 0.0), (at(30), 6.0)]
    rep = ReplacementSpec(at(15), final_reading=104.0, initial_reading=0.0)
    result = derive_slots(readings, CounterSpec("m"), [rep])
    assert by_slot(result.slots) == {0: (4.0, False), 15: (6.0, False)}
    assert kinds(result) == ["replacement"]
