"""``parkcarbon indicators``: intensities, non-fossil share and per-mu figures."""

from __future__ import annotations

import click

from parkcarbon.carbon.cli.render import (
    NO_FIGURES,
    NO_STORED_FIGURES,
    emit_frame,
    no_refresh_option,
    open_current,
)
from parkcarbon.clikit import AppContext, Column, format_option, pass_app, period_option
from parkcarbon.periods import Period

INDICATOR_COLUMNS: list[Column] = [
    ("enterprise_id", "enterprise", 0),
    ("co2_t", "tCO2", 1),
    ("tce", "tce", 1),
    ("co2_per_10k_cny", "tCO2/万元", 3),
    ("tce_per_10k_cny", "tce/万元", 3),
    ("co2_per_tce", "tCO2/tce", 3),
    ("non_fossil_share_pct", "non-fossil %", 1),
    ("green_power_share_pct", "green power %", 1),
    ("co2_per_mu", "tCO2/mu", 2),
    ("co2_per_industrial_mu", "tCO2/industrial mu", 2),
    ("value_added_10k_cny_per_mu", "VA 万元/mu", 2),
    ("tax_10k_cny_per_mu", "tax 万元/mu", 2),
    ("investment_10k_cny_per_mu", "invest 万元/mu", 2),
    ("data_days", "days with data", 0),
]
# per-mu headers say what period they are for (a month's tCO2/mu is monthly)
PER = {"day": "daily", "month": "monthly", "year": "annual"}


@click.command("indicators")
@period_option(required=True)
@click.option(
    "--basis",
    type=click.Choice(["location", "market", "ets"]),
    default="location",
    show_default=True,
)
@format_option
@no_refresh_option
@pass_app
def indicators_command(
    app: AppContext, period: Period, basis: str, fmt: str, no_refresh: bool
) -> None:
    """Intensities per 10k CNY value added, tCO2/tce, non-fossil share, per-mu figures.

    The chain is brought up to date first, as for `parkcarbon emissions`."""
    from parkcarbon.carbon.indicators import indicators

    with open_current(app, bring_up_to_date=not no_refresh) as conn:
        df = indicators(conn, period=period, basis=basis, energy_basis=app.settings().energy_basis)
    per = PER.get(period.kind, period.kind)
    columns = [
        (k, f"{h} ({per})" if k.endswith("_mu") and k != "industrial_land_mu" else h, d)
        for k, h, d in INDICATOR_COLUMNS
    ]
    emit_frame(
        df,
        fmt,
        columns,
        title=f"indicators {period.label} ({per} figures), Scope 2 {basis}-based; "
        f"period of {int(df['period_days'].max()) if len(df) else 0} days",
        empty=NO_STORED_FIGURES if no_refresh else NO_FIGURES,
    )
