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


# Market-based Scope 2 of an enterprise-month is computed when read (``emissions``):
# remainder tCO2 x (1 - min(1, green kWh / grid kWh)). A change of its green power
# inputs is logged here, with the figures as they stand on the stored grid import.
_GREEN_TEMP = """
CREATE TEMP TABLE _green_new (
    enterprise_id text, month date, contract_kwh float8, certificate_kwh float8,
    source text
) ON COMMIT DROP
"""
_GREEN_LOG = """
INSERT INTO green_power_restatements (enterprise_id, month, old_green_kwh, new_green_kwh,
    grid_kwh, old_co2_market_t, new_co2_market_t, source)
SELECT enterprise_id, month, old_green, new_green, grid_kwh, old_t, new_t, source
FROM (
    SELECT n.enterprise_id, n.month, n.source, m.grid_kwh,
           coalesce(g.contract_kwh + g.certificate_kwh, 0) AS old_green,
           n.contract_kwh + n.certificate_kwh AS new_green,
           m.remainder_t * (1 - least(1, coalesce(g.contract_kwh + g.certificate_kwh, 0)
                                         / m.grid_kwh)) AS old_t,
           m.remainder_t * (1 - least(1, (n.contract_kwh + n.certificate_kwh)
                                         / m.grid_kwh)) AS new_t
    FROM _green_new n
    LEFT JOIN green_power g ON g.enterprise_id = n.enterprise_id AND g.month = n.month
    JOIN (SELECT e.enterprise_id, date_trunc('month', e.day)::date AS month,
                 sum(e.quantity) AS grid_kwh, sum(e.co2_market_t) AS remainder_t
          FROM emissions_daily e
          WHERE e.carrier = 'electricity' AND e.scope = '2'
            AND e.day >= (SELECT min(month) FROM _green_new)
            AND e.day < (SELECT max(month) FROM _green_new) + INTERVAL '1 month'
          GROUP BY 1, 2) m ON m.enterprise_id = n.enterprise_id AND m.month = n.month
    WHERE m.grid_kwh > 0
) x
WHERE abs(new_t - old_t) > %(eps)s * greatest(abs(old_t), 1)
"""
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

    conn.execute("DROP TABLE IF EXISTS _green_new")
    conn.execute(_GREEN_TEMP)
    with conn.cursor().copy(
        "COPY _green_new (enterprise_id, month, contract_kwh, certificate_kwh, source) FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row(row)
    if not rows:
        return 0
    return conn.execute(_GREEN_LOG, {"eps": EPSILON}).rowcount


def green_power_restatements(
    conn: psycopg.Connection, *, period: str | None = None, enterprise: str | None = None
) -> pd.DataFrame:
    """Market-based Scope 2 changed by new green power inputs, per enterprise-month."""
    where = ["true"]
    params_: dict[str, Any] = {}
    if period is not None:
        p = parse_period(period)
        where.append("month >= date_trunc('month', %(d0)s::date) AND month < %(d1)s")
        params_.update(d0=p.start, d1=p.end)
    if enterprise is not None:
        where.append("enterprise_id = %(ent)s")
        params_["ent"] = enterprise
    rows = conn.execute(
        f"""
        SELECT enterprise_id, month, old_green_kwh, new_green_kwh, grid_kwh,
               old_co2_market_t, new_co2_market_t, new_co2_market_t - old_co2_market_t,
               source, restated_at
        FROM green_power_restatements WHERE {" AND ".join(where)}
        ORDER BY id""",
        params_,
    ).fetchall()
    return pd.DataFrame(rows, columns=GREEN_COLUMNS)
