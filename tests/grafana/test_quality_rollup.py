"""usage_quality_enterprise_day (migration 0015) is the GROUP BY of the usage slots of
the active meters per current enterprise and local day, in the run's storage mode:
after derive, after a late change to an old (in timescale mode: materialised) day,
after a meter moves to another enterprise, after a meter is deactivated and
reactivated; and the completeness panels read exactly it.

One database of its own for the module (it is changed test after test, in order): the
demo park and the first three days of the demo month, seeded as the panel tests do.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from parkcarbon.db import connect
from parkcarbon.grafana.build import build_boards
from parkcarbon.grafana.check import PanelQuery, panel_queries, run_query
from parkcarbon.grafana.macros import TimeRange
from parkcarbon.ingest.usage.derive import derive_committed
from parkcarbon.registry import load_registry
from parkcarbon.schema import refresh_rollups
from support import EXAMPLE_REGISTRY

from .conftest import month_range, seed_settings, seeded_database

DAYS = 3

# The truth, from 15-minute usage itself (not usage_day_quality, which the rollup reads).
TRUTH = """
SELECT date_trunc('day', u.ts, 'Asia/Shanghai') AS bucket, m.enterprise_id,
       count(DISTINCT u.meter_id)::int, count(*)::bigint,
       count(*) FILTER (WHERE u.estimated)::bigint
FROM usage u JOIN meters m ON m.id = u.meter_id AND m.active
GROUP BY 1, 2 ORDER BY 1, 2
"""
ROLLUP = """
SELECT bucket, enterprise_id, meters, slots, estimated_slots
FROM usage_quality_enterprise_day ORDER BY 1, 2
"""
# What the panels grouped before the rollup (usage_day_quality by current enterprise).
VIEW_GROUP_BY = """
SELECT u.bucket, m.enterprise_id, count(*)::int, sum(u.slots)::bigint,
       sum(u.estimated_slots)::bigint
