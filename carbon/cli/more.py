"""More carbon commands: emissions refresh/diff/runs/factors, indicators, targets, economics."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import click
import pandas as pd

FORMATS = click.Choice(["table", "csv", "json"])


def register_more(
    group: click.Group,
    emissions_cmd: click.Group,
    open_conn: Callable,
    emit: Callable,
    render_table: Callable,
) -> None:
    @emissions_cmd.command("refresh")
    @click.option("--period", help="With --force: recompute only this period.")
    @click.option("--force", is_flag=True, help="Recompute everything (or --period).")
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    @click.pass_obj
    def refresh_cmd(app: Any, period: str | None, force: bool, as_json: bool) -> None:
        """Recompute figures for new or late usage and changed factors."""
        from parkcarbon.carbon.accounting import refresh
        from parkcarbon.clikit import echo_json

        with open_conn(app, do_refresh=False) as conn:
            result = refresh(conn, app.settings(), period=period if force else None, force=force)
        if as_json:
            echo_json(result.__dict__)
            return
        click.echo(
            f"accounting run {result.run_id} ({result.reason}): "
            f"{result.days_checked} meter-days checked, "
            f"{result.days_recomputed} written, {result.restated} restated, "
            f"{result.factors_synced} new factor versions, {result.seconds:.2f} s"
        )

    @emissions_cmd.command("diff")
    @click.option("--run", "run_id", type=int, help="Only this accounting run.")
    @click.option("--period", help="Only days in this period.")
    @click.option("--enterprise", help="Only this enterprise.")
    @click.option("--by", type=click.Choice(["day", "month"]), default="month", show_default=True)
    @click.option(
        "--green-power",
        is_flag=True,
        help="Market-based Scope 2 changed by green power inputs (per enterprise-month).",
    )
    @click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
    @click.pass_obj
    def diff_cmd(
        app: Any,
        run_id: int | None,
        period: str | None,
        enterprise: str | None,
        by: str,
        green_power: bool,
        fmt: str,
    ) -> None:
        """List restated figures: old, new and the difference (tCO2, tce)."""
        from parkcarbon.carbon.restatement import green_power_restatements, restatements

        if green_power:
            with open_conn(app, do_refresh=False) as conn:
                gdf = green_power_restatements(conn, period=period, enterprise=enterprise)
            emit(
                gdf,
                fmt,
                [
                    ("enterprise_id", "enterprise", 0),
                    ("month", "month", 0),
                    ("old_green_kwh", "old green kWh", 0),
                    ("new_green_kwh", "new green kWh", 0),
                    ("grid_kwh", "grid kWh", 0),
                    ("old_co2_market_t", "old tCO2", 3),
                    ("new_co2_market_t", "new tCO2", 3),
                    ("diff_co2_market_t", "diff tCO2", 3),
                ],
                None,
                "market-based Scope 2 restated by green power inputs",
                "no green power restatements recorded for this selection",
            )
            return
        with open_conn(app, do_refresh=False) as conn:
            df = restatements(conn, run_id=run_id, period=period, enterprise=enterprise, by=by)
        cols = [
            ("run_id", "run", 0),
            ("enterprise_id", "enterprise", 0),
            ("bucket", by, 0),
            ("cause", "cause", 0),
            ("rows", "meter-days", 0),
            ("old_co2_location_t", "old tCO2", 3),
            ("new_co2_location_t", "new tCO2", 3),
            ("diff_co2_location_t", "diff tCO2", 3),
            ("diff_tce", "diff tce", 3),
        ]
        emit(
            df,
            fmt,
            cols,
            None,
            "restatements (location-based tCO2; market and factor versions in --format json)",
            "no restatements recorded for this selection",
        )

    @emissions_cmd.command("runs")
    @click.option("--limit", type=int, default=20, show_default=True)
    @click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
    @click.pass_obj
    def runs_cmd(app: Any, limit: int, fmt: str) -> None:
        """The latest accounting runs."""
        from parkcarbon.carbon.restatement import runs

        with open_conn(app, do_refresh=False) as conn:
            df = runs(conn, limit)
        emit(
            df,
            fmt,
            [
                ("run_id", "run", 0),
                ("started_at", "started", 0),
                ("reason", "reason", 0),
                ("rows_written", "written", 0),
                ("rows_restated", "restated", 0),
            ],
            None,
            "accounting runs",
        )

    @emissions_cmd.command("factors")
    @click.option("--key", help="Only keys starting with this (e.g. co2.electricity).")
    @click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
    @click.pass_obj
    def factors_cmd(app: Any, key: str | None, fmt: str) -> None:
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
            ]
        )
        cols = [
            ("key", "key", 0),
            ("region", "region", 0),
            ("year", "year", 0),
            ("per_canonical", "value per canonical unit", 7),
            ("canonical_unit", "unit", 0),
            ("origin", "origin", 0),
            ("unconfirmed", "UNCONFIRMED", 0),
        ]
        df["year"] = df["year"].astype(str)
        emit(df, fmt, cols, None, "factor library (sources: --format json)")

    @group.command("indicators")
    @click.option("--period", required=True, help="YYYY or YYYY-MM.")
    @click.option(
        "--basis",
        type=click.Choice(["location", "market", "ets"]),
        default="location",
        show_default=True,
    )
    @click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
    @click.option("--no-refresh", is_flag=True)
    @click.pass_obj
    def indicators_cmd(app: Any, period: str, basis: str, fmt: str, no_refresh: bool) -> None:
        """Intensities per 10k CNY value added, tCO2/tce, non-fossil share, per-mu figures."""
        from parkcarbon.carbon.indicators import indicators

        with open_conn(app, do_refresh=not no_refresh) as conn:
            df = indicators(
                conn, period=period, basis=basis, energy_basis=app.settings().energy_basis
            )
        cols = [
            ("enterprise_id", "enterprise", 0),
            ("co2_t", "tCO2", 1),
            ("tce", "tce", 1),
            ("co2_per_10k_cny", "tCO2/万元", 3),
            ("tce_per_10k_cny", "tce/万元", 3),
            ("co2_per_tce", "tCO2/tce", 3),
            ("non_fossil_share_pct", "non-fossil %", 1),
            ("green_power_share_pct", "green power %", 1),
            ("co2_per_mu", "tCO2/mu", 2),
            ("value_added_10k_cny_per_mu", "VA 万元/mu", 2),
            ("tax_10k_cny_per_mu", "tax 万元/mu", 2),
            ("investment_10k_cny_per_mu", "invest 万元/mu", 2),
        ]
        emit(df, fmt, cols, None, f"indicators {period}, Scope 2 {basis}-based")

    @group.group("targets")
    def targets_group() -> None:
        """Peak-carbon caps, monthly budgets, burn and year-end forecast."""

    def _load(app: Any, conn: Any = None) -> Any:
        from parkcarbon.carbon.targets import load_targets

        ids = None
        if conn is not None:
            ids = {r[0] for r in conn.execute("SELECT id FROM enterprises").fetchall()}
        return load_targets(app.settings().targets_file, ids)

    @targets_group.command("status")
    @click.option("--year", type=int, default=None, help="Default: the current year.")
    @click.option(
        "--as-of",
        "as_of",
        type=click.DateTime(["%Y-%m-%d"]),
        help="Use data up to this local day only.",
    )
    @click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
    @click.option("--no-refresh", is_flag=True)
    @click.pass_obj
    def status_cmd(app: Any, year: int | None, as_of: Any, fmt: str, no_refresh: bool) -> None:
        """Cap, year-to-date tCO2 against budget, forecast and run-out date."""
        from datetime import UTC, datetime

        from parkcarbon.carbon.targets import targets_status

        year = year or datetime.now(UTC).astimezone(app.settings().tz).year
        with open_conn(app, do_refresh=not no_refresh) as conn:
            targets = _load(app, conn)
            df = targets_status(
                conn, year=year, targets=targets, as_of=as_of.date() if as_of else None
            )
        cols = [
            ("subject", "target", 0),
            ("cap_co2_t", "cap tCO2", 0),
            ("data_through", "data to", 0),
            ("ytd_co2_t", "YTD tCO2", 1),
            ("ytd_budget_co2_t", "YTD budget", 1),
            ("burn_pct", "burn %", 1),
            ("forecast_co2_t", "forecast tCO2", 0),
            ("forecast_vs_cap_pct", "fcst/cap %", 1),
            ("runout_date", "runs out", 0),
            ("status", "status", 0),
        ]
        emit(
            df,
            fmt,
            cols,
            None,
            f"targets {year} ({targets.basis}-based Scope 1+2, "
            f"monthly budgets by {df.attrs.get('profile')})",
        )

    @targets_group.command("check")
    @click.pass_obj
    def check_cmd(app: Any) -> None:
        """Validate the targets file and print each subject's cap for this year and next."""
        targets = _load(app)
        this = date.today().year  # noqa: DTZ011 - a calendar year label only
        click.echo(f"{targets.source}: OK ({len(targets.enterprises)} enterprise targets)")
        for s in targets.subjects():
            caps = ", ".join(
                f"{y}: {c:,.0f} t ({o})" if c else f"{y}: -"
                for y in (this, this + 1)
                for c, o in [s.cap(y)]
            )
            click.echo(f"  {s.id:<8} {caps}")

    @group.group("economics")
    def economics_group() -> None:
        """Value added, tax, investment and green power inputs per enterprise and month."""

    @economics_group.command("load")
    @click.option(
        "--file", "path", type=click.Path(dir_okay=False), help="Default: setting economics_file."
    )
    @click.pass_obj
    def load_cmd(app: Any, path: str | None) -> None:
        """Validate and store the economics file (upsert per enterprise and month)."""
        from parkcarbon.carbon.economics import load_economics, sync_economics_counts

        with open_conn(app, do_refresh=False) as conn:
            ids = {r[0] for r in conn.execute("SELECT id FROM enterprises").fetchall()}
            econ = load_economics(path or app.settings().economics_file, ids)
            n, restated = sync_economics_counts(conn, econ)
        click.echo(
            f"{econ.source}: {n} enterprise-months stored, {restated} market-based "
            "figures restated by green power changes"
        )
