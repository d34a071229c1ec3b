"""The green certificate register: the evidence behind market-based Scope 2 claims.

``config/certificates.yaml`` (setting ``certificates_file``) lists the green electricity
certificates (GEC, 绿证; 1 certificate = 1 MWh) each enterprise holds::

    certificates:
      - enterprise: E11
        serials: GEC-2026-00000001..GEC-2026-00001000   # first..last serial
        mwh: 1000                                       # must equal the serial count
        generation: 2026-01..2026-06                    # months the power was generated
        cancelled_on: 2026-07-15                        # retired for this enterprise
        # contract: GP-2026-017   # set when the certificates came with a green power
        #                           trade (绿电交易): they back that contract, not a claim
        source: China Green Certificate Trading Platform cancellation record

Rules (GHG Protocol Scope 2 Guidance, ch. 7 Scope 2 Quality Criteria), checked by
``check_claims`` when the economics file is loaded:

* a certificate claim (economics ``green_certificates``) of an enterprise and year must
  be covered by certificates **cancelled** (retired) **for that enterprise**
  (criterion 1: the instrument conveys the attribute and is the only one; criterion 3:
  retired by or for the reporting entity), generated **in the reporting year**
  (criterion 4: vintage close to the reporting period), and **unbundled**: certificates
  that came with a green power trade back that contract already (criterion 2: no double
  counting; in China a green power trade carries its certificates), so the same MWh is
  never claimed by a contract and by certificates;
* a serial range listed twice, or a count that does not match ``mwh``, is refused.

Without a register (no file) no certificate claim has evidence: each is refused, like
an uncovered one. Contracts (economics ``green_power``) are
claims with their own evidence (the trade contract).
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from parkcarbon.carbon import queries as Q
from parkcarbon.carbon.economics import Economics, _month_range
from parkcarbon.carbon.errors import TargetsError
from parkcarbon.yamlfile import read_yaml

_SERIALS = re.compile(r"^(?P<a>[A-Za-z0-9_-]*?)(?P<n>\d+)\.\.(?P<b>[A-Za-z0-9_-]*?)(?P<m>\d+)$")


class Certificate(BaseModel):
    """One register entry: a serial range of one enterprise's certificates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enterprise: str = Field(min_length=1)
    serials: str = Field(min_length=3)
    mwh: float = Field(gt=0)
    generation: tuple[date, ...]
    cancelled_on: date | None = None
    contract: str | None = None
    source: str | None = None

    @field_validator("generation", mode="before")
    @classmethod
    def _months(cls, value: Any) -> tuple[date, ...]:
        return tuple(_month_range(str(value)))

    def serial_range(self) -> tuple[str, int, int]:
        """(prefix, first, last) of the serial numbers."""
        m = _SERIALS.match(self.serials.strip())
        if not m or m["a"] != m["b"] or int(m["m"]) < int(m["n"]):
            raise ValueError(
                f"serials {self.serials!r}: expected PREFIX<first>..PREFIX<last> (same prefix)"
            )
        return m["a"], int(m["n"]), int(m["m"])


