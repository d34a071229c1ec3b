"""The factor library: versioned, dated, cited emission and standard-coal factors.

The shipped library (``carbon/data/factors.yaml``) is built from the project's factor
reference; a park file (``settings.factors_file``, same layout) overrides it, and an
entry with ``enterprise: E01`` overrides it for one enterprise only. Every factor is
converted with pint to tonnes per canonical unit of its carrier (t CO2/kWh, tce/m³...),
so a unit that does not fit the carrier is refused with a message naming the entry.

Each factor gets a content-addressed ``version_id`` (key/region/year/scope/hash): a
changed value is a new version, and stored figures name the versions they used.

Selection for a meter on a local day (``FactorLibrary.select``): meter override
(``meter: E01-GAS-1``, e.g. a measured heating value or the declared steam enthalpy),
then enterprise override, then park override, then library; among entries valid on
that day, an annual series (``annual: true``, electricity) takes its own year or else
the latest earlier year, flagged ``earlier_year``; with no year at or before the day,
the earliest year is used, flagged ``later_year``. ``unconfirmed`` factors are flagged
wherever they are used.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import pint
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from parkcarbon.carbon import queries as Q
from parkcarbon.carbon.errors import FactorError, MissingFactorError
from parkcarbon.units import CANONICAL_UNIT, Carrier, ureg
from parkcarbon.yamlfile import read_yaml

log = logging.getLogger(__name__)

CO2_PER_C = 44.0 / 12.0  # molar mass ratio CO2 / C
Origin = Literal["library", "park", "enterprise", "meter"]
TIER = {"meter": 0, "enterprise": 1, "park": 2, "library": 3}  # lower wins
_TIER = TIER
_PINT_CANONICAL = {"kWh": "kilowatt_hour", "m3": "meter**3", "GJ": "gigajoule", "t": "metric_ton"}
_NUMERATOR = {"co2": ("metric_ton", "t"), "tce": ("tonne_coal_equivalent", "tce")}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Component(_Model):
    value: float = Field(gt=0)
    unit: str = Field(min_length=1)


class FactorEntry(_Model):
    """One factor as written in YAML."""

    key: str = Field(pattern=r"^(co2|tce|param)\.[a-z_]+(\.[a-z_]+)?$")
    region: str = "any"
    year: int = Field(ge=1990, le=2100, description="the year the factor describes")
    value: float | None = Field(None, gt=0)
    unit: str | None = None
    components: dict[str, Component | float] | None = None
    basis: str = "location"
    gas: str = "CO2"
    annual: bool = False
    valid_from: date | None = None
    valid_to: date | None = None
    unconfirmed: bool = False
    confidence: str = Field(min_length=1)
    source: str = Field(min_length=1)
    enterprise: str | None = None
    meter: str | None = None

    @model_validator(mode="after")
    def _check(self) -> FactorEntry:
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        return self


def _per_gj(entry: FactorEntry, base: FactorEntry | None) -> tuple[float | None, float | None]:
    """(t CO2 per GJ, the entry's own NCV in GJ per canonical unit) of a fuel factor given
    by components (CC x OF x 44/12, and the NCV it states itself, not inherited)."""
    if entry.value is not None or entry.key.split(".")[0] != "co2":
        return None, None
    comps = dict(base.components or {}) if base is not None else {}
    comps.update(entry.components or {})
    cc, ox = comps.get("carbon_content"), comps.get("oxidation")
    if not isinstance(cc, Component) or ox is None:
        return None, None
    ox_v = ox.value if isinstance(ox, Component) else float(ox)
    per_gj = float(_quantity(cc.value, cc.unit).to("metric_ton / gigajoule").magnitude)
    own = (entry.components or {}).get("ncv")
    ncv = None
    if isinstance(own, Component):
        canonical = _PINT_CANONICAL[CANONICAL_UNIT[_carrier_of(entry.key)]]
        ncv = float(_quantity(own.value, own.unit).to(f"gigajoule / ({canonical})").magnitude)
    return per_gj * ox_v * CO2_PER_C, ncv


@dataclass(frozen=True)
class Factor:
    """A resolved factor: the entry plus its value per canonical unit and its version."""

    entry: FactorEntry
    origin: Origin
    per_canonical: float  # t CO2, tce or GJ per canonical unit of the carrier
    canonical_unit: str  # e.g. "t/kWh", "tce/m3", "GJ/t"
    version_id: str
    per_gj: float | None = None  # fuel by components: t CO2 per GJ (CC x OF x 44/12)
    own_ncv: float | None = None  # GJ per canonical unit, when the entry states its NCV

    @property
    def key(self) -> str:
        return self.entry.key

    def valid_on(self, day: date) -> bool:
        e = self.entry
        return (e.valid_from is None or e.valid_from <= day) and (
            e.valid_to is None or day < e.valid_to
        )


@dataclass(frozen=True)
class Selection:
    factor: Factor
    flags: tuple[str, ...]


# Parameters: heat content per canonical unit (GJ/t steam enthalpy, GJ/m3 gas NCV).
PARAMS = {"param.steam.enthalpy": Carrier.steam, "param.natural_gas.ncv": Carrier.natural_gas}


def _carrier_of(key: str) -> Carrier:
    if key in PARAMS:
        return PARAMS[key]
    return Carrier(key.split(".")[1])


def target_unit(key: str) -> tuple[str, str]:
    """(pint expression, label) of the canonical unit of a factor key."""
    canonical = CANONICAL_UNIT[_carrier_of(key)]
    if key in PARAMS:
        return f"gigajoule / ({_PINT_CANONICAL[canonical]})", f"GJ/{canonical}"
    pint_num, label = _NUMERATOR[key.split(".")[0]]
    return f"{pint_num} / ({_PINT_CANONICAL[canonical]})", f"{label}/{canonical}"


def _quantity(value: float, unit: str) -> pint.Quantity:
    return value * ureg.parse_expression(unit)


def _convert(entry: FactorEntry, base: FactorEntry | None) -> float:
    target, label = target_unit(entry.key)
    if entry.value is not None:
        if not entry.unit:
            raise ValueError("unit is required with value")
        q = _quantity(entry.value, entry.unit)
    else:
        comps = dict(base.components or {}) if base is not None else {}
        comps.update(entry.components or {})
        missing = {"ncv", "carbon_content", "oxidation"} - set(comps)
        if missing:
            raise ValueError(f"needs value+unit or components; missing {sorted(missing)}")
        parts = []
        for name in ("ncv", "carbon_content"):
            c = comps[name]
            if not isinstance(c, Component):
                raise ValueError(f"components.{name} needs value and unit")
            parts.append(_quantity(c.value, c.unit))
        oxidation = comps["oxidation"]
        ox = oxidation.value if isinstance(oxidation, Component) else float(oxidation)
        if not 0 < ox <= 1:
            raise ValueError("components.oxidation must be in (0, 1]")
        q = parts[0] * parts[1] * ox * CO2_PER_C
    try:
        return float(q.to(ureg.parse_expression(target)).magnitude)
    except pint.DimensionalityError as exc:
        unit = entry.unit or "components"
        what = {
            "co2": "a mass of CO2 (kg, t)",
            "tce": "coal equivalent (kgce, tce)",
            "param": "an energy (kJ, GJ)",
        }[entry.key.split(".")[0]]
        carrier = _carrier_of(entry.key)
        raise ValueError(
            f"unit {unit!r} cannot be converted to {label} (expected {what} per unit of "
            f"{carrier.value}, which is accounted in {CANONICAL_UNIT[carrier]})"
        ) from exc


def _version_id(entry: FactorEntry, origin: Origin, per_canonical: float) -> str:
    payload = entry.model_dump(mode="json", exclude={"confidence", "source"})
    if payload.get("meter") is None:  # ids of factors without a meter scope stay as before
        payload.pop("meter", None)
    payload["per_canonical"] = round(per_canonical, 12)
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:8]
    scope = entry.meter or entry.enterprise or ("park" if origin == "park" else "lib")
    return f"{entry.key}/{entry.region}/{entry.year}/{scope}/{digest}"


def _read(path: Path | Any, label: str) -> list[Any]:
    data = read_yaml(path, what="factor file", error=FactorError)
    if not isinstance(data, dict) or not isinstance(data.get("factors"), list):
        raise FactorError(f"{label}: expected a mapping with a 'factors' list")
    return list(data["factors"])


class FactorLibrary:
    """All factors, shipped and overridden, resolved to canonical units."""

    def __init__(self, factors: list[Factor]) -> None:
        self.factors = tuple(factors)
        self._by_key: dict[str, list[Factor]] = {}
        for f in self.factors:
            self._by_key.setdefault(f.key, []).append(f)

    def by_id(self) -> dict[str, Factor]:
        return {f.version_id: f for f in self.factors}

    def candidates(self, key: str) -> list[Factor]:
        return self._by_key.get(key, [])

    def select(
        self,
        key: str,
        day: date,
        *,
        region: str | None = None,
        enterprise: str | None = None,
        meter: str | None = None,
    ) -> Selection:
        pool = [
            f
            for f in self.candidates(key)
            if (region is None or f.entry.region in (region, "any"))
            and (f.entry.enterprise is None or f.entry.enterprise == enterprise)
            and (f.entry.meter is None or f.entry.meter == meter)
            and f.valid_on(day)
        ]
        if not pool:
            raise MissingFactorError(
                f"no factor {key}{f' ({region})' if region else ''} applies on {day}",
                hint="add one to the park factor file (settings factors_file)",
            )
        pool.sort(key=lambda f: (_TIER[f.origin], -f.entry.year))
        flags: list[str] = []
        if any(f.entry.annual for f in pool):
            earlier = [f for f in pool if f.entry.year <= day.year]
            if earlier:
                chosen = earlier[0]
                if chosen.entry.year < day.year:
                    flags.append(f"earlier_year:{key}:{chosen.entry.year}")
            else:
                chosen = min(pool, key=lambda f: (_TIER[f.origin], f.entry.year))
                flags.append(f"later_year:{key}:{chosen.entry.year}")
        else:
            best_tier = _TIER[pool[0].origin]
            tier = [f for f in pool if _TIER[f.origin] == best_tier]
            chosen = max(tier, key=lambda f: (f.entry.valid_from or date.min, f.entry.year))
        if chosen.entry.unconfirmed:
            flags.append(f"unconfirmed:{key}")
        return Selection(chosen, tuple(flags))

    def boundaries(self, keys: set[str]) -> set[date]:
        """Dates where the factor choice for these keys may change (besides 1 January)."""
        out: set[date] = set()
        for key in keys:
            for f in self.candidates(key):
                out.update(d for d in (f.entry.valid_from, f.entry.valid_to) if d is not None)
        return out


def _resolve(
    raw: list[Any], label: str, origin: Origin, base: dict[str, FactorEntry], problems: list[str]
) -> list[Factor]:
    out: list[Factor] = []
    for i, item in enumerate(raw):
        where = f"{label}: factors[{i}]"
        if isinstance(item, dict) and item.get("key"):
            where += f" ({item['key']}, {item.get('year', '?')})"
        try:
            entry = FactorEntry.model_validate(item)
            per = _convert(entry, base.get(entry.key))
            per_gj, own_ncv = _per_gj(entry, base.get(entry.key))
        except ValidationError as exc:
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"])
                problems.append(f"{where}: {field}: {err['msg']}")
            continue
        except (ValueError, pint.PintError, AttributeError) as exc:
            problems.append(f"{where}: {exc}")
            continue
        kind: Origin = "meter" if entry.meter else "enterprise" if entry.enterprise else origin
        out.append(
            Factor(
                entry,
                kind,
                per,
                target_unit(entry.key)[1],
                _version_id(entry, kind, per),
                per_gj,
                own_ncv,
            )
        )
    return out


def load_library(overrides: Path | str | None = None) -> FactorLibrary:
    """The shipped library plus an optional park override file. Lists every problem."""
    problems: list[str] = []
    shipped = resources.files("parkcarbon.carbon").joinpath("data/factors.yaml")
    factors = _resolve(
        _read(shipped, "factors.yaml (shipped)"), "factors.yaml (shipped)", "library", {}, problems
    )
    base: dict[str, FactorEntry] = {}
    for f in sorted(factors, key=lambda f: f.entry.year):
        base[f.key] = f.entry
    if overrides is not None:
        path = Path(overrides)
        factors += _resolve(_read(path, str(path)), str(path), "park", base, problems)
    if problems:
        raise FactorError(problems)
    return FactorLibrary(factors)


def sync_factors(conn: Any, library: FactorLibrary) -> int:
    """Store every factor version (never deleted: old reports name them). New ones count."""
    rows = [
        (
            f.version_id,
            f.key,
            f.entry.region,
            f.entry.basis,
            f.entry.gas,
            f.entry.year,
            f.entry.value,
            f.entry.unit,
            json.dumps(
                {
                    k: (v.model_dump() if isinstance(v, Component) else v)
                    for k, v in (f.entry.components or {}).items()
                }
            )
            if f.entry.components
            else None,
            f.per_canonical,
            f.canonical_unit,
            f.entry.valid_from,
            f.entry.valid_to,
            f.entry.annual,
            f.entry.unconfirmed,
            f.entry.confidence,
            f.entry.source,
            f.origin,
            f.entry.enterprise,
            f.entry.meter,
        )
        for f in library.factors
    ]
    with conn.cursor() as cur:
        cur.execute(Q.COUNT_FACTORS)
        before = cur.fetchone()[0]
        cur.executemany(
            Q.INSERT_FACTOR,
            rows,
        )
        cur.execute(Q.COUNT_FACTORS)
        added = int(cur.fetchone()[0] - before)
    if added:
        log.info("stored %d new factor version(s)", added)
    return added
