"""Carbon-budget figures for the ``carbon_budget`` rule, from the carbon package.

Nothing is computed here that the carbon package already computes: month-to-date
emissions come from ``carbon.accounting.emissions``, the month's budget from the
``carbon_budgets`` table the accounting refresh writes, and the year-end forecast and
run-out date from ``carbon.targets.targets_status``.

``metric(conn, name, subjects, ctx) -> {subject: {"value": ..., ...}}`` (subject
``PARK`` for the park); a subject without a figure is left out (no data).
"""

from __future__ import annotations

import calendar
import inspect
from datetime import date, timedelta
from typing import Any

import psycopg

from parkcarbon.alerts import queries as Q

PARK = "PARK"


def metric(conn: psycopg.Connection, name: str, subjects: list[str], ctx: Any
           ) -> dict[str, dict[str, Any]]:
    today = ctx.now.astimezone(ctx.tz).date()
    if name == "mtd_vs_budget_pct":
        return _month_to_date(conn, subjects, today)
    return _status(conn, name, subjects, today, ctx.settings)


def _month_to_date(conn: psycopg.Connection, subjects: list[str], today: date
                   ) -> dict[str, dict[str, Any]]:
    from parkcarbon.carbon.accounting import emissions

    month = today.replace(day=1)
    budgets = {(e or PARK): (float(b), float(c)) for e, b, c in
               conn.execute(Q.MONTH_BUDGETS, {"month": month}).fetchall()}
    df = emissions(conn, period=f"{month:%Y-%m}", freq="day")
    df = df[df["bucket"] < today] if len(df) else df
    if not len(df):
        return {}
    through = max(df["bucket"])
    days = calendar.monthrange(month.year, month.month)[1]
    share = ((through - month).days + 1) / days
    per = df.groupby("enterprise_id")["scope12_co2_t"].sum().to_dict()
    actual = {PARK: float(df["scope12_co2_t"].sum()), **{k: float(v) for k, v in per.items()}}
    out = {}
    for s in subjects:
        if s not in budgets or s not in actual or budgets[s][0] <= 0:
            continue
        budget_to_date = budgets[s][0] * share
        out[s] = {"value": 100 * actual[s] / budget_to_date, "mtd_co2_t": actual[s],
                  "budget_to_date_co2_t": budget_to_date, "month_budget_co2_t": budgets[s][0],
                  "data_through": through.isoformat()}
    return out


def _status(conn: psycopg.Connection, name: str, subjects: list[str], today: date,
            settings: Any) -> dict[str, dict[str, Any]]:
    from parkcarbon.carbon.accounting import enterprise_ids
    from parkcarbon.carbon.targets import load_targets, targets_status

    targets = load_targets(settings.targets_file, enterprise_ids(conn))
    # the evaluation's own day (``alerts evaluate --at``), where the function takes it
    if "today" in inspect.signature(targets_status).parameters:
        df = targets_status(conn, year=today.year, targets=targets,
                            as_of=today - timedelta(days=1), today=today)
    else:
        df = targets_status(conn, year=today.year, targets=targets,
                            as_of=today - timedelta(days=1))
    out: dict[str, dict[str, Any]] = {}
    for row in df.to_dict("records"):
        s = str(row["subject"])
        if s not in subjects:
            continue
        if name == "forecast_vs_cap_pct":
            v = row.get("forecast_vs_cap_pct")
            if v is None or v != v:  # NaN
                continue
            out[s] = {"value": float(v), "forecast_co2_t": row.get("forecast_co2_t"),
                      "cap_co2_t": row.get("cap_co2_t")}
        else:  # runout_days
            runout = row.get("runout_date")
            if runout is None or runout != runout:
                continue
            out[s] = {"value": float((runout - today).days), "runout_date": str(runout),
                      "cap_co2_t": row.get("cap_co2_t")}
    return out
