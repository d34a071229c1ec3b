"""Every reading command on a database that was never migrated says so in one line.

Runs the real console entry point (``python -m parkcarbon``) against an empty database
of its own: exit code 4 (database), the hint to migrate, and never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import ROOT

COMMANDS = [
    ["emissions", "--period", "2026-11"],
    ["emissions", "runs"],
    ["indicators", "--period", "2026-11"],
    ["targets", "status", "--year", "2026"],
    ["usage", "derive"],
    ["usage", "events"],
    ["usage", "gaps"],
    ["deadletters", "list"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_command_on_unmigrated_database_is_one_line(
    fresh_dsn: str, command: list[str], tmp_path: Path
) -> None:
    env = {**os.environ, "PARKCARBON_DATABASE_URL": fresh_dsn,
           "PARKCARBON_REGISTRY_FILE": str(ROOT / "config" / "park.yaml"),
           "PARKCARBON_TARGETS_FILE": str(ROOT / "config" / "targets.yaml"),
           "PARKCARBON_ECONOMICS_FILE": str(ROOT / "config" / "economics.yaml"),
           "PARKCARBON_CERTIFICATES_FILE": str(ROOT / "config" / "certificates.yaml")}
    proc = subprocess.run([sys.executable, "-m", "parkcarbon", *command], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "schema is missing or out of date" in proc.stderr
    assert "hint: run `parkcarbon db migrate`" in proc.stderr
