"""Listing restatements: old and new figures of periods an accounting run recomputed.

Every run that changes a stored (meter, local day) figure writes a ``restatements`` row
with the old and new quantity, tCO2 (location and market remainder), tce, factor
versions and the cause (``late_data`` or ``factor_change``). ``restatements`` rolls
them up per enterprise and day or month, with the difference new - old.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import psycopg

from parkcarbon.carbon.models import parse_period

COLUMNS = [
    "run_id",
    "enterprise_id",
    "bucket",
    "cause",
    "rows",
    "old_co2_location_t",
    "new_co2_location_t",
    "diff_co2_location_t",
    "old_co2_market_t",
    "new_co2_market_t",
    "diff_co2_market_t",
    "old_tce",
    "new_tce",
    "diff_tce",
    "old_factor_ids",
    "new_factor_ids",
]


def runs(conn: psycopg.Connection, limit: int = 20) -> pd.DataFrame:
    """The latest accounting runs."""
    rows = conn.execute(
        "SELECT run_id, started_at, finished_at, reason, rows_written, rows_restated "
        "FROM accounting_runs ORDER BY run_id DESC LIMIT %s",
        (limit,),
    ).fetchall()
    return pd.DataFrame(
        rows,
        columns=["run_id", "started_at", "finished_at", "reason", "rows_written", "rows_restated"],
    )


def restatements(
    conn: psycopg.Connection,
    *,
    run_id: int | None = None,
    period: str | None = None,
    enterprise: str | None = None,
    by: str = "month",
) -> pd.DataFrame:
    """Old vs new figures per run, enterprise, cause and day or month."""
    if by not in ("day", "month"):
        raise ValueError("by must be day or month")
    where = ["true"]
    params_: dict[str, Any] = {}
    if run_id is not None:
        where.append("r.run_id = %(run)s")
        params_["run"] = run_id
    if period is not None:
        p = parse_period(period)
        where.append("r.day >= %(d0)s AND r.day < %(d1)s")
        params_.update(d0=p.start, d1=p.end)
    if enterprise is not None:
        where.append("r.enterprise_id = %(ent)s")
        params_["ent"] = enterprise
    bucket = "r.day" if by == "day" else "date_trunc('month', r.day)::date"
    rows = conn.execute(
        f"""
        SELECT r.run_id, r.enterprise_id, {bucket} AS bucket, r.cause, count(*),
               sum(r.old_co2_location_t), sum(r.new_co2_location_t),
               sum(r.new_co2_location_t - r.old_co2_location_t),
               sum(r.old_co2_market_t), sum(r.new_co2_market_t),
               sum(r.new_co2_market_t - r.old_co2_market_t),
               sum(r.old_tce), sum(r.new_tce), sum(r.new_tce - r.old_tce),
               (SELECT array_agg(DISTINCT x ORDER BY x) FROM restatements r2,
                       unnest(r2.old_factor_ids) x
                WHERE r2.run_id = r.run_id AND r2.enterprise_id = r.enterprise_id),
               (SELECT array_agg(DISTINCT x ORDER BY x) FROM restatements r2,
                       unnest(r2.new_factor_ids) x
                WHERE r2.run_id = r.run_id AND r2.enterprise_id = r.enterprise_id)
        FROM restatements r WHERE {" AND ".join(where)}
        GROUP BY r.run_id, r.enterprise_id, {bucket}, r.cause
        ORDER BY r.run_id, r.enterprise_id, 3""",
        params_,
    ).fetchall()
    df = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("old_factor_ids", "new_factor_ids"):
        df[col] = df[col].map(lambda v: " ".join(v) if v else "")
    return df
