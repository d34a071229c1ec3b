"""`parkcarbon grafana check` as a user runs it: rows and ms per panel, JSON, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from parkcarbon.grafana.build import build_boards
from parkcarbon.grafana.check import panel_queries
from support import EXAMPLE_REGISTRY, ROOT


def run(*args: str, dsn: str = "postgresql://127.0.0.1:1/none") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKCARBON_")}
    env.update(PARKCARBON_DATABASE_URL=dsn, PARKCARBON_REGISTRY_FILE=str(EXAMPLE_REGISTRY))
    return subprocess.run([sys.executable, "-m", "parkcarbon", "grafana", *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


def test_check_prints_rows_and_ms_per_panel(seeded_dsn: str, storage_mode: str) -> None:
    proc = run("check", "--from", "2026-11-01", "--to", "2026-12-01", "--enterprise", "E05",
               "--format", "json", dsn=seeded_dsn)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["storage_mode"] == storage_mode and out["failed"] == 0
    assert out["from"] == "2026-11-01T00:00:00+08:00" and out["to"] == "2026-12-01T00:00:00+08:00"
    total = sum(len(panel_queries(b)) for b in build_boards().values())
    assert len(out["rows"]) == total
    assert all(r["error"] is None and r["ms"] > 0 for r in out["rows"])
    by_title = {r["panel"]: r for r in out["rows"]}
    assert by_title["逐日排放 Daily emissions"]["rows"] == 30

    table = run("check", "--board", "quality", "--from", "2026-11-01", "--to", "2026-11-03",
                dsn=seeded_dsn)
    assert table.returncode == 0, table.stderr
    assert "parkcarbon-quality" in table.stdout and "parkcarbon-park" not in table.stdout


def test_check_refuses_bad_input_in_one_line() -> None:
    bad = run("check", "--from", "yesterday")
    assert bad.returncode == 2
    assert bad.stderr.strip() == ("parkcarbon: error: --from 'yesterday': expected YYYY-MM-DD "
                                  "or an ISO 8601 date-time")
    backwards = run("check", "--from", "2026-11-02", "--to", "2026-11-01")
    assert backwards.returncode == 2 and "must be after --from" in backwards.stderr
    board = run("check", "--board", "alerts-of-mars", "--from", "2026-11-01")
    assert board.returncode == 2
    assert "--board 'alerts-of-mars': not one of park, enterprise, quality, alerts" in board.stderr
    down = run("check", "--from", "2026-11-01", "--to", "2026-11-02")
    assert down.returncode == 4 and "cannot connect" in down.stderr
    assert "Traceback" not in bad.stderr + backwards.stderr + board.stderr + down.stderr
