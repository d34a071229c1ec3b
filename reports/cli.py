"""``parkcarbon report``: write the month's reports; ``report list``; ``report verify``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from parkcarbon.clikit import AppContext, Column, emit_mapping, emit_rows, format_option

WRITTEN_COLUMNS: list[Column] = [
    ("subject", "subject", 0),
    ("version", "version", 0),
    ("status", "status", 0),
    ("seconds", "s", 2),
    ("files", "files", 0),
    ("email", "e-mail", 0),
]
LIST_COLUMNS: list[Column] = [
    ("period", "period", 0),
    ("subject", "subject", 0),
    ("version", "version", 0),
    ("generated_at", "generated", 0),
    ("changed_figures", "changed", 0),
    ("files", "files", 0),
    ("email", "e-mail", 0),
]


@click.group("report", invoke_without_command=True)
@click.option("--period", metavar="YYYY-MM", help="The local month to report.")
@click.option("--enterprise", help="This enterprise's report (default: the park's).")
@click.option("--all-enterprises", is_flag=True, help="The park's and every enterprise's report.")
@click.option("--lang", type=click.Choice(["zh", "en"]),
              help="Language (default: setting report_lang, zh).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: setting report_dir); files go in <out>/<YYYY-MM>/.")
@click.option("--formats", default="pdf,xlsx,csv", show_default=True,
              help="Comma-separated: pdf, xlsx, csv.")
@click.option("--send", is_flag=True,
              help="E-mail each report (the park's to the park officers, an enterprise's to "
              "its contacts) through the e-mail channels of the alerts file; a report "
              "already sent is not sent again.")
@format_option
@click.pass_context
def report_group(
    ctx: click.Context,
    period: str | None,
    enterprise: str | None,
    all_enterprises: bool,
    lang: str | None,
    out_dir: Path | None,
    formats: str,
    send: bool,
    fmt: str,
) -> None:
    """Monthly carbon report of the park (or an enterprise): PDF, XLSX and CSV.

    The chain is brought up to date first (as `emissions` does). A month reported
    before gets the same version (byte-identical files) while its figures are the
    same, and the next version with a change page once a restatement changed one.
    Subcommands: list, verify.
    """
    if ctx.invoked_subcommand is not None:
        return
    from parkcarbon.reports.errors import ReportUsageError
    from parkcarbon.reports.figures import month_period
    from parkcarbon.reports.generate import parse_formats

    if period is None:
        raise ReportUsageError("--period is required (e.g. --period 2026-01)")
    if enterprise and all_enterprises:
        raise ReportUsageError("give --enterprise ID or --all-enterprises, not both")
    p = month_period(period)
    wanted = parse_formats(formats)
    app: AppContext = ctx.obj
    settings = app.settings()
    from parkcarbon.carbon.current import bring_up_to_date
    from parkcarbon.db import connect
    from parkcarbon.reports import queries as Q
    from parkcarbon.reports.generate import generate_reports

    with connect(settings) as conn:
        bring_up_to_date(conn, settings)
        conn.commit()
        subjects: list[str | None] = [enterprise]
        if all_enterprises:
            subjects = [None, *(r[0] for r in conn.execute(Q.ENTERPRISE_IDS).fetchall())]
        elif enterprise is not None and not conn.execute(
            Q.ENTERPRISE_EXISTS, (enterprise,)
        ).fetchone():
            raise ReportUsageError(
                f"--enterprise {enterprise!r}: unknown enterprise",
                hint="see `parkcarbon config check` for the enterprise ids",
            )
        config = None
        if send:
            from parkcarbon.alerts.rules import load_alerts

            config = load_alerts(settings.alerts_file)  # a bad file: before any work
        written = generate_reports(conn, settings, p, subjects, lang=lang, out_dir=out_dir,
                                   formats=wanted)
        mails: dict[int, list[str]] = {}
        undelivered = 0
        if config is not None:
            from parkcarbon.reports.delivery import deliver_reports

            for d in deliver_reports(conn, settings, config, written,
                                     lang=lang or settings.report_lang, retry_failed=True):
                mails.setdefault(d.report_id, []).append(f"{d.channel_id}: {d.status}"
                                                 + ("" if d.status == "sent" else
                                                    f" ({d.detail})"))
                undelivered += d.status in ("retry", "failed")
    rows: list[dict[str, Any]] = [
        {
            "subject": w.subject,
            "version": w.version,
            "status": "new version" if w.new_version else "unchanged",
            "seconds": w.seconds,
            "files": " ".join(str(f) for f in w.files),
            "email": "; ".join(mails.get(w.report_id, [])),
            "figures_sha256": w.figures_sha256,
        }
        for w in written
    ]
    emit_rows(rows, fmt, WRITTEN_COLUMNS, title=f"carbon reports {p.label}",
              json_extra={"period": p.label})
    if undelivered:
        from parkcarbon.reports.errors import ReportError

        raise ReportError(
            f"{undelivered} report e-mail(s) not delivered (see the e-mail column)",
            hint="a 4xx or an unreachable server is tried again hourly and by the next "
            "--send; a 5xx only by --send: fix the address or the channel first",
        )


@report_group.command("list")
@click.option("--period", metavar="YYYY-MM", help="Only this month.")
@format_option
@click.pass_obj
def list_command(app: AppContext, period: str | None, fmt: str) -> None:
    """Every recorded report version: period, subject, version, files, changed figures."""
    from parkcarbon.db import connect
    from parkcarbon.reports import queries as Q
    from parkcarbon.reports.figures import month_period

    start = None if period is None else month_period(period).start
    with connect(app.settings()) as conn:
        found = conn.execute(Q.LIST_REPORTS, (start, start)).fetchall()
    rows = [
        {
            "report_id": r[0],
            "period": f"{r[1]:%Y-%m}",
            "subject": r[2] or "PARK",
            "version": r[3],
            "generated_at": r[4],
            "figures_sha256": r[5],
            "accounting_run_id": r[6],
            "files": r[7],
            "changed_figures": r[8],
            "email": r[9],
        }
        for r in found
    ]
    emit_rows(rows, fmt, LIST_COLUMNS, title="recorded carbon reports",
              empty="no reports recorded yet (parkcarbon report --period YYYY-MM)")


@report_group.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@format_option
@click.pass_context
def verify_command(ctx: click.Context, file: Path, fmt: str) -> None:
    """Do the same data and factors still give the same figures as FILE? Exit 0 if so,
    1 if its figures would differ today."""
    from parkcarbon.carbon.current import bring_up_to_date
    from parkcarbon.db import connect
    from parkcarbon.reports.verify import verify_file

    app: AppContext = ctx.obj
    settings = app.settings()
    with connect(settings) as conn:
        bring_up_to_date(conn, settings)
        conn.commit()
        result = verify_file(conn, settings, file)

    def text() -> list[str]:
        lines = [
            f"{result.file}: report {result.period} {result.subject} version {result.version}"
            + (" (a recorded file, unaltered)" if result.recorded else
               " (not a recorded file: receipt read from the file)"),
            "figures: " + ("the same data and factors give the same figures" if
                           result.figures_same else "DIFFER from what the data give today"),
            "inputs:  " + ("unchanged" if result.inputs_same else "changed since the report"),
        ]
        if result.latest_version is not None and result.latest_version != result.version:
            lines.append(f"latest recorded version: {result.latest_version}")
        return lines

    emit_mapping(result.as_dict(), fmt, text)
    if not result.figures_same:
        from parkcarbon.reports.errors import ReportMismatchError

        raise ReportMismatchError(
            f"{result.file}: its figures differ from what the data and factors give today",
            hint=f"`parkcarbon report --period {result.period}` writes the next version",
        )
