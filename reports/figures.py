"""The figures of a monthly report, collected once per month for the whole park.

``load_month(conn, settings, period)`` reads everything a month's reports need in a
fixed number of queries, whatever the number of enterprises: tCO2 and tce from
``parkcarbon.carbon.accounting.emissions`` (location and market based, the previous
month, the same month last year, the year to date; per day the stored daily figures
summed in one query, as ``emissions(freq="day")`` sums them), the indicators from
``parkcarbon.carbon.indicators``, the forecast and run-out date from
``parkcarbon.carbon.targets.targets_status``, budgets from ``carbon_budgets``, and what
the carbon package has no function for (breakdown by carrier, data quality, factor
versions, alerts) through ``queries``. ``subject_figures(month, enterprise)`` cuts out
the park's or one enterprise's figures as plain JSON-able data; nothing here computes
an emission.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
import psycopg

from parkcarbon import __version__
from parkcarbon.periods import Period, parse_period, utc_now
from parkcarbon.reports import queries as Q
from parkcarbon.reports.errors import ReportUsageError
from parkcarbon.settings import Settings
from parkcarbon.units import SLOT_SECONDS

# (carrier, scope) in report order -> label key; quantities in the canonical unit.
CARRIERS: tuple[tuple[str, str, str], ...] = (
    ("electricity", "2", "electricity_grid"),
    ("electricity", "pv", "electricity_pv"),
    ("electricity", "export", "electricity_export"),
    ("natural_gas", "1", "natural_gas"),
    ("diesel", "1", "diesel"),
    ("coal", "1", "coal"),
    ("heat", "2", "heat"),
    ("steam", "2", "steam"),
    ("water", "3", "water"),
)
UNIT_TEXT = {"m3": "m³"}
# Values compared for the change page of a new version (per subject), in page order.
KEY_FIGURES = (
    "scope1_co2_t",
    "scope2_co2_t",
    "scope12_co2_t",
    "scope2_market_co2_t",
    "scope12_market_co2_t",
    "scope3_water_co2_t",
    "tce",
)


def month_period(text: str) -> Period:
    """A ``YYYY-MM`` period (a report is always a local month)."""
    p = parse_period(text)
    if p.kind != "month":
        raise ReportUsageError(
            f"--period {text!r}: a report is for one month", hint="use YYYY-MM, e.g. 2026-01"
        )
    return p


def previous_month(p: Period) -> Period:
    d = p.start - timedelta(days=1)
    return parse_period(f"{d.year:04d}-{d.month:02d}")


def _f(value: Any) -> float | None:
    """A float, or None for a missing value / NaN."""
    if value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def _pct(num: float | None, den: float | None) -> float | None:
    if num is None or not den:
        return None
    return 100.0 * num / den


def _change_pct(new: float | None, old: float | None) -> float | None:
    if new is None or old is None or old == 0:
        return None
    return 100.0 * (new - old) / old


def _by_enterprise(df: pd.DataFrame) -> dict[str, dict[str, Any]]:
    return {str(r["enterprise_id"]): r for r in df.to_dict(orient="records")}


@dataclass
class MonthData:
    """Everything the month's reports are made of (park-wide, read once)."""

    period: Period
    settings: Settings
    park_name: str
    enterprises: dict[str, dict[str, Any]]  # id -> name_zh, credit_code, land_area_mu
    em: dict[str, dict[str, Any]]  # enterprise -> emissions() row, location-based
    em_market: dict[str, dict[str, Any]]
    prev: dict[str, dict[str, Any]]
    last_year: dict[str, dict[str, Any]]
    daily: pd.DataFrame  # enterprise_id, bucket (day), scope12_co2_t
    ytd: pd.DataFrame  # enterprise_id, bucket (month), scope12_co2_t (the budget basis)
    indicators: dict[str, dict[str, Any]]  # enterprise or PARK -> indicators() row
    status: dict[str, dict[str, Any]]  # subject (PARK or id) -> targets_status() row
    budgets: dict[str | None, list[dict[str, Any]]]  # subject -> months of the year
    carriers: pd.DataFrame  # enterprise_id, carrier, scope, unit, quantity, tce, co2
    meters: dict[str, int]
    slots: dict[str, tuple[int, int]]  # measured, estimated
    events: dict[str, dict[str, int]]
    dead_letters: dict[str | None, int]
    cutoff: dict[str, datetime]
    runs: dict[str, int]
    factors: dict[str, dict[str, Any]]
    alerts: list[dict[str, Any]] | None  # None: the alerts tables do not exist
    inputs: dict[str, list[Any]]  # enterprise -> rows hashed for the receipt
    notes: list[str]
    factor_library: str
    expected_slots_per_meter: int
    energy_basis: str
    status_note: str | None = None  # the targets file's error, if any
    coverage: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def _emissions(conn: psycopg.Connection, p: Period, **kw: Any) -> pd.DataFrame:
    from parkcarbon.carbon.accounting import emissions

    return emissions(conn, period=p, **kw)


