"""The command line as a user runs it: real subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from parkcarbon.settings import load_settings, settings_markdown, settings_table
from support import EXAMPLE_REGISTRY, ROOT


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PARKCARBON_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "parkcarbon", *args],
        capture_output=True, text=True, cwd=ROOT, env=full_env, timeout=120,
    )


def test_every_command_has_help() -> None:
    """In-process (CliRunner) for speed: each subprocess would re-import the world."""
    from click.testing import CliRunner

    from parkcarbon.cli import cli

    def walk(group, path):  # type: ignore[no-untyped-def]
        yield path
        for name, cmd in getattr(group, "commands", {}).items():
            yield from walk(cmd, [*path, name])

    runner = CliRunner()
    paths = list(walk(cli, []))
    assert len(paths) > 10
    for path in paths:
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output
    assert run("db", "--help").returncode == 0  # and once as a real process


def test_config_check_prints_summary_and_json() -> None:
    text = run("config", "check")
    assert text.returncode == 0, text.stderr
    assert "config/park.yaml: OK" in text.stdout
    assert "natural_gas" in text.stdout
    data = json.loads(run("config", "check", "--json").stdout)
    assert data["ok"] is True
    assert data["enterprises"] == 14
    assert sum(data["meters_by_carrier"].values()) == data["meters"]


def test_config_check_bad_registry_exit_code_and_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "park.yaml"
    bad.write_text(
        EXAMPLE_REGISTRY.read_text(encoding="utf-8").replace(
            "  - id: E07-GAS-1\n    enterprise: E07\n    carrier: natural_gas\n"
            "    role: grid_import\n    counter: cumulative\n    unit: m³",
            "  - id: E07-GAS-1\n    enterprise: E07\n    carrier: natural_gas\n"
            "    role: grid_import\n    counter: cumulative\n    unit: kWh",
        ),
        encoding="utf-8",
    )
    result = run("--registry", str(bad), "config", "check")
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert "E07-GAS-1): unit 'kWh' cannot measure natural_gas" in result.stderr


def test_unreachable_database_is_one_line_exit_4_and_password_hidden() -> None:
    result = run(
        "db", "status", env={"PARKCARBON_DATABASE_URL": "postgresql://bob:s3cret@127.0.0.1:9/x"}
    )
    assert result.returncode == 4
    assert "Traceback" not in result.stderr
    assert "s3cret" not in result.stderr
    assert "bob:***@127.0.0.1:9/x" in result.stderr
    assert "hint:" in result.stderr


def test_bad_setting_names_the_variable() -> None:
    result = run("config", "check", env={"PARKCARBON_TIMEZONE": "Mars/Olympus"})
    assert result.returncode == 3
    assert "timezone (env PARKCARBON_TIMEZONE): Value error, unknown IANA timezone" in (
        result.stderr
    )


def test_db_migrate_and_status_via_cli(fresh_dsn: str) -> None:
    # plain forced: the test server may be one with TimescaleDB (see docs/timescale.md)
    env = {"PARKCARBON_DATABASE_URL": fresh_dsn, "PARKCARBON_STORAGE_MODE": "plain"}
    first = run("db", "migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "storage mode plain" in first.stdout
    assert "14 enterprises, 52 meters synced" in first.stdout
    again = run("db", "migrate", env=env)
    assert "schema already up to date" in again.stdout
    status = json.loads(run("db", "status", "--json", env=env).stdout)
    assert status["mode"] == "plain"
    assert status["version"] == status["latest"]
    with psycopg.connect(fresh_dsn) as conn:
        (n,) = conn.execute("SELECT count(*) FROM enterprises").fetchone()  # type: ignore[misc]
    assert n == 14


def test_settings_file_and_env_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "settings.yaml"
    conf.write_text("topic_prefix: kuqa\nmqtt_port: 1884\n", encoding="utf-8")
    monkeypatch.setenv("PARKCARBON_MQTT_PORT", "1999")
    settings = load_settings(conf)
    assert settings.topic_prefix == "kuqa"  # from the file
    assert settings.mqtt_port == 1999  # env beats file
    assert "'secret'" not in repr(load_settings(conf, mqtt_password="secret"))


def test_settings_unknown_key_in_file(tmp_path: Path) -> None:
    from parkcarbon.errors import ConfigError

    conf = tmp_path / "settings.yaml"
    conf.write_text("mqtt_hots: x\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"settings.yaml: mqtt_hots .*Extra inputs"):
        load_settings(conf)


def test_readme_configuration_reference_matches_settings() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert settings_markdown() in readme, "run `parkcarbon config settings --markdown`"
    assert all(desc for _, _, _, desc in settings_table())
