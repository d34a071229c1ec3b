"""Commands ``parkcarbon run`` and ``parkcarbon demo`` (registered on the main group)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from parkcarbon.cli import AppContext, echo_json, pass_app


@click.command("run")
@click.option(
    "--only",
    type=click.Choice(["ingest", "scheduler"]),
    envvar="PARKCARBON_RUN_ONLY",
    show_envvar=True,
    help="Run one part only (to run ingest and the scheduler as separate processes).",
)
@click.option(
    "--health-port",
    type=click.IntRange(0, 65535),
    help="Port of the /healthz endpoint (default: the metrics_port setting; 0 = off).",
)
@click.option("--list-jobs", is_flag=True, help="List the scheduled jobs and exit.")
@click.option("--job", "job_name", help="Run one scheduled job once, now, and exit.")
@click.option("--json", "as_json", is_flag=True, help="With --list-jobs / --job: print JSON.")
@pass_app
def run_command(
    app: AppContext,
    only: str | None,
    health_port: int | None,
    list_jobs: bool,
    job_name: str | None,
    as_json: bool,
) -> None:
    """Run ingest and the scheduler in one supervised service until SIGTERM / SIGINT.

    On SIGTERM the service finishes the batch in hand, acknowledges what is committed
    and exits 0; what the broker still holds is ingested on the next start.
    """
    from parkcarbon.jobs import collect_jobs
    from parkcarbon.registry import load_registry
    from parkcarbon.service import Supervisor

    settings = app.settings()
    if list_jobs:
        jobs = collect_jobs(settings)
        rows = [
            {
                "name": j.name,
                "every_seconds": j.interval_seconds,
                "cron": j.cron or None,
                "description": j.description,
            }
            for j in jobs
        ]
        if as_json:
            echo_json(rows)
            return
        for j in jobs:
            when = (
                f"every {j.interval_seconds:g} s"
                if j.interval_seconds is not None
                else "cron " + " ".join(f"{k}={v}" for k, v in j.cron.items())
            )
            click.echo(f"{j.name:<22} {when:<18} {j.description}")
        return
    registry = load_registry(settings.registry_file)
    parts = (only,) if only else ("ingest", "scheduler")
    supervisor = Supervisor(settings, registry, parts=parts, health_port=health_port)  # type: ignore[arg-type]
    if job_name:
        result = supervisor.run_job_now(job_name)
        if as_json:
            echo_json({"job": job_name, "result": result})
        else:
            click.echo(f"{job_name}: {result}")
        return
    supervisor.run_forever()


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
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
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
    as_json: bool,
    quiet: bool,
) -> None:
    """Show the whole system working: services, a simulated month, ingest, accounting,
    and a summary a park officer reads. Nothing needs to be configured first."""
    from parkcarbon.demo import DemoOptions, run_demo

    options = DemoOptions(
        month=date(month.year, month.month, 1) if month is not None else None,  # type: ignore[attr-defined]
        days=days,
        seed=seed,
        faults=not no_faults,
        embedded=embedded,  # type: ignore[arg-type]
        data_dir=data_dir,
        live=live,
        progress=not quiet,
        as_json=as_json,
    )
    run_demo(app, options)


def register(group: click.Group) -> None:
    """Add ``run`` and ``demo`` to the `parkcarbon` group."""
    group.add_command(run_command)
    group.add_command(demo_command)
