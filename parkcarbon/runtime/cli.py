"""Command ``parkcarbon run``: ingest and the scheduler in one supervised service."""

from __future__ import annotations

import click

from parkcarbon.clikit import AppContext, emit_mapping, emit_rows, format_option, pass_app


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
@format_option
@pass_app
def run_command(
    app: AppContext,
    only: str | None,
    health_port: int | None,
    list_jobs: bool,
    job_name: str | None,
    fmt: str,
) -> None:
    """Run ingest and the scheduler in one supervised service until SIGTERM / SIGINT.

    On SIGTERM the service finishes the batch in hand, acknowledges what is committed
    and exits 0; what the broker still holds is ingested on the next start.
    """
    from parkcarbon.registry import load_registry
    from parkcarbon.runtime.schedule import collect_jobs
    from parkcarbon.runtime.supervisor import Supervisor

    settings = app.settings()
    if list_jobs:
        jobs = collect_jobs(settings)
        rows = [
            {
                "name": j.name,
                "every_seconds": j.interval_seconds,
                "cron": j.cron or None,
                "when": f"every {j.interval_seconds:g} s" if j.interval_seconds is not None
                else "cron " + " ".join(f"{k}={v}" for k, v in j.cron.items()),
                "description": j.description,
            }
            for j in jobs
        ]
        if fmt == "table":
            for r in rows:
                click.echo(f"{r['name']:<22} {r['when']:<18} {r['description']}")
            return
        emit_rows([{k: v for k, v in r.items() if k != "when"} for r in rows], fmt, [])
        return
    registry = load_registry(settings.registry_file)
    parts = (only,) if only else ("ingest", "scheduler")
    supervisor = Supervisor(settings, registry, parts=parts, health_port=health_port)  # type: ignore[arg-type]
    if job_name:
        result = supervisor.run_job_now(job_name)
        emit_mapping({"job": job_name, "result": str(result)}, fmt,
                     lambda: [f"{job_name}: {result}"])
        return
    supervisor.run_forever()