def _status(
    conn: psycopg.Connection, settings: Settings, p: Period, ids: set[str]
) -> tuple[dict[str, dict[str, Any]], str | None, list[dict[str, Any]]]:
    """targets_status rows by subject as of the month's last day (none without a file),
    the targets file's error if any, and the coverage of each subject whose year to date
    lacks days (what ``carbon.targets.coverage_notes`` says, as numbers: the report
    words it in its own language)."""
    from parkcarbon.carbon.targets import load_targets, targets_status
    from parkcarbon.errors import ConfigError

    if not settings.targets_file.is_file():
        return {}, None, []
    try:
        targets = load_targets(settings.targets_file, ids)
        df = targets_status(
            conn, year=p.start.year, targets=targets, as_of=p.end - timedelta(days=1),
            min_coverage_pct=settings.targets_min_coverage_pct,
        )
    except ConfigError as exc:
        return {}, str(exc), []
    rows = {str(r["subject"]): r for r in df.to_dict(orient="records")}
    coverage = [  # the rows coverage_notes words (same condition)
        {
            "subject": str(r.subject),
            "days_with_data": int(r.days_with_data),
            "days_elapsed": int(r.days_elapsed),
            "coverage_pct": float(r.coverage_pct),
            "insufficient": r.status == "insufficient_data",
            "min_coverage_pct": float(settings.targets_min_coverage_pct),
        }
        for r in df.itertuples(index=False)
        if r.days_elapsed and r.days_with_data < r.days_elapsed
    ]
    return rows, None, coverage


def _factor_library(settings: Settings) -> str:
    from parkcarbon.carbon.factors import load_library

    lib = load_library(settings.factors_file)
    ids = "\n".join(sorted(f.version_id for f in lib.factors))
    return hashlib.sha256(ids.encode()).hexdigest()[:16]


