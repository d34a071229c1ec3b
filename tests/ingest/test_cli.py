"""`parkcarbon deadletters list|replay` and `parkcarbon ingest` exit codes."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import yaml

from parkcarbon.db import connect
from parkcarbon.ingest.cli import _DEAD_LETTER_COLUMNS, _OUTCOME_COLUMNS
from parkcarbon.ingest.deadletters import DeadLetter, ReplayOutcome
from parkcarbon.ingest.parse import Parser
from parkcarbon.ingest.writer import Writer
from parkcarbon.registry import load_registry
from support import EXAMPLE_REGISTRY, Broker

PARKCARBON = Path(sys.executable).with_name("parkcarbon")


def cli(dsn: str, *args: str, registry: Path = EXAMPLE_REGISTRY,
        **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PARKCARBON_DATABASE_URL": dsn,
                "PARKCARBON_REGISTRY_FILE": str(registry), **env}
    return subprocess.run([str(PARKCARBON), *args], env=full_env, capture_output=True,
                          text=True, timeout=60)


def test_csv_columns_are_the_record_fields() -> None:
    """The CSV header of an empty listing is the same as that of a full one."""
    assert [c for c, _, _ in _DEAD_LETTER_COLUMNS] == [
        f.name for f in dataclasses.fields(DeadLetter)]
    assert [c for c, _, _ in _OUTCOME_COLUMNS] == [
        f.name for f in dataclasses.fields(ReplayOutcome)]


def test_list_and_replay_after_the_registry_is_fixed(migrated_dsn: str, tmp_path: Path) -> None:
    now = time.time()
    parser = Parser(load_registry(EXAMPLE_REGISTRY))
    new_meter = json.dumps({"readings": [{"ts": now - 60, "value": 10.0},
                                         {"ts": now - 30, "value": 11.0, "unit": "MWh"}]})
    with connect(migrated_dsn) as conn:
        dead = [("park/E01/E01-ELEC-NEW", rj) for rj in
                parser.parse("park/E01/E01-ELEC-NEW", new_meter.encode()).rejections]
        dead += [("park/E01/E01-ELEC-1", rj) for rj in
                 parser.parse("park/E01/E01-ELEC-1", b"{oops").rejections]
        Writer(conn).write([], dead)

    listed = cli(migrated_dsn, "deadletters", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert data["counts"] == {"unknown_meter": 1, "bad_json": 1}
    assert [d["reason_code"] for d in data["rows"]] == ["bad_json", "unknown_meter"]
    assert cli(migrated_dsn, "deadletters", "list", "--format", "json").stdout == listed.stdout
    csv_out = cli(migrated_dsn, "deadletters", "list", "--format", "csv")
    assert csv_out.returncode == 0, csv_out.stderr
    table = list(csv.DictReader(io.StringIO(csv_out.stdout)))
    assert [r["reason_code"] for r in table] == ["bad_json", "unknown_meter"]
    assert list(table[0]) == [c for c, _, _ in _DEAD_LETTER_COLUMNS]
    text = cli(migrated_dsn, "deadletters", "list")
    assert re.fullmatch(r"2 open dead letters: bad_json 1, unknown_meter 1 \(table [\d.]+ MB\)",
                        text.stdout.splitlines()[0])
    assert "meter 'E01-ELEC-NEW' is not in the registry" in text.stdout

    # fix the registry: add the meter, then replay everything open
    doc = yaml.safe_load(EXAMPLE_REGISTRY.read_text(encoding="utf-8"))
    doc["meters"].append({"id": "E01-ELEC-NEW", "enterprise": "E01", "carrier": "electricity",
                          "unit": "kWh"})
    fixed = tmp_path / "park.yaml"
    fixed.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    replay = cli(migrated_dsn, "deadletters", "replay", "--json", registry=fixed)
    assert replay.returncode == 0, replay.stderr
    result = json.loads(replay.stdout)
    assert (result["replayed"], result["still_open"], result["readings_stored"]) == (1, 1, 2)
    assert [(o["id"], o["replayed"], o["stored"]) for o in result["rows"]] == [
        (1, True, 2), (2, False, 0)]
    with psycopg.connect(migrated_dsn) as conn:
        assert conn.execute("SELECT meter_id, value FROM readings ORDER BY ts").fetchall() == [
            ("E01-ELEC-NEW", 10.0), ("E01-ELEC-NEW", 11000.0)]
        open_rows = conn.execute("SELECT reason_code, replay_result FROM dead_letters "
                                 "WHERE replayed_at IS NULL").fetchall()
    assert open_rows[0][0] == "bad_json" and open_rows[0][1].startswith("still rejected")

    again = cli(migrated_dsn, "deadletters", "replay", "--id", "1", registry=fixed)
    assert again.returncode == 1
    assert again.stderr.startswith("parkcarbon: error: dead letter(s) 1 already replayed")
    missing = cli(migrated_dsn, "deadletters", "replay", "--id", "999", registry=fixed)
    assert missing.returncode == 1 and "no dead letter with id 999" in missing.stderr


def test_ingest_with_bad_credentials_exits_5(migrated_dsn: str, broker: Broker) -> None:
    result = cli(migrated_dsn, "ingest", PARKCARBON_MQTT_PORT=str(broker.port),
                 PARKCARBON_MQTT_USERNAME=broker.username, PARKCARBON_MQTT_PASSWORD="nope",
                 PARKCARBON_METRICS_PORT="0")
    assert result.returncode == 5, result.stderr
    assert "refused the credentials" in result.stderr
    assert "hint: check PARKCARBON_MQTT_USERNAME and PARKCARBON_MQTT_PASSWORD" in result.stderr
