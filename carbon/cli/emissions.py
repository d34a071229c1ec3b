"""``parkcarbon emissions`` and its subcommands: refresh, diff, runs, factors."""

from __future__ import annotations

import dataclasses
from typing import Any

import click
import pandas as pd

from parkcarbon.carbon.cli.render import (
    NO_FIGURES,
    NO_STORED_FIGURES,
    emit_frame,
    no_refresh_option,
    open_current,
)
from parkcarbon.clikit import AppContext, Column, emit_mapping, format_option, period_option
from parkcarbon.periods import Period

EMISSION_COLUMNS: list[Column] = [
    ("enterprise_id", "enterprise", 0),
    ("scope1_co2_t", "scope1 tCO2", 1),
    ("scope1_process_co2_t", "of which process", 1),
    ("scope2_co2_t", "scope2 tCO2", 1),
    ("scope12_co2_t", "scope1+2 tCO2", 1),
    ("scope3_water_co2_t", "water tCO2 (S3)", 3),
    ("tce", "tce", 1),
    ("grid_electricity_kwh", "grid kWh", 0),
    ("pv_self_consumed_kwh", "PV self kWh", 0),
    ("natural_gas_m3", "gas m3", 0),
    ("mark", "flags", 0),
]
RESTATEMENT_COLUMNS: list[Column] = [
    ("run_id", "run", 0),
    ("enterprise_id", "enterprise", 0),
    ("bucket", "month", 0),  # header: the --by value
    ("cause", "cause", 0),
    ("rows", "meter-days", 0),
    ("old_co2_location_t", "old tCO2", 3),
    ("new_co2_location_t", "new tCO2", 3),
    ("diff_co2_location_t", "diff tCO2", 3),
    ("diff_tce", "diff tce", 3),
]
GREEN_POWER_COLUMNS: list[Column] = [
    ("enterprise_id", "enterprise", 0),
    ("month", "month", 0),
    ("old_green_kwh", "old green kWh", 0),
    ("new_green_kwh", "new green kWh", 0),
    ("grid_kwh", "grid kWh", 0),
    ("old_co2_market_t", "old tCO2", 3),
    ("new_co2_market_t", "new tCO2", 3),
    ("diff_co2_market_t", "diff tCO2", 3),
]
RUN_COLUMNS: list[Column] = [
    ("run_id", "run", 0),
    ("started_at", "started", 0),
    ("reason", "reason", 0),
    ("rows_written", "written", 0),
    ("rows_restated", "restated", 0),
]
FACTOR_COLUMNS: list[Column] = [
    ("key", "key", 0),
    ("region", "region", 0),
    ("year", "year", 0),
    ("per_canonical", "value per canonical unit", 7),
    ("canonical_unit", "unit", 0),
    ("origin", "origin", 0),
    ("unconfirmed", "UNCONFIRMED", 0),
]


@click.group("emissions", invoke_without_command=True)
@period_option()
@click.option("--enterprise", help="Only this enterprise id.")
@click.option(
    "--basis",
    type=click.Choice(["location", "market", "ets"]),
    default="location",
    show_default=True,
    help="Scope 2 electricity basis.",
)
@click.option(
    "--freq",
    type=click.Choice(["day", "month", "year"]),
    help="One row per enterprise and day/month/year instead of per period.",
)
@click.option(
    "--energy-basis",
    type=click.Choice(["equivalent", "equal_value"]),
    help="GB/T 2589 electricity coefficient (default: setting energy_basis).",
)
@format_option
@no_refresh_option
@click.pass_context
def emissions_group(
    ctx: click.Context,
    period: Period | None,
    enterprise: str | None,
    basis: str,
    freq: str | None,
    energy_basis: str | None,
    fmt: str,
    no_refresh: bool,
) -> None:
    """Scope 1, 2 (location/market) and water tCO2, tce and energy for a period.

    The chain is brought up to date first (usage derived from new readings, economics
    file, figures for new usage and changed factors; --no-refresh skips that), then the
    figures are printed per enterprise with a park total. Footnotes disclose
    earlier-year and UNCONFIRMED factors. Subcommands: refresh, diff, runs, factors.
    """
    if ctx.invoked_subcommand is not None:
        return
    if period is None:
        raise click.UsageError("--period is required (e.g. --period 2026-01)")
    from parkcarbon.carbon.accounting import emissions

    app: AppContext = ctx.obj
    energy_basis = energy_basis or app.settings().energy_basis
    with open_current(app, bring_up_to_date=not no_refresh) as conn:
        df = emissions(
            conn,
            period=period,
            enterprise=enterprise,
            basis=basis,
            freq=freq,
            energy_basis=energy_basis,
        )
    df["mark"] = ["*" if u else "" for u in df["unconfirmed"]]
    df["mark"] = df["mark"] + ["e" if e else "" for e in df["estimated"]]
    total: dict[str, Any] = {
        c: float(df[c].sum(min_count=1))
        for c, _, d in EMISSION_COLUMNS
        if d or c.endswith("_kwh") or c.endswith("_m3")
    }
    total["enterprise_id"] = "PARK" if enterprise is None else "TOTAL"
    columns = list(EMISSION_COLUMNS)
    if freq:
        columns.insert(1, ("bucket", freq, 0))
    if fmt == "table":
        df.attrs["notes"] = [
            *df.attrs.get("notes", []),
            "flags: * a figure uses an UNCONFIRMED factor, e includes estimated usage",
            "water (Scope 3, category 1) is informational and not in scope1+2",
        ]
    emit_frame(
        df.drop(columns=["mark"]) if fmt != "table" else df,
        fmt,
        columns,
        title=f"emissions {period.label}, Scope 2 {basis}-based, "
        f"tce {energy_basis} value (GB/T 2589), tCO2",
        total=total,
        empty=NO_STORED_FIGURES if no_refresh else NO_FIGURES,
    )


