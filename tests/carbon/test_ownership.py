"""A meter moved to another enterprise keeps its accounted history with the old owner.

Regression tests for issue #12: accounting stamped every meter-day with the meter's
current enterprise, so any recomputation after a move (``refresh --force``, a factor
change, late data, or the next incremental run) handed the old owner's history to the
new owner. The owner of a local day is the owner at the day's local start: the day of a
move stays with the old owner, the new owner starts with the next local day (or with
the day itself when the move is at local midnight).

The move is an ``UPDATE meters`` (what the registry sync does; the trigger of migration
0009 records the periods at ``now()``), then dated back to a fixed instant so the usage
around it can be written with plain dates.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from parkcarbon.carbon.accounting import emissions, refresh
from parkcarbon.db import connect
from parkcarbon.settings import load_settings

TZ = ZoneInfo("Asia/Shanghai")
SLOT = timedelta(minutes=15)
XJ_2023 = 0.6021e-3  # tCO2/kWh, Xinjiang provincial 2023 (MEE/NBS)
METER = "E01-ELEC-1"
KWH = 10.0  # per 15-minute slot: 960 kWh per whole local day


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ)  # type: ignore[misc]


def put_usage(conn: psycopg.Connection, meter: str, start: datetime, end: datetime) -> None:
    """``KWH`` in every 15-minute slot of [start, end)."""
    conn.execute(
        "INSERT INTO usage (meter_id, ts, quantity) "
        "SELECT %s, g, %s FROM generate_series(%s::timestamptz, %s::timestamptz, %s) g",
        (meter, KWH, start, end - SLOT, SLOT),
    )
    conn.commit()


def move(conn: psycopg.Connection, meter: str, enterprise: str, at: datetime) -> None:
    """Move ``meter`` to ``enterprise`` in the registry, as if it happened at ``at``."""
    with conn.transaction():
        conn.execute("UPDATE meters SET enterprise_id = %s WHERE id = %s", (enterprise, meter))
        # the trigger closed the old period and opened the new one at now()
        conn.execute(
            "UPDATE meter_ownership SET valid_to = %s WHERE meter_id = %s AND valid_to = now()",
            (at, meter),
        )
        conn.execute(
            "UPDATE meter_ownership SET valid_from = %s WHERE meter_id = %s "
            "AND valid_from = now()",
            (at, meter),
        )
    periods = conn.execute(
        "SELECT enterprise_id, valid_from = %s, valid_to = %s FROM meter_ownership "
        "WHERE meter_id = %s ORDER BY valid_from",
        (at, at, meter),
    ).fetchall()
    assert periods == [("E01", False, True), (enterprise, True, None)]


def owners(conn: psycopg.Connection, meter: str) -> dict[str, tuple[str, float, int]]:
    """Stored day -> (enterprise, kWh, slots) of ``meter``."""
    return {
        str(day): (ent, quantity, slots)
        for day, ent, quantity, slots in conn.execute(
            "SELECT day, enterprise_id, quantity, slots FROM emissions_daily "
            "WHERE meter_id = %s ORDER BY day",
            (meter,),
        )
    }


def per_enterprise(conn: psycopg.Connection) -> dict[str, tuple[float, float]]:
    """enterprise -> (grid kWh, Scope 2 tCO2) of March 2026 from ``emissions``."""
    df = emissions(conn, period="2026-03")
    return {
        r.enterprise_id: (r.grid_electricity_kwh, r.scope2_co2_t)
        for r in df.itertuples(index=False)
    }


@pytest.mark.parametrize(
    ("moved_at", "first_new_day"),
    [
        ((2026, 3, 10, 14, 0), 11),  # during the day: the day stays with the old owner
        ((2026, 3, 10, 0, 0), 10),  # at local midnight: the day is the new owner's
    ],
)
def test_recomputing_after_a_move_keeps_the_history_with_the_old_owner(
    migrated_dsn: str, moved_at: tuple[int, ...], first_new_day: int
) -> None:
    settings = load_settings(database_url=migrated_dsn)
    at = local(*moved_at)
    with connect(migrated_dsn) as conn:
        put_usage(conn, METER, local(2026, 3, 5), at)  # measured for E01
        first = refresh(conn, settings)
        before = owners(conn, METER)
        assert {ent for ent, _, _ in before.values()} == {"E01"}
        assert first.restated == 0

        move(conn, METER, "E02", at)
        put_usage(conn, METER, at, local(2026, 3, 13))  # measured for E02
        days = [f"2026-03-{d:02d}" for d in range(5, 13)]
        new_days = [d for d in days if int(d[-2:]) >= first_new_day]
        expected = {d: "E02" if d in new_days else "E01" for d in days}
        old_kwh = (len(days) - len(new_days)) * 96 * KWH
        new_kwh = len(new_days) * 96 * KWH

        # the next incremental run adds the new days and leaves the history alone
        incremental = refresh(conn, settings)
        assert incremental.restated == 0
        assert {d: ent for d, (ent, _, _) in owners(conn, METER).items()} == expected
        # a forced recomputation of everything: the same owners, nothing restated
        forced = refresh(conn, settings, force=True)
        assert forced.restated == 0
        after = owners(conn, METER)
        assert {d: ent for d, (ent, _, _) in after.items()} == expected
        assert all(slots == 96 for _, _, slots in after.values())  # whole local days
        for day in days:
            if day < f"2026-03-{moved_at[2]:02d}":  # wholly before the move: untouched
                assert after[day] == before[day]
        sums = per_enterprise(conn)
        assert sums["E01"][0] == pytest.approx(old_kwh)
        assert sums["E01"][1] == pytest.approx(old_kwh * XJ_2023)
        assert sums["E02"][0] == pytest.approx(new_kwh)
        assert sums["E02"][1] == pytest.approx(new_kwh * XJ_2023)
        # the old days were never restated (nor handed to E02 in a restatement)
        restated = conn.execute(
            "SELECT day, enterprise_id FROM restatements WHERE meter_id = %s", (METER,)
        ).fetchall()
        assert restated == []


def test_each_owner_keeps_its_own_factor_overrides(migrated_dsn: str, tmp_path: Path) -> None:
    """An enterprise's factor override applies to the days it owned the meter only."""
    override = tmp_path / "factors.yaml"
    override.write_text(
        "factors:\n"
        "  - {key: co2.electricity.location, region: xinjiang, year: 2026, enterprise: E01,\n"
        "     value: 0.5, unit: kg/kWh, annual: true,\n"
        "     confidence: measured, source: E01 supply contract}\n",
        encoding="utf-8",
    )
    settings = load_settings(database_url=migrated_dsn, factors_file=override)
    at = local(2026, 3, 8, 9, 30)
    with connect(migrated_dsn) as conn:
        put_usage(conn, METER, local(2026, 3, 5), at)
        refresh(conn, settings)
        move(conn, METER, "E02", at)
        put_usage(conn, METER, at, local(2026, 3, 11))
        result = refresh(conn, settings, force=True)
        assert result.restated == 0
        stored = {
            str(day): (ent, co2)
            for day, ent, co2 in conn.execute(
                "SELECT day, enterprise_id, co2_location_t FROM emissions_daily "
                "WHERE meter_id = %s ORDER BY day",
                (METER,),
            )
        }
        day_kwh = 96 * KWH
        for d in range(5, 11):
            ent, co2 = stored[str(date(2026, 3, d))]
            if d <= 8:  # E01's days (8 March: the day of the move) at E01's 0.5 kg/kWh
                assert (ent, co2) == ("E01", pytest.approx(day_kwh * 0.5e-3))
            else:  # E02's days at the library factor
                assert (ent, co2) == ("E02", pytest.approx(day_kwh * XJ_2023))
