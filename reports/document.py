"""Figures -> a ``Document``: sections 1-10 (and the change page of a later version) as
paragraphs, tables and charts in the report's language. No figure is computed here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from parkcarbon.reports.labels import has_label, label
from parkcarbon.reports.models import Cell, Chart, Column, Document, Section, Table

DECIMALS_T = 2  # tCO2 and tce as printed (the PDF test reads them at this precision)
DECIMALS_PCT = 1


def _t(lang: str, key: str) -> Column:
    return Column(label(lang, key), "num", DECIMALS_T)


def _pct(header: str) -> Column:
    return Column(header, "pct", DECIMALS_PCT)


def _text(header: str) -> Column:
    return Column(header, "text")


def _qty_decimals(unit: str) -> int:
    return 0 if unit == "kWh" else 2


def local_time(text: str | None, timezone: str) -> str:
    """An ISO instant as the park's local time, to the second (``-`` for none)."""
    if not text:
        return "-"
    from zoneinfo import ZoneInfo

    moment = datetime.fromisoformat(text).astimezone(ZoneInfo(timezone))
    return moment.strftime("%Y-%m-%d %H:%M:%S") + f" ({timezone})"


def cover_section(fig: dict[str, Any], lang: str, version: int, generated_at: str) -> Section:
    L = lambda k, **f: label(lang, k, **f)  # noqa: E731
    ent = fig["enterprise_id"]
    rows: list[tuple[Any, ...]] = [
        (L("park"), fig["park_name"]),
        (L("subject"), fig["subject_name"] if ent is None else f"{fig['subject_name']} ({ent})"),
    ]
    if ent is not None and fig.get("credit_code"):
        rows.append((L("credit_code"), fig["credit_code"]))
    rows += [
        (L("period"), fig["period"]),
        (L("version"), Cell(version, "int")),
        (L("boundary"), L("boundary_park", n=fig["enterprises_in_boundary"]) if ent is None
         else L("boundary_enterprise")),
        (L("data_cutoff"), local_time(fig["receipt"]["data_cutoff"], fig["timezone"])),
        (L("generated_at"), local_time(generated_at, fig["timezone"])),
        (L("standard"), L("standard_text")),
    ]
    table = Table("cover", (_text(L("item")), _text(L("value"))), tuple(rows))
    return Section("cover", L("s1"), L("sheet_cover"), (table,))


def change_section(changes: list[dict[str, Any]], lang: str, old_version: int) -> Section:
    L = lambda k, **f: label(lang, k, **f)  # noqa: E731
    rows = tuple(
        (
            c["subject"],
            c["metric_label_" + lang],
            c["old"],
            c["new"],
            None if c["old"] is None or c["new"] is None else c["new"] - c["old"],
            ", ".join(L("cause_" + x) for x in c["causes"]),
        )
        for c in changes
    )
    table = Table(
        "changes",
        (_text(L("subject")), _text(L("metric")), Column(L("old"), "num", 3),
         Column(L("new"), "num", 3), Column(L("diff"), "num", 3), _text(L("cause"))),
        rows,
    )
    return Section("changes", L("changes"), L("sheet_changes"),
                   (L("change_intro", old=old_version), table))


def _status_text(lang: str, status: Any) -> str | None:
    if status is None:
        return None
    key = f"status_{status}"
    return label(lang, key) if has_label(key) else str(status)


def coverage_note(lang: str, c: dict[str, Any]) -> str:
    """What the year to date and the forecast rest on, for a subject lacking days."""
    subject = label(lang, "park") if c["subject"] == "PARK" else c["subject"]
    return label(
        lang, "coverage_note", subject=subject, days=c["days_with_data"],
        elapsed=c["days_elapsed"], pct=f"{c['coverage_pct']:.1f}",
        min=f"{c['min_coverage_pct']:.0f}",
        what=label(lang, "coverage_insufficient" if c["insufficient"] else "coverage_partial"),
    )


