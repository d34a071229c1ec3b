"""Command ``parkcarbon demo``: the whole system on local or embedded services."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from parkcarbon.clikit import AppContext, format_option, pass_app


@click.command("demo")
@click.option(
    "--live",
    is_flag=True,
    help="After the summary, keep simulating and accounting in real time until Ctrl-C.",
)
@click.option(
    "--month",
    type=click.DateTime(["%Y-%m"]),
    help="Month to simulate (default: the previous full calendar month).",
)
@click.option(
    "--days",
    type=click.IntRange(1, 31),
    help="Simulate only the first N days of the month (quicker).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Simulator seed.")
@click.option(
    "--no-faults", is_flag=True, help="Simulate clean data (no reset, gap, late data or garbage)."
)
@click.option(
    "--embedded",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Use embedded PostgreSQL / broker: when nothing is reachable (auto), always, or never.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="PARKCARBON_DATA_DIR",
    show_envvar=True,
    help="Folder of the embedded services' data (default ~/.local/share/parkcarbon, "
    "/var/lib/parkcarbon as root).",
)
@format_option
@click.option("--quiet", is_flag=True, help="No progress lines on stderr.")
@pass_app
def demo_command(
    app: AppContext,
    live: bool,
    month: object,
    days: int | None,
    seed: int,
    no_faults: bool,
    embedded: str,
    data_dir: Path | None,
    fmt: str,
    quiet: bool,
) -> None:
    """Show the whole system working: services, a simulated month, ingest, accounting,
    and a summary a park officer reads. Nothing needs to be configured first."""
    from parkcarbon.demo.run import DemoOptions, run_demo

    options = DemoOptions(
        month=date(month.year, month.month, 1) if month is not None else None,  # type: ignore[attr-defined]
        days=days,
        seed=seed,
        faults=not no_faults,
        embedded=embedded,  # type: ignore[arg-type]
        data_dir=data_dir,
        live=live,
        progress=not quiet,
        fmt=fmt,
    )
    run_demo(app, options)
