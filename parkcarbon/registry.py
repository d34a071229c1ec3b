"""The park registry: park, enterprises and meters, loaded from YAML into frozen models.

``load_registry(path)`` validates every entry and reports *all* problems at once, each
naming file, entry and field, e.g.::

    config/park.yaml: meters[12] (E07-GAS-1): unit 'kWh' cannot measure natural_gas

The file layout is documented in the README and shown by ``config/park.yaml``.
"""

from __future__ import annotations

import re
from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from parkcarbon.errors import ConfigError, UnitError
from parkcarbon.units import CANONICAL_UNIT, Carrier, canonical_factor
from parkcarbon.yamlfile import read_yaml

__all__ = [
    "Carrier",
    "Contact",
    "CounterType",
    "Enterprise",
    "Meter",
    "MeterRole",
    "Park",
    "Registry",
    "Replacement",
    "Sector",
    "load_registry",
    "registry_warnings",
    "uscc_check_char",
]

# A register wraps where its display runs out of digits: no real one wraps below 10
# units (a rollover of 0.001 dead-letters every reading as above the rollover).
MIN_ROLLOVER = 10.0

# Ids become MQTT topic levels and SQL keys: no '/', '+', '#', spaces.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_check_char(first17: str) -> str:
    """Check character of a unified social credit code (GB 32100-2015)."""
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31]


class Sector(StrEnum):
    energy_chemical = "energy_chemical"  # 石油天然气化工 (leading sector)
    new_materials = "new_materials"  # 新材料
    equipment = "equipment"  # 装备制造
    logistics = "logistics"  # 现代物流
    data_centre = "data_centre"  # 数据中心
    agri_processing = "agri_processing"  # 农副产品加工
    textiles = "textiles"  # 纺织服装
    building_materials = "building_materials"  # 建材
    services = "services"  # 园区服务
    other = "other"


class MeterRole(StrEnum):
    grid_import = "grid_import"  # purchased from the grid / supplier
    onsite_pv = "onsite_pv"  # on-site photovoltaic generation
    export = "export"  # fed back to the grid
    sub_meter = "sub_meter"  # below a main meter: never added to totals


class CounterType(StrEnum):
    cumulative = "cumulative"  # a register that only grows (until rollover/reset)
    interval = "interval"  # each reading is the amount used since the previous one


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Contact(_Model):
    name: str = Field(min_length=1)
    email: EmailStr | None = None
    phone: str | None = None
    webhook: str | None = Field(None, pattern=r"^https?://")


class Park(_Model):
    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1)
    name_zh: str | None = None
    timezone: str = "Asia/Shanghai"
    land_area_mu: float | None = Field(None, gt=0)
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {value!r}") from exc
        return value


