"""``parkcarbon grafana build | publish | check``."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import click

from parkcarbon.clikit import AppContext, Column, emit_rows, format_option, pass_app
from parkcarbon.errors import UsageError
from parkcarbon.grafana.errors import GrafanaError

CHECK_COLUMNS: list[Column] = [
    ("board", "board", 0),
    ("panel", "panel", 0),
    ("ref_id", "ref", 0),
    ("rows", "rows", 0),
    ("ms", "ms", 1),
    ("error", "error", 0),
]
PUBLISH_COLUMNS: list[Column] = [
    ("org_id", "org", 0),
    ("uid", "uid", 0),
    ("title", "title", 0),
    ("action", "action", 0),
]


@click.group("grafana")
def grafana_group() -> None:
    """Grafana boards as code: build the JSON and provisioning, publish, check the SQL."""


@grafana_group.command("build")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Provisioning folder to write (default: grafana/provisioning of this checkout).",
)
@format_option
@pass_app
def build_command(app: AppContext, out: Path | None, fmt: str) -> None:
    """Write the boards' JSON and the dashboard, datasource and organisation provisioning
    (reader role for the park, one organisation and role per enterprise)."""
    from parkcarbon.grafana.build import write_provisioning
    from parkcarbon.grafana.provision import REPO_PROVISIONING, provisioning_files

    target = out or REPO_PROVISIONING
    files = provisioning_files(app.settings())
    written = write_provisioning(target, files)
    rows = [{"file": str(p.relative_to(target))} for p in written]
    emit_rows(
        rows,
        fmt,
        [("file", "file", 0)],
        title=f"grafana build: {len(rows)} files in {target}",
        json_extra={"out": str(target)},
    )


def _when(value: str, option: str, tz: Any) -> datetime:
    """A --from/--to value: YYYY-MM-DD (local midnight) or an ISO 8601 date-time."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=tz)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(
            f"{option} {value!r}: expected YYYY-MM-DD or an ISO 8601 date-time"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


@grafana_group.command("check")
@click.option("--from", "from_", help="Range start: YYYY-MM-DD (local) or ISO date-time; "
              "default 30 days before --to.")
@click.option("--to", "to", help="Range end, exclusive: YYYY-MM-DD (local midnight) or ISO "
              "date-time; default now.")
@click.option("--enterprise", help="Value of the enterprise board's variable (default: "
              "the first enterprise).")
@click.option("--board", "boards", multiple=True, help="Only this board (park, enterprise, "
              "quality, alerts); repeatable.")
@format_option
@pass_app
def check_command(
    app: AppContext,
    from_: str | None,
    to: str | None,
    enterprise: str | None,
    boards: tuple[str, ...],
    fmt: str,
) -> None:
    """Run every panel's SQL, expanded as Grafana would, against the configured database
    (read-only) and print rows and milliseconds per panel. Exit 1 if a panel fails."""
    from parkcarbon.db import connect, storage_mode
    from parkcarbon.grafana.build import build_boards
    from parkcarbon.grafana.check import first_enterprise, run_checks
    from parkcarbon.grafana.macros import TimeRange, Variable
    from parkcarbon.grafana.provision import board_context

    settings = app.settings()
    tz = settings.tz
    end = _when(to, "--to", tz) if to else datetime.now(UTC)
    start = _when(from_, "--from", tz) if from_ else end - timedelta(days=30)
    if end <= start:
        raise UsageError(f"--to ({end.isoformat()}) must be after --from ({start.isoformat()})")
    built = build_boards(board_context(settings))
    unknown = sorted(set(boards) - set(built))
    if unknown:
        raise UsageError(
            f"--board {unknown[0]!r}: not one of {', '.join(built)}"
        )
    selected = {k: v for k, v in built.items() if not boards or k in boards}
    with connect(settings) as conn:
        mode = storage_mode(conn)
        if enterprise is None:
            enterprise = first_enterprise(conn)
        results = run_checks(
            conn,
            selected,
            TimeRange(start, end),
            timescaledb=mode == "timescale",
            variables={"enterprise": Variable(enterprise)},
        )
    rows = [r.summary() for r in results]
    failed = [r for r in results if r.error]
    emit_rows(
        rows,
        fmt,
        CHECK_COLUMNS,
        title=f"grafana check {start.isoformat()} .. {end.isoformat()} ({mode} mode, "
        f"enterprise {enterprise}): {len(rows)} panel queries, {len(failed)} failed",
        json_extra={
            "from": start.isoformat(),
            "to": end.isoformat(),
            "storage_mode": mode,
            "enterprise": enterprise,
            "failed": len(failed),
        },
    )
    if failed:
        first = failed[0]
        raise GrafanaError(
            f"{len(failed)} panel queries failed; first: {first.query.board_uid} / "
            f"{first.query.title}: {first.error}"
        )


@grafana_group.command("publish")
@click.option("--url", help="Grafana URL (default: setting grafana_url).")
@click.option("--orgs", is_flag=True, help="Also create each enterprise's organisation, its "
              "datasource (its own role) and its enterprise board.")
@format_option
@pass_app
def publish_command(app: AppContext, url: str | None, orgs: bool, fmt: str) -> None:
    """Push the boards into the `parkcarbon` folder (idempotent by uid; a board already
    the same is left alone, none is ever moved to the root)."""
    from parkcarbon.grafana.build import build_boards, enterprise_board
    from parkcarbon.grafana.provision import board_context, database_target, organisations
    from parkcarbon.grafana.publish import (
        check_reachable,
        connect,
        datasource_payload,
        publish_boards,
        publish_organisations,
    )
    from parkcarbon.security import roles

    settings = app.settings()
    base = url or settings.grafana_url
    token = settings.grafana_token.get_secret_value() if settings.grafana_token else None
    ctx = board_context(settings)
    api = connect(base, token)
    check_reachable(api, _safe(base))
    done = publish_boards(api, build_boards(ctx))
    if orgs:
        db = database_target(settings)

        def password(role: str) -> str:
            path = roles.password_file(settings, role)
            if not path.is_file():
                raise UsageError(
                    f"{path}: no password file for role {role}",
                    hint="run `parkcarbon db migrate` first (it creates the roles' passwords)",
                )
            return roles.read_secret(path)

        done += publish_organisations(
            api,
            lambda org_id: connect(base, token, org_id),
            organisations(settings),
            lambda org: enterprise_board(ctx, org.datasource_uid),
            lambda org: datasource_payload(org, db, password(org.role)),
        )
    rows = [{"org_id": p.org_id, "uid": p.uid, "title": p.title, "action": p.action}
            for p in done]
    emit_rows(rows, fmt, PUBLISH_COLUMNS, title=f"grafana publish to {_safe(base)}")


def _safe(url: str) -> str:
    from parkcarbon.db import redact_dsn

    return redact_dsn(url)
