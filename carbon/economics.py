"""Economic and green-power inputs per enterprise and month (config/economics.yaml).

Layout (every record covers one month or a range of months, figures per month)::

    records:
      - enterprise: E01
        months: 2026-01..2026-12        # or a single month: 2026-03
        value_added_10k_cny: 40000      # industrial value added, 10k CNY (万元)
        tax_10k_cny: 3000
        investment_10k_cny: 2000
        green_power: 1.5 万kWh           # green power trading contracts (any energy unit)
        green_certificates: 20          # green certificates (1 certificate = 1 MWh)

``load_economics(path, registry)`` validates everything and reports all problems at
once (file, record, field); energy amounts go through the shared pint registry, so
``green_power: 500 m3`` is refused with "unit 'm3' cannot measure electricity".
"""

from __future__ import annotations

import logging
import re
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from parkcarbon.carbon import queries as Q
from parkcarbon.carbon.errors import TargetsError
from parkcarbon.errors import UnitError
from parkcarbon.units import to_canonical
from parkcarbon.yamlfile import read_yaml

log = logging.getLogger(__name__)

KWH_PER_CERTIFICATE = 1000.0  # one green electricity certificate (GEC) = 1 MWh
_MONTHS = re.compile(r"^(\d{4})-(\d{2})(?:\.\.(\d{4})-(\d{2}))?$")
_AMOUNT = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*(.*)$")


def parse_energy_kwh(value: float | str) -> float:
    """A number (kWh) or "<number> <unit>" (万kWh, MWh, 度...) as kWh."""
    if isinstance(value, int | float):
        return float(value)
    m = _AMOUNT.match(str(value))
    if not m:
        raise UnitError(f"amount {value!r} is not '<number> <unit>'")
    number, unit = float(m.group(1)), m.group(2) or "kWh"
    return to_canonical(number, unit, "electricity")


def _month_range(text: str) -> list[date]:
    m = _MONTHS.match(str(text).strip())
    if not m:
        raise ValueError("months must be YYYY-MM or YYYY-MM..YYYY-MM")
    y0, m0 = int(m.group(1)), int(m.group(2))
    y1, m1 = (int(m.group(3)), int(m.group(4))) if m.group(3) else (y0, m0)
    if not (1 <= m0 <= 12 and 1 <= m1 <= 12) or (y1, m1) < (y0, m0):
        raise ValueError(f"months {text!r}: invalid month or empty range")
    out = []
    y, mo = y0, m0
    while (y, mo) <= (y1, m1):
        out.append(date(y, mo, 1))
        y, mo = (y + 1, 1) if mo == 12 else (y, mo + 1)
    return out


class EconomicsRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enterprise: str = Field(min_length=1)
    months: tuple[date, ...]
    value_added_10k_cny: float | None = Field(None, ge=0)
    tax_10k_cny: float | None = Field(None, ge=0)
    investment_10k_cny: float | None = Field(None, ge=0)
    green_power_kwh: float = Field(0.0, ge=0)
    green_certificates: float = Field(0.0, ge=0)
    source: str | None = None

    @field_validator("months", mode="before")
    @classmethod
    def _months(cls, value: Any) -> tuple[date, ...]:
        return tuple(_month_range(str(value)))


class Economics(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    records: tuple[EconomicsRecord, ...]
    source: str = "<memory>"


def parse_economics(
    data: Any, source: str = "<memory>", enterprises: set[str] | None = None
) -> Economics:
    """Validate an economics document; ``TargetsError`` lists every problem."""
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        raise TargetsError(f"{source}: expected a mapping with a 'records' list")
    problems: list[str] = []
    records: list[EconomicsRecord] = []
    for i, raw in enumerate(data["records"]):
        label = f"{source}: records[{i}]"
        if isinstance(raw, dict):
            label += f" ({raw.get('enterprise', '?')} {raw.get('months', '?')})"
            raw = dict(raw)
            if "green_power" in raw:
                try:
                    raw["green_power_kwh"] = parse_energy_kwh(raw.pop("green_power"))
                except UnitError as exc:
                    problems.append(f"{label}: green_power: {exc}")
                    continue
        try:
            rec = EconomicsRecord.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"])
                problems.append(f"{label}: {field}: {err['msg']}")
            continue
        if enterprises is not None and rec.enterprise not in enterprises:
            problems.append(f"{label}: enterprise: unknown enterprise {rec.enterprise!r}")
        records.append(rec)
    seen: dict[tuple[str, date], int] = {}
    for i, rec in enumerate(records):
        for month in rec.months:
            if (rec.enterprise, month) in seen:
                problems.append(f"{source}: {rec.enterprise} {month:%Y-%m} appears twice")
            seen[(rec.enterprise, month)] = i
    if problems:
        raise TargetsError(problems)
    return Economics(records=tuple(records), source=source)


def load_economics(path: Path | str, enterprises: set[str] | None = None) -> Economics:
    data = read_yaml(
        path, what="economics file", hint="set PARKCARBON_ECONOMICS_FILE", error=TargetsError
    )
    return parse_economics(data, str(path), enterprises)


def sync_economics(conn: psycopg.Connection, economics: Economics) -> int:
    """Upsert every (enterprise, month) into enterprise_economics and green_power.

    Returns the enterprise-months stored. A green power change that changes a stored
    market-based Scope 2 figure is logged in ``green_power_restatements`` (see
    ``restatement.green_power_restatements``)."""
    return sync_economics_counts(conn, economics)[0]


def sync_economics_counts(conn: psycopg.Connection, economics: Economics) -> tuple[int, int]:
    """``sync_economics``, returning (enterprise-months stored, market figures restated)."""
    from parkcarbon.carbon.restatement import stage_green_power

    econ, green = [], []
    for r in economics.records:
        for month in r.months:
            econ.append(
                (
                    r.enterprise,
                    month,
                    r.value_added_10k_cny,
                    r.tax_10k_cny,
                    r.investment_10k_cny,
                    r.source or economics.source,
                )
            )
            green.append(
                (
                    r.enterprise,
                    month,
                    r.green_power_kwh,
                    r.green_certificates * KWH_PER_CERTIFICATE,
                    r.source or economics.source,
                )
            )
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(Q.UPSERT_ECONOMICS, econ)
        restated = stage_green_power(conn, green)
        cur.execute(Q.UPSERT_GREEN_POWER)
    if restated:
        log.info("green power changed %d market-based enterprise-month figure(s)", restated)
    return len(econ), restated