def _summary(fig: dict[str, Any], lang: str) -> Section:
    L = lambda k, **f: label(lang, k, **f)  # noqa: E731
    s = fig["summary"]
    t = "tCO2"

    rows: list[tuple[Any, ...]] = [
        (L("scope1"), Cell(s["scope1_co2_t"]), t),
        (L("scope2_location"), Cell(s["scope2_co2_t"]), t),
        (L("scope12_location"), Cell(s["scope12_co2_t"]), t),
        (L("scope2_market"), Cell(s["scope2_market_co2_t"]), t),
        (L("scope12_market"), Cell(s["scope12_market_co2_t"]), t),
        (L("scope3_water"), Cell(s["scope3_water_co2_t"], "num", 3), t),
        (L("tce"), Cell(s["tce"]), "tce"),
        (L("month_budget"), Cell(s["month_budget_co2_t"]), t),
        (L("budget_use"), Cell(s["budget_use_pct"], "pct", 1), "%"),
        (L("ytd_actual"), Cell(s["ytd_co2_t"]), t),
        (L("ytd_budget"), Cell(s["ytd_budget_co2_t"]), t),
        (L("ytd_vs_budget"), Cell(s["ytd_vs_budget_pct"], "pct", 1), "%"),
        (L("annual_cap"), Cell(s["annual_cap_co2_t"], "num", 0), t),
        (L("prev_month"), Cell(s["prev_month_co2_t"]), t),
        (L("mom"), Cell(s["mom_pct"], "pct", 1), "%"),
        (L("last_year"), Cell(s["last_year_co2_t"]), t),
        (L("yoy"), Cell(s["yoy_pct"], "pct", 1), "%"),
        (L("forecast"), Cell(s["forecast_co2_t"]), t),
        (L("forecast_vs_cap"), Cell(s["forecast_vs_cap_pct"], "pct", 1), "%"),
        (L("runout"), Cell(s["runout_date"] or (L("runout_none")
                                                if s["forecast_co2_t"] is not None else None),
                           "text"), ""),
        (L("coverage"), Cell(s["coverage_pct"], "pct", 1), "%"),
        (L("ytd_coverage"), Cell(s.get("ytd_coverage_pct"), "pct", 1), "%"),
        (L("target_status"), Cell(_status_text(lang, s.get("target_status")), "text"), ""),
    ]
    blocks: list[Table | Chart | str] = [
        Table("summary", (_text(L("item")), Column(L("value")), _text(L("unit"))), tuple(rows)),
        L("basis_note"),
    ]
    if s["prev_month_co2_t"] is None:
        blocks.append(L("no_prev"))
    if s["last_year_co2_t"] is None:
        blocks.append(L("no_last_year"))
    if s["month_budget_co2_t"] is None:
        blocks.append(L("no_budget"))
    if s["forecast_co2_t"] is None:
        blocks.append(L("no_forecast"))
    if fig.get("status_note"):
        blocks.append(str(fig["status_note"]))
    blocks += [coverage_note(lang, c) for c in fig.get("coverage") or []]
    daily = fig["daily"]
    if any(d["co2_t"] is not None for d in daily):
        blocks.append(
            Chart(
                "bars",
                L("chart_daily"),
                tuple(d["day"][8:] for d in daily),
                tuple(d["co2_t"] or 0.0 for d in daily),
                tuple(d["budget_co2_t"] or 0.0 for d in daily)
                if s["month_budget_co2_t"] is not None else (),
                legend=(L("legend_actual"), L("legend_budget")),
            )
        )
    path = fig["pathway"]
    if any(x["cum_budget_co2_t"] is not None for x in path) or any(
        x["cum_co2_t"] for x in path
    ):
        blocks.append(
            Chart(
                "pathway",
                L("chart_pathway"),
                tuple(x["month"][5:] for x in path),
                tuple(x["cum_co2_t"] for x in path if x["cum_co2_t"] is not None),
                tuple(x["cum_budget_co2_t"] or 0.0 for x in path)
                if any(x["cum_budget_co2_t"] is not None for x in path) else (),
                cap=s["annual_cap_co2_t"],
                legend=(L("legend_actual"), L("legend_budget"), L("legend_cap")),
            )
        )
    daily_table = Table(
        "daily",
        (_text(L("day")), _t(lang, "daily_co2"), _t(lang, "daily_budget")),
        tuple((d["day"], d["co2_t"], d["budget_co2_t"]) for d in daily),
        in_pdf=False,
    )
    return Section("summary", L("s2"), L("sheet_summary"), (*blocks, daily_table))


