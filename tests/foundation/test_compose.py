"""docker-compose.yml cannot be run here (no Docker engine): check it by reading.

Every file it mounts exists, every parkcarbon command it runs exists, every
PARKCARBON_* variable it sets is a real setting, health checks are defined, and the
services start in a sensible order.
"""

from __future__ import annotations

import re

import yaml

from parkcarbon.schema.migrate import TIMESCALE_FIXED_VERSION
from parkcarbon.settings import Settings
from support import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]


def test_expected_services_with_health_checks() -> None:
    assert {"timescaledb", "mosquitto", "grafana", "migrate", "parkcarbon"} <= set(SERVICES)
    for name in ("timescaledb", "mosquitto", "grafana", "parkcarbon"):
        assert "healthcheck" in SERVICES[name], name
    image = SERVICES["timescaledb"]["image"]
    assert image.startswith("timescale/timescaledb:")
    # Older releases drop new rows of an INSERT ... ON CONFLICT that meets a duplicate in
    # a compressed chunk (schema/migrate.py TIMESCALE_FIXED_VERSION).
    version = tuple(int(p) for p in image.split(":")[1].split("-")[0].split("."))
    assert version >= TIMESCALE_FIXED_VERSION, image
    assert SERVICES["parkcarbon"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )


def test_mounted_files_exist() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                path = ROOT / source[2:]
                if path.name == "passwd":  # created by the operator (see the header)
                    continue
                assert path.exists(), f"{name}: {source} does not exist"


def test_parkcarbon_commands_exist() -> None:
    from parkcarbon.cli import cli

    for name in ("migrate", "parkcarbon"):
        command = SERVICES[name]["command"]
        node = cli
        for word in command:
            assert word in node.commands, f"{name}: `parkcarbon {' '.join(command)}` unknown"
            node = node.commands[word]


def test_environment_names_real_settings() -> None:
    env = COMPOSE["x-parkcarbon-env"]
    fields = {f"PARKCARBON_{n.upper()}" for n in Settings.model_fields}
    for key in env:
        assert key in fields, f"{key} is not a parkcarbon setting"


def test_broker_config_is_the_project_one_and_keeps_queues() -> None:
    mounts = SERVICES["mosquitto"]["volumes"]
    assert "./config/mosquitto/mosquitto.conf:/mosquitto/config/mosquitto.conf:ro" in mounts
    conf = (ROOT / "config/mosquitto/mosquitto.conf").read_text(encoding="utf-8")
    settings = dict(
        line.split(None, 1) for line in conf.splitlines() if line and not line.startswith("#")
    )
    assert settings["persistence"] == "true"
    assert settings["persistence_location"] == "/mosquitto/data/"
    assert int(settings["max_queued_messages"]) == 0 or int(settings["max_queued_messages"]) > 1000
    assert settings["allow_anonymous"] == "false"


def test_secrets_are_references_not_literals() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    for match in re.finditer(r"^\s*([A-Z_]*PASSWORD[A-Z_]*):\s*(\S+)", text, re.M):
        assert match.group(2).startswith(("${", '"$$')), match.group(0)
