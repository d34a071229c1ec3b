"""Which factors apply to which meter when: the per-meter factor plan.

For every accounted meter (sub-meters excluded) and every stretch of local days on
which the factor choice cannot change (cut at 1 January and at every valid_from /
valid_to of a relevant factor), the plan holds per-canonical-unit multipliers:

=================  ============================================================
column             meaning
=================  ============================================================
m_location         t CO2 per unit, location-based (Scope 1 fuels: the fuel factor)
m_market           t CO2 per unit, market-based remainder (before green power)
m_ets              t CO2 per unit with the ETS fixed factor (NaN where none applies)
m_tce_eq           tce per unit, GB/T 2589 equivalent value (当量值)
m_tce_ev           tce per unit, equal value (等价值; NaN where none applies)
m_gj               GJ of heat per unit (purchased heat 1, steam enthalpy - 83.74 kJ/kg)
=================  ============================================================

Arithmetic (all pint-converted to canonical units by ``factors``):
electricity grid import: kWh x factor; PV generation: zero CO2, tce at the electricity
coefficient; export: zero CO2, negative tce (PV consumed on site = generation - export);
gas, diesel, coal: Scope 1, fuel factor; heat: GJ x 0.11; steam: t x (h - 83.74)/1000 GJ
x 0.11; water: Scope 3 only, no tce added (new water is a working medium).
"""

from __future__ import annotations

from datetime import date
from itertools import pairwise
from typing import Any

import pandas as pd

from parkcarbon.carbon.errors import MissingFactorError
from parkcarbon.carbon.factors import FactorLibrary
from parkcarbon.carbon.models import SCOPE_1, SCOPE_2, SCOPE_3, SCOPE_EXPORT, SCOPE_PV
from parkcarbon.units import CANONICAL_UNIT, Carrier

FEED_WATER_GJ_PER_T = 0.08374  # 83.74 kJ/kg: feed water at 20 °C (MEE steam formula)
OPTIONAL = {"co2_ets", "tce_ev"}  # absence gives NaN instead of an error
PLAN_COLUMNS = [
    "meter_id",
    "enterprise_id",
    "carrier",
    "role",
    "scope",
    "unit",
    "d0",
    "d1",
    "m_location",
    "m_market",
    "m_ets",
    "m_tce_eq",
    "m_tce_ev",
    "m_gj",
    "factor_ids",
    "flags",
]


def needed_keys(carrier: str, role: str, *, region: str, gas_kind: str) -> dict[str, tuple]:
    """Slot -> (factor key, region or None) needed for a meter of this carrier and role."""
    if carrier == Carrier.electricity:
        tce = {
            "tce_eq": ("tce.electricity.equivalent", None),
            "tce_ev": ("tce.electricity.equal_value", None),
        }
        if role in ("onsite_pv", "export"):
            return tce
        return {
            "co2_location": ("co2.electricity.location", region),
            "co2_market": ("co2.electricity.market_remainder", "national"),
            "co2_ets": ("co2.electricity.ets", "national"),
            **tce,
        }
    if carrier == Carrier.natural_gas:
        return {"co2": ("co2.natural_gas", None), "tce": (f"tce.natural_gas.{gas_kind}", None)}
    if carrier == Carrier.steam:
        return {
            "co2": ("co2.heat", None),
            "enthalpy": ("param.steam.enthalpy", None),
            "tce": ("tce.steam", None),
        }
    if carrier == Carrier.water:  # new water is a working medium: no tce is added
        return {"co2": ("co2.water", None)}
    return {"co2": (f"co2.{carrier}", None), "tce": (f"tce.{carrier}", None)}


def scope_of(carrier: str, role: str) -> str:
    if role == "onsite_pv":
        return SCOPE_PV
    if role == "export":
        return SCOPE_EXPORT
    if carrier == Carrier.water:
        return SCOPE_3
    if carrier in (Carrier.natural_gas, Carrier.diesel, Carrier.coal):
        return SCOPE_1
    return SCOPE_2


def _segment(
    library: FactorLibrary,
    keys: dict[str, tuple],
    day: date,
    enterprise: str,
    carrier: str,
    role: str,
) -> dict[str, Any]:
    values: dict[str, float] = {}
    ids: list[str] = []
    flags: list[str] = []
    for slot, (key, region) in keys.items():
        try:
            sel = library.select(key, day, region=region, enterprise=enterprise)
        except MissingFactorError:
            if slot in OPTIONAL:
                values[slot] = float("nan")
                continue
            raise
        values[slot] = sel.factor.per_canonical
        ids.append(sel.factor.version_id)
        flags.extend(sel.flags)
    scope = scope_of(carrier, role)
    out = {"m_location": 0.0, "m_market": 0.0, "m_ets": 0.0, "m_gj": 0.0}
    if carrier == Carrier.electricity:
        sign = -1.0 if role == "export" else 1.0
        out.update(m_tce_eq=sign * values["tce_eq"], m_tce_ev=sign * values["tce_ev"])
        if role not in ("onsite_pv", "export"):
            out.update(
                m_location=values["co2_location"],
                m_market=values["co2_market"],
                m_ets=values["co2_ets"],
            )
    else:
        co2 = values["co2"]
        gj = 0.0
        if carrier == Carrier.heat:
            gj = 1.0
        elif carrier == Carrier.steam:
            gj = values["enthalpy"] - FEED_WATER_GJ_PER_T
            co2 = co2 * gj
        tce = 0.0 if carrier == Carrier.water else values["tce"]
        out.update(m_location=co2, m_market=co2, m_ets=co2, m_tce_eq=tce, m_tce_ev=tce, m_gj=gj)
    return {**out, "factor_ids": sorted(ids), "flags": sorted(set(flags)), "scope": scope}


def build_plan(
    library: FactorLibrary,
    meters: list[tuple[str, str, str, str]],
    first_day: date,
    end_day: date,
    *,
    region: str,
    gas_kind: str,
) -> pd.DataFrame:
    """The plan for ``meters`` = [(id, enterprise_id, carrier, role)] over [first, end)."""
    rows: list[dict[str, Any]] = []
    cache: dict[tuple, list[dict[str, Any]]] = {}
    for meter_id, enterprise_id, carrier, role in meters:
        keys = needed_keys(carrier, role, region=region, gas_kind=gas_kind)
        key_names = {k for k, _ in keys.values()}
        has_own = any(
            f.entry.enterprise == enterprise_id for k in key_names for f in library.candidates(k)
        )
        ck = (carrier, role, enterprise_id if has_own else None)
        if ck not in cache:
            cuts = {first_day, end_day}
            cuts |= {date(y, 1, 1) for y in range(first_day.year, end_day.year + 1)}
            cuts |= library.boundaries(key_names)
            points = sorted(d for d in cuts if first_day <= d <= end_day)
            segs: list[dict[str, Any]] = []
            for d0, d1 in pairwise(points):
                seg = _segment(library, keys, d0, enterprise_id, carrier, role)
                if (
                    segs
                    and segs[-1]["factor_ids"] == seg["factor_ids"]
                    and segs[-1]["flags"] == seg["flags"]
                ):
                    segs[-1]["d1"] = d1
                    continue
                segs.append({**seg, "d0": d0, "d1": d1})
            cache[ck] = segs
        for seg in cache[ck]:
            rows.append(
                {
                    **seg,
                    "meter_id": meter_id,
                    "enterprise_id": enterprise_id,
                    "carrier": carrier,
                    "role": role,
                    "unit": CANONICAL_UNIT[Carrier(carrier)],
                }
            )
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)
