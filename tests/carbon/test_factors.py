"""Factor library, periods, economics and targets files: no database needed."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from parkcarbon.carbon.economics import parse_economics, parse_energy_kwh
from parkcarbon.carbon.errors import FactorError, TargetsError
from parkcarbon.carbon.factors import load_library
from parkcarbon.carbon.models import parse_period
from parkcarbon.carbon.targets import load_targets, parse_targets
from parkcarbon.errors import PeriodError, UnitError
from support import ROOT


def test_every_shipped_factor_is_cited_dated_and_converted() -> None:
    lib = load_library()
    assert len(lib.factors) >= 25
    for f in lib.factors:
        assert f.entry.source and f.entry.confidence and f.entry.year
        assert f.per_canonical > 0
        assert f.version_id.startswith(f.key + "/")
    ids = [f.version_id for f in lib.factors]
    assert len(ids) == len(set(ids))


def test_natural_gas_factor_from_ncv_carbon_content_oxidation() -> None:
    # E = NCV x CC x OF x 44/12 = 389.31 GJ/1e4 m3 x 0.0153 tC/GJ x 0.99 x 44/12
    #   = 21.622 tCO2 / 1e4 m3 = 0.0021622 tCO2/m3
    gas = load_library().select("co2.natural_gas", date(2026, 1, 1)).factor
    assert gas.canonical_unit == "t/m3"
    assert gas.per_canonical == pytest.approx(389.31e-4 * 0.0153 * 0.99 * 44 / 12, rel=1e-12)
    assert 100_000 * gas.per_canonical == pytest.approx(216.2, abs=0.05)
    # diesel: 42.652 GJ/t x 0.0202 x 0.98 x 44/12 = 3.096 tCO2/t
    diesel = load_library().select("co2.diesel", date(2026, 1, 1)).factor
    assert diesel.per_canonical == pytest.approx(3.096, abs=0.0005)


def test_latest_earlier_year_applies_and_is_flagged() -> None:
    lib = load_library()
    sel = lib.select("co2.electricity.location", date(2026, 3, 1), region="xinjiang")
    assert sel.factor.entry.year == 2023
    assert sel.factor.per_canonical == pytest.approx(0.6021e-3)  # kg/kWh -> t/kWh
    assert "earlier_year:co2.electricity.location:2023" in sel.flags
    own = lib.select("co2.electricity.location", date(2022, 5, 1), region="xinjiang")
    assert own.factor.entry.year == 2022 and own.flags == ()
    northwest = lib.select("co2.electricity.location", date(2023, 5, 1), region="northwest")
    assert northwest.factor.per_canonical == pytest.approx(0.5543e-3)


def test_unconfirmed_values_are_flagged_and_ets_is_not_default() -> None:
    lib = load_library()
    # 2021 market remainder is UNCONFIRMED in the reference: not shipped, 2022 used, flagged
    sel = lib.select("co2.electricity.market_remainder", date(2021, 6, 1))
    assert sel.factor.entry.year == 2022
    assert "later_year:co2.electricity.market_remainder:2022" in sel.flags
    coal = lib.select("co2.coal", date(2026, 1, 1))
    assert "unconfirmed:co2.coal" in coal.flags
    ets = lib.select("co2.electricity.ets", date(2024, 1, 1))
    assert ets.factor.per_canonical == pytest.approx(0.5703e-3)
    assert "unconfirmed:co2.electricity.ets" in ets.flags
    assert all(f.entry.basis == "ets" for f in lib.candidates("co2.electricity.ets"))


def test_unit_mix_up_in_an_override_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    bad = tmp_path / "factors.yaml"
    bad.write_text(
        "factors:\n"
        "  - {key: co2.natural_gas, year: 2026, value: 2.162, unit: kg/kWh,\n"
        "     confidence: measured, source: supplier certificate}\n"
        "  - {key: tce.electricity.equivalent, year: 2026, value: 0.1229, unit: kg/kWh,\n"
        "     confidence: x, source: y}\n",
        encoding="utf-8",
    )
    with pytest.raises(FactorError) as err:
        load_library(bad)
    text = str(err.value)
    assert "factors[0] (co2.natural_gas, 2026)" in text
    assert "unit 'kg/kWh' cannot be converted to t/m3" in text
    assert "expected a mass of CO2 (kg, t) per unit of natural_gas" in text
    assert "which is accounted in m3" in text
    assert "factors[1]" in text and "tce/kWh" in text  # kg is a mass, not coal equivalent
    assert len(err.value.problems) == 2


def test_enterprise_measured_ncv_overrides_for_that_enterprise_only(tmp_path: Path) -> None:
    path = tmp_path / "factors.yaml"
    path.write_text(
        "factors:\n"
        "  - key: co2.natural_gas\n"
        "    year: 2026\n"
        "    enterprise: E02\n"
        "    components: {ncv: {value: 400.0, unit: 'GJ / (10000 m**3)'}}\n"
        "    confidence: measured monthly by the enterprise lab\n"
        "    source: E02 gas quality report 2026\n",
        encoding="utf-8",
    )
    lib = load_library(path)
    e02 = lib.select("co2.natural_gas", date(2026, 2, 1), enterprise="E02").factor
    e01 = lib.select("co2.natural_gas", date(2026, 2, 1), enterprise="E01").factor
    # 400 GJ/1e4 m3 x 0.0153 (library) x 0.99 (library) x 44/12
    assert e02.per_canonical == pytest.approx(400e-4 * 0.0153 * 0.99 * 44 / 12)
    assert e02.origin == "enterprise" and "/E02/" in e02.version_id
    assert e01.per_canonical == pytest.approx(389.31e-4 * 0.0153 * 0.99 * 44 / 12)


def test_periods() -> None:
    assert parse_period("2026-01").end == date(2026, 2, 1)
    assert parse_period("2026-12").end == date(2027, 1, 1)
    assert parse_period("2026").days == 365
    assert parse_period("2028-02-29").kind == "day"
    for bad in ("2026-13", "26-01", "2026/01", "2026-02-30"):
        with pytest.raises(PeriodError):
            parse_period(bad)


def test_economics_units_and_problems_listed() -> None:
    assert parse_energy_kwh("1.5 万kWh") == pytest.approx(15_000)
    assert parse_energy_kwh("2 MWh") == pytest.approx(2_000)
    with pytest.raises(UnitError, match="cannot measure electricity"):
        parse_energy_kwh("500 m3")
    data = {
        "records": [
            {"enterprise": "E01", "months": "2026-01..2026-03", "value_added_10k_cny": 10},
            {"enterprise": "E99", "months": "2026-01", "green_power": "500 m3"},
            {"enterprise": "E02", "months": "2026-14", "tax_10k_cny": -1},
            {"enterprise": "E01", "months": "2026-03"},
        ]
    }
    with pytest.raises(TargetsError) as err:
        parse_economics(data, "econ.yaml", {"E01", "E02"})
    text = str(err.value)
    assert "records[1] (E99 2026-01): green_power: unit 'm3' cannot measure electricity" in text
    assert "records[2]" in text and "tax_10k_cny" in text
    assert "E01 2026-03 appears twice" in text
    ok = parse_economics(data["records"][0:1] and {"records": data["records"][0:1]})
    assert len(ok.records[0].months) == 3


def test_example_targets_validate_and_pathway_arithmetic() -> None:
    ids = {f"E{i:02d}" for i in range(1, 15)}
    targets = load_targets(ROOT / "config" / "targets.yaml", ids)
    e12 = next(s for s in targets.enterprises if s.id == "E12")
    # linear 2020 -> 2026: 300,000 + (360,000 - 300,000) x 3/6 = 330,000
    assert e12.cap(2023) == (pytest.approx(330_000), "pathway")
    # after the peak: 360,000 x (1 - 0.04)^2 = 331,776
    assert e12.cap(2028)[0] == pytest.approx(331_776)
    # the example's weights sum to 12: the months' budgets sum to the cap as written
    assert sum(targets.month_weights(2026)) == pytest.approx(1.0)


def test_targets_problems_are_all_listed() -> None:
    data = {
        "budget_profile": "seasonal",
        "seasonal_weights": [1, 2],
        "enterprises": [{"id": "E01", "annual": {2026: {"cap_co2_t": -5}}}, {"id": "E77"}],
    }
    with pytest.raises(TargetsError) as err:
        parse_targets(data, "targets.yaml", {"E01"})
    text = str(err.value)
    assert "enterprises[0] (E01).annual.2026.cap_co2_t" in text
    assert "seasonal_weights" in text
    with pytest.raises(TargetsError, match=r"enterprises\[1\] \(E77\): id: unknown"):
        parse_targets({"enterprises": [{"id": "E01"}, {"id": "E77"}]}, "t.yaml", {"E01"})
