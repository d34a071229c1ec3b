"""Park indicators (Art. 11 peak-carbon pilot, Art. 13 per-mu), per enterprise and park.

=========================  =====================================================
column                     definition
=========================  =====================================================
co2_t                      Scope 1+2 tCO2 (basis chosen), water excluded
tce                        comprehensive energy consumption, GB/T 2589 (tce)
value_added_matched_...    value added of the days with figures only: each month's value
                           added x its days with figures / its days (``coverage``)
data_days, period_days     local days with figures / days of the period
co2_unmetered_process_t    process tCO2 (production data) of days without metered figures
co2_per_10k_cny            (co2_t - co2_unmetered_process_t) / value added matched to the
                           days with figures (10k CNY)
tce_per_10k_cny            tce / value added matched to the days with figures (10k CNY)
co2_per_tce                co2_t / tce (zero-carbon park core indicator, <= 0.20)
non_fossil_share_pct       (PV consumed on site + green power) x electricity
                           coefficient / tce x 100
green_power_share_pct      (PV consumed on site + green power) / (grid import + PV
                           consumed on site) x 100
*_per_mu                   figure of the period / land area in mu (park row: the park's
                           whole land area); monthly figures for a month period
co2_per_industrial_mu      park row: tCO2 / the enterprises' land (industrial land);
                           an enterprise row: its own land (= co2_per_mu)
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
    "value_added_matched_10k_cny",
    "data_days",
    "period_days",
    "tax_10k_cny",
    "investment_10k_cny",
    "co2_unmetered_process_t",
    "co2_per_10k_cny",
    "tce_per_10k_cny",
    "co2_per_tce",
    "non_fossil_share_pct",
    "green_power_share_pct",
    "co2_per_mu",
    "industrial_land_mu",
    "co2_per_industrial_mu",
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
    """One row per enterprise with data or economic inputs, then a ``PARK`` row.

    ``attrs``: ``period_kind`` (day, month, year: per-mu figures are for that period),
    ``notes`` (factor disclosures, then what each row's figures cover)."""
    from parkcarbon.carbon.coverage import period_coverage

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
    data_days, park_days, matched = period_coverage(conn, p.start, p.end)
    df["data_days"] = [float(data_days.get(e, 0)) for e in df["enterprise_id"]]
    df["value_added_matched_10k_cny"] = [
        matched.get(e, 0.0) if pd.notna(v) else np.nan
        for e, v in zip(df["enterprise_id"], df["value_added_10k_cny"], strict=True)
    ]
    df["industrial_land_mu"] = df["land_area_mu"]
    park = conn.execute(Q.PARK_LAND).fetchone()
    sums = df.drop(
        columns=["enterprise_id", "name_zh", "land_area_mu", "data_days", "industrial_land_mu"]
    ).sum(min_count=1)
    total = {
        "enterprise_id": PARK_ROW,
        "name_zh": park[1] if park else None,
        "land_area_mu": park[0] if park else np.nan,
        "industrial_land_mu": float(ents["land_area_mu"].astype(float).sum(min_count=1)),
        "data_days": float(park_days),
        **sums.to_dict(),
    }
    df = pd.concat([df, pd.DataFrame([total])], ignore_index=True)
    df["period_days"] = float((p.end - p.start).days)
    tce_per_kwh = _electricity_tce_per_kwh(conn, p.start, p.end, energy_basis)
    non_fossil_kwh = df["pv_self_consumed_kwh"].fillna(0) + df["green_power_kwh"].fillna(0)
    consumed_kwh = df["grid_electricity_kwh"].fillna(0) + df["pv_self_consumed_kwh"].fillna(0)
    # like with like: process emissions of days without metered figures are not in the
    # numerator (their value added is not in the denominator either)
    unmetered: dict[str, float] = dict(
        conn.execute(Q.PROCESS_UNMETERED, {"d0": p.start, "d1": p.end}).fetchall()
    )
    unmetered[PARK_ROW] = sum(unmetered.values())
    df["co2_unmetered_process_t"] = [float(unmetered.get(e, 0.0)) for e in df["enterprise_id"]]
    df["co2_per_10k_cny"] = _ratio(
        df["co2_t"] - df["co2_unmetered_process_t"], df["value_added_matched_10k_cny"]
    )
    df["tce_per_10k_cny"] = _ratio(df["tce"], df["value_added_matched_10k_cny"])
    df["co2_per_tce"] = _ratio(df["co2_t"], df["tce"])
    df["non_fossil_share_pct"] = 100 * _ratio(non_fossil_kwh * tce_per_kwh, df["tce"])
    df["green_power_share_pct"] = 100 * _ratio(non_fossil_kwh, consumed_kwh)
    df["co2_per_mu"] = _ratio(df["co2_t"], df["land_area_mu"])
    df["co2_per_industrial_mu"] = _ratio(df["co2_t"], df["industrial_land_mu"])
    for col in ("value_added_10k_cny", "tax_10k_cny", "investment_10k_cny"):
        df[f"{col}_per_mu"] = _ratio(df[col], df["land_area_mu"])
    out = df[COLUMNS]
    out.attrs.update(em.attrs)
    out.attrs.update(period_kind=p.kind, notes=[*em.attrs.get("notes", []), *_notes(out, p)])
    return out


def _notes(df: pd.DataFrame, p: Period) -> list[str]:
    """What the figures cover: rows whose figures miss days of the period, and the
    land each per-mu figure divides by."""
    notes = []
    for r in df.itertuples(index=False):
        if r.period_days and r.data_days < r.period_days and pd.notna(r.co2_t):
            notes.append(
                f"{r.enterprise_id}: figures on {r.data_days:.0f} of {r.period_days:.0f} days "
                f"of {p.label}; per 10k CNY figures divide by the value added of those days "
                f"({_n(r.value_added_matched_10k_cny)} of {_n(r.value_added_10k_cny)} 万元)"
            )
    park = df[df["enterprise_id"] == PARK_ROW]
    if not park.empty:
        r = park.iloc[0]
        notes.append(
            f"per-mu figures are {_KIND.get(p.kind, 'for the period')} ({p.label}); PARK "
            f"tCO2/mu divides by the park's land ({_n(r['land_area_mu'])} mu), tCO2/industrial "
            f"mu by the enterprises' land ({_n(r['industrial_land_mu'])} mu)"
        )
    return notes


_KIND = {"day": "daily", "month": "monthly", "year": "annual"}


def _n(value: float | None) -> str:
    return "-" if value is None or pd.isna(value) else f"{float(value):,.0f}"


def _electricity_tce_per_kwh(
    conn: psycopg.Connection, start: object, end: object, energy_basis: str
) -> float:
    """tce per kWh of electricity the period's figures used (GB/T 2589 coefficient)."""
    query = Q.ELECTRICITY_TCE_PER_KWH[
        "equivalent" if energy_basis == "equivalent" else "equal_value"
    ]
    row = conn.execute(query, (start, end)).fetchone()
    return float(row[0]) if row and row[0] is not None else float("nan")
