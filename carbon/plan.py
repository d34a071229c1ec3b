"""Which factors apply to which meter when: the per-meter factor plan.

For every accounted meter (sub-meters excluded) and every stretch of local days on
which the factor choice cannot change (cut at 1 January and at every valid_from /
valid_to of a relevant factor, and at the local days where the meter changed owner:
each row carries the enterprise that owned the meter on its days), the plan holds
per-canonical-unit multipliers:

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
gas: Scope 1, one heating value (NCV) gives both CO2 (NCV x CC x OF x 44/12) and tce
(NCV / 29.271 GJ/tce); diesel, coal: Scope 1, fuel factor; heat: GJ x 0.11; steam:
heat = t x (h - 83.74)/1000 GJ with the meter's declared enthalpy h, then CO2 = heat x
0.11 and tce = heat x the heat coefficient (both from the same heat); water: Scope 3
only, no tce added (new water is a working medium).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from itertools import pairwise
from typing import Any

import pandas as pd

from parkcarbon.carbon.errors import MissingFactorError
from parkcarbon.carbon.factors import TIER, FactorLibrary, Selection
from parkcarbon.carbon.models import SCOPE_1, SCOPE_2, SCOPE_3, SCOPE_EXPORT, SCOPE_PV
from parkcarbon.units import CANONICAL_UNIT, Carrier

FEED_WATER_GJ_PER_T = 0.08374  # 83.74 kJ/kg: feed water at 20 °C (MEE steam formula)
GJ_PER_TCE = 29.271  # 1 kgce = 29,271 kJ (GB/T 2589-2020)
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
        # one heating value (NCV) gives both the CO2 factor and the tce coefficient
        return {"co2": ("co2.natural_gas", None), "ncv": ("param.natural_gas.ncv", gas_kind)}
    if carrier == Carrier.steam:
        # one enthalpy gives the heat (GJ), and both tCO2 and tce come from that heat
        return {
            "co2": ("co2.heat", None),
            "enthalpy": ("param.steam.enthalpy", None),
            "tce": ("tce.heat", None),
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


def _gas(sels: dict[str, Selection], ids: list[str], flags: list[str]) -> tuple[float, float]:
    """(t CO2 per m3, tce per m3) of natural gas from one heating value.

    The NCV is ``param.natural_gas.ncv`` (meter > enterprise > park override > the
    library value of the gas kind), unless the CO2 factor chosen is a more specific
    override that states its own NCV (an enterprise's measured gas quality): then that
    one. CO2 = NCV x CC x OF x 44/12; tce = NCV / 29.271 GJ/tce (GB/T 2589-2020)."""
    co2, ncv_sel = sels["co2"].factor, sels["ncv"].factor
    ncv = ncv_sel.per_canonical
    if co2.own_ncv is not None and TIER[co2.origin] < TIER[ncv_sel.origin]:
        ncv = co2.own_ncv
        ids.remove(ncv_sel.version_id)  # the heating value comes from the CO2 entry
    if co2.per_gj is not None:
        t_per_m3 = ncv * co2.per_gj
    else:  # a CO2 factor per m3 states no heating value: it cannot be paired
        t_per_m3 = co2.per_canonical
        flags.append("unpaired:co2.natural_gas")
    return t_per_m3, ncv / GJ_PER_TCE


def _segment(
    library: FactorLibrary,
    keys: dict[str, tuple],
    day: date,
    enterprise: str,
    carrier: str,
    role: str,
    meter: str | None = None,
) -> dict[str, Any]:
    values: dict[str, float] = {}
    sels: dict[str, Selection] = {}
    ids: list[str] = []
    flags: list[str] = []
    for slot, (key, region) in keys.items():
        try:
            sel = library.select(key, day, region=region, enterprise=enterprise, meter=meter)
        except MissingFactorError:
            if slot in OPTIONAL:
                values[slot] = float("nan")
                continue
            raise
        sels[slot] = sel
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
        tce = 0.0 if carrier == Carrier.water else values.get("tce", 0.0)
        if carrier == Carrier.heat:
            gj = 1.0
        elif carrier == Carrier.steam:
            gj = values["enthalpy"] - FEED_WATER_GJ_PER_T
            co2, tce = co2 * gj, tce * gj  # tce.heat is per GJ of heat
        elif carrier == Carrier.natural_gas:
            co2, tce = _gas(sels, ids, flags)
        out.update(m_location=co2, m_market=co2, m_ets=co2, m_tce_eq=tce, m_tce_ev=tce, m_gj=gj)
    return {**out, "factor_ids": sorted(ids), "flags": sorted(set(flags)), "scope": scope}


# (enterprise_id, first local day or None, end local day or None) of a meter's owner
Ownership = tuple[str, date | None, date | None]


def _owned_spans(
    enterprise_id: str, periods: Sequence[Ownership] | None, first_day: date, end_day: date
) -> list[tuple[str, date, date]]:
    """(owner, d0, d1) tiling [first_day, end_day) from the meter's ownership periods
    (in order of valid_from). Days no period covers (a meter without periods, a gap
    left by a hand edit) get the registry's ``enterprise_id``; where periods overlap the
    earlier one keeps the days, so every day has exactly one plan row."""
    spans: list[tuple[str, date, date]] = []
    cursor = first_day
    for owner, a, b in periods or ():
        d0 = cursor if a is None else max(a, cursor)
        d1 = end_day if b is None else min(b, end_day)
        if d0 >= d1:
            continue
        if d0 > cursor:
            spans.append((enterprise_id, cursor, d0))
        spans.append((owner, d0, d1))
        cursor = d1
    if cursor < end_day:
        spans.append((enterprise_id, cursor, end_day))
    return spans


def build_plan(
    library: FactorLibrary,
    meters: list[tuple[str, str, str, str]],
    first_day: date,
    end_day: date,
    *,
    region: str,
    gas_kind: str,
    owners: Mapping[str, Sequence[Ownership]] | None = None,
) -> pd.DataFrame:
    """The plan for ``meters`` = [(id, enterprise_id, carrier, role)] over [first, end).

    ``owners``: meter id -> its ownership periods in local days (``METER_OWNERSHIP``);
    each period gets its own rows, stamped with (and choosing the factor overrides of)
    the enterprise that owned the meter then. Days without a period (all days of a
    meter without any) are stamped with its registry enterprise."""
    rows: list[dict[str, Any]] = []
    cache: dict[tuple, list[dict[str, Any]]] = {}
    owners = owners or {}
    for meter_id, registry_enterprise, carrier, role in meters:
        keys = needed_keys(carrier, role, region=region, gas_kind=gas_kind)
        key_names = {k for k, _ in keys.values()}
        own = [f for k in key_names for f in library.candidates(k)]
        has_meter = any(f.entry.meter == meter_id for f in own)
        spans = _owned_spans(registry_enterprise, owners.get(meter_id), first_day, end_day)
        for enterprise_id, o0, o1 in spans:
            has_own = any(f.entry.enterprise == enterprise_id for f in own)
            ck = (
                carrier,
                role,
                enterprise_id if has_own else None,
                meter_id if has_meter else None,
            )
            if ck not in cache:
                cuts = {first_day, end_day}
                cuts |= {date(y, 1, 1) for y in range(first_day.year, end_day.year + 1)}
                cuts |= library.boundaries(key_names)
                points = sorted(d for d in cuts if first_day <= d <= end_day)
                segs: list[dict[str, Any]] = []
                for d0, d1 in pairwise(points):
                    seg = _segment(library, keys, d0, enterprise_id, carrier, role, meter_id)
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
                if seg["d1"] <= o0 or seg["d0"] >= o1:
                    continue  # outside this owner's days
                rows.append(
                    {
                        **seg,
                        "d0": max(seg["d0"], o0),
                        "d1": min(seg["d1"], o1),
                        "meter_id": meter_id,
                        "enterprise_id": enterprise_id,
                        "carrier": carrier,
                        "role": role,
                        "unit": CANONICAL_UNIT[Carrier(carrier)],
                    }
                )
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)
