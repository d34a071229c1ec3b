"""Peak-carbon targets: annual caps along a pathway, monthly budgets, burn and forecast.

``config/targets.yaml`` (validated like the registry, every problem listed)::

    basis: location                 # Scope 2 basis the caps are written for
    budget_profile: days            # monthly budgets pro rata by days, or `seasonal`
    seasonal_weights: [...]         # 12 weights (Jan..Dec) when budget_profile: seasonal
    park:
      baseline: {year: 2020, co2_t: 1500000}
      peak: {year: 2028, co2_t: 2100000}
      post_peak_decline_pct: 2.0    # yearly decline after the peak year
      annual:                       # explicit years override the pathway
        2026: {cap_co2_t: 1950000, intensity_co2_per_10k_cny: 3.2}
    enterprises:
      - id: E01
        annual: {2026: {cap_co2_t: 600000}}

Cap of a year: the explicit value, else linear between baseline and peak, else the
peak value reduced by ``post_peak_decline_pct`` per year after the peak.
Status (``targets_status``): year-to-date Scope 1+2 against the budget to the last day
with data; the year-end forecast keeps that pace against the monthly profile
(``forecast = ytd + pace x remaining budget``, ``pace = ytd / ytd budget``), and the
run-out date is the first day the projected cumulative figure reaches the cap.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import psycopg
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from parkcarbon.carbon import queries as Q
from parkcarbon.carbon.accounting import emissions
from parkcarbon.carbon.errors import TargetsError
from parkcarbon.yamlfile import read_yaml

PARK = "PARK"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Point(_Model):
    year: int = Field(ge=2000, le=2100)
    co2_t: float = Field(gt=0)


class YearTarget(_Model):
    cap_co2_t: float | None = Field(None, gt=0)
    intensity_co2_per_10k_cny: float | None = Field(None, gt=0)


class Pathway(_Model):
    id: str = PARK
    baseline: Point | None = None
    peak: Point | None = None
    post_peak_decline_pct: float = Field(0.0, ge=0, lt=100)
    annual: dict[int, YearTarget] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _order(self) -> Pathway:
        if self.baseline and self.peak and self.peak.year < self.baseline.year:
            raise ValueError("peak.year must not be before baseline.year")
        if (self.baseline is None) != (self.peak is None):
            raise ValueError("give both baseline and peak, or neither")
        return self

    def cap(self, year: int) -> tuple[float | None, str]:
        """(cap tCO2, where it comes from) for ``year``."""
        explicit = self.annual.get(year)
        if explicit and explicit.cap_co2_t is not None:
            return explicit.cap_co2_t, "explicit"
        if self.baseline is None or self.peak is None or year < self.baseline.year:
            return None, "none"
        b, p = self.baseline, self.peak
        if year <= p.year:
            if p.year == b.year:
                return p.co2_t, "pathway"
            return b.co2_t + (p.co2_t - b.co2_t) * (year - b.year) / (p.year - b.year), "pathway"
        return p.co2_t * (1 - self.post_peak_decline_pct / 100) ** (year - p.year), "pathway"

    def intensity(self, year: int) -> float | None:
        t = self.annual.get(year)
        return t.intensity_co2_per_10k_cny if t else None


class Targets(_Model):
    basis: Literal["location", "market"] = "location"
    budget_profile: Literal["days", "seasonal"] = "days"
    seasonal_weights: tuple[float, ...] | None = None
    park: Pathway = Field(default_factory=lambda: Pathway(post_peak_decline_pct=0.0))
    enterprises: tuple[Pathway, ...] = ()
    source: str = "<memory>"

    @field_validator("seasonal_weights")
    @classmethod
    def _twelve(cls, w: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if w is not None and (len(w) != 12 or any(x <= 0 for x in w)):
            raise ValueError("12 positive weights (Jan..Dec) needed")
        return w

    @model_validator(mode="after")
    def _weights(self) -> Targets:
        if self.budget_profile == "seasonal" and self.seasonal_weights is None:
            raise ValueError("budget_profile seasonal needs seasonal_weights (12 weights)")
        return self

    def month_weights(self, year: int) -> list[float]:
        """Share of the annual cap in each month (sums to 1)."""
        if self.budget_profile == "seasonal" and self.seasonal_weights:
            total = sum(self.seasonal_weights)
            return [w / total for w in self.seasonal_weights]
        days = 366 if calendar.isleap(year) else 365
        return [calendar.monthrange(year, m)[1] / days for m in range(1, 13)]

    def subjects(self) -> list[Pathway]:
        return [self.park, *self.enterprises]


def parse_targets(
    data: Any, source: str = "<memory>", enterprises: set[str] | None = None
) -> Targets:
    if not isinstance(data, dict):
        raise TargetsError(f"{source}: expected a mapping (basis, park, enterprises)")
    try:
        targets = Targets.model_validate({**data, "source": source})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = list(err["loc"])
            if len(loc) > 1 and loc[0] == "enterprises" and isinstance(loc[1], int):
                raw = data.get("enterprises") or []
                ident = (
                    raw[loc[1]].get("id")
                    if loc[1] < len(raw) and isinstance(raw[loc[1]], dict)
                    else None
                )
                loc[1] = f"[{loc[1]}]" + (f" ({ident})" if ident else "")
            field = ".".join(str(p) for p in loc).replace(".[", "[")
            problems.append(f"{source}: {field}: {err['msg']}")
        raise TargetsError(problems) from exc
    problems = []
    ids = [e.id for e in targets.enterprises]
    problems += [
        f"{source}: enterprises: id {i!r} appears twice"
        for i in sorted({i for i in ids if ids.count(i) > 1})
    ]
    if enterprises is not None:
        problems += [
            f"{source}: enterprises[{n}] ({i}): id: unknown enterprise {i!r}"
            for n, i in enumerate(ids)
            if i not in enterprises
        ]
    if problems:
        raise TargetsError(problems)
    return targets


def load_targets(path: Path | str, enterprises: set[str] | None = None) -> Targets:
    """Load and validate a targets file; ``TargetsError`` lists every problem."""
    data = read_yaml(
        path, what="targets file", hint="set PARKCARBON_TARGETS_FILE", error=TargetsError
    )
    return parse_targets(data, str(path), enterprises)


def monthly_budgets(targets: Targets, subject: Pathway, year: int) -> pd.DataFrame:
    """month (first day), budget_co2_t for one subject and year (empty without a cap)."""
    cap, _ = subject.cap(year)
    if cap is None:
        return pd.DataFrame(columns=["month", "budget_co2_t"])
    weights = targets.month_weights(year)
    return pd.DataFrame(
        {
            "month": [date(year, m, 1) for m in range(1, 13)],
            "budget_co2_t": [cap * w for w in weights],
        }
    )


def _daily_budget(targets: Targets, cap: float, year: int) -> pd.Series:
    days = pd.date_range(date(year, 1, 1), date(year, 12, 31), freq="D").date
    weights = targets.month_weights(year)
    per_day = [cap * weights[d.month - 1] / calendar.monthrange(year, d.month)[1] for d in days]
    return pd.Series(per_day, index=days)


def _status_row(
    targets: Targets, subject: Pathway, year: int, actual: pd.Series, value_added: float | None
) -> dict[str, Any]:
    cap, origin = subject.cap(year)
    last = max(actual.index) if len(actual) else None
    ytd = float(actual.sum())
    row: dict[str, Any] = {
        "subject": subject.id,
        "year": year,
        "cap_co2_t": cap,
        "cap_source": origin,
        "data_through": last,
        "ytd_co2_t": ytd,
        "ytd_budget_co2_t": None,
        "ytd_vs_budget_pct": None,
        "burn_pct": None,
        "forecast_co2_t": None,
        "forecast_vs_cap_pct": None,
        "runout_date": None,
        "intensity_target": subject.intensity(year),
        "intensity_actual": ytd / value_added if value_added else None,
        "status": "no_target" if cap is None else "no_data",
    }
    if cap is None or last is None:
        return row
    budget = _daily_budget(targets, cap, year)
    ytd_budget = float(budget[budget.index <= last].sum())
    pace = ytd / ytd_budget if ytd_budget > 0 else 0.0
    forecast = ytd + pace * float(budget[budget.index > last].sum())
    runout = None
    if ytd >= cap:
        cum = actual.sort_index().cumsum()
        runout = cum[cum >= cap].index[0]
    elif forecast > cap:
        projected = ytd + pace * budget[budget.index > last].cumsum()
        runout = projected[projected >= cap].index[0]
    row.update(
        ytd_budget_co2_t=ytd_budget,
        ytd_vs_budget_pct=100 * pace,
        burn_pct=100 * ytd / cap,
        forecast_co2_t=forecast,
        forecast_vs_cap_pct=100 * forecast / cap,
        runout_date=runout,
        status="over_cap" if ytd >= cap else "at_risk" if forecast > cap else "on_track",
    )
    return row


def targets_status(
    conn: psycopg.Connection, *, year: int, targets: Targets, as_of: date | None = None
) -> pd.DataFrame:
    """One row for the park and one per enterprise target: cap, YTD, forecast, run-out."""
    df = emissions(conn, period=str(year), basis=targets.basis, freq="day")
    if as_of is not None:
        df = df[df["bucket"] <= as_of]
    daily_park = df.groupby("bucket")["scope12_co2_t"].sum()
    last = max(daily_park.index) if len(daily_park) else None
    econ: dict[str, float | None] = dict(
        conn.execute(
            Q.VALUE_ADDED_YTD,
            (date(year, 1, 1), last or date(year, 1, 1) - timedelta(days=1)),
        ).fetchall()
    )
    rows = []
    for subject in targets.subjects():
        if subject.id == PARK:
            actual = daily_park
            va = sum(v for v in econ.values() if v) or None
        else:
            sub = df[df["enterprise_id"] == subject.id]
            actual = sub.set_index("bucket")["scope12_co2_t"]
            va = econ.get(subject.id)
        rows.append(_status_row(targets, subject, year, actual, va))
    out = pd.DataFrame(rows)
    out.attrs.update(
        basis=targets.basis, notes=df.attrs.get("notes", []), profile=targets.budget_profile
    )
    return out