def _energy(fig: dict[str, Any], lang: str) -> Section:
    L = lambda k, **f: label(lang, k, **f)  # noqa: E731
    total_tce = fig["summary"]["tce"] or 0.0
    rows = tuple(
        (
            L(e["key"]),
            Cell(e["quantity"], "num", _qty_decimals(e["unit"])),
            e["unit"],
            e["tce"],
            None if e["tce"] is None or not total_tce else 100.0 * e["tce"] / total_tce,
        )
        for e in fig["energy"]
    )
    table = Table(
        "energy",
        (_text(L("carrier")), Column(L("quantity")), _text(L("unit")), _t(lang, "tce_col"),
         _pct(L("share"))),
        rows,
        total=(L("total"), None, "", fig["summary"]["tce"], 100.0 if total_tce else None),
    )
    mix = [e for e in fig["energy"] if e["tce"]]
    blocks: list[Table | Chart | str] = [
        L("energy_basis_" + fig["energy_basis"]),
        table if rows else L("no_data"),
        L("pv_note"),
    ]
    if mix:
        blocks.append(
            Chart("hbars", L("chart_mix"), tuple(L(e["key"]) for e in mix),
                  tuple(float(e["tce"]) for e in mix))
        )
    return Section("energy", L("s3"), L("sheet_energy"), tuple(blocks))


def _emissions(fig: dict[str, Any], lang: str) -> Section:
    L = lambda k, **f: label(lang, k, **f)  # noqa: E731
    by = {(e["carrier"], e["scope"]): e["co2_t"] for e in fig["energy"]}
    s = fig["summary"]
    rows: list[tuple[Any, ...]] = []
    for carrier in ("natural_gas", "diesel", "coal"):
        if (carrier, "1") in by:
            rows.append(("1", L("src_fuel", c=L(carrier)), by[(carrier, "1")]))
    if s.get("scope1_process_co2_t"):
        rows.append(("1", L("src_process"), s["scope1_process_co2_t"]))
    rows.append(("1", L("scope1"), s["scope1_co2_t"]))
    if ("electricity", "2") in by:
        rows.append(("2", L("src_elec"), by[("electricity", "2")]))
    for carrier, key in (("heat", "src_heat"), ("steam", "src_steam")):
        if (carrier, "2") in by:
            rows.append(("2", L(key), by[(carrier, "2")]))
    rows.append(("2", L("scope2_location"), s["scope2_co2_t"]))
    rows.append(("2", L("scope2_market"), s["scope2_market_co2_t"]))
    if ("water", "3") in by:
        rows.append(("3", L("src_water"), Cell(by[("water", "3")], "num", 3)))
    table = Table(
        "emissions",
        (_text(L("scope")), _text(L("source")), _t(lang, "co2_location")),
        tuple(rows),
        total=("1+2", L("scope12_total"), s["scope12_co2_t"]),
    )
    return Section("emissions", L("s4"), L("sheet_emissions"), (table, L("basis_note")))


def _ranking(fig: dict[str, Any], lang: str) -> Section:
    L = lambda k, **f: label(lang, k, **f)  # noqa: E731
    park = fig["enterprise_id"] is None
    cols = [
        Column(L("rank"), "int"), _text(L("enterprise")), Column(L("name"), "text", width=3.0),
        _t(lang, "s1_t"), _t(lang, "s2_t"), _t(lang, "s12_t"), _t(lang, "s12m_t"),
        _t(lang, "tce_t"), _pct(L("share_pct")), _t(lang, "prev_t"), _pct(L("change_pct")),
        _t(lang, "budget_t"), _pct(L("budget_use_pct")),
    ]
    rows = tuple(
        (
            n, r["enterprise_id"], r["name_zh"], r["scope1_co2_t"], r["scope2_co2_t"],
            r["scope12_co2_t"], r["scope12_market_co2_t"], r["tce"], r["share_pct"],
            r["prev_co2_t"], r["change_pct"], r["budget_co2_t"], r["budget_use_pct"],
        )
        for n, r in enumerate(fig["ranking"], 1)
    )
    s = fig["summary"]
    total = (None, L("total"), "", s["scope1_co2_t"], s["scope2_co2_t"], s["scope12_co2_t"],
             s["scope12_market_co2_t"], s["tce"], 100.0 if park and s["scope12_co2_t"] else None,
             s["prev_month_co2_t"], s["mom_pct"], s["month_budget_co2_t"], s["budget_use_pct"])
    blocks: list[Table | Chart | str] = [
        Table("ranking", tuple(cols), rows, total=total if park else None)
        if rows else L("no_enterprises")
    ]
    if park and fig["movers"]:
        blocks.append(L("movers"))
        blocks.append(
            Table(
                "movers",
                (_text(L("enterprise")), _text(L("name")), _t(lang, "prev_t"),
                 _t(lang, "s12_t"), _t(lang, "change_t"), _pct(L("change_pct"))),
                tuple(
                    (m["enterprise_id"], m["name_zh"], m["prev_co2_t"], m["scope12_co2_t"],
                     m["change_co2_t"], m["change_pct"])
                    for m in fig["movers"]
                ),
            )
        )
    if park and rows:
        top = [r for r in fig["ranking"] if r["scope12_co2_t"]][:15]
        blocks.append(
            Chart("hbars", L("chart_ranking"),
                  tuple(f"{r['enterprise_id']} {r['name_zh']}" for r in top),
                  tuple(float(r["scope12_co2_t"]) for r in top))
        )
    return Section("ranking", L("s5"), L("sheet_ranking"), tuple(blocks))