class Register(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    certificates: tuple[Certificate, ...]
    source: str = "<memory>"


def parse_register(
    data: Any, source: str = "<memory>", enterprises: set[str] | None = None
) -> Register:
    """Validate a certificate register; ``TargetsError`` lists every problem."""
    if not isinstance(data, dict) or not isinstance(data.get("certificates"), list):
        raise TargetsError(f"{source}: expected a mapping with a 'certificates' list")
    problems: list[str] = []
    out: list[Certificate] = []
    ranges: list[tuple[str, int, int, int]] = []
    for i, raw in enumerate(data["certificates"]):
        label = f"{source}: certificates[{i}]"
        if isinstance(raw, dict):
            label += f" ({raw.get('enterprise', '?')} {raw.get('serials', '?')})"
        try:
            c = Certificate.model_validate(raw)
            prefix, first, last = c.serial_range()
        except ValidationError as exc:
            for err in exc.errors():
                problems.append(f"{label}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}")
            continue
        except ValueError as exc:
            problems.append(f"{label}: {exc}")
            continue
        if last - first + 1 != c.mwh:
            problems.append(
                f"{label}: mwh {c.mwh:,.0f} but the serials count {last - first + 1:,} "
                "certificates (1 certificate = 1 MWh)"
            )
        if enterprises is not None and c.enterprise not in enterprises:
            problems.append(f"{label}: enterprise: unknown enterprise {c.enterprise!r}")
        for j, (p, a, b, _) in enumerate(ranges):
            if p == prefix and a <= last and first <= b:
                problems.append(
                    f"{label}: serials overlap certificates[{ranges[j][3]}]: the same "
                    "certificate cannot be listed twice"
                )
        ranges.append((prefix, first, last, i))
        out.append(c)
    if problems:
        raise TargetsError(problems)
    return Register(certificates=tuple(out), source=source)


def load_register(path: Path | str, enterprises: set[str] | None = None) -> Register:
    data = read_yaml(
        path, what="certificate register", hint="set PARKCARBON_CERTIFICATES_FILE",
        error=TargetsError,
    )
    return parse_register(data, str(path), enterprises)


def usable_mwh(register: Register | None, enterprise: str, year: int) -> float:
    """MWh of certificates that can back a certificate claim of ``enterprise`` in
    ``year``: cancelled for it, generated in that year, not bundled with a contract."""
    if register is None:
        return 0.0
    return sum(
        c.mwh
        for c in register.certificates
        if c.enterprise == enterprise
        and c.cancelled_on is not None
        and c.contract is None
        and all(m.year == year for m in c.generation)
    )


def check_claims(economics: Economics, register: Register | None) -> None:
    """Refuse certificate claims the register does not cover (see module doc). Without a
    register (no file) no claim has evidence: every one is refused."""
    claimed: dict[tuple[str, int], float] = {}
    for r in economics.records:
        for month in r.months:
            if r.green_certificates:
                key = (r.enterprise, month.year)
                claimed[key] = claimed.get(key, 0.0) + r.green_certificates
    if register is None:
        if claimed:
            raise TargetsError(
                [f"{economics.source}: {ent} {year}: {mwh:,.0f} MWh of green certificates "
                 "claimed, but there is no certificate register to show them cancelled"
                 for (ent, year), mwh in sorted(claimed.items())],
                hint="keep the certificate register (setting certificates_file, e.g. "
                "config/certificates.yaml) or remove the claims")
        return
    problems = []
    where = register.source
    for (ent, year), mwh in sorted(claimed.items()):
        have = usable_mwh(register, ent, year)
        if mwh > have + 1e-9:
            reasons = _why(register, ent, year)
            problems.append(
                f"{economics.source}: {ent} {year}: {mwh:,.0f} MWh of green certificates "
                f"claimed, {have:,.0f} MWh cancelled for {ent}, generated in {year} and not "
                f"bundled with a green power contract in {where}" + (f" ({reasons})" if reasons
                                                                     else "")
            )
    if problems:
        raise TargetsError(problems, hint="add the cancellation records to the certificate "
                           "register (setting certificates_file) or reduce the claim")


def _why(register: Register | None, ent: str, year: int) -> str:
    """What the register holds for ``ent`` that cannot back a ``year`` claim."""
    if register is None:
        return ""
    notes = []
    for c in register.certificates:
        if c.enterprise != ent:
            continue
        if c.cancelled_on is None:
            notes.append(f"{c.serials}: not cancelled")
        elif c.contract is not None:
            notes.append(f"{c.serials}: bundled with contract {c.contract}")
        elif not all(m.year == year for m in c.generation):
            notes.append(f"{c.serials}: generated outside {year}")
    return "; ".join(notes)


def sync_register(conn: psycopg.Connection, register: Register | None) -> int:
    """Make ``green_certificates`` hold exactly the register (None: empty)."""
    rows = []
    for c in (register.certificates if register is not None else ()):
        prefix, first, last = c.serial_range()
        rows.append(
            (c.enterprise, c.serials, prefix, first, last, c.mwh,
             min(c.generation), max(c.generation), c.cancelled_on, c.contract,
             c.source or (register.source if register else None))
        )
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(Q.DELETE_CERTIFICATES)
        cur.executemany(Q.INSERT_CERTIFICATE, rows)
    return len(rows)