FROM usage_day_quality u JOIN meters m ON m.id = u.meter_id AND m.active
GROUP BY 1, 2 ORDER BY 1, 2
"""


@pytest.fixture(scope="module")
def quality_dsn(storage_mode: str) -> Iterator[str]:
    with seeded_database("pctest_quality_", storage_mode, days=DAYS, alerts=False) as dsn:
        yield dsn


def rows(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(query).fetchall()


def drop_readings(dsn: str, gap: tuple[datetime, datetime]) -> str:
    """Delete, within ``gap``, the readings of the meter that has the most there; its id."""
    with psycopg.connect(dsn) as conn:
        (meter,) = conn.execute(
            "SELECT meter_id FROM readings WHERE ts >= %s AND ts < %s GROUP BY 1 "
            "ORDER BY count(*) DESC, 1 LIMIT 1", gap).fetchone() or ("",)
        conn.execute("DELETE FROM readings WHERE meter_id = %s AND ts >= %s AND ts < %s",
                     (meter, *gap))
    return str(meter)


def assert_exact(dsn: str) -> list[tuple[Any, ...]]:
    rollup = rows(dsn, ROLLUP)
    assert rollup == rows(dsn, TRUTH)
    assert rollup == rows(dsn, VIEW_GROUP_BY)
    return rollup


def test_after_derive(quality_dsn: str) -> None:
    rollup = assert_exact(quality_dsn)
    enterprises = {r[1] for r in rollup}
    assert len(rollup) >= DAYS * len(enterprises) and len(enterprises) > 1
    assert any(r[4] > 0 for r in rollup)  # the demo's faults leave estimated slots


def test_after_late_change_to_an_old_day(quality_dsn: str, storage_mode: str) -> None:
    """Readings of one meter's first day go missing and it is derived again: its slots
    of that day become estimated (gap filled), and the rollup follows at once, also
    when the day was materialised in the continuous aggregate before."""
    start, _ = month_range(days=DAYS)
    gap = (start + timedelta(hours=2), start + timedelta(hours=8))
    assert refresh_rollups(quality_dsn) is (storage_mode == "timescale")  # all materialised
    before = assert_exact(quality_dsn)
    meter = drop_readings(quality_dsn, gap)
    result = derive_committed(seed_settings(quality_dsn), meter_ids=[meter], full=True)
    assert result.changed_from is not None and result.changed_from < start + timedelta(days=1)
    after = assert_exact(quality_dsn)
    assert after != before
    changed = {(r[0], r[1]) for r in set(after) ^ set(before)}
    assert {b for b, _ in changed} == {start}  # only the first day of the meter's owner


def test_after_a_meter_moves(quality_dsn: str) -> None:
    with psycopg.connect(quality_dsn) as conn:
        meter, old, new = conn.execute(
            "SELECT m.id, m.enterprise_id, (SELECT min(e.enterprise_id) FROM meters e "
            "WHERE e.enterprise_id <> m.enterprise_id) FROM meters m "
            "WHERE m.active AND EXISTS (SELECT 1 FROM usage u WHERE u.meter_id = m.id) "
            "ORDER BY m.id LIMIT 1").fetchone() or ("", "", "")
        before = {(r[0], r[1]): r[2] for r in rows(quality_dsn, ROLLUP)}
        conn.execute("UPDATE meters SET enterprise_id = %s WHERE id = %s", (new, meter))
    after = {(r[0], r[1]): r[2] for r in assert_exact(quality_dsn)}
    assert sum(v for (_, e), v in after.items() if e == new) > sum(
        v for (_, e), v in before.items() if e == new)
    assert sum(v for (_, e), v in after.items() if e == old) < sum(
        v for (_, e), v in before.items() if e == old)
    with psycopg.connect(quality_dsn) as conn:  # and back
        conn.execute("UPDATE meters SET enterprise_id = %s WHERE id = %s", (old, meter))
    assert {(r[0], r[1]): r[2] for r in assert_exact(quality_dsn)} == before


def test_after_a_meter_is_deactivated_and_back(quality_dsn: str) -> None:
    from parkcarbon.sync import sync_registry

    registry = load_registry(EXAMPLE_REGISTRY)
    before = assert_exact(quality_dsn)
    with psycopg.connect(quality_dsn) as conn:
        (meter,) = conn.execute(
            "SELECT meter_id FROM usage GROUP BY 1 ORDER BY 1 LIMIT 1").fetchone() or ("",)
        conn.execute("UPDATE meters SET active = false WHERE id = %s", (meter,))
    assert assert_exact(quality_dsn) != before
    with connect(quality_dsn) as conn:  # a registry sync reactivates it (an upsert)
        sync_registry(conn, registry)
    assert assert_exact(quality_dsn) == before


def _completeness_panels() -> list[PanelQuery]:
    return [q for board in build_boards().values() for q in panel_queries(board)
            if "usage_quality_enterprise_day" in q.raw_sql]


# The panels' q CTE as it was before the rollup: usage_day_quality grouped by meter.
OLD_Q = """SELECT m.enterprise_id, u.bucket, sum(u.slots - u.estimated_slots) AS measured,
         sum(u.estimated_slots) AS estimated, sum(u.slots) AS slots
  FROM usage_day_quality u JOIN meters m ON m.id = u.meter_id AND m.active CROSS JOIN r
  WHERE u.bucket >= r.t0 AND u.bucket < r.t1
  GROUP BY 1, 2"""


def _grouped(query: str) -> str:
    """``query`` with its ``q`` CTE reading usage_day_quality by meter again, ordered
    by id as before."""
    head, sep, rest = query.partition("q AS (\n")
    _, close, tail = rest.partition("\n),")
    assert sep and close, "no q CTE"
    return (head + sep + "  " + OLD_Q + close + tail).replace(
        "ORDER BY days.bucket, x.rank", "ORDER BY 1, 2")


def test_completeness_panels_read_the_rollup(quality_dsn: str, storage_mode: str) -> None:
    """The three completeness panels give what grouping usage_day_quality gave."""
    panels = _completeness_panels()
    assert len(panels) == 3
    start, end = month_range(days=DAYS)
    window = TimeRange(start, end)
    ts = storage_mode == "timescale"
    with psycopg.connect(quality_dsn, autocommit=True) as conn:
        for q in panels:
            new = run_query(conn, q, window, timescaledb=ts)
            old = run_query(conn, replace(q, raw_sql=_grouped(q.raw_sql)), window,
                            timescaledb=ts)
            assert new.error is None and old.error is None, (q.title, new.error, old.error)
            assert "usage_day_quality" in old.sql and "usage_day_quality" not in new.sql
            assert new.rows == old.rows and new.rows, q.title


def test_completeness_days_are_local(quality_dsn: str) -> None:
    """Every bucket is a local midnight of the demo month's first days."""
    start, end = month_range(days=DAYS)
    days = {r[0] for r in rows(quality_dsn, ROLLUP)}
    assert days <= {start + timedelta(days=i) for i in range(DAYS)} and len(days) == DAYS
    assert all(isinstance(d, datetime) for d in days) and end not in days


def test_a_derivation_that_died_before_its_sum_is_summed_by_the_next(
        quality_dsn: str) -> None:
    """Usage committed with its window marked, then the process dies before
    refresh_rollups: the rollup is stale until the next derivation, which finds the
    mark and sums that window although it has nothing new of its own."""
    from parkcarbon.ingest.usage.derive import derive_usage
    from parkcarbon.schema.rollups import mark_rollups_due

    start, _ = month_range(days=DAYS)
    gap = (start + timedelta(days=1, hours=3), start + timedelta(days=1, hours=9))
    assert_exact(quality_dsn)
    meter = drop_readings(quality_dsn, gap)
    with connect(quality_dsn) as conn:  # derive_committed up to its commit, no further
        result = derive_usage(conn, meter_ids=[meter], full=True)
        assert result.changed_from is not None
        mark_rollups_due(conn, result.changed_from - timedelta(days=1))
        conn.commit()
    assert rows(quality_dsn, ROLLUP) != rows(quality_dsn, TRUTH)  # stale: nobody summed
    assert rows(quality_dsn, "SELECT count(*) FROM usage_quality_resum_pending") == [(1,)]
    again = derive_committed(seed_settings(quality_dsn))
    assert again.changed_from is None  # nothing new of its own
    assert_exact(quality_dsn)
    assert rows(quality_dsn, "SELECT count(*) FROM usage_quality_resum_pending") == [(0,)]
