"""Park indicators (Art. 11 peak-carbon pilot, Art. 13 per-mu), per enterprise and park.

=========================  =====================================================
column                     definition
=========================  =====================================================
co2_t                      Scope 1+2 tCO2 (basis chosen), water excluded
tce                        comprehensive energy consumption, GB/T 2589 (tce)
co2_per_10k_cny            co2_t / industrial value added (10k CNY)
tce_per_10k_cny            tce / industrial value added (10k CNY)
co2_per_tce                co2_t / tce (zero-carbon park core indicator, <= 0.20)
non_fossil_share_pct       (PV consumed on site + green power) x electricity
                           coefficient / tce x 100
green_power_share_pct      (PV consumed on site + green power) / (grid import + PV
                           consumed on site) x 100
*_per_mu                   figure / land area in mu (park: the park's land area)
=========================  =====================================================

A ratio whose denominator is zero or missing is NaN (printed as "-"), never 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg

from parkcarbon.carbon import queries as Q
from parkcarbon.carbon.accounting import emissions
from parkcarbon.carbon.models import Period, parse_period

PARK_ROW = "PARK"
COLUMNS = [
    "enterprise_id",
    "name_zh",
    "land_area_mu",
    "co2_t",
    "tce",
    "value_added_10k_cny",
    "tax_10k_cny",
    "investment_10k_cny",
    "co2_per_10k_cny",
    "tce_per_10k_cny",
    "co2_per_tce",
    "non_fossil_share_pct",
    "green_power_share_pct",
    "co2_per_mu",
    "value_added_10k_cny_per_mu",
    "tax_10k_cny_per_mu",
    "investment_10k_cny_per_mu",
]


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    den = den.astype(float)
    return num.astype(float) / den.where(den > 0, np.nan)


def indicators(
    conn: psycopg.Connection,
    *,
    period: str | Period,
    basis: str = "location",
    energy_basis: str = "equivalent",
) -> pd.DataFrame:
    """One row per enterprise with data or economic inputs, then a ``PARK`` row."""
    p = parse_period(period) if isinstance(period, str) else period
    em = emissions(conn, period=p, basis=basis, energy_basis=energy_basis)
    econ_rows = conn.execute(Q.ECONOMICS_SUMS, (p.start, p.end)).fetchall()
    econ = pd.DataFrame(
        econ_rows,
        columns=["enterprise_id", "value_added_10k_cny", "tax_10k_cny", "investment_10k_cny"],
    )
    ents = pd.DataFrame(
        conn.execute(Q.ENTERPRISE_LAND).fetchall(),
        columns=["enterprise_id", "name_zh", "land_area_mu"],
    )
    base = em[
        [
            "enterprise_id",
            "scope12_co2_t",
            "tce",
            "grid_electricity_kwh",
            "pv_self_consumed_kwh",
            "green_power_kwh",
        ]
    ].rename(columns={"scope12_co2_t": "co2_t"})
    df = base.merge(econ, how="outer", on="enterprise_id").merge(
        ents, how="left", on="enterprise_id"
    )
    df = df.sort_values("enterprise_id").reset_index(drop=True)
    park = conn.execute(Q.PARK_LAND).fetchone()
    sums = df.drop(columns=["enterprise_id", "name_zh", "land_area_mu"]).sum(min_count=1)
    total = {
        "enterprise_id": PARK_ROW,
        "name_zh": park[1] if park else None,
        "land_area_mu": park[0] if park else np.nan,
        **sums.to_dict(),
    }
    df = pd.concat([df, pd.DataFrame([total])], ignore_index=True)
    tce_per_kwh = _electricity_tce_per_kwh(conn, p.start, p.end, energy_basis)
    non_fossil_kwh = df["pv_self_consumed_kwh"].fillna(0) + df["green_power_kwh"].fillna(0)
    consumed_kwh = df["grid_electricity_kwh"].fillna(0) + df["pv_self_consumed_kwh"].fillna(0)
    df["co2_per_10k_cny"] = _ratio(df["co2_t"], df["value_added_10k_cny"])
    df["tce_per_10k_cny"] = _ratio(df["tce"], df["value_added_10k_cny"])
    df["co2_per_tce"] = _ratio(df["co2_t"], df["tce"])
    df["non_fossil_share_pct"] = 100 * _ratio(non_fossil_kwh * tce_per_kwh, df["tce"])
    df["green_power_share_pct"] = 100 * _ratio(non_fossil_kwh, consumed_kwh)
    df["co2_per_mu"] = _ratio(df["co2_t"], df["land_area_mu"])
    for col in ("value_added_10k_cny", "tax_10k_cny", "investment_10k_cny"):
        df[f"{col}_per_mu"] = _ratio(df[col], df["land_area_mu"])
    out = df[COLUMNS]
    out.attrs.update(em.attrs)
    return out


def _electricity_tce_per_kwh(
    conn: psycopg.Connection, start: object, end: object, energy_basis: str
) -> float:
    """tce per kWh of electricity the period's figures used (GB/T 2589 coefficient)."""
    query = Q.ELECTRICITY_TCE_PER_KWH[
        "equivalent" if energy_basis == "equivalent" else "equal_value"
    ]
    row = conn.execute(query, (start, end)).fetchone()
    return float(row[0]) if row and row[0] is not None else float("nan")
