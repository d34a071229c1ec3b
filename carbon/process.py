"""Process emissions (Scope 1): CO2 from calcining carbonates in cement clinker and lime
kilns, from monthly production activity data (``config/production.yaml``).

Layout (every record covers one month or a range of months, figures per month)::

    records:
      - enterprise: E12
        months: 2026-01..2026-12
        product: clinker              # clinker | lime
        output_t: 20000               # clinker (or lime) produced in the month, t
        cao_pct: 65.5                 # measured CaO content of the clinker (lime), %
        mgo_pct: 1.8                  # measured MgO content, %
        cao_noncarbonate_pct: 0.4     # CaO from non-carbonate raw materials (slag...), %
        mgo_noncarbonate_pct: 0.0
        kiln_dust_t: 400              # cement kiln dust and bypass dust leaving the kiln, t
        source: E12 production report

Methods (``calculate``):

* **clinker, measured composition** (NDRC 2013, 中国水泥生产企业温室气体排放核算方法与报告指南
  (试行), raw-material calcination): ``E = (clinker + kiln dust) x [(CaO - CaO_nc) x
  44/56 + (MgO - MgO_nc) x 44/40]``;
* **lime, measured composition** (NDRC, 工业其他行业 / 石灰 carbonate decomposition by
  product composition; IPCC 2006 vol.3 ch.2 eq. 2.9): ``E = lime x (CaO x 44/56 + MgO x
  44/40)``;
* **no composition given**: the IPCC 2006 Tier 1 default, flagged UNCONFIRMED: clinker
  0.52 tCO2/t before the kiln-dust correction, times the default correction 1.02
  (vol.3 ch.2 eq. 2.4); lime 0.75 tCO2/t (high-calcium lime, table 2.4).

``sync_production`` stores every enterprise-month (``process_emissions``: activity data,
method, tCO2, UNCONFIRMED flag, source); ``accounting.emissions`` adds them to Scope 1 as
their own figure (``scope1_process_co2_t``), spread evenly over the month's days for
daily figures and parts of months.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

import psycopg
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from parkcarbon.carbon import queries as Q
from parkcarbon.carbon.economics import _month_range
from parkcarbon.carbon.errors import TargetsError
from parkcarbon.yamlfile import read_yaml

log = logging.getLogger(__name__)

CO2_PER_CAO = 44.0 / 56.0  # t CO2 per t CaO from CaCO3 (NDRC cement guideline: 44/56)
CO2_PER_MGO = 44.0 / 40.0  # t CO2 per t MgO from MgCO3 (NDRC cement guideline: 44/40)
CLINKER_TIER1 = 0.52  # t CO2 / t clinker, IPCC 2006 vol.3 ch.2 (before CKD correction)
CKD_CORRECTION = 1.02  # IPCC 2006 vol.3 ch.2 eq. 2.4 default kiln-dust correction
LIME_TIER1 = 0.75  # t CO2 / t high-calcium lime, IPCC 2006 vol.3 ch.2 table 2.4
SOURCES = {
    "clinker_measured": "NDRC 2013 cement enterprises GHG accounting guideline (trial), "
    "raw-material calcination: (clinker + kiln dust) x [(CaO - CaO_nc) x 44/56 + "
    "(MgO - MgO_nc) x 44/40]",
    "lime_measured": "NDRC GHG accounting guideline (lime: carbonate decomposition by "
    "product composition); IPCC 2006 vol.3 ch.2 eq. 2.9: lime x (CaO x 44/56 + MgO x 44/40)",
    "clinker_tier1": "IPCC 2006 vol.3 ch.2 Tier 1: 0.52 tCO2/t clinker x CKD correction "
    "1.02 (UNCONFIRMED: enter measured CaO/MgO)",
    "lime_tier1": "IPCC 2006 vol.3 ch.2 table 2.4: 0.75 tCO2/t high-calcium lime "
    "(UNCONFIRMED: enter measured CaO/MgO)",
}


class ProductionRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enterprise: str = Field(min_length=1)
    months: tuple[Any, ...]
    product: Literal["clinker", "lime"]
    output_t: float = Field(ge=0)
    cao_pct: float | None = Field(None, ge=0, le=100)
    mgo_pct: float | None = Field(None, ge=0, le=100)
    cao_noncarbonate_pct: float = Field(0.0, ge=0, le=100)
    mgo_noncarbonate_pct: float = Field(0.0, ge=0, le=100)
    kiln_dust_t: float = Field(0.0, ge=0)
    source: str | None = None

    @field_validator("months", mode="before")
    @classmethod
    def _months(cls, value: Any) -> tuple[Any, ...]:
        return tuple(_month_range(str(value)))


class Production(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    records: tuple[ProductionRecord, ...]
    source: str = "<memory>"


def calculate(r: ProductionRecord) -> tuple[float, str, bool]:
    """(t CO2 of one month, method, UNCONFIRMED?) of a production record."""
    measured = r.cao_pct is not None
    if r.product == "clinker":
        if measured:
            cao = max(0.0, (r.cao_pct or 0.0) - r.cao_noncarbonate_pct) / 100
            mgo = max(0.0, (r.mgo_pct or 0.0) - r.mgo_noncarbonate_pct) / 100
            ef = cao * CO2_PER_CAO + mgo * CO2_PER_MGO
            return (r.output_t + r.kiln_dust_t) * ef, "clinker_measured", False
        return r.output_t * CLINKER_TIER1 * CKD_CORRECTION, "clinker_tier1", True
    if measured:
        ef = (r.cao_pct or 0.0) / 100 * CO2_PER_CAO + (r.mgo_pct or 0.0) / 100 * CO2_PER_MGO
        return r.output_t * ef, "lime_measured", False
    return r.output_t * LIME_TIER1, "lime_tier1", True


def parse_production(
    data: Any, source: str = "<memory>", enterprises: set[str] | None = None
) -> Production:
    """Validate a production document; ``TargetsError`` lists every problem."""
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        raise TargetsError(f"{source}: expected a mapping with a 'records' list")
    problems: list[str] = []
    records: list[ProductionRecord] = []
    for i, raw in enumerate(data["records"]):
        label = f"{source}: records[{i}]"
        if isinstance(raw, dict):
            label += f" ({raw.get('enterprise', '?')} {raw.get('months', '?')})"
        try:
            rec = ProductionRecord.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"])
                problems.append(f"{label}: {field}: {err['msg']}")
            continue
        if enterprises is not None and rec.enterprise not in enterprises:
            problems.append(f"{label}: enterprise: unknown enterprise {rec.enterprise!r}")
        if rec.mgo_pct is not None and rec.cao_pct is None:
            problems.append(f"{label}: mgo_pct given without cao_pct")
        records.append(rec)
    seen: set[tuple[str, str, Any]] = set()
    for rec in records:
        for month in rec.months:
            key = (rec.enterprise, rec.product, month)
            if key in seen:
                problems.append(f"{source}: {rec.enterprise} {rec.product} {month:%Y-%m} "
                                "appears twice")
            seen.add(key)
    if problems:
        raise TargetsError(problems)
    return Production(records=tuple(records), source=source)


def load_production(path: Path | str, enterprises: set[str] | None = None) -> Production:
    data = read_yaml(
        path, what="production file", hint="set PARKCARBON_PRODUCTION_FILE", error=TargetsError
    )
    return parse_production(data, str(path), enterprises)


def sync_production(conn: psycopg.Connection, production: Production) -> int:
    """Make ``process_emissions`` hold exactly the file's enterprise-months (changed rows
    rewritten, rows no longer in the file removed). Returns rows written or removed."""
    rows = []
    for r in production.records:
        co2, method, unconfirmed = calculate(r)
        params = r.model_dump(exclude={"enterprise", "months", "product", "source"})
        for month in r.months:
            rows.append(
                (
                    r.enterprise,
                    month,
                    r.product,
                    r.output_t,
                    json.dumps(params, sort_keys=True),
                    method,
                    co2,
                    unconfirmed,
                    SOURCES[method],
                    r.source or production.source,
                )
            )
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(Q.PROCESS_TEMP)
        with cur.copy(Q.COPY_PROCESS) as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(Q.DELETE_STALE_PROCESS)
        changed = cur.rowcount
        cur.execute(Q.UPSERT_PROCESS)
        changed += cur.rowcount
    if changed:
        log.info("process emissions: %d enterprise-month row(s) changed", changed)
    return changed
