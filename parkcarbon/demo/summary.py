"""The demo's summary: what a park officer reads after the simulated month.

``build_summary`` collects the figures: energy, tCO2 by scope, tce and the top emitters
come from ``parkcarbon.carbon.accounting.park_summary`` unchanged; the month's budget
from ``parkcarbon.carbon.targets``; dead letters from ingest; data completeness from the
``usage`` and ``meter_events`` tables. ``render_text`` prints it; ``as_dict`` is the
``--json`` form.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import psycopg

from parkcarbon.db import redact_dsn
from parkcarbon.demo import queries as Q
from parkcarbon.registry import Registry
from parkcarbon.settings import Settings
from parkcarbon.units import Q_, SLOT_SECONDS

if TYPE_CHECKING:
    from parkcarbon.demo.services import DemoServices

log = logging.getLogger(__name__)

CARRIER_LABELS = {  # (carrier, scope) -> label for the officer
    ("electricity", "2"): "electricity, grid import 电力",
    ("electricity", "pv"): "electricity, on-site PV 光伏",
    ("electricity", "export"): "electricity, exported 上网",
    ("natural_gas", "1"): "natural gas 天然气",
    ("diesel", "1"): "diesel 柴油",
    ("coal", "1"): "coal 煤",
    ("heat", "2"): "purchased heat 热力",
    ("steam", "2"): "purchased steam 蒸汽",
    ("water", "3"): "water 水",
}
DISPLAY_UNITS = {"kWh": "MWh"}  # converted for reading; other canonical units shown as is
UNIT_NAMES = {"m3": "m³"}


@dataclass(frozen=True)
class DemoSummary:
    """Everything the demo prints, as plain data."""

    park: str
    period: str
    simulated_from: datetime
    simulated_to: datetime
    basis: str
    energy: list[dict[str, Any]]  # label, carrier, scope, quantity, unit, tce
    scopes: dict[str, float]  # scope1_co2_t, scope2_co2_t, scope12_co2_t, scope3_water_co2_t
    tce: float
    top_emitters: list[dict[str, Any]]  # enterprise_id, name_zh, scope12_co2_t, share_pct
    budget: dict[str, Any] | None  # month budget and annual cap, None without targets
    dead_letters: dict[str, int]  # this run, by reason
    dead_letters_open_total: int
    completeness: dict[str, Any]
    ingest: dict[str, Any]
    where: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    report: str | None = None  # the month's park report (PDF), written by the demo
    alerts: dict[str, Any] | None = None  # parkcarbon.alerts.demo: what the faults raised

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _display(quantity: float, unit: str) -> tuple[float, str]:
    target = DISPLAY_UNITS.get(unit)
    if target is None:
        return quantity, UNIT_NAMES.get(unit, unit)
    return float(Q_(quantity, unit).to(target).magnitude), target


def _budget(
    conn: psycopg.Connection,
    settings: Settings,
    registry: Registry,
    period: str,
    scope12_co2_t: float,
    basis: str,
) -> dict[str, Any] | None:
    """The month's budget as stored in ``carbon_budgets`` and the year's status exactly
    as ``parkcarbon targets status --year`` computes it (coverage included)."""
    from parkcarbon.carbon.accounting import emissions
    from parkcarbon.carbon.targets import load_targets, stored_budgets, targets_status
    from parkcarbon.periods import local_today

    if not settings.targets_file.is_file():
        return None
    targets = load_targets(settings.targets_file, {e.id for e in registry.enterprises})
    year, month = (int(x) for x in period.split("-"))
    budgets = stored_budgets(conn, year)
    row = budgets[(budgets["month"] == date(year, month, 1)) & budgets["enterprise_id"].isna()]
    if row.empty:
        return None
    month_budget = float(row["budget_co2_t"].iloc[0])
    actual = scope12_co2_t
    if targets.basis != basis:
        actual = float(emissions(conn, period=period, basis=targets.basis)["scope12_co2_t"].sum())
    cap = float(row["cap_co2_t"].iloc[0])
    status = targets_status(
        conn,
        year=year,
        targets=targets,
        today=local_today(settings.tz),
        min_coverage_pct=settings.targets_min_coverage_pct,
    )
    park = status[status["subject"] == "PARK"].iloc[0]
    return {
        "targets_file": str(settings.targets_file),
        "basis": targets.basis,
        "source": "carbon_budgets",
        "month_budget_co2_t": month_budget,
        "month_actual_co2_t": actual,
        "month_burn_pct": 100.0 * actual / month_budget if month_budget else None,
        "annual_cap_co2_t": cap,
        "month_share_of_annual_cap_pct": 100.0 * actual / cap if cap else None,
        "year": year,
        "ytd_co2_t": float(park["ytd_co2_t"]),
        "days_with_data": int(park["days_with_data"]),
        "days_elapsed": int(park["days_elapsed"]),
        "coverage_pct": None if park["coverage_pct"] is None else float(park["coverage_pct"]),
        "forecast_co2_t": None if park["forecast_co2_t"] is None else float(park["forecast_co2_t"]),
        "forecast_vs_cap_pct": None
        if park["forecast_vs_cap_pct"] is None
        else float(park["forecast_vs_cap_pct"]),
        "status": str(park["status"]),
        "min_coverage_pct": settings.targets_min_coverage_pct,
    }


def _completeness(
    conn: psycopg.Connection, registry: Registry, start: datetime, end: datetime
) -> dict[str, Any]:
    measured, estimated = Q.slot_counts(conn, start, end)
    expected = len(registry.meters) * int((end - start).total_seconds() // SLOT_SECONDS)
    events = Q.events_by_kind(conn, start, end)
    return {
        "readings": Q.readings_count(conn, start, end),
        "slots_expected": expected,
        "slots_measured": measured,
        "slots_estimated": estimated,
        "slots_missing": max(0, expected - measured - estimated),
        "measured_pct": 100.0 * measured / expected if expected else 0.0,
        "events": {k: int(v) for k, v in events.items()},
    }


def build_summary(
    conn: psycopg.Connection,
    settings: Settings,
    registry: Registry,
    *,
    period: str,
    start: datetime,
    end: datetime,
    services: DemoServices,
    storage_mode: str,
    ingest_stats: Any,
    published: Any,
    seconds: float,
    basis: str = "location",
) -> DemoSummary:
    from parkcarbon.carbon.accounting import park_summary
    from parkcarbon.ingest.deadletters import count_by_reason

    ps = park_summary(conn, period, basis=basis)
    energy = []
    order = list(CARRIER_LABELS)
    rows = sorted(
        ps.energy.itertuples(index=False),
        key=lambda r: (
            order.index((r.carrier, r.scope)) if (r.carrier, r.scope) in order else len(order)
        ),
    )
    for r in rows:
        qty, unit = _display(float(r.quantity), str(r.unit))
        energy.append(
            {
                "label": CARRIER_LABELS.get((r.carrier, r.scope), r.carrier),
                "carrier": r.carrier,
                "scope": r.scope,
                "quantity": qty,
                "unit": unit,
                "tce": float(r.tce),
            }
        )
    tops = [
        {
            "enterprise_id": r.enterprise_id,
            "name_zh": r.name_zh,
            "scope12_co2_t": float(r.scope12_co2_t),
            "share_pct": float(r.share_pct),
        }
        for r in ps.top_emitters.itertuples(index=False)
    ]
    open_total = sum(count_by_reason(conn).values())
    where = {
        "database": redact_dsn(services.dsn),
        "database_embedded": services.postgres is not None,
        "database_folder": str(services.postgres.pgdata) if services.postgres else None,
        "storage_mode": storage_mode,
        "broker": f"{services.mqtt_host}:{services.mqtt_port}",
        "broker_kind": services.broker.kind if services.broker else "configured",
        "psql": services.psql_command,
        "embedded_running_after_demo": False,
    }
    return DemoSummary(
        park=registry.park.name_zh or registry.park.name,
        period=period,
        simulated_from=start,
        simulated_to=end,
        basis=basis,
        energy=energy,
        scopes=dict(ps.scopes),
        tce=ps.tce,
        top_emitters=tops,
        budget=_budget(conn, settings, registry, period, ps.scopes["scope12_co2_t"], basis),
        dead_letters=dict(ingest_stats.dead_letters_by_reason),
        dead_letters_open_total=open_total,
        completeness=_completeness(conn, registry, start, end),
        ingest={
            "messages": ingest_stats.messages,
            "readings_stored": ingest_stats.readings_stored,
            "readings_duplicate": ingest_stats.readings_duplicate,
            "redeliveries": ingest_stats.redeliveries,
            "published_messages": published.messages if published else 0,
        },
        where=where,
        notes=list(ps.notes),
        seconds=seconds,
    )


def _pad(text: str, width: int) -> str:
    """Left-align to ``width`` terminal columns (Chinese characters take two)."""
    cols = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(0, width - cols)


def _n(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def render_text(s: DemoSummary) -> str:
    """The summary as the officer sees it (English with Chinese terms)."""
    lines = [
        "",
        f"{s.park} — {s.period} carbon and energy summary (simulated data)",
        f"  simulated {s.simulated_from:%Y-%m-%d %H:%M} to {s.simulated_to:%Y-%m-%d %H:%M} UTC; "
        f"Scope 2 {s.basis}-based; standard coal GB/T 2589 equivalent value (当量值)",
        "",
        "Energy by carrier                          quantity          tce",
    ]
    for e in s.energy:
        lines.append(
            f"  {_pad(e['label'], 36)} {_n(e['quantity']):>14} {e['unit']:<4}{_n(e['tce']):>12}"
        )
    lines += [
        f"  {_pad('total standard coal 综合能耗', 36)} {'':>19}{_n(s.tce):>12}",
        "",
        "Emissions 排放 (tCO2)",
        f"  Scope 1 (fuels burnt on site, process)   {_n(s.scopes['scope1_co2_t']):>14}",
        f"    of which process (clinker, lime)       "
        f"{_n(s.scopes.get('scope1_process_co2_t', 0.0)):>14}",
        f"  Scope 2 (purchased power, heat, steam)   {_n(s.scopes['scope2_co2_t']):>14}",
        f"  Scope 1+2                                {_n(s.scopes['scope12_co2_t']):>14}",
        f"  Scope 3 water (information only)         {_n(s.scopes['scope3_water_co2_t'], 2):>14}",
        "",
    ]
    if s.budget:
        b = s.budget
        lines += [
            f"Carbon budget 碳预算 ({b['targets_file']}, {b['basis']}-based)",
            f"  {s.period} budget {_n(b['month_budget_co2_t'])} tCO2, used "
            f"{_n(b['month_actual_co2_t'])} tCO2 = {_n(b['month_burn_pct'])}% of the month's "
            "budget",
        ]
        if b["annual_cap_co2_t"]:
            lines.append(
                f"  annual cap {_n(b['annual_cap_co2_t'], 0)} tCO2; this month used "
                f"{_n(b['month_share_of_annual_cap_pct'])}% of it"
            )
        if b.get("days_elapsed"):
            status = b["status"].replace("_", " ")
            line = (
                f"  {b['year']} status (as `parkcarbon targets status --year {b['year']}`): "
                f"data on {b['days_with_data']} of {b['days_elapsed']} days elapsed "
                f"({_n(b['coverage_pct'])}%) -> {status}"
            )
            if b["forecast_co2_t"] is not None:
                line += (
                    f"; at the pace of those days the year ends at "
                    f"{_n(b['forecast_co2_t'], 0)} tCO2 "
                    f"({_n(b['forecast_vs_cap_pct'])}% of the cap)"
                )
            lines.append(line)
    else:
        lines.append("Carbon budget 碳预算: no targets file (config/targets.yaml) configured")
    lines += ["", "Top emitters 排放大户 (Scope 1+2)"]
    for i, t in enumerate(s.top_emitters, 1):
        lines.append(
            f"  {i}. {t['enterprise_id']:<4} {_pad(t['name_zh'] or '', 30)} "
            f"{_n(t['scope12_co2_t']):>12} tCO2  {_n(t['share_pct'])}%"
        )
    c = s.completeness
    events = ", ".join(f"{k} {v}" for k, v in c["events"].items()) or "none"
    dl = ", ".join(f"{k} {v}" for k, v in sorted(s.dead_letters.items())) or "none"
    lines += [
        "",
        "Data quality 数据质量",
        f"  readings stored {c['readings']:,}; 15-min usage slots measured "
        f"{c['slots_measured']:,} of {c['slots_expected']:,} ({_n(c['measured_pct'], 2)}%), "
        f"estimated across gaps {c['slots_estimated']:,}, missing {c['slots_missing']:,}",
        f"  meter events: {events}",
        f"  dead letters this run: {sum(s.dead_letters.values())} ({dl}); open in the "
        f"database: {s.dead_letters_open_total} (parkcarbon deadletters list)",
    ]
    w = s.where
    db = "embedded PostgreSQL" if w["database_embedded"] else "PostgreSQL"
    lines += [
        "",
        "Where the data lives",
        f"  database: {db} {w['database']} ({w['storage_mode']} mode)"
        + (f", files in {w['database_folder']}" if w["database_folder"] else ""),
        f"  broker:   {w['broker']} ({w['broker_kind']})",
        f"  look at it: {w['psql']} -c 'SELECT * FROM emissions_enterprise_monthly'",
    ]
    if w["database_embedded"]:
        lines.append(
            "  (the embedded server stops with the demo and starts again on the same "
            "files next time; `parkcarbon demo --live` keeps it running while you look)"
        )
    if s.notes:
        lines += ["", "Notes on factors"] + [f"  - {n}" for n in s.notes]
    if s.report:
        lines += ["", f"Monthly carbon report 月度碳排放报告: {s.report}"]
    if s.alerts:
        lines += ["", f"Alerts 告警: {s.alerts['line']}"]
    lines += ["", f"done in {s.seconds:.0f} s"]
    return "\n".join(lines)