def _indicators(fig: dict[str, Any], lang: str) -> Section:
    L = lambda k, **f: label(lang, k, **f)  # noqa: E731
    cols = (
        _text(L("enterprise")), _text(L("name")),
        Column(L("co2_per_10k"), "num", 4), Column(L("tce_per_10k"), "num", 4),
        Column(L("co2_per_mu"), "num", 4), Column(L("tce_per_mu"), "num", 4),
        Column(L("va_per_mu"), "num", 4), _pct(L("non_fossil")), _pct(L("green_share")),
        Column(L("co2_per_tce"), "num", 3),
    )
    rows = tuple(
        (
            r["enterprise_id"] if r["enterprise_id"] != "PARK" else L("park"), r["name_zh"],
            r["co2_per_10k_cny"], r["tce_per_10k_cny"], r["co2_per_mu"], r["tce_per_mu"],
            r["value_added_10k_cny_per_mu"], r["non_fossil_share_pct"],
            r["green_power_share_pct"], r["co2_per_tce"],
        )
        for r in fig["indicators"]
    )
    blocks: tuple[Table | Chart | str, ...] = (
        (Table("indicators", cols, rows) if rows else L("no_data")), L("indicators_note"),
    )
    return Section("indicators", L("s6"), L("sheet_indicators"), blocks)


def _quality(fig: dict[str, Any], lang: str) -> Section:
    L = lambda k, **f: label(lang, k, **f)  # noqa: E731
    cols = (
        _text(L("enterprise")), Column(L("meters"), "int"), Column(L("expected_slots"), "int"),
        _pct(L("measured_pct")), _pct(L("estimated_pct")), _pct(L("missing_pct")),
        _text(L("rule90")), Column(L("gaps"), "int"), Column(L("resets"), "int"),
        Column(L("dead_letters"), "int"),
    )
    rows = tuple(
        (
            q["enterprise_id"], q["meters"], q["expected_slots"], q["measured_pct"],
            q["estimated_pct"], q["missing_pct"], L("pass") if q["passes_90"] else L("fail"),
            q["gaps"], q["resets"], q["dead_letters"],
        )
        for q in fig["quality"]
    )
    return Section(
        "quality", L("s7"), L("sheet_quality"),
        (Table("quality", cols, rows), L("quality_note", n=fig["dead_letters_unattributed"])),
    )


def _alerts(fig: dict[str, Any], lang: str) -> Section:
    L = lambda k, **f: label(lang, k, **f)  # noqa: E731
    alerts = fig["alerts"]
    if alerts is None:
        return Section("alerts", L("s8"), L("sheet_alerts"), (L("alerts_none_table"),))
    if not alerts:
        return Section("alerts", L("s8"), L("sheet_alerts"), (L("alerts_none"),))
    cols = (_text(L("at")), _text(L("rule")), _text(L("subject")), _text(L("severity")),
            _text(L("state")), Column(L("value"), "num", 3))
    rows = tuple(
        (a["at"][:16].replace("T", " "), a["rule_id"], a["subject"], a["severity"],
         f"{a['from_state']} → {a['to_state']}", a["value"])
        for a in alerts
    )
    return Section("alerts", L("s8"), L("sheet_alerts"), (Table("alerts", cols, rows),))


