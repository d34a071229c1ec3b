"""Config that used to do the wrong thing silently is refused, or warned about, in one line
(issue #11 points 4, 5, 6, 7): duplicate YAML keys, settings files that are bad YAML, not
UTF-8 or a scalar, an impossible rollover, a timezone that disagrees with the registry,
an unknown PARKCARBON_* variable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from parkcarbon.errors import ConfigError
from parkcarbon.registry import load_registry, registry_warnings
from parkcarbon.settings import load_settings
from parkcarbon.yamlfile import read_yaml
from support import EXAMPLE_REGISTRY, ROOT


def run(*args: str, env: dict[str, str] | None = None,
        cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PARKCARBON_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "parkcarbon", *args], capture_output=True,
                          text=True, cwd=cwd, env=full_env, timeout=120)


def one_line_error(proc: subprocess.CompletedProcess[str], code: int = 3) -> str:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("parkcarbon: error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def registry_with_second_meters_section(tmp_path: Path) -> Path:
    """The example registry plus a second ``meters:`` section of one meter at the end:
    PyYAML kept only the last, so "meters: 1" passed `config check`."""
    text = EXAMPLE_REGISTRY.read_text(encoding="utf-8")
    text += ("\nmeters:\n  - id: E01-ELEC-X\n    enterprise: E01\n    carrier: electricity\n"
             "    unit: kWh\n")
    path = tmp_path / "park.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_duplicate_section_in_the_registry_is_refused(tmp_path: Path) -> None:
    path = registry_with_second_meters_section(tmp_path)
    with pytest.raises(ConfigError,
                       match=r"duplicate key 'meters' on line \d+ \(first on line \d+\)"):
        load_registry(path)
    line = one_line_error(run("--registry", str(path), "config", "check"))
    assert str(path) in line and "duplicate key 'meters'" in line


def test_duplicate_key_deep_in_any_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "targets.yaml"
    path.write_text("park:\n  cap_co2_t: 1\n  baseline_year: 2020\n  cap_co2_t: 2\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=r"targets.yaml: duplicate key 'cap_co2_t' on line 4 "
                       r"\(first on line 2\)"):
        read_yaml(path, what="targets file")
    # the same key in two different mappings is fine
    path.write_text("a:\n  x: 1\nb:\n  x: 2\n", encoding="utf-8")
    assert read_yaml(path, what="targets file") == {"a": {"x": 1}, "b": {"x": 2}}


@pytest.mark.parametrize(("content", "message"), [
    (b"mqtt_host: [broker\n", "not valid YAML (line 2, column 1)"),
    (b"mqtt_host: \xff\xfebroker\n", "settings file is not UTF-8 text (byte 11, line 1)"),
    (b"just a string\n", "settings file must be a mapping of setting: value, not str"),
    (b"- mqtt_host\n", "settings file must be a mapping of setting: value, not list"),
    (b"mqtt_host: a\nmqtt_host: b\n", "duplicate key 'mqtt_host' on line 2 (first on line 1)"),
], ids=["bad-yaml", "not-utf8", "scalar", "list", "duplicate"])
def test_bad_settings_file_is_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    conf = tmp_path / "settings.yaml"
    conf.write_bytes(content)
    with pytest.raises(ConfigError, match=r"settings\.yaml: "):
        load_settings(conf)
    line = one_line_error(run("--config", str(conf), "config", "settings"))
    assert message in line, line


def test_empty_settings_file_means_defaults(tmp_path: Path) -> None:
    conf = tmp_path / "settings.yaml"
    conf.write_text("# nothing yet\n", encoding="utf-8")
    assert load_settings(conf).mqtt_host == "127.0.0.1"


def _registry_with_rollover(tmp_path: Path, value: str) -> Path:
    text = EXAMPLE_REGISTRY.read_text(encoding="utf-8")
    assert "    rollover: 1000000\n" in text
    path = tmp_path / "park.yaml"
    path.write_text(text.replace("    rollover: 1000000\n", f"    rollover: {value}\n", 1),
                    encoding="utf-8")
    return path


def test_impossible_rollover_is_refused(tmp_path: Path) -> None:
    path = _registry_with_rollover(tmp_path, "0.001")
    with pytest.raises(ConfigError, match=r"\): rollover 0.001 \S+ is below 10"):
        load_registry(path)
    assert "every reading above it would be dead-lettered" in one_line_error(
        run("--registry", str(path), "config", "check"))


def test_odd_rollover_is_a_warning(tmp_path: Path) -> None:
    path = _registry_with_rollover(tmp_path, "123456")
    warnings = registry_warnings(load_registry(path))
    assert len(warnings) == 1 and "rollover: 123456 is not a power of ten" in warnings[0]
    assert registry_warnings(load_registry(EXAMPLE_REGISTRY)) == []
    proc = run("--registry", str(path), "config", "check")
    assert proc.returncode == 0, proc.stderr
    assert "warning: " in proc.stdout and "rollover: 123456" in proc.stdout
    data = json.loads(run("--registry", str(path), "config", "check", "--json").stdout)
    assert data["warnings"] == warnings


def test_timezone_that_disagrees_with_the_registry_is_refused(tmp_path: Path) -> None:
    env = {"PARKCARBON_TIMEZONE": "UTC"}
    line = one_line_error(run("config", "check", env=env))
    assert "settings timezone UTC (PARKCARBON_TIMEZONE) differs from the park timezone " \
           "Asia/Shanghai" in line
    # db migrate refuses before touching the database (here: none is reachable)
    proc = run("db", "migrate", env={**env, "PARKCARBON_DATABASE_URL":
                                     "postgresql://127.0.0.1:1/nothing"})
    assert "differs from the park timezone" in one_line_error(proc)


def test_unknown_parkcarbon_variable_is_named_with_a_suggestion() -> None:
    proc = run("config", "settings", env={"PARKCARBON_MQTT_HOTS": "broker.local"})
    assert proc.returncode == 0, proc.stderr
    assert ("WARNING parkcarbon.cli: environment variable PARKCARBON_MQTT_HOTS is not a "
            "parkcarbon setting and is ignored; did you mean PARKCARBON_MQTT_HOST?") in proc.stderr
    # real settings, option variables and the test's own variables are not reported
    quiet = run("config", "settings", env={"PARKCARBON_MQTT_HOST": "x",
                                            "PARKCARBON_STORAGE_MODE": "plain",
                                            "PARKCARBON_TEST_DSN": "x"})
    assert "is not a parkcarbon setting" not in quiet.stderr
