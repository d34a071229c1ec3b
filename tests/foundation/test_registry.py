"""The park registry: the example loads; broken files are rejected naming file, entry, field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from parkcarbon.errors import ConfigError
from parkcarbon.registry import load_registry, uscc_check_char
from support import EXAMPLE_REGISTRY


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "park.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _example() -> dict:
    return yaml.safe_load(EXAMPLE_REGISTRY.read_text(encoding="utf-8"))


def test_example_registry_is_a_realistic_park() -> None:
    reg = load_registry(EXAMPLE_REGISTRY)
    summary = reg.summary()
    assert summary["enterprises"] >= 12
    sectors = set(summary["enterprises_by_sector"])
    assert {"energy_chemical", "new_materials", "equipment", "logistics", "data_centre"} <= sectors
    # every enterprise has electricity; most have gas and water; some PV and steam
    by_enterprise: dict[str, set[str]] = {}
    for m in reg.meters:
        by_enterprise.setdefault(m.enterprise, set()).add(m.carrier.value)
    assert all("electricity" in c for c in by_enterprise.values())
    assert sum("natural_gas" in c for c in by_enterprise.values()) > len(by_enterprise) / 2
    assert sum("water" in c for c in by_enterprise.values()) > len(by_enterprise) / 2
    assert summary["meters_by_role"]["onsite_pv"] >= 2
    assert summary["meters_by_carrier"]["steam"] >= 2


def test_credit_code_check_character() -> None:
    # GB 32100-2015 worked example: 91350100M000100Y4 -> check character 3
    assert uscc_check_char("91350100M000100Y4") == "3"


def test_unit_that_cannot_measure_the_carrier_names_file_entry_field(tmp_path: Path) -> None:
    data = _example()
    index = next(i for i, m in enumerate(data["meters"]) if m["id"] == "E07-GAS-1")
    data["meters"][index]["unit"] = "kWh"
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_registry(path)
    assert str(info.value) == (
        f"{path}: meters[{index}] (E07-GAS-1): unit 'kWh' cannot measure natural_gas"
    )


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    data = _example()
    data["enterprises"][0]["credit_code"] = "91652923ABCDEFGH1X"  # wrong check char
    data["enterprises"][1]["land_area_mu"] = -3
    data["meters"][0]["enterprise"] = "NOPE"
    data["meters"][1]["carrier"] = "plutonium"
    data["meters"][2]["multipler"] = 40  # typo: unknown field
    data["meters"].append(dict(data["meters"][3]))  # duplicate id
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_registry(path)
    problems = info.value.problems
    text = "\n".join(problems)
    assert len(problems) == 6, text
    assert "enterprises[0] (E01): credit_code: check character" in text
    assert "enterprises[1] (E02): land_area_mu: Input should be greater than 0" in text
    assert "meters[0] (E01-ELEC-1): enterprise: unknown enterprise 'NOPE'" in text
    assert "meters[1] (E01-GAS-1): carrier: Input should be" in text
    assert "meters[2] (E01-WATER-1): multipler: Extra inputs are not permitted" in text
    assert f"meters: id {data['meters'][3]['id']!r} appears 2 times" in text
    assert all(p.startswith(f"{path}: ") for p in problems)


def test_ids_must_be_topic_safe(tmp_path: Path) -> None:
    data = _example()
    data["meters"][0]["id"] = "E01/ELEC+1"
    with pytest.raises(ConfigError, match=r"meters\[0\] \(E01/ELEC\+1\): id: String should match"):
        load_registry(_write(tmp_path, data))


def test_rollover_only_on_cumulative(tmp_path: Path) -> None:
    data = _example()
    meter = next(m for m in data["meters"] if m.get("counter") == "interval")
    meter["rollover"] = 1000
    with pytest.raises(ConfigError, match="rollover only applies to cumulative counters"):
        load_registry(_write(tmp_path, data))


def test_not_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("park: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML \(line 2"):
        load_registry(bad)
    with pytest.raises(ConfigError, match="registry file not found"):
        load_registry(tmp_path / "absent.yaml")


def test_chinese_practice_units_accepted(tmp_path: Path) -> None:
    data = _example()
    data["meters"][0]["unit"] = "万kWh"
    gas = next(m for m in data["meters"] if m["carrier"] == "natural_gas")
    gas["unit"] = "万Nm³"
    water = next(m for m in data["meters"] if m["carrier"] == "water")
    water["unit"] = "吨"
    reg = load_registry(_write(tmp_path, data))
    assert reg.meter(data["meters"][0]["id"]).unit_factor == 10_000
    assert reg.meter(gas["id"]).unit_factor == 10_000
    assert reg.meter(water["id"]).unit_factor == 1.0
