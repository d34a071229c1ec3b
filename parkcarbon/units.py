"""One pint registry for the whole project, with Chinese practice units.

Every carrier has a canonical unit; readings are stored in it:

=============  ==========  =====================================================
carrier        canonical   also accepted
=============  ==========  =====================================================
electricity    kWh         Wh, MWh, GWh, 度, 千瓦时, 万kWh, 万度, MJ, GJ (energy)
natural_gas    m³          Nm³ (normal cubic metre), 方, 立方米, 万m³, 万Nm³, L
water          m³          t / 吨 (1 t of water = 1 m³), L, 万m³, 万吨
heat           GJ          MJ, kWh, 百万千焦, tce / 吨标准煤 (29.271 GJ per tce)
steam          t           kg, 吨, 万吨 (mass of steam)
diesel         t           kg, 吨 (mass: litres need a density and are refused)
coal           t           kg, 吨, 万吨
=============  ==========  =====================================================

``canonical_factor(unit, carrier)`` gives the multiplier from ``unit`` to the
carrier's canonical unit, or raises ``UnitError`` naming the unit and carrier.
It is cached: ingest calls it for every reading.

``SLOT_SECONDS`` is the length of a usage slot (15 minutes): counters become usage per
slot, and every rollup, accounting run and panel counts in whole slots.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache

import pint

from parkcarbon.errors import UnitError

# Usage slots are 15 minutes, UTC-aligned (schema 0001_core: ``usage.ts``), the
# resolution of China's online energy-monitoring rules; every UTC offset in use is a
# multiple of 15 minutes, so local hours and days are whole slots.
SLOT_SECONDS = 900

ureg: pint.UnitRegistry = pint.UnitRegistry(cache_folder=None, autoconvert_offset_to_baseunit=True)
# GB/T 2589-2020: 1 kgce = 29 271 kJ (7 000 kcal).
ureg.define("kilogram_coal_equivalent = 29271 * kilojoule = kgce")
ureg.define("tonne_coal_equivalent = 1000 * kilogram_coal_equivalent = tce")
# Gas is metered at normal conditions (0 °C, 101.325 kPa); the volume unit is the same.
ureg.define("normal_cubic_meter = meter ** 3 = Nm3")
Q_ = ureg.Quantity


class Carrier(StrEnum):
    electricity = "electricity"
    natural_gas = "natural_gas"
    water = "water"
    heat = "heat"
    steam = "steam"
    diesel = "diesel"
    coal = "coal"


CANONICAL_UNIT: dict[Carrier, str] = {
    Carrier.electricity: "kWh",
    Carrier.natural_gas: "m3",
    Carrier.water: "m3",
    Carrier.heat: "GJ",
    Carrier.steam: "t",
    Carrier.diesel: "t",
    Carrier.coal: "t",
}

_PINT_CANONICAL = {
    "kWh": "kilowatt_hour",
    "m3": "meter ** 3",
    "GJ": "gigajoule",
    "t": "metric_ton",
}

# Practice spellings -> pint expressions. Keys are matched after whitespace removal
# and superscript folding (m³ -> m3).
_ALIASES: dict[str, str] = {
    "kWh": "kilowatt_hour",
    "kwh": "kilowatt_hour",
    "KWh": "kilowatt_hour",
    "KWH": "kilowatt_hour",
    "度": "kilowatt_hour",
    "千瓦时": "kilowatt_hour",
    "千瓦·时": "kilowatt_hour",
    "Wh": "watt_hour",
    "MWh": "megawatt_hour",
    "GWh": "gigawatt_hour",
    "兆瓦时": "megawatt_hour",
    "m3": "meter ** 3",
    "Nm3": "normal_cubic_meter",
    "nm3": "normal_cubic_meter",
    "方": "meter ** 3",
    "立方米": "meter ** 3",
    "标方": "normal_cubic_meter",
    "L": "liter",
    "l": "liter",
    "升": "liter",
    "t": "metric_ton",
    "吨": "metric_ton",
    "kg": "kilogram",
    "千克": "kilogram",
    "公斤": "kilogram",
    "GJ": "gigajoule",
    "吉焦": "gigajoule",
    "MJ": "megajoule",
    "兆焦": "megajoule",
    "百万千焦": "gigajoule",
    "kJ": "kilojoule",
    "tce": "tonne_coal_equivalent",
    "吨标准煤": "tonne_coal_equivalent",
    "吨标煤": "tonne_coal_equivalent",
    "kgce": "kilogram_coal_equivalent",
    "千克标准煤": "kilogram_coal_equivalent",
}

_SUPERSCRIPTS = str.maketrans({"³": "3", "²": "2"})
_WAN = "万"  # 10^4, as in 万kWh, 万m³


def _parse(unit: str) -> pint.Quantity:
    text = re.sub(r"\s+", "", unit).translate(_SUPERSCRIPTS)
    scale = 1.0
    if text.startswith(_WAN):
        scale, text = 1e4, text[len(_WAN) :]
    if not text:
        raise UnitError(f"unit {unit!r} is not understood")
    expr = _ALIASES.get(text, text)
    try:
        quantity = Q_(scale, ureg.parse_units(expr))
    except (pint.errors.PintError, AttributeError, TypeError, ValueError, SyntaxError) as exc:
        raise UnitError(f"unit {unit!r} is not understood") from exc
    return quantity


@lru_cache(maxsize=4096)
def canonical_factor(unit: str, carrier: Carrier | str) -> float:
    """Multiplier taking a value in ``unit`` to ``carrier``'s canonical unit.

    >>> canonical_factor("万kWh", "electricity")
    10000.0
    """
    try:
        carrier = Carrier(carrier)
    except ValueError as exc:
        raise UnitError(f"unknown carrier {carrier!r}") from exc
    quantity = _parse(unit)
    target = ureg.parse_units(_PINT_CANONICAL[CANONICAL_UNIT[carrier]])
    if carrier is Carrier.water and quantity.dimensionality == ureg.kilogram.dimensionality:
        # Water is metered by volume or by mass; 1 t of water is 1 m³.
        quantity = Q_(quantity.to(ureg.metric_ton).magnitude, ureg.meter**3)
    if quantity.dimensionality != (1 * target).dimensionality:
        hint = ""
        if carrier is Carrier.diesel and quantity.dimensionality == ureg.liter.dimensionality:
            hint = " (diesel is accounted by mass; convert litres with the delivery's density)"
        raise UnitError(f"unit {unit!r} cannot measure {carrier.value}{hint}")
    return float(quantity.to(target).magnitude)


def to_canonical(value: float, unit: str, carrier: Carrier | str) -> float:
    """``value`` in ``unit`` expressed in the carrier's canonical unit."""
    return value * canonical_factor(unit, carrier)