def load_month(
    conn: psycopg.Connection, settings: Settings, period: Period, *, now: datetime | None = None
) -> MonthData:
    """Read the month's figures for the park and every enterprise."""
    eb = settings.energy_basis
    p = period
    tz = settings.tz
    t0, t1 = p.utc_bounds(tz)
    t_end = min(t1, now or utc_now())
    expected = max(0, int((t_end - t0).total_seconds() // SLOT_SECONDS))

    ents_rows = conn.execute(Q.ENTERPRISES).fetchall()
    enterprises = {
        str(r[0]): {"name_zh": r[1], "credit_code": r[2], "land_area_mu": r[3]} for r in ents_rows
    }
    park = conn.execute(Q.PARK_NAME).fetchone()
    park_name = (park[0] or park[1]) if park else ""

    em = _emissions(conn, p, basis="location", energy_basis=eb)
    em_market = _emissions(conn, p, basis="market", energy_basis=eb)
    prev = _emissions(conn, previous_month(p), basis="location", energy_basis=eb)
    ly = parse_period(f"{p.start.year - 1:04d}-{p.start.month:02d}")
    last_year = _emissions(conn, ly, basis="location", energy_basis=eb)
    # per day: the stored daily figures summed in one query (emissions(freq="day") gives
    # the same sums but attaches factor provenance to every enterprise-day: 0.7 s of
    # the 1.6 s this function took for 300 enterprises)
    daily = pd.DataFrame(
        [(str(e), d, float(v)) for e, d, v in
         conn.execute(Q.DAILY_SCOPE12, {"d0": p.start, "d1": p.end}).fetchall()],
        columns=["enterprise_id", "bucket", "scope12_co2_t"],
    )

    budgets: dict[str | None, list[dict[str, Any]]] = {}
    year0 = date(p.start.year, 1, 1)
    for r in conn.execute(Q.BUDGETS_OF_YEAR, (year0, date(p.start.year + 1, 1, 1))).fetchall():
        budgets.setdefault(r[0], []).append(
            {
                "month": r[1],
                "cap_co2_t": _f(r[2]),
                "budget_co2_t": _f(r[3]),
                "intensity": _f(r[4]),
                "basis": r[5],
                "profile": r[6],
                "cap_source": r[7],
            }
        )
    park_budgets = budgets.get(None) or []
    budget_basis = park_budgets[0]["basis"] if park_budgets else "location"
    ytd = _emissions(
        conn,
        parse_period(str(p.start.year)),
        basis=budget_basis,
        freq="month",
        energy_basis=eb,
    )
    ytd = ytd[ytd["bucket"] < p.end][["enterprise_id", "bucket", "scope12_co2_t"]]

    from parkcarbon.carbon.indicators import indicators

    ind = indicators(conn, period=p, basis="location", energy_basis=eb)
    status, status_note, coverage = _status(conn, settings, p, set(enterprises))

    carriers = pd.DataFrame(
        conn.execute(Q.BY_CARRIER, (p.start, p.end)).fetchall(),
        columns=["enterprise_id", "carrier", "scope", "unit", "quantity", "tce_eq", "tce_ev",
                 "co2"],
    )
    carriers["tce"] = carriers["tce_eq" if eb == "equivalent" else "tce_ev"].astype(float)

    meters = {str(k): int(v) for k, v in conn.execute(Q.METERS_PER_ENTERPRISE).fetchall()}
    totals = conn.execute(Q.HAS_DAY_TOTALS).fetchone()
    slots_query = Q.SLOTS_FROM_DAY_TOTALS if totals and totals[0] else Q.SLOTS_PER_ENTERPRISE
    slots = {
        str(k): (int(a), int(b)) for k, a, b in conn.execute(slots_query, (t0, t1)).fetchall()
    }
    events: dict[str, dict[str, int]] = {}
    for ent, kind, n in conn.execute(Q.EVENTS_PER_ENTERPRISE, (t0, t1)).fetchall():
        events.setdefault(str(ent), {})[str(kind)] = int(n)
    dead = {k: int(v) for k, v in conn.execute(Q.DEAD_LETTERS_PER_ENTERPRISE, (t0, t1))}
    cutoff = {str(k): v for k, v in conn.execute(Q.CUTOFF_PER_ENTERPRISE, (t0, t1)) if v}
    runs = {str(k): int(v) for k, v in conn.execute(Q.RUNS_BEHIND, (p.start, p.end))}

    ids = sorted({i for s in em["factor_ids"] for i in str(s).split()} if len(em) else set())
    factors = {
        str(r[0]): {
            "version_id": r[0], "key": r[1], "region": r[2], "year": r[3], "value": _f(r[4]),
            "unit": r[5] or "", "per_canonical": _f(r[6]), "canonical_unit": r[7],
            "source": r[8], "confidence": r[9], "unconfirmed": bool(r[10]), "origin": r[11],
            "enterprise_id": r[12],
        }
        for r in conn.execute(Q.FACTORS_BY_ID, (ids,)).fetchall()
    }

    alerts = None
    has_alerts = conn.execute(Q.HAS_ALERTS).fetchone()
    if has_alerts and has_alerts[0]:
        alerts = [
            {"at": r[0], "rule_id": r[1], "subject": r[2], "enterprise_id": r[3],
             "kind": r[4], "severity": r[5], "from_state": r[6], "to_state": r[7],
             "value": _f(r[8])}
            for r in conn.execute(Q.ALERTS_OF_MONTH, (t0, t1, None, None)).fetchall()
        ]

    inputs: dict[str, list[Any]] = {}
    for r in conn.execute(Q.INPUT_DIGESTS, (p.start, p.end)).fetchall():
        inputs.setdefault(str(r[0]), []).append(["figures", int(r[1]), str(r[2])])
    for r in conn.execute(Q.GREEN_ROWS, (p.start, p.end)).fetchall():
        inputs.setdefault(str(r[0]), []).append(["green", r[1], f"{r[2]:.10g}", f"{r[3]:.10g}"])
    for r in conn.execute(Q.ECONOMICS_ROWS, (p.start, p.end)).fetchall():
        inputs.setdefault(str(r[0]), []).append(["economics", r[1], *(_g(x) for x in r[2:])])

    return MonthData(
        period=p,
        settings=settings,
        park_name=park_name,
        enterprises=enterprises,
        em=_by_enterprise(em),
        em_market=_by_enterprise(em_market),
        prev=_by_enterprise(prev),
        last_year=_by_enterprise(last_year),
        daily=daily,
        ytd=ytd,
        indicators=_by_enterprise(ind),
        status=status,
        budgets=budgets,
        carriers=carriers,
        meters=meters,
        slots=slots,
        events=events,
        dead_letters=dead,
        cutoff=cutoff,
        runs=runs,
        factors=factors,
        alerts=alerts,
        inputs=inputs,
        notes=list(em.attrs.get("notes", [])),
        factor_library=_factor_library(settings),
        expected_slots_per_meter=expected,
        energy_basis=eb,
        status_note=status_note,
        coverage=coverage,
    )


def _g(x: Any) -> str:
    return "" if x is None else f"{float(x):.10g}"


def _sum(rows: dict[str, dict[str, Any]], ids: list[str], key: str) -> float | None:
    found = [_f(rows[i].get(key)) for i in ids if i in rows]
    vals = [v for v in found if v is not None]
    return float(sum(vals)) if vals else None


def _metered_total(rows: dict[str, dict[str, Any]], ids: list[str]) -> float | None:
    """Scope 1+2 of ``ids``, or None when none of them has metered figures (only
    process emissions from the production file)."""
    s12 = _sum(rows, ids, "scope12_co2_t")
    process = _sum(rows, ids, "scope1_process_co2_t") or 0.0
    return s12 if s12 is not None and s12 - process > 0 else None


def _part(md: MonthData, name: str, enterprise: str | None) -> pd.DataFrame:
    """The rows of frame ``name`` (carriers, daily, ytd) of one enterprise (or all);
    grouped once per month, so 300 enterprise reports do not filter 300 times."""
    frame: pd.DataFrame = getattr(md, name)
    if enterprise is None:
        return frame
    key = f"groups:{name}"
    if key not in md.extra:
        md.extra[key] = {str(k): g for k, g in frame.groupby("enterprise_id")}
    found: pd.DataFrame | None = md.extra[key].get(enterprise)
    return frame.iloc[0:0] if found is None else found


def _month_budget(md: MonthData, subject: str | None) -> dict[str, Any] | None:
    for b in md.budgets.get(subject) or []:
        if b["month"] == md.period.start:
            return b
    return None


def subject_figures(md: MonthData, enterprise: str | None) -> dict[str, Any]:
    """The figures of the park report (``None``) or of one enterprise's report."""
    p = md.period
    ids = sorted(md.em) if enterprise is None else [e for e in [enterprise] if e in md.em]
    if enterprise is not None and enterprise not in md.enterprises:
        from parkcarbon.reports.errors import ReportUsageError

        raise ReportUsageError(
            f"--enterprise {enterprise!r}: unknown enterprise",
            hint="see `parkcarbon config check` for the enterprise ids",
        )
    scope: list[str] = sorted(md.enterprises) if enterprise is None else [enterprise]

    def total(rows: dict[str, dict[str, Any]], key: str) -> float | None:
        return _sum(rows, scope, key)

    s12 = total(md.em, "scope12_co2_t")
    budget = _month_budget(md, enterprise)
    basis = budget["basis"] if budget else "location"
    actual_b = total(md.em if basis == "location" else md.em_market, "scope12_co2_t")
    ytd = _part(md, "ytd", enterprise)
    ytd_actual = float(ytd["scope12_co2_t"].sum()) if len(ytd) else None
    months = [b for b in md.budgets.get(enterprise) or [] if b["month"] < p.end]
    ytd_budget = sum(b["budget_co2_t"] or 0.0 for b in months) if months else None
    st = md.status.get(enterprise or "PARK") or {}
    # A comparison month counts only with metered figures: a month holding nothing but
    # reported production (process emissions) is no month to compare with.
    prev = _metered_total(md.prev, scope)
    ly = _metered_total(md.last_year, scope)
    if st.get("ytd_co2_t") is not None:  # the year to date as `targets status` counts it:
        ytd_actual = _f(st.get("ytd_co2_t"))  # days with data, against their budget
        ytd_budget = _f(st.get("ytd_budget_co2_t"))
    measured = sum(md.slots.get(i, (0, 0))[0] for i in scope)
    expected = sum(md.meters.get(i, 0) for i in scope) * md.expected_slots_per_meter
    runout = st.get("runout_date")
    summary: dict[str, Any] = {
        "scope1_co2_t": total(md.em, "scope1_co2_t"),
        "scope1_process_co2_t": total(md.em, "scope1_process_co2_t"),
        "scope2_co2_t": total(md.em, "scope2_co2_t"),
        "scope12_co2_t": s12,
        "scope2_market_co2_t": total(md.em_market, "scope2_co2_t"),
        "scope12_market_co2_t": total(md.em_market, "scope12_co2_t"),
        "scope3_water_co2_t": total(md.em, "scope3_water_co2_t"),
        "tce": total(md.em, "tce"),
        "budget_basis": basis,
        "month_budget_co2_t": budget["budget_co2_t"] if budget else None,
        "budget_use_pct": _pct(actual_b, budget["budget_co2_t"]) if budget else None,
        "annual_cap_co2_t": budget["cap_co2_t"] if budget else None,
        "ytd_co2_t": ytd_actual,
        "ytd_budget_co2_t": ytd_budget,
        "ytd_vs_budget_pct": _pct(ytd_actual, ytd_budget),
        "prev_month_co2_t": prev,
        "mom_pct": _change_pct(s12, prev),
        "last_year_co2_t": ly,
        "yoy_pct": _change_pct(s12, ly),
        "forecast_co2_t": _f(st.get("forecast_co2_t")),
        "forecast_vs_cap_pct": _f(st.get("forecast_vs_cap_pct")),
        "runout_date": runout.isoformat() if isinstance(runout, date) else None,
        "coverage_pct": _pct(float(measured), float(expected)) if expected else None,
        "ytd_days_with_data": st.get("days_with_data"),
        "ytd_coverage_pct": _f(st.get("coverage_pct")),
        "target_status": st.get("status"),
    }

    car = _part(md, "carriers", enterprise)
    energy = []
    groups = {(str(c), str(sc)): g for (c, sc), g in car.groupby(["carrier", "scope"])}
    for carrier, sc, key in CARRIERS:
        sel = groups.get((carrier, sc))
        if sel is None or sel.empty:
            continue
        energy.append(
            {
                "key": key,
                "carrier": carrier,
                "scope": sc,
                "quantity": float(sel["quantity"].sum()),
                "unit": UNIT_TEXT.get(str(sel["unit"].iloc[0]), str(sel["unit"].iloc[0])),
                "tce": float(sel["tce"].sum()) if sc != "3" else None,
                "co2_t": float(sel["co2"].sum()),
            }
        )

    ranking: list[dict[str, Any]] = []
    for i in ids:
        r = md.em[i]
        m = md.em_market.get(i, {})
        b = _month_budget(md, i)
        pv = _f(md.prev.get(i, {}).get("scope12_co2_t"))
        own = _f(r["scope12_co2_t"])
        act_b = own if not b or b["basis"] == "location" else _f(m.get("scope12_co2_t"))
        ranking.append(
            {
                "enterprise_id": i,
                "name_zh": md.enterprises.get(i, {}).get("name_zh") or "",
                "scope1_co2_t": _f(r["scope1_co2_t"]),
                "scope2_co2_t": _f(r["scope2_co2_t"]),
                "scope12_co2_t": own,
                "scope12_market_co2_t": _f(m.get("scope12_co2_t")),
                "tce": _f(r["tce"]),
                "share_pct": _pct(own, s12) if enterprise is None else None,
                "prev_co2_t": pv,
                "change_co2_t": None if pv is None or own is None else own - pv,
                "change_pct": _change_pct(own, pv),
                "budget_co2_t": b["budget_co2_t"] if b else None,
                "budget_use_pct": _pct(act_b, b["budget_co2_t"]) if b else None,
                "unconfirmed": bool(r.get("unconfirmed")),
                "estimated": bool(r.get("estimated")),
            }
        )
    ranking.sort(key=lambda x: (-(x["scope12_co2_t"] or 0.0), x["enterprise_id"]))
    movers = sorted(
        (x for x in ranking if x["change_co2_t"] is not None),
        key=lambda x: (-abs(x["change_co2_t"]), x["enterprise_id"]),
    )[:5]

    ind_keys = ["PARK"] if enterprise is None else []
    ind_keys = sorted(k for k in md.indicators if k != "PARK" and k in scope) + ind_keys
    indicator_rows: list[dict[str, Any]] = [
        {
            "enterprise_id": k,
            "name_zh": md.indicators[k].get("name_zh") or "",
            **{
                c: _f(md.indicators[k].get(c))
                for c in ("co2_per_10k_cny", "tce_per_10k_cny", "co2_per_mu", "co2_per_tce",
                          "non_fossil_share_pct", "green_power_share_pct",
                          "value_added_10k_cny_per_mu", "land_area_mu", "tce")
            },
        }
        for k in ind_keys
    ]
    for row in indicator_rows:
        row["tce_per_mu"] = (
            row["tce"] / row["land_area_mu"] if row["tce"] is not None and row["land_area_mu"]
            else None
        )

    quality = []
    for i in scope:
        n = md.meters.get(i, 0)
        exp = n * md.expected_slots_per_meter
        meas, est = md.slots.get(i, (0, 0))
        ev = md.events.get(i, {})
        quality.append(
            {
                "enterprise_id": i,
                "meters": n,
                "expected_slots": exp,
                "measured_pct": _pct(float(meas), float(exp)) if exp else None,
                "estimated_pct": _pct(float(est), float(exp)) if exp else None,
                "missing_pct": _pct(float(max(0, exp - meas - est)), float(exp)) if exp else None,
                "passes_90": bool(exp) and meas >= 0.9 * exp,
                "gaps": ev.get("gap", 0),
                "resets": ev.get("reset", 0),
                "dead_letters": md.dead_letters.get(i, 0),
            }
        )
    unattributed = md.dead_letters.get(None, 0) if enterprise is None else 0

    used: dict[str, list[str]] = {}
    for i in ids:
        for v in str(md.em[i].get("factor_ids") or "").split():
            used.setdefault(v, []).append(i)
    factors = [
        {**md.factors[v], "used_by": used[v]} for v in sorted(used, key=lambda v: (
            md.factors.get(v, {}).get("key", v), v)) if v in md.factors
    ]
    unconfirmed_by = sorted(i for i in ids if md.em[i].get("unconfirmed"))

    alerts = None
    if md.alerts is not None:
        alerts = [
            {**a, "at": a["at"].isoformat()} for a in md.alerts
            if enterprise is None or a["enterprise_id"] == enterprise
        ]

    dl = _part(md, "daily", enterprise)
    per_day = dl.groupby("bucket")["scope12_co2_t"].sum()
    month_budget = summary["month_budget_co2_t"]
    daily: list[dict[str, Any]] = [
        {
            "day": (p.start + timedelta(days=k)).isoformat(),
            "co2_t": _f(per_day.get(p.start + timedelta(days=k))),
            "budget_co2_t": None if month_budget is None else month_budget / p.days,
        }
        for k in range(p.days)
    ]
    by_month = ytd.groupby("bucket")["scope12_co2_t"].sum()
    all_budgets = md.budgets.get(enterprise) or []
    pathway = []
    cum_a = 0.0
    cum_b = 0.0
    for mo in range(1, 13):
        first = date(p.start.year, mo, 1)
        b = next((x["budget_co2_t"] for x in all_budgets if x["month"] == first), None)
        cum_b += b or 0.0
        actual = _f(by_month.get(first)) if first <= p.start else None
        if actual is not None:
            cum_a += actual
        pathway.append(
            {
                "month": f"{p.start.year:04d}-{mo:02d}",
                "cum_co2_t": cum_a if first <= p.start else None,
                "cum_budget_co2_t": cum_b if all_budgets else None,
            }
        )

    data_through = max((d["day"] for d in daily if d["co2_t"] is not None), default=None)
    cutoffs = [md.cutoff[i] for i in scope if i in md.cutoff]
    runs = [md.runs[i] for i in ids if i in md.runs]
    budget_rows = [
        [subject or "", b["month"].isoformat(), _g(b["budget_co2_t"]), _g(b["cap_co2_t"]),
         b["basis"]]
        for subject, rows in sorted(md.budgets.items(), key=lambda kv: kv[0] or "")
        if subject == enterprise
        for b in rows
    ]
    inputs = {
        "period": p.label,
        "enterprise": enterprise,
        "rows": {i: md.inputs.get(i, []) for i in scope if md.inputs.get(i)},
        "budgets": budget_rows,
        "factors": sorted(used),
        "energy_basis": md.energy_basis,
    }
    figures: dict[str, Any] = {
        "period": p.label,
        "enterprise_id": enterprise,
        "subject_name": md.park_name if enterprise is None
        else md.enterprises[enterprise].get("name_zh") or enterprise,
        "credit_code": None if enterprise is None
        else md.enterprises[enterprise].get("credit_code"),
        "park_name": md.park_name,
        "enterprises_in_boundary": len(scope),
        "energy_basis": md.energy_basis,
        "timezone": md.settings.timezone,
        "summary": summary,
        "energy": energy,
        "ranking": ranking,
        "movers": movers,
        "indicators": indicator_rows,
        "quality": quality,
        "dead_letters_unattributed": unattributed,
        "alerts": alerts,
        "factors": factors,
        "unconfirmed_by": unconfirmed_by,
        "notes": md.notes,
        "daily": daily,
        "pathway": pathway,
        "data_through": data_through,
        "status_note": md.status_note,
    }
    coverage = [c for c in md.coverage if enterprise is None or c["subject"] == enterprise]
    if coverage:  # absent when complete: the figures (and hash) of such a month as before
        figures["coverage"] = coverage
    figures_sha = sha256_json(figures)
    receipt = {
        "accounting_run_id": max(runs) if runs else None,
        "inputs_sha256": sha256_json(inputs),
        "figures_sha256": figures_sha,
        "factor_library": md.factor_library,
        "software_version": f"parkcarbon {__version__}",
        "data_cutoff": max(cutoffs).isoformat() if cutoffs else None,
    }
    return {**figures, "receipt": receipt}


def key_figures(fig: dict[str, Any]) -> dict[str, Any]:
    """What the next version compares: the summary and each enterprise's row."""
    out: dict[str, Any] = {"summary": {k: fig["summary"].get(k) for k in KEY_FIGURES}}
    out["enterprises"] = {
        r["enterprise_id"]: {k: r.get(k) for k in KEY_FIGURES if k in r} for r in fig["ranking"]
    }
    return out


def _canonical(value: Any) -> Any:
    """Floats to 10 significant digits (sums of floats differ in the last bits)."""
    if isinstance(value, float):
        return None if math.isnan(value) else float(f"{value:.10g}")
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def sha256_json(value: Any) -> str:
    text = json.dumps(_canonical(value), sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
