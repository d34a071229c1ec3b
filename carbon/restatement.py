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

from parkcarbon.carbon import queries as Q
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
    rows = conn.execute(Q.LATEST_RUNS, (limit,)).fetchall()
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
    where = [Q.RESTATEMENTS_ALL]
    params_: dict[str, Any] = {}
    if run_id is not None:
        where.append(Q.RESTATEMENTS_RUN)
        params_["run"] = run_id
    if period is not None:
        p = parse_period(period)
        where.append(Q.RESTATEMENTS_PERIOD)
        params_.update(d0=p.start, d1=p.end)
    if enterprise is not None:
        where.append(Q.RESTATEMENTS_ENTERPRISE)
        params_["ent"] = enterprise
    query = Q.RESTATEMENTS.format(bucket=Q.RESTATEMENTS_BUCKET[by], where=" AND ".join(where))
    rows = conn.execute(
        query,
        params_,
    ).fetchall()
    df = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("old_factor_ids", "new_factor_ids"):
        df[col] = df[col].map(lambda v: " ".join(v) if v else "")
    return df


GREEN_COLUMNS = [
    "enterprise_id",
    "month",
    "old_green_kwh",
    "new_green_kwh",
    "grid_kwh",
    "old_co2_market_t",
    "new_co2_market_t",
    "diff_co2_market_t",
    "source",
    "restated_at",
]


def stage_green_power(conn: psycopg.Connection, rows: list[tuple[Any, ...]]) -> int:
    """Log market-based restatements for new green power inputs, before they are stored.

    ``rows``: (enterprise_id, month, contract_kwh, certificate_kwh, source). Call in the
    transaction that then upserts ``green_power`` from the temp table ``_green_new``.
    Only enterprise-months whose stored market-based tCO2 really changes are logged.
    """
    from parkcarbon.carbon.engine import EPSILON

    conn.execute(Q.DROP_GREEN_TEMP)
    conn.execute(Q.GREEN_TEMP)
    with conn.cursor().copy(Q.COPY_GREEN) as copy:
        for row in rows:
            copy.write_row(row)
    if not rows:
        return 0
    return conn.execute(Q.GREEN_LOG, {"eps": EPSILON}).rowcount


def green_power_restatements(
    conn: psycopg.Connection, *, period: str | None = None, enterprise: str | None = None
) -> pd.DataFrame:
    """Market-based Scope 2 changed by new green power inputs, per enterprise-month."""
    where = [Q.GREEN_RESTATEMENTS_ALL]
    params_: dict[str, Any] = {}
    if period is not None:
        p = parse_period(period)
        where.append(Q.GREEN_RESTATEMENTS_PERIOD)
        params_.update(d0=p.start, d1=p.end)
    if enterprise is not None:
        where.append(Q.GREEN_RESTATEMENTS_ENTERPRISE)
        params_["ent"] = enterprise
    rows = conn.execute(
        Q.GREEN_RESTATEMENTS.format(where=" AND ".join(where)),
        params_,
    ).fetchall()
    return pd.DataFrame(rows, columns=GREEN_COLUMNS)