class Enterprise(_Model):
    id: str = Field(pattern=ID_PATTERN)
    name_zh: str = Field(min_length=1)
    name_en: str | None = None
    credit_code: str | None = Field(None, description="Unified social credit code, 18 chars")
    sector: Sector
    land_area_mu: float = Field(gt=0, description="Land area in mu (1 mu = 666.67 m²)")
    contacts: tuple[Contact, ...] = ()

    @field_validator("credit_code")
    @classmethod
    def _uscc(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.upper()
        if len(value) != 18 or any(c not in _USCC_CHARS for c in value):
            raise ValueError("must be 18 characters of 0-9 and A-Y without I, O, S, V, Z")
        expected = uscc_check_char(value[:17])
        if value[17] != expected:
            raise ValueError(f"check character is {value[17]!r}, expected {expected!r}")
        return value


class Replacement(_Model):
    """A meter (register) swap: the old register's last value and the new one's first."""

    at: AwareDatetime
    final_reading: float = Field(ge=0, description="Old register at removal (meter unit)")
    initial_reading: float = Field(ge=0, description="New register at installation")
    note: str | None = None


class Meter(_Model):
    id: str = Field(pattern=ID_PATTERN)
    enterprise: str = Field(pattern=ID_PATTERN)
    carrier: Carrier
    role: MeterRole = MeterRole.grid_import
    counter: CounterType = CounterType.cumulative
    unit: str = Field(min_length=1, description="Unit the meter reports in")
    multiplier: float = Field(1.0, gt=0, description="CT/PT ratio or pulse weight")
    rollover: float | None = Field(
        None, gt=0, description="Register value at which the counter wraps to zero"
    )
    interval_seconds: int = Field(900, gt=0, le=86400, description="Expected reporting interval")
    replacements: tuple[Replacement, ...] = ()
    description: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Meter:
        try:
            canonical_factor(self.unit, self.carrier)
        except UnitError as exc:
            raise ValueError(str(exc)) from None
        if self.rollover is not None and self.counter is CounterType.interval:
            raise ValueError("rollover only applies to cumulative counters")
        if self.rollover is not None and self.rollover < MIN_ROLLOVER:
            raise ValueError(
                f"rollover {self.rollover:g} {self.unit} is below {MIN_ROLLOVER:g}: it is the "
                "register value where the display wraps to zero (e.g. 99999999); every "
                "reading above it would be dead-lettered")
        times = [r.at for r in self.replacements]
        if times != sorted(times) or len(set(times)) != len(times):
            raise ValueError("replacements must be in time order without repeats")
        return self

    @property
    def canonical_unit(self) -> str:
        return CANONICAL_UNIT[self.carrier]

    @property
    def unit_factor(self) -> float:
        """Multiplier from the meter's reporting unit to the canonical unit."""
        return canonical_factor(self.unit, self.carrier)


class Registry(_Model):
    park: Park
    enterprises: tuple[Enterprise, ...]
    meters: tuple[Meter, ...]
    source: str = "<memory>"

    def enterprise(self, enterprise_id: str) -> Enterprise:
        for e in self.enterprises:
            if e.id == enterprise_id:
                return e
        raise KeyError(enterprise_id)

    def meter(self, meter_id: str) -> Meter:
        return self.meters_by_id()[meter_id]

    def meters_by_id(self) -> dict[str, Meter]:
        return {m.id: m for m in self.meters}

    def summary(self) -> dict[str, Any]:
        """Counts for `parkcarbon config check`."""
        by_carrier = Counter(m.carrier.value for m in self.meters)
        by_role = Counter(m.role.value for m in self.meters)
        by_sector = Counter(e.sector.value for e in self.enterprises)
        return {
            "file": self.source,
            "park": self.park.name,
            "timezone": self.park.timezone,
            "enterprises": len(self.enterprises),
            "enterprises_by_sector": dict(sorted(by_sector.items())),
            "meters": len(self.meters),
            "meters_by_carrier": {c.value: by_carrier.get(c.value, 0) for c in Carrier},
            "meters_by_role": dict(sorted(by_role.items())),
        }


def _usual_rollover(value: float) -> bool:
    """10^n, 10^n - 1, 2^n or 2^n - 1 (within a display's last digit), as registers wrap."""
    import math

    for candidate in (value, value + 1):
        if candidate <= 0:
            continue
        for base in (10, 2):
            power = math.log(candidate, base)
            if abs(power - round(power)) < 1e-9:
                return True
    # 99999.9 / 999999.99: all nines with decimals
    digits = f"{value:.6f}".rstrip("0").replace(".", "")
    return set(digits) == {"9"}


def registry_warnings(registry: Registry) -> list[str]:
    """Values that are possible but odd, one line each (file, entry, field): shown by
    ``parkcarbon config check`` and logged by ``db migrate``; never a refusal."""
    out = []
    for i, m in enumerate(registry.meters):
        if m.rollover is not None and not _usual_rollover(m.rollover):
            out.append(f"{registry.source}: meters[{i}] ({m.id}): rollover: {m.rollover:g} is "
                       "not a power of ten or two (or one less): check the register's "
                       "last value before it wraps")
    return out


def _format_error(prefix: str, err: Any) -> str:
    loc = [str(p) for p in err["loc"] if p != "__root__"]
    field = ".".join(loc)
    msg = err["msg"]
    msg = re.sub(r"^(Value error|Assertion failed), ", "", msg)
    return f"{prefix}: {field}: {msg}" if field else f"{prefix}: {msg}"


def _entry_label(section: str, index: int, raw: Any) -> str:
    ident = raw.get("id") if isinstance(raw, dict) else None
    return f"{section}[{index}]" + (f" ({ident})" if ident else "")


def parse_registry(data: Any, source: str = "<memory>") -> Registry:
    """Validate a registry document (already parsed YAML). Collects every problem."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with park, enterprises, meters")
    unknown = set(data) - {"park", "enterprises", "meters"}
    problems += [f"{source}: {key}: unknown section" for key in sorted(unknown)]

    park: Park | None = None
    try:
        park = Park.model_validate(data.get("park"))
    except ValidationError as exc:
        problems += [_format_error(f"{source}: park", e) for e in exc.errors()]

    def section(name: str, model: type[_Model]) -> list[tuple[int, Any]]:
        raw_list = data.get(name)
        if not isinstance(raw_list, list) or not raw_list:
            problems.append(f"{source}: {name}: expected a non-empty list")
            return []
        out = []
        for i, raw in enumerate(raw_list):
            label = f"{source}: {_entry_label(name, i, raw)}"
            try:
                out.append((i, model.model_validate(raw)))
            except ValidationError as exc:
                problems.extend(_format_error(label, e) for e in exc.errors())
        return out

    enterprises: list[tuple[int, Enterprise]] = section("enterprises", Enterprise)
    meters: list[tuple[int, Meter]] = section("meters", Meter)

    for kind, items in (("enterprises", enterprises), ("meters", meters)):
        counts = Counter(item.id for _, item in items)
        problems += [
            f"{source}: {kind}: id {ident!r} appears {n} times"
            for ident, n in counts.items()
            if n > 1
        ]
    # Ids of every enterprise entry, valid or not, so one bad enterprise does not
    # also report each of its meters.
    raw_enterprises = data.get("enterprises")
    known = {
        e.get("id") for e in (raw_enterprises if isinstance(raw_enterprises, list) else [])
        if isinstance(e, dict)
    }
    for i, m in meters:
        if m.enterprise not in known:
            label = _entry_label("meters", i, {"id": m.id})
            problems.append(f"{source}: {label}: enterprise: unknown enterprise {m.enterprise!r}")
    if problems:
        raise ConfigError(problems)
    assert park is not None
    return Registry(
        park=park,
        enterprises=tuple(e for _, e in enterprises),
        meters=tuple(m for _, m in meters),
        source=source,
    )


def load_registry(path: Path | str) -> Registry:
    """Load and validate a registry YAML file; ``ConfigError`` lists every problem."""
    data = read_yaml(
        path, what="registry file", hint="set PARKCARBON_REGISTRY_FILE or pass --registry"
    )
    return parse_registry(data, source=str(path))