@emissions_group.command("refresh")
@period_option(help="With --force: recompute only this period.")
@click.option("--force", is_flag=True, help="Recompute everything (or --period).")
@format_option
@click.pass_obj
def refresh_command(app: AppContext, period: Period | None, force: bool, fmt: str) -> None:
    """Recompute figures for new or late usage and changed factors (no usage derivation:
    that is `parkcarbon usage derive`, or any read without --no-refresh)."""
    from parkcarbon.carbon.accounting import refresh

    with open_current(app, bring_up_to_date=False) as conn:
        result = refresh(conn, app.settings(), period=period if force else None, force=force)

    def text() -> list[str]:
        if result.run_id is None:
            return [
                "accounting: nothing to do (no usage derived and no factor change since the "
                f"last run), {result.factors_synced} new factor versions, {result.seconds:.2f} s"
            ]
        return [
            f"accounting run {result.run_id} ({result.reason}): "
            f"{result.days_checked} meter-days checked, "
            f"{result.days_recomputed} written, {result.restated} restated, "
            f"{result.factors_synced} new factor versions, {result.seconds:.2f} s"
        ]

    emit_mapping(dataclasses.asdict(result), fmt, text)


@emissions_group.command("diff")
@click.option("--run", "run_id", type=int, help="Only this accounting run.")
@period_option(help="Only days in this period (YYYY, YYYY-MM or YYYY-MM-DD).")
@click.option("--enterprise", help="Only this enterprise.")
@click.option("--by", type=click.Choice(["day", "month"]), default="month", show_default=True)
@click.option(
    "--green-power",
    is_flag=True,
    help="Market-based Scope 2 changed by green power inputs (per enterprise-month).",
)
@format_option
@click.pass_obj
def diff_command(
    app: AppContext,
    run_id: int | None,
    period: Period | None,
    enterprise: str | None,
    by: str,
    green_power: bool,
    fmt: str,
) -> None:
    """List restated figures: old, new and the difference (tCO2, tce)."""
    from parkcarbon.carbon.restatement import green_power_restatements, restatements

    label = None if period is None else period.label
    with open_current(app, bring_up_to_date=False) as conn:
        if green_power:
            df = green_power_restatements(conn, period=label, enterprise=enterprise)
        else:
            df = restatements(conn, run_id=run_id, period=label, enterprise=enterprise, by=by)
    if green_power:
        emit_frame(
            df,
            fmt,
            GREEN_POWER_COLUMNS,
            title="market-based Scope 2 restated by green power inputs",
            empty="no green power restatements recorded for this selection",
        )
        return
    columns = [(k, by if k == "bucket" else h, d) for k, h, d in RESTATEMENT_COLUMNS]
    emit_frame(
        df,
        fmt,
        columns,
        title="restatements (location-based tCO2; market and factor versions in --format json)",
        empty="no restatements recorded for this selection",
    )


@emissions_group.command("runs")
@click.option("--limit", type=int, default=20, show_default=True)
@format_option
@click.pass_obj
def runs_command(app: AppContext, limit: int, fmt: str) -> None:
    """The latest accounting runs (a refresh with nothing to do records none)."""
    from parkcarbon.carbon.restatement import runs

    with open_current(app, bring_up_to_date=False) as conn:
        df = runs(conn, limit)
    emit_frame(df, fmt, RUN_COLUMNS, title="accounting runs", empty="no accounting runs yet")


@emissions_group.command("factors")
@click.option("--key", help="Only keys starting with this (e.g. co2.electricity).")
@format_option
@click.pass_obj
def factors_command(app: AppContext, key: str | None, fmt: str) -> None:
    """The factor library in use (shipped + park overrides), UNCONFIRMED flagged."""
    from parkcarbon.carbon.factors import load_library

    lib = load_library(app.settings().factors_file)
    df = pd.DataFrame(
        [
            {
                "version_id": f.version_id,
                "key": f.key,
                "region": f.entry.region,
                "year": f.entry.year,
                "value": f.entry.value,
                "unit": f.entry.unit or "components",
                "per_canonical": f.per_canonical,
                "canonical_unit": f.canonical_unit,
                "valid_from": f.entry.valid_from,
                "valid_to": f.entry.valid_to,
                "origin": f.origin,
                "enterprise": f.entry.enterprise,
                "unconfirmed": f.entry.unconfirmed,
                "confidence": f.entry.confidence,
                "source": f.entry.source,
            }
            for f in lib.factors
            if not key or f.key.startswith(key)
        ],
        columns=[
            "version_id", "key", "region", "year", "value", "unit", "per_canonical",
            "canonical_unit", "valid_from", "valid_to", "origin", "enterprise",
            "unconfirmed", "confidence", "source",
        ],
    )
    df["year"] = df["year"].astype(str)
    emit_frame(
        df,
        fmt,
        FACTOR_COLUMNS,
        title="factor library (sources: --format json)",
        empty=f"no factor key starts with {key!r}",
    )
