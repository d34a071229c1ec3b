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
from datetime import date
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


WEIGHTS_TOLERANCE = 0.01  # |sum of the 12 seasonal weights - 12| accepted


def _check_weights(w: tuple[float, ...] | None) -> tuple[float, ...] | None:
    if w is None:
        return w
    if len(w) != 12 or any(x <= 0 for x in w):
        raise ValueError("12 positive weights (Jan..Dec) needed")
    total = sum(w)
    if abs(total - 12) > WEIGHTS_TOLERANCE:
        raise ValueError(
            f"the 12 weights sum to {total:.2f}, not 12 (each is its month's share of the "
            "annual cap x 12; weights are not normalised)"
        )
    return w


class Pathway(_Model):
    id: str = PARK
    baseline: Point | None = None
    peak: Point | None = None
    post_peak_decline_pct: float = Field(0.0, ge=0, lt=100)
    annual: dict[int, YearTarget] = Field(default_factory=dict)
    # the subject's own budget profile (a data centre is flat); None: the file's
    budget_profile: Literal["days", "seasonal"] | None = None
    seasonal_weights: tuple[float, ...] | None = None

    @field_validator("seasonal_weights")
    @classmethod
    def _twelve(cls, w: tuple[float, ...] | None) -> tuple[float, ...] | None:
        return _check_weights(w)

    @model_validator(mode="after")
    def _order(self) -> Pathway:
        if self.budget_profile == "seasonal" and self.seasonal_weights is None:
            raise ValueError("budget_profile seasonal needs seasonal_weights (12 weights)")
        if self.seasonal_weights is not None and self.budget_profile is None:
            raise ValueError("seasonal_weights given without budget_profile: seasonal")
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
        return _check_weights(w)

    @model_validator(mode="after")
    def _weights(self) -> Targets:
        if self.budget_profile == "seasonal" and self.seasonal_weights is None:
            raise ValueError("budget_profile seasonal needs seasonal_weights (12 weights)")
        return self

    def profile(self, subject: Pathway | None = None) -> str:
        """The budget profile of ``subject``: days, seasonal, or ``own days`` / ``own
        seasonal`` when the subject has its own."""
        if subject is not None and subject.budget_profile is not None:
            return f"own {subject.budget_profile}"
        return self.budget_profile

    def month_weights(self, year: int, subject: Pathway | None = None) -> list[float]:
        """Share of the annual cap in each month: the subject's own profile, else the
        file's (seasonal weights / 12, as written: never normalised; or days / days of
        the year)."""
        own = subject is not None and subject.budget_profile is not None
        profile = subject.budget_profile if own and subject else self.budget_profile
        weights = subject.seasonal_weights if own and subject else self.seasonal_weights
        if profile == "seasonal" and weights:
            return [w / 12 for w in weights]
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
            f"{source}: enterprises[{n}] ({i}): id: unknown enterprise {i!r} (not in the "
            "registry)"
            for n, i in enumerate(ids)
            if i not in enterprises
        ]
    for year in _target_years(targets):
        park_cap, _ = targets.park.cap(year)
        if park_cap is None:
            continue
        for n, e in enumerate(targets.enterprises):
            cap, _ = e.cap(year)
            if cap is not None and cap > park_cap:
                problems.append(
                    f"{source}: enterprises[{n}] ({e.id}): {year} cap {cap:,.0f} tCO2 is "
                    f"above the park's cap {park_cap:,.0f} tCO2"
                )
    if problems:
        raise TargetsError(problems)
    return targets


def _target_years(targets: Targets) -> list[int]:
    """The years a targets file speaks of: explicit years, baselines and peaks."""
    years: set[int] = set()
    for s in targets.subjects():
        years |= set(s.annual)
        years |= {p.year for p in (s.baseline, s.peak) if p is not None}
    return sorted(years)


def targets_warnings(targets: Targets, years: list[int] | None = None) -> list[str]:
    """Odd but possible: enterprise caps summing above the park cap (per year)."""
    out = []
    for year in sorted(set(years or []) | set(_target_years(targets))):
        park_cap, _ = targets.park.cap(year)
        caps = [(e.id, e.cap(year)[0]) for e in targets.enterprises]
        total = sum(c for _, c in caps if c is not None)
        if park_cap is not None and total > park_cap:
            out.append(
                f"{targets.source}: {year}: enterprise caps sum to {total:,.0f} tCO2, above "
                f"the park's cap {park_cap:,.0f} tCO2 (by {total - park_cap:,.0f} t)"
            )
    return out


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
    weights = targets.month_weights(year, subject)
    return pd.DataFrame(
        {
            "month": [date(year, m, 1) for m in range(1, 13)],
            "budget_co2_t": [cap * w for w in weights],
        }
    )


