"""Carbon accounting API: refresh the stored figures, read them as DataFrames.

``refresh(conn, settings)`` recomputes what changed (see ``engine``);
``emissions(conn, period=...)`` rolls ``emissions_daily`` up per enterprise (and per day,
month or year with ``freq``), applying green power for market-based Scope 2;
``park_summary(conn, period)`` gives the park totals a dashboard or demo prints.

Market-based Scope 2 (electricity): per enterprise and month,
``share = min(1, (green power contracts + certificates) / grid import)`` and
``market tCO2 = grid kWh x remainder factor x (1 - share)``; a part of a month gets
the month's share. Exports never reduce Scope 2. On-site PV consumed on site
(generation - export) is zero-emission and counts as non-fossil energy consumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import psycopg

from parkcarbon.carbon import queries as Q
from parkcarbon.carbon.engine import refresh
from parkcarbon.carbon.errors import CarbonError
from parkcarbon.carbon.models import Period, parse_period

__all__ = ["BASES", "ParkSummary", "emissions", "enterprise_ids", "park_summary", "refresh"]

BASES = ("location", "market", "ets")
FREQS = (None, "day", "month", "year")
QUANTITY_COLUMNS = {  # (carrier, scope) -> output column
    ("electricity", "2"): "grid_electricity_kwh",
    ("electricity", "pv"): "pv_generation_kwh",
    ("electricity", "export"): "export_kwh",
    ("natural_gas", "1"): "natural_gas_m3",
    ("diesel", "1"): "diesel_t",
    ("coal", "1"): "coal_t",
    ("heat", "2"): "heat_gj",
    ("steam", "2"): "steam_t",
    ("water", "3"): "water_m3",
}
FIGURES = [
    "scope1_co2_t",  # fuels burnt on site + process emissions
    "scope1_process_co2_t",  # of which process (clinker, lime calcination)
    "scope2_co2_t",
    "scope12_co2_t",
    "scope3_water_co2_t",
    "tce",
]
COLUMNS = [
    "enterprise_id",
    "name_zh",
    "bucket",
    *QUANTITY_COLUMNS.values(),
    "purchased_heat_gj",
    "pv_self_consumed_kwh",
    "green_power_kwh",
    *FIGURES,
    "estimated",
    "unconfirmed",
    "flags",
    "factor_ids",
]


_TEXT = ("enterprise_id", "name_zh", "bucket", "flags", "factor_ids")
_BOOL = ("estimated", "unconfirmed")


def _empty(columns: list[str]) -> pd.DataFrame:
    """An empty frame with the dtypes a filled one has (text, bool, float64)."""
    return pd.DataFrame(
        {
            c: pd.Series(
                dtype="object"
                if c in _TEXT or c in ("carrier", "scope", "unit")
                else ("bool" if c in _BOOL else "float64")
            )
            for c in columns
        }
    )


def _relevant(item: str, basis: str, energy_basis: str) -> bool:
    """Is a flag or factor id about a factor this report uses?"""
    if "co2.electricity.location" in item:
        return basis == "location"
    if "co2.electricity.market_remainder" in item:
        return basis == "market"
    if "co2.electricity.ets" in item:
        return basis == "ets"
    if "tce.electricity.equal_value" in item:
        return energy_basis == "equal_value"
    if "tce.electricity.equivalent" in item:
        return energy_basis == "equivalent"
    return True


def describe_flag(flag: str, label: str) -> str:
    """A flag as a sentence for footnotes."""
    kind, _, rest = flag.partition(":")
    key, _, year = rest.partition(":")
    if kind == "earlier_year":
        return (
            f"{key}: no factor of the period's own year for {label}; the {year} "
            "factor applies (latest earlier year)"
        )
    if kind == "later_year":
        return f"{key}: no factor of {label} or earlier; the {year} factor is used"
    if kind == "unconfirmed" and key.startswith("process."):
        return (
            f"{key}: process emissions by the IPCC 2006 Tier 1 default, UNCONFIRMED "
            "(enter the measured CaO/MgO content in the production file)"
        )
    if kind == "unconfirmed":
        return f"{key}: value UNCONFIRMED in the factor reference (flagged)"
    if kind == "no_factor":
        return f"{key}: no factor applies to part of {label}; those figures are missing"
    if kind == "unpaired":
        return (
            f"{key}: an override per m³ states no heating value; its tce uses the NCV of "
            "the gas kind (the two figures are not from one heating value)"
        )
    if kind == "no_factor_all":
        return f"{key}: no factor applies to any day of {label}; those figures are missing"
    return flag


def enterprise_ids(conn: psycopg.Connection) -> set[str]:
    """The enterprise ids of the registry (to validate targets and economics files)."""
    return {r[0] for r in conn.execute(Q.ENTERPRISE_IDS).fetchall()}


def _fetch(conn: psycopg.Connection, query: str, params: Any, columns: list[str]) -> pd.DataFrame:
    rows = conn.execute(query, params).fetchall()
    return pd.DataFrame(rows, columns=columns)


def emissions(
    conn: psycopg.Connection,
    *,
    period: str | Period,
    enterprise: str | None = None,
    basis: str = "location",
    freq: str | None = None,
    energy_basis: str = "equivalent",
) -> pd.DataFrame:
    """tCO2 by scope, tce and energy per enterprise for ``period`` (YYYY, YYYY-MM, day).

    ``basis``: location | market | ets (Scope 2 electricity). ``freq``: None (one row per
    enterprise for the period), day, month or year. ``df.attrs['notes']`` lists the
    factor disclosures (earlier-year factors, UNCONFIRMED values) as sentences.
    """
    if basis not in BASES:
        raise CarbonError(f"basis {basis!r} is not one of {', '.join(BASES)}")
    if freq not in FREQS:
        raise CarbonError(f"freq {freq!r} is not one of day, month, year")
    if energy_basis not in ("equivalent", "equal_value"):
        raise CarbonError(f"energy basis {energy_basis!r} is not equivalent or equal_value")
    p = parse_period(period) if isinstance(period, str) else period
    where = Q.EMISSIONS_WHERE
    params: dict[str, Any] = {"d0": p.start, "d1": p.end, "ent": enterprise}
    if enterprise is not None:
        where += Q.AND_ENTERPRISE
        if not conn.execute(Q.ENTERPRISE_EXISTS, (enterprise,)).fetchone():
            raise CarbonError(
                f"unknown enterprise {enterprise!r}",
                hint="see `parkcarbon config check` for the enterprise ids",
            )
    raw = _fetch(
        conn,
        Q.EMISSIONS_ROLLUP.format(bucket=Q.BUCKET[freq], where=where),
        params,
        [
            "enterprise_id",
            "bucket",
            "month",
            "carrier",
            "scope",
            "quantity",
            "heat_gj",
            "co2_location_t",
            "co2_market_t",
            "co2_ets_t",
            "n_ets",
            "n",
            "tce_eq",
            "tce_ev",
            "estimated",
            "plan_id",
        ],
    )
    keys = ["enterprise_id", "bucket"]
    process = _process(conn, params, p, freq, enterprise)
    if raw.empty and process.empty:
        out = _empty(COLUMNS)
        out.attrs.update(period=p.label, basis=basis, energy_basis=energy_basis, notes=[])
        return out
    if raw.empty:  # process emissions only (production data, no metered figures)
        figures = [*QUANTITY_COLUMNS.values(), "purchased_heat_gj", "green_power_kwh",
                   "pv_self_consumed_kwh", "scope1_co2_t", "scope2_co2_t", "scope12_co2_t",
                   "scope3_water_co2_t", "tce"]
        out = _add_process(pd.DataFrame(columns=[*keys, "estimated", *figures]), process)
        _attach_provenance(conn, out, {}, p.label, basis, energy_basis, None, process)
        return _finish(conn, out)
    # Green power share per enterprise and month (whole months of grid import).
    if p.start.day == 1 and p.end.day == 1:  # whole months: their grid import is in raw
        green = _fetch(
            conn,
            Q.GREEN_POWER_MONTHS,
            params,
            ["enterprise_id", "month", "green_kwh"],
        )
        grid = raw[(raw["carrier"] == "electricity") & (raw["scope"] == "2")]
        grid_kwh = grid.groupby(["enterprise_id", "month"], as_index=False)["quantity"].sum()
        green = green.merge(
            grid_kwh.rename(columns={"quantity": "grid_kwh"}), on=["enterprise_id", "month"]
        )
    else:
        green = _green_whole_months(conn, params)
    green["share"] = (green["green_kwh"] / green["grid_kwh"]).clip(0, 1)
    raw = raw.merge(
        green[["enterprise_id", "month", "share"]], how="left", on=["enterprise_id", "month"]
    )
    is_grid = (raw["carrier"] == "electricity") & (raw["scope"] == "2")
    raw["share"] = raw["share"].fillna(0.0).where(is_grid, 0.0)
    raw["green_kwh"] = raw["quantity"] * raw["share"]
    raw["co2_market_t"] = raw["co2_market_t"] * (1.0 - raw["share"])
    missing_ets: str | None = None  # none | part | all (of the period's grid import)
    if bool(((raw["n_ets"] < raw["n"]) & is_grid).any()):
        missing_ets = "all" if int(raw.loc[is_grid, "n_ets"].sum()) == 0 else "part"
    raw["co2"] = (
        raw[{"location": "co2_location_t", "market": "co2_market_t", "ets": "co2_ets_t"}[basis]]
        .astype(float)
        .fillna(0.0)
    )
    raw["tce"] = raw["tce_eq" if energy_basis == "equivalent" else "tce_ev"].astype(float)
    keys = ["enterprise_id", "bucket"]
    raw["bucket"] = raw["bucket"].fillna(p.label) if freq is None else raw["bucket"]
    out = raw.groupby(keys, dropna=False)[["estimated"]].any()
    for (carrier, scope), col in QUANTITY_COLUMNS.items():
        sel = raw[(raw["carrier"] == carrier) & (raw["scope"] == scope)]
        out[col] = sel.groupby(keys)["quantity"].sum()
    out["purchased_heat_gj"] = raw.groupby(keys)["heat_gj"].sum()
    out["green_power_kwh"] = raw.groupby(keys)["green_kwh"].sum()
    for scope, col in (("1", "scope1_co2_t"), ("2", "scope2_co2_t"), ("3", "scope3_water_co2_t")):
        out[col] = raw[raw["scope"] == scope].groupby(keys)["co2"].sum()
    out["tce"] = raw[raw["scope"] != "3"].groupby(keys)["tce"].sum(min_count=1)
    out = out.fillna({c: 0.0 for c in out.columns if c != "estimated"})
    out["pv_self_consumed_kwh"] = (out["pv_generation_kwh"] - out["export_kwh"]).clip(lower=0)
    out["scope12_co2_t"] = out["scope1_co2_t"] + out["scope2_co2_t"]
    if basis == "ets":  # no ETS factor for part of the period: no figure, not zero
        gap = raw[is_grid & (raw["n_ets"] < raw["n"])].groupby(keys).size()
        out.loc[out.index.isin(gap.index), ["scope2_co2_t", "scope12_co2_t"]] = float("nan")
    out = _add_process(out.reset_index(), process)
    plan_ids = {k: set(v) for k, v in raw.groupby(keys)["plan_id"]}
    _attach_provenance(conn, out, plan_ids, p.label, basis, energy_basis, missing_ets, process)
    return _finish(conn, out)


def _finish(conn: psycopg.Connection, out: pd.DataFrame) -> pd.DataFrame:
    names: dict[str, str] = dict(conn.execute(Q.ENTERPRISE_NAMES).fetchall())
    out["name_zh"] = out["enterprise_id"].map(names)
    attrs = dict(out.attrs)
    out = out[COLUMNS].sort_values(["enterprise_id", "bucket"]).reset_index(drop=True)
    out.attrs.update(attrs)
    return out


def _process(
    conn: psycopg.Connection, params: dict[str, Any], p: Period, freq: str | None,
    enterprise: str | None,
) -> pd.DataFrame:
    """Process tCO2 (production data) per enterprise and bucket of ``freq``: enterprise_id,
    bucket, process_co2_t, process_unconfirmed, process_methods."""
    where = Q.AND_PROCESS_ENTERPRISE if enterprise is not None else ""
    df = _fetch(
        conn,
        Q.PROCESS_DAILY.format(where=where),
        params,
        ["enterprise_id", "day", "process_co2_t", "process_unconfirmed", "process_methods"],
    )
    if df.empty:
        return df.rename(columns={"day": "bucket"})
    if freq is None:
        df["bucket"] = p.label
    elif freq == "day":
        df["bucket"] = df["day"]
    elif freq == "month":
        df["bucket"] = [d.replace(day=1) for d in df["day"]]
    else:
        df["bucket"] = [d.replace(month=1, day=1) for d in df["day"]]
    return df.groupby(["enterprise_id", "bucket"], as_index=False).agg(
        process_co2_t=("process_co2_t", "sum"),
        process_unconfirmed=("process_unconfirmed", "any"),
        process_methods=("process_methods", lambda m: " ".join(sorted(set(" ".join(m).split())))),
    )


def _add_process(out: pd.DataFrame, process: pd.DataFrame) -> pd.DataFrame:
    """Scope 1 process emissions as their own figure, added to Scope 1 and 1+2 (rows with
    process emissions only get zeros elsewhere)."""
    keys = ["enterprise_id", "bucket"]
    if process.empty:
        return out.assign(scope1_process_co2_t=0.0)
    merged = out.merge(process[[*keys, "process_co2_t"]], how="outer", on=keys, indicator=True)
    new = merged["_merge"] == "right_only"
    for c in out.columns:
        if c not in (*keys, "estimated"):
            merged[c] = merged[c].astype(float).where(~new, 0.0)
    merged["estimated"] = merged["estimated"].where(~new, False).astype(bool)
    added = merged["process_co2_t"].fillna(0.0).astype(float)
    merged["scope1_process_co2_t"] = added
    merged["scope1_co2_t"] = merged["scope1_co2_t"] + added
    merged["scope12_co2_t"] = merged["scope12_co2_t"] + added
    return merged.drop(columns=["process_co2_t", "_merge"])


def _green_whole_months(conn: psycopg.Connection, params: dict[str, Any]) -> pd.DataFrame:
    """Green power and grid import per enterprise and whole month around the period."""
    return _fetch(
        conn,
        Q.GREEN_POWER_WHOLE_MONTHS,
        params,
        ["enterprise_id", "month", "green_kwh", "grid_kwh"],
    )


def _attach_provenance(
    conn: psycopg.Connection,
    out: pd.DataFrame,
    plan_ids: dict[tuple[Any, Any], set[int]],
    label: str,
    basis: str,
    energy_basis: str,
    missing_ets: str | None,
    process: pd.DataFrame | None = None,
) -> None:
    """Add flags, unconfirmed and factor_ids columns and ``attrs['notes']``.

    ``plan_ids``: the carbon_plans ids of the stored rows per (enterprise_id, bucket).
    """
    plans = {
        r[0]: (r[1], r[2])
        for r in conn.execute(Q.CARBON_PLANS).fetchall()
    }
    lists: dict[str, dict[tuple, list[str]]] = {"factor_ids": {}, "flags": {}}
    for key, ids in plan_ids.items():
        for n, column in enumerate(("factor_ids", "flags")):
            items = sorted({x for p in ids for x in plans[p][n]})
            lists[column][key] = [x for x in items if _relevant(x, basis, energy_basis)]
    extra = []
    if basis == "ets" and missing_ets:
        kind = "no_factor" if missing_ets == "part" else "no_factor_all"
        extra = [f"{kind}:co2.electricity.ets"]
    keys = list(zip(out["enterprise_id"], out["bucket"], strict=True))
    proc_flags: dict[tuple[Any, Any], list[str]] = {}
    if process is not None and not process.empty:
        for r in process.itertuples(index=False):
            if r.process_unconfirmed:
                proc_flags[(r.enterprise_id, r.bucket)] = [
                    f"unconfirmed:process.{m}" for m in str(r.process_methods).split()
                    if m.endswith("_tier1")
                ]
    flags = [lists["flags"].get(k, []) + proc_flags.get(k, []) + extra for k in keys]
    out["flags"] = ["; ".join(f) for f in flags]
    out["unconfirmed"] = [any(x.startswith("unconfirmed:") for x in f) for f in flags]
    out["factor_ids"] = [" ".join(lists["factor_ids"].get(k, [])) for k in keys]
    every = sorted({x for f in flags for x in f})
    notes = [describe_flag(x, label) for x in every]
    out.attrs.update(period=label, basis=basis, energy_basis=energy_basis, notes=notes)


@dataclass(frozen=True)
class ParkSummary:
    """Park totals for one period (figures in t, tce, canonical units)."""

    period: str
    basis: str
    energy: pd.DataFrame  # carrier, scope, quantity, unit, tce
    scopes: dict[str, float]  # scope1_co2_t, scope2_co2_t, scope12_co2_t, scope3_water_co2_t
    tce: float
    top_emitters: pd.DataFrame  # enterprise_id, name_zh, scope12_co2_t, share_pct
    notes: list[str] = field(default_factory=list)


def park_summary(
    conn: psycopg.Connection, period: str, *, basis: str = "location", top: int = 5
) -> ParkSummary:
    """Energy by carrier, tCO2 by scope, tce and the top emitters of the park."""
    p = parse_period(period)
    energy = _fetch(
        conn,
        Q.PARK_ENERGY,
        (p.start, p.end),
        ["carrier", "scope", "quantity", "unit", "tce"],
    )
    if energy.empty:
        energy = _empty(["carrier", "scope", "quantity", "unit", "tce"])
    df = emissions(conn, period=period, basis=basis)
    scopes = {c: float(df[c].sum()) for c in FIGURES if c != "tce"}
    total = scopes["scope12_co2_t"]
    tops = df.nlargest(top, "scope12_co2_t")[["enterprise_id", "name_zh", "scope12_co2_t"]]
    tops = tops.assign(share_pct=100.0 * tops["scope12_co2_t"] / total if total else 0.0)
    tops = tops.astype({"scope12_co2_t": "float64", "share_pct": "float64"})
    return ParkSummary(
        p.label,
        basis,
        energy,
        scopes,
        float(df["tce"].sum()),
        tops.reset_index(drop=True),
        list(df.attrs.get("notes", [])),
    )
