"""What a figure covers: days with data, and value added matched to them.

An intensity divides like with like: tCO2 of the days with figures by the value added of
those days. Value added is reported per month, so a month counts in proportion to its
days with figures (``value added x days with data / days of the month``); a month
without any figure adds nothing. ``data_days`` gives the days with figures per
enterprise and for the park, for the coverage every output states.
"""

from __future__ import annotations

import calendar
from datetime import date

import pandas as pd
import psycopg

from parkcarbon.carbon import queries as Q


def _month_days(month: date) -> int:
    return calendar.monthrange(month.year, month.month)[1]


def _matched(conn: psycopg.Connection, days: pd.DataFrame, d0: date, d1: date) -> dict[str, float]:
    """``days``: enterprise_id, month, n (days with data). Value added matched to them."""
    econ = pd.DataFrame(
        conn.execute(Q.ECONOMICS_MONTHLY, (d0, d1)).fetchall(),
        columns=["enterprise_id", "month", "va"],
    )
    if econ.empty or days.empty:
        return {}
    m = econ.merge(days, on=["enterprise_id", "month"])
    m["matched"] = [
        float(va) * int(n) / _month_days(month)
        for va, n, month in zip(m["va"], m["n"], m["month"], strict=True)
    ]
    return {str(k): float(v) for k, v in m.groupby("enterprise_id")["matched"].sum().items()}


def matched_value_added(
    conn: psycopg.Connection, day_rows: pd.DataFrame, start: date
) -> dict[str, float]:
    """Value added per enterprise over the days in ``day_rows`` (enterprise_id, bucket =
    local day with figures), months from ``start`` on."""
    if day_rows.empty:
        return {}
    d = day_rows.drop_duplicates()
    days = (
        d.assign(month=[date(b.year, b.month, 1) for b in d["bucket"]])
        .groupby(["enterprise_id", "month"], as_index=False)
        .size()
        .rename(columns={"size": "n"})
    )
    end = max(days["month"])
    return _matched(conn, days, start, date(end.year + end.month // 12, end.month % 12 + 1, 1))


def period_coverage(
    conn: psycopg.Connection, d0: date, d1: date
) -> tuple[dict[str, int], int, dict[str, float]]:
    """(days with figures per enterprise, days with figures in the park, value added
    matched to each enterprise's days) for [d0, d1)."""
    days = pd.DataFrame(
        conn.execute(Q.DATA_DAYS, (d0, d1)).fetchall(), columns=["enterprise_id", "month", "n"]
    )
    per = {str(k): int(v) for k, v in days.groupby("enterprise_id")["n"].sum().items()}
    row = conn.execute(Q.PARK_DATA_DAYS, (d0, d1)).fetchone()
    park = int(row[0]) if row and row[0] is not None else 0
    first = date(d0.year, d0.month, 1)
    return per, park, _matched(conn, days, first, d1)
