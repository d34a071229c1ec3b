"""Commands of parkcarbon.carbon: emissions, indicators, targets, economics, factors."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import click
import pandas as pd

FORMATS = click.Choice(["table", "csv", "json"])


def _fmt(value: Any, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, int | float):
        return f"{value:,.{decimals}f}"
    return str(value)


def render_table(
    df: pd.DataFrame, columns: list[tuple[str, str, int]], total: dict[str, Any] | None = None
) -> str:
    """Fixed-width text table; columns = [(column, header, decimals)]."""
    rows = [[_fmt(r[c], d) for c, _, d in columns] for _, r in df.iterrows()]
    if total is not None:
        rows.append([_fmt(total.get(c, ""), d) for c, _, d in columns])
    headers = [h for _, h, _ in columns]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = [
        "  ".join(
            h.rjust(w) if i else h.ljust(w)
            for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        )
    ]
    lines.append("  ".join("-" * w for w in widths))
    for n, r in enumerate(rows):
        if total is not None and n == len(rows) - 1:
            lines.append("  ".join("-" * w for w in widths))
        lines.append(
            "  ".join(
                v.rjust(w) if i else v.ljust(w)
                for i, (v, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    return "\n".join(lines)


def _json_value(v: Any) -> Any:
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 6)
    return v.isoformat() if isinstance(v, date) else v


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in df.to_dict(orient="records"):
        out.append({k: _json_value(v) for k, v in rec.items()})
    return out


def _emit(
    df: pd.DataFrame,
    fmt: str,
    columns: list[tuple[str, str, int]],
    total: dict[str, Any] | None,
    title: str,
    empty: str = "no figures for this period (is there usage? run `parkcarbon emissions refresh`)",
) -> None:
    from parkcarbon.clikit import echo_json

    notes = list(df.attrs.get("notes", []))
    if fmt == "json":
        if total is not None:
            total = {k: _json_value(v) for k, v in total.items()}
        echo_json(
            {
                **{k: v for k, v in df.attrs.items() if k != "notes"},
                "rows": _records(df),
                "total": total,
                "notes": notes,
            }
        )
        return
    if fmt == "csv":
        click.echo(df.to_csv(index=False), nl=False)
        return
    click.echo(title)
    if df.empty:
        click.echo(empty)
        return
    click.echo(render_table(df, columns, total))
    for i, note in enumerate(notes, 1):
        click.echo(f"[{i}] {note}")


def _open(app: Any, *, do_refresh: bool) -> Any:
    """Connection, after syncing economics inputs and refreshing figures if asked."""
    from parkcarbon.carbon.accounting import refresh
    from parkcarbon.carbon.economics import load_economics, sync_economics
    from parkcarbon.db import connect

    settings = app.settings()
    conn = connect(settings)
    if do_refresh:
        if settings.economics_file.is_file():
            ids = {r[0] for r in conn.execute("SELECT id FROM enterprises").fetchall()}
            sync_economics(conn, load_economics(settings.economics_file, ids))
        refresh(conn, settings)
    return conn


EMISSION_COLUMNS = [
    ("enterprise_id", "enterprise", 0),
    ("scope1_co2_t", "scope1 tCO2", 1),
    ("scope2_co2_t", "scope2 tCO2", 1),
    ("scope12_co2_t", "scope1+2 tCO2", 1),
    ("scope3_water_co2_t", "water tCO2 (S3)", 3),
    ("tce", "tce", 1),
    ("grid_electricity_kwh", "grid kWh", 0),
    ("pv_self_consumed_kwh", "PV self kWh", 0),
    ("natural_gas_m3", "gas m3", 0),
    ("mark", "flags", 0),
]


def register(group: click.Group) -> None:
    """Add this package's commands to the `parkcarbon` group."""
    from parkcarbon.carbon.cli.more import register_more

    @group.group("emissions", invoke_without_command=True)
    @click.option("--period", help="YYYY, YYYY-MM or YYYY-MM-DD (park local time).")
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
    @click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
    @click.option("--no-refresh", is_flag=True, help="Print stored figures without recomputing.")
    @click.pass_context
    def emissions_cmd(
        ctx: click.Context,
        period: str | None,
        enterprise: str | None,
        basis: str,
        freq: str | None,
        energy_basis: str | None,
        fmt: str,
        no_refresh: bool,
    ) -> None:
        """Scope 1, 2 (location/market) and water tCO2, tce and energy for a period.

        Figures are refreshed first (new usage, changed factors), then printed per
        enterprise with a park total. Footnotes disclose earlier-year and UNCONFIRMED
        factors. Subcommands: refresh, diff, runs, factors.
        """
        if ctx.invoked_subcommand is not None:
            return
        if not period:
            raise click.UsageError("--period is required (e.g. --period 2026-01)")
        from parkcarbon.carbon.accounting import emissions
        from parkcarbon.carbon.models import parse_period

        parse_period(period)
        app = ctx.obj
        energy_basis = energy_basis or app.settings().energy_basis
        with _open(app, do_refresh=not no_refresh) as conn:
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
        title = (
            f"emissions {period}, Scope 2 {basis}-based, tce {energy_basis} value (GB/T 2589), tCO2"
        )
        _emit(
            df.drop(columns=["mark"]) if fmt != "table" else df,
            fmt,
            columns,
            total if fmt != "csv" else None,
            title,
        )

    register_more(group, emissions_cmd, _open, _emit, render_table)