def _factors(fig: dict[str, Any], lang: str) -> Section:
    L = lambda k, **f: label(lang, k, **f)  # noqa: E731
    cols = (
        Column(L("factor_version"), "text", width=2.0), _text(L("region")),
        Column(L("year"), "int"),
        Column(L("factor_value"), "num", 4), _text(L("unit")),
        Column(L("per_canonical"), "num", 7), _text(L("unit")),
        Column(L("source"), "text", width=4.0),
        _text(L("confidence")), _text(L("unconfirmed")), _text(L("used_by")),
    )
    rows = tuple(
        (
            f["version_id"], f["region"], f["year"], f["value"], f["unit"], f["per_canonical"],
            f["canonical_unit"], f["source"], f["confidence"],
            L("unconfirmed") if f["unconfirmed"] else "",
            " ".join(f["used_by"]) if len(f["used_by"]) <= 8
            else f"{len(f['used_by'])} " + L("enterprise"),
        )
        for f in fig["factors"]
    )
    blocks: list[Table | Chart | str] = [L("method_text")]
    blocks.append(Table("factors", cols, rows) if rows else L("no_data"))
    if fig["unconfirmed_by"]:
        blocks.append(L("unconfirmed_used", ids=", ".join(fig["unconfirmed_by"])))
    blocks += list(fig["notes"])
    return Section("factors", L("s9"), L("sheet_factors"), tuple(blocks))


def _receipt(fig: dict[str, Any], lang: str, generated_at: str) -> Section:
    L = lambda k, **f: label(lang, k, **f)  # noqa: E731
    r = fig["receipt"]
    rows = (
        (L("accounting_run"), Cell(r["accounting_run_id"], "int")),
        (L("inputs_sha256"), r["inputs_sha256"]),
        (L("figures_sha256"), r["figures_sha256"]),
        (L("factor_library"), r["factor_library"]),
        (L("software_version"), r["software_version"]),
        (L("data_through"), fig["data_through"] or "-"),
        (L("data_cutoff"), local_time(r["data_cutoff"], fig["timezone"])),
        (L("generated_at"), local_time(generated_at, fig["timezone"])),
    )
    return Section(
        "receipt", L("s10"), L("sheet_receipt"),
        (Table("receipt", (_text(L("item")), _text(L("value"))), rows), L("receipt_note")),
    )


def build_document(
    fig: dict[str, Any],
    lang: str,
    *,
    version: int,
    generated_at: str,
    changes: list[dict[str, Any]] | None = None,
    old_version: int | None = None,
) -> Document:
    """The whole report in ``lang`` (zh | en)."""
    L = lambda k, **f: label(lang, k, **f)  # noqa: E731
    sections = [cover_section(fig, lang, version, generated_at)]
    if changes and old_version is not None:
        sections.append(change_section(changes, lang, old_version))
    sections += [
        _summary(fig, lang),
        _energy(fig, lang),
        _emissions(fig, lang),
        _ranking(fig, lang),
        _indicators(fig, lang),
        _quality(fig, lang),
        _alerts(fig, lang),
        _factors(fig, lang),
        _receipt(fig, lang, generated_at),
    ]
    kind = L("park_report") if fig["enterprise_id"] is None else L("enterprise_report")
    subject = fig["subject_name"]
    r = fig["receipt"]
    return Document(
        title=f"{subject} {fig['period']} {L('title')}",
        subtitle=f"{kind} · v{version}",
        lang=lang,
        sections=tuple(sections),
        keywords=(
            "parkcarbon-report",
            f"period={fig['period']}",
            f"subject={fig['enterprise_id'] or 'PARK'}",
            f"version={version}",
            f"figures_sha256={r['figures_sha256']}",
            f"inputs_sha256={r['inputs_sha256']}",
        ),
        properties={
            "parkcarbon_period": fig["period"],
            "parkcarbon_subject": fig["enterprise_id"] or "PARK",
            "parkcarbon_version": str(version),
            "parkcarbon_figures_sha256": r["figures_sha256"],
            "parkcarbon_inputs_sha256": r["inputs_sha256"],
        },
    )
