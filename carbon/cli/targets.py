"""``parkcarbon targets``: status (cap, YTD, forecast, run-out) and check (the file)."""

from __future__ import annotations

from datetime import datetime

import click
import psycopg

from parkcarbon.carbon.cli.render import emit_frame, no_refresh_option, open_current
from parkcarbon.carbon.targets import Targets
from parkcarbon.clikit import AppContext, Column, emit_rows, format_option, pass_app
from parkcarbon.periods import local_today

STATUS_COLUMNS: list[Column] = [
    ("subject", "target", 0),
    ("cap_co2_t", "cap tCO2", 0),
    ("data_through", "data to", 0),
    ("days_with_data", "days w/ data", 0),
    ("coverage_pct", "coverage %", 1),
    ("ytd_co2_t", "YTD tCO2", 1),
    ("ytd_budget_co2_t", "budget of those days", 1),
    ("ytd_vs_budget_pct", "pace %", 1),
    ("burn_pct", "cap used %", 1),
    ("forecast_co2_t", "forecast tCO2", 0),
    ("forecast_vs_cap_pct", "fcst/cap %", 1),
    ("runout_date", "runs out", 0),
    ("status", "status", 0),
]
CAP_COLUMNS: list[Column] = [
    ("subject", "target", 0),
    ("year", "year", 0),
    ("cap_co2_t", "cap tCO2", 0),
    ("origin", "origin", 0),
]


def _load(app: AppContext, conn: psycopg.Connection | None = None) -> Targets:
    """The targets file, its enterprise ids checked against the registry: the database's
    with ``conn``, else the registry file (setting ``registry_file``)."""
    from parkcarbon.carbon.accounting import enterprise_ids
    from parkcarbon.carbon.targets import load_targets

    if conn is not None:
        ids = enterprise_ids(conn)
    else:
        from parkcarbon.registry import load_registry

        ids = {e.id for e in load_registry(app.settings().registry_file).enterprises}
    return load_targets(app.settings().targets_file, ids)


@click.group("targets")
def targets_group() -> None:
    """Peak-carbon caps, monthly budgets, burn and year-end forecast."""


@targets_group.command("status")
@click.option("--year", type=int, default=None, help="Default: the current year.")
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Use data up to this local day only.",
)
@format_option
@no_refresh_option
@pass_app
def status_command(
    app: AppContext, year: int | None, as_of: datetime | None, fmt: str, no_refresh: bool
) -> None:
    """Cap, year-to-date tCO2 against budget, forecast and run-out date.

    The chain is brought up to date first, as for `parkcarbon emissions`."""
    from parkcarbon.carbon.targets import targets_status

    settings = app.settings()
    year = year or local_today(settings.tz).year
    with open_current(app, bring_up_to_date=not no_refresh) as conn:
        targets = _load(app, conn)
        df = targets_status(
            conn,
            year=year,
            targets=targets,
            as_of=as_of.date() if as_of else None,
            today=local_today(settings.tz),
            min_coverage_pct=settings.targets_min_coverage_pct,
        )
    emit_frame(
        df,
        fmt,
        STATUS_COLUMNS,
        title=f"targets {year} ({targets.basis}-based Scope 1+2, monthly budgets by "
        f"{df.attrs.get('profile')}; budget, pace and forecast over the days with data, "
        "the rest projected at that pace)",
    )


@targets_group.command("check")
@format_option
@pass_app
def check_command(app: AppContext, fmt: str) -> None:
    """Validate the targets file and print each subject's cap for this year and next."""
    from parkcarbon.carbon.targets import targets_warnings

    targets = _load(app)
    this = local_today(app.settings().tz).year
    warnings = targets_warnings(targets, [this, this + 1])
    rows = [
        {"subject": s.id, "year": y, "cap_co2_t": cap, "origin": origin}
        for s in targets.subjects()
        for y in (this, this + 1)
        for cap, origin in [s.cap(y)]
    ]
    if fmt != "table":
        extra = {
            "source": targets.source,
            "ok": True,
            "enterprise_targets": len(targets.enterprises),
            "warnings": warnings,
        }
        emit_rows(rows, fmt, CAP_COLUMNS, json_extra=extra)
        return
    click.echo(f"{targets.source}: OK ({len(targets.enterprises)} enterprise targets)")
    for s in targets.subjects():
        caps = ", ".join(
            f"{y}: {c:,.0f} t ({o})" if c else f"{y}: -"
            for y in (this, this + 1)
            for c, o in [s.cap(y)]
        )
        click.echo(f"  {s.id:<8} {caps}")
    for w in warnings:
        click.echo(f"warning: {w}")