def _daily_budget(targets: Targets, subject: Pathway, cap: float, year: int) -> pd.Series:
    days = pd.date_range(date(year, 1, 1), date(year, 12, 31), freq="D").date
    weights = targets.month_weights(year, subject)
    per_day = [cap * weights[d.month - 1] / calendar.monthrange(year, d.month)[1] for d in days]
    return pd.Series(per_day, index=days)


def elapsed_end(year: int, today: date, as_of: date | None) -> date | None:
    """Last elapsed day of ``year`` (as of ``as_of`` or ``today``); None before it."""
    end = min(as_of or today, date(year, 12, 31))
    return end if end >= date(year, 1, 1) else None


def _status_row(
    targets: Targets,
    subject: Pathway,
    year: int,
    actual: pd.Series,
    value_added: float | None,
    end: date | None,
    min_coverage_pct: float,
) -> dict[str, Any]:
    """One subject: ``actual`` is tCO2 per day with data (index: local days)."""
    cap, origin = subject.cap(year)
    actual = actual[actual.index <= end] if end is not None else actual.iloc[:0]
    last = max(actual.index) if len(actual) else None
    ytd = float(actual.sum())
    elapsed = (end - date(year, 1, 1)).days + 1 if end is not None else 0
    covered = len(actual)
    coverage = 100.0 * covered / elapsed if elapsed else None
    row: dict[str, Any] = {
        "subject": subject.id,
        "year": year,
        "cap_co2_t": cap,
        "cap_source": origin,
        "profile": targets.profile(subject if subject.id != PARK else None),
        "data_through": last,
        "days_with_data": covered,
        "days_elapsed": elapsed,
        "coverage_pct": coverage,
        "ytd_co2_t": ytd,
        "ytd_budget_co2_t": None,
        "ytd_vs_budget_pct": None,
        "burn_pct": None,
        "forecast_co2_t": None,
        "forecast_vs_cap_pct": None,
        "runout_date": None,
        "intensity_target": subject.intensity(year),
        "intensity_actual": ytd / value_added if value_added and covered else None,
        "status": "no_target" if cap is None else "no_data",
    }
    if cap is None or last is None:
        return row
    budget = _daily_budget(targets, subject, cap, year)
    have = budget.index.isin(actual.index)
    # only the days with data: their budget is what the actual figure is compared with
    ytd_budget = float(budget[have].sum())
    pace = ytd / ytd_budget if ytd_budget > 0 else 0.0
    # days without data (gaps and the rest of the year) projected at that pace
    projected = budget.where(~have, 0.0) * pace
    projected[have] = actual.reindex(budget.index[have]).to_numpy()
    forecast = float(projected.sum())
    runout = None
    if ytd >= cap:
        cum = actual.sort_index().cumsum()
        runout = cum[cum >= cap].index[0]
    elif forecast > cap:
        cum = projected.cumsum()
        runout = cum[cum >= cap].index[0]
    if ytd >= cap:
        status = "over_cap"
    elif coverage is not None and coverage < min_coverage_pct:
        status = "insufficient_data"
    else:
        status = "at_risk" if forecast > cap else "on_track"
    row.update(
        ytd_budget_co2_t=ytd_budget,
        ytd_vs_budget_pct=100 * pace,
        burn_pct=100 * ytd / cap,
        forecast_co2_t=forecast,
        forecast_vs_cap_pct=100 * forecast / cap,
        runout_date=runout,
        status=status,
    )
    return row


def targets_status(
    conn: psycopg.Connection,
    *,
    year: int,
    targets: Targets,
    as_of: date | None = None,
    today: date | None = None,
    min_coverage_pct: float = 50.0,
) -> pd.DataFrame:
    """One row for the park and one per enterprise target: cap, coverage, YTD against
    the budget of the days with data, forecast at that pace, run-out date, status.

    ``today``: the park's local date (default: now in the database's park timezone);
    days elapsed run from 1 January to ``as_of`` or ``today``."""
    from parkcarbon.carbon.coverage import matched_value_added

    if today is None:
        today = _local_today(conn)
    df = emissions(conn, period=str(year), basis=targets.basis, freq="day")
    end = elapsed_end(year, today, as_of)
    df = df[df["bucket"] <= end] if end is not None else df.iloc[:0]
    # days with data: days with metered figures (process emissions alone from monthly
    # production data do not cover a day; those days are projected at the pace)
    metered = set(conn.execute(Q.METERED_DAYS, (date(year, 1, 1), date(year + 1, 1, 1))))
    keep = [k in metered for k in zip(df["enterprise_id"], df["bucket"], strict=True)]
    df = df[pd.Series(keep, index=df.index, dtype=bool)]  # a bare [] would pick no columns
    daily_park = df.groupby("bucket")["scope12_co2_t"].sum()
    va = matched_value_added(conn, df[["enterprise_id", "bucket"]], date(year, 1, 1))
    rows = []
    for subject in targets.subjects():
        if subject.id == PARK:
            actual = daily_park
            value_added = sum(va.values()) or None
        else:
            sub = df[df["enterprise_id"] == subject.id]
            actual = sub.set_index("bucket")["scope12_co2_t"]
            value_added = va.get(subject.id)
        rows.append(
            _status_row(targets, subject, year, actual, value_added, end, min_coverage_pct)
        )
    out = pd.DataFrame(rows)
    out.attrs.update(
        basis=targets.basis,
        notes=[*df.attrs.get("notes", []), *coverage_notes(out, min_coverage_pct)],
        profile=targets.budget_profile,
    )
    return out


