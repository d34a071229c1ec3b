"""Units: canonical conversion per carrier, practice units, clear refusals."""

from __future__ import annotations

import pytest

from parkcarbon.errors import UnitError
from parkcarbon.units import canonical_factor, to_canonical


@pytest.mark.parametrize(
    ("unit", "carrier", "factor"),
    [
        ("kWh", "electricity", 1.0),
        ("度", "electricity", 1.0),
        ("千瓦时", "electricity", 1.0),
        ("MWh", "electricity", 1000.0),
        ("万kWh", "electricity", 10_000.0),
        ("m³", "natural_gas", 1.0),
        ("Nm3", "natural_gas", 1.0),
        ("万m³", "natural_gas", 10_000.0),
        ("t", "water", 1.0),  # 1 t of water = 1 m³
        ("GJ", "heat", 1.0),
        ("MJ", "heat", 0.001),
        ("吨标准煤", "heat", 29.271),  # GB/T 2589-2020: 1 kgce = 29 271 kJ
        ("tce", "heat", 29.271),
        ("t", "steam", 1.0),
        ("kg", "diesel", 0.001),
        ("吨", "coal", 1.0),
    ],
)
def test_factors(unit: str, carrier: str, factor: float) -> None:
    assert canonical_factor(unit, carrier) == pytest.approx(factor, rel=1e-12)


def test_to_canonical() -> None:
    # 2.5 万kWh = 25 000 kWh
    assert to_canonical(2.5, "万kWh", "electricity") == pytest.approx(25_000)


@pytest.mark.parametrize(
    ("unit", "carrier", "message"),
    [
        ("kWh", "natural_gas", "unit 'kWh' cannot measure natural_gas"),
        ("m3", "electricity", "unit 'm3' cannot measure electricity"),
        ("L", "diesel", "diesel is accounted by mass"),
        ("bananas", "water", "unit 'bananas' is not understood"),
        ("万", "water", "unit '万' is not understood"),
        ("kWh", "uranium", "unknown carrier 'uranium'"),
    ],
)
def test_refusals(unit: str, carrier: str, message: str) -> None:
    with pytest.raises(UnitError, match=message):
        canonical_factor(unit, carrier)