def coverage_notes(status: pd.DataFrame, min_coverage_pct: float) -> list[str]:
    """Sentences stating each subject's coverage where it is not complete."""
    notes = []
    for r in status.itertuples(index=False):
        if r.days_elapsed and r.days_with_data < r.days_elapsed:
            what = (
                "insufficient data for a year-end status"
                if r.status == "insufficient_data"
                else "budget, pace and forecast use the days with data only"
            )
            notes.append(
                f"{r.subject}: data on {r.days_with_data} of {r.days_elapsed} days elapsed "
                f"({r.coverage_pct:.1f}%; status needs {min_coverage_pct:.0f}%): {what}"
            )
    return notes


def _local_today(conn: psycopg.Connection) -> date:
    from zoneinfo import ZoneInfo

    from parkcarbon.db import meta_value
    from parkcarbon.periods import local_today

    return local_today(ZoneInfo(meta_value(conn, "timezone") or "Asia/Shanghai"))


# --- carbon_budgets: the budgets as accounting applies them ------------------------


def budget_rows(targets: Targets, years: list[int]) -> list[tuple[Any, ...]]:
    """(month, enterprise_id or None, cap, budget, intensity, basis, profile, cap_source)
    for every subject with a cap in ``years``."""
    rows = []
    for year in years:
        for subject in targets.subjects():
            cap, origin = subject.cap(year)
            if cap is None:
                continue
            weights = targets.month_weights(year, subject)
            is_park = subject.id == PARK
            for m in range(1, 13):
                rows.append(
                    (
                        date(year, m, 1),
                        None if is_park else subject.id,
                        cap,
                        cap * weights[m - 1],
                        subject.intensity(year),
                        targets.basis,
                        targets.profile(None if is_park else subject),
                        "annual" if origin == "explicit" else "pathway",
                    )
                )
    return rows


def store_budgets(conn: psycopg.Connection, targets: Targets | None, years: list[int]) -> int:
    """Make ``carbon_budgets`` hold exactly the budgets of ``targets`` for ``years``
    (None: no targets file, the table is emptied). Rows that did not change are left
    alone (``updated_at`` keeps the time of the last change). Returns rows changed."""
    rows = [] if targets is None else budget_rows(targets, years)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(Q.BUDGETS_TEMP)
        with cur.copy(Q.COPY_BUDGETS) as copy:
            for r in rows:
                copy.write_row(r)
        cur.execute(Q.DELETE_STALE_BUDGETS)
        changed = cur.rowcount
        cur.execute(Q.UPSERT_BUDGETS)
        changed += cur.rowcount
    return changed


def sync_budgets(conn: psycopg.Connection, settings: Any) -> int | None:
    """Write the targets file's budgets (every year from the first with figures to next
    year) into ``carbon_budgets``; None when the targets file is invalid (logged: the
    stored budgets stay as they were)."""
    import logging

    from parkcarbon.carbon.accounting import enterprise_ids

    path = Path(settings.targets_file)
    targets = None
    if path.is_file():
        try:
            targets = load_targets(path, enterprise_ids(conn))
        except TargetsError as exc:
            logging.getLogger(__name__).warning(
                "carbon budgets not updated: %s", "; ".join(exc.problems)
            )
            return None
    this = _local_today(conn).year
    first = conn.execute(Q.FIRST_FIGURE_YEAR).fetchone()
    start = min(this, int(first[0])) if first and first[0] is not None else this
    years = list(range(start, this + 2))
    if targets is not None:
        years = sorted(set(years) | set(_target_years(targets)) & set(range(start, this + 6)))
    return store_budgets(conn, targets, years)


def stored_budgets(conn: psycopg.Connection, year: int) -> pd.DataFrame:
    """``carbon_budgets`` of ``year`` as written by the last refresh (what Grafana and
    reports read): month, enterprise_id (None: park), cap, budget, intensity, basis,
    profile, cap_source."""
    rows = conn.execute(Q.BUDGETS_OF_YEAR, (date(year, 1, 1), date(year + 1, 1, 1))).fetchall()
    return pd.DataFrame(
        rows,
        columns=[
            "month",
            "enterprise_id",
            "cap_co2_t",
            "budget_co2_t",
            "intensity_co2_per_10k_cny",
            "basis",
            "profile",
            "cap_source",
        ],
    )
