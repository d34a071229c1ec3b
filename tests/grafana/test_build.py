"""The committed provisioning is what the code builds (drift), the JSON reads back through
the SDK, uids are stable, and the datasources use the read-only and enterprise roles."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from parkcarbon.cli import cli
from parkcarbon.grafana.build import GENERATED, build_boards, encode
from parkcarbon.grafana.check import panel_queries
from parkcarbon.grafana.pgquery import PLUGIN_ID, PgQuery, register
from parkcarbon.grafana.provision import REPO_PROVISIONING, provisioning_files
from parkcarbon.registry import load_registry
from parkcarbon.security.roles import enterprise_role
from parkcarbon.settings import Settings, load_settings
from support import EXAMPLE_REGISTRY, ROOT

UIDS = {"park": "parkcarbon-park", "enterprise": "parkcarbon-enterprise",
        "quality": "parkcarbon-quality", "alerts": "parkcarbon-alerts"}


def _settings(**kw: Any) -> Settings:
    return load_settings(registry_file=EXAMPLE_REGISTRY, **kw)


def test_committed_provisioning_is_what_the_code_builds() -> None:
    files = provisioning_files(_settings())
    drift = [rel for rel, text in files.items()
             if not (REPO_PROVISIONING / rel).is_file()
             or (REPO_PROVISIONING / rel).read_text(encoding="utf-8") != text]
    assert drift == [], "run `parkcarbon grafana build` and commit the result"
    on_disk = {str(p.relative_to(REPO_PROVISIONING)) for p in REPO_PROVISIONING.rglob("*")
               if p.is_file()}
    assert on_disk == set(files)  # nothing stale left behind


def test_build_is_deterministic_and_says_what_generated_it() -> None:
    assert provisioning_files(_settings()) == provisioning_files(_settings())
    for name, board in build_boards().items():
        assert board["__generated"] == GENERATED
        assert board["uid"] == UIDS[name] and len(board["uid"]) <= 40
        assert [p["id"] for p in board["panels"]] == list(range(1, len(board["panels"]) + 1))
    for text in provisioning_files(_settings()).values():
        assert "parkcarbon grafana build" in text


def test_boards_read_back_through_the_sdk() -> None:
    register_default_plugins()
    register()
    for board in build_boards().values():
        model = Dashboard.from_json(board)
        assert isinstance(model.panels, list)
        targets = [t for p in model.panels for t in (getattr(p, "targets", None) or [])]
        assert targets and all(isinstance(t, PgQuery) for t in targets)
        again = encode(model)
        # reading back fills the panel plugins' default `custom` field config, nothing else
        for p, original in zip(again["panels"], board["panels"], strict=True):
            if "custom" not in original.get("fieldConfig", {}).get("defaults", {"custom": 0}):
                p["fieldConfig"]["defaults"].pop("custom", None)
        again["__generated"] = GENERATED
        assert again == board


def test_every_panel_is_postgresql_sql_grafana_accepts() -> None:
    for board in build_boards().values():
        assert board["timezone"] == "Asia/Shanghai"
        for p in board["panels"]:
            if p["type"] == "row":
                continue
            assert p["datasource"] == {"type": PLUGIN_ID, "uid": "parkcarbon"}
            for t in p["targets"]:
                assert set(t) == {"refId", "rawSql", "format", "rawQuery", "editorMode",
                                  "datasource"}  # no fill* keys: the backend rejects them
                assert t["format"] in ("table", "time_series")
                if t["format"] == "time_series":
                    assert '"time"' in t["rawSql"]
            overrides = p["fieldConfig"]["overrides"]
            assert overrides and all(o["matcher"]["id"] == "byName" for o in overrides)
        for q in panel_queries(board):
            sql = q.raw_sql
            # local days: no UTC-aligned buckets; half-open ranges: no inclusive BETWEEN
            assert "$__timeGroup" not in sql and "$__timeFilter" not in sql
            assert "time_bucket" not in sql
            assert "FROM readings" not in sql or "LIMIT 1" in sql  # newest reading only
            assert "{" not in sql  # every build-time placeholder filled


def test_settings_reach_the_sql() -> None:
    board = build_boards(
        __import__("parkcarbon.grafana.provision", fromlist=["x"]).board_context(
            _settings(timezone="Asia/Urumqi", energy_basis="equal_value"))
    )["park"]
    sql = "\n".join(q.raw_sql for q in panel_queries(board))
    assert "'Asia/Urumqi'" in sql and "'Asia/Shanghai'" not in sql
    assert "tce_equal_value" in sql and "tce_equivalent" not in sql


def test_datasources_use_the_reader_and_enterprise_roles() -> None:
    settings = _settings(db_role_prefix="kuqa", storage_mode="plain")
    files = provisioning_files(settings)
    (park,) = yaml.safe_load(files["datasources/parkcarbon.yaml"])["datasources"]
    assert park["user"] == "kuqa_reader" and park["orgId"] == 1
    assert park["secureJsonData"]["password"] == (
        "$__file{/run/secrets/parkcarbon/kuqa_reader.password}")
    assert park["jsonData"]["timescaledb"] is False  # the storage mode's flag
    registry = load_registry(EXAMPLE_REGISTRY)
    orgs = yaml.safe_load(files["enterprises/organisations.yaml"])["organisations"]
    assert [o["enterprise"] for o in orgs] == [e.id for e in registry.enterprises]
    sources = yaml.safe_load(files["datasources/enterprises.yaml"])["datasources"]
    providers = yaml.safe_load(files["dashboards/enterprises.yaml"])["providers"]
    assert len(sources) == len(providers) == len(orgs) == len(registry.enterprises)
    for o, ds, pr in zip(orgs, sources, providers, strict=True):
        role = enterprise_role(settings, o["enterprise"])
        assert o["role"] == ds["user"] == role and role.startswith("kuqa_e_")
        assert ds["orgId"] == pr["orgId"] == o["orgId"] >= 2
        assert ds["secureJsonData"]["password"] == (
            f"$__file{{/run/secrets/parkcarbon/{role}.password}}")
        board = json.loads(files[f"enterprises/dashboards/{o['orgId']}/enterprise.json"])
        uids = {t["datasource"]["uid"] for p in board["panels"] for t in p.get("targets", [])}
        assert uids == {ds["uid"]}  # the enterprise board reads its own org's datasource
    timescale = provisioning_files(_settings(storage_mode="timescale"))
    assert yaml.safe_load(timescale["datasources/parkcarbon.yaml"])["datasources"][0][
        "jsonData"]["timescaledb"] is True


def test_build_command_writes_and_prunes(tmp_path: Path) -> None:
    stale = tmp_path / "dashboards" / "old.json"
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"__generated": GENERATED}), encoding="utf-8")
    mine = tmp_path / "dashboards" / "hand-made.json"
    mine.write_text("{}", encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["--registry", str(EXAMPLE_REGISTRY), "grafana", "build", "--out", str(tmp_path),
              "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["out"] == str(tmp_path) and len(out["rows"]) == len(provisioning_files(
        _settings()))
    assert not stale.exists() and mine.exists()  # only generated boards are pruned
    assert (tmp_path / "dashboards" / "park.json").read_text(encoding="utf-8") == (
        REPO_PROVISIONING / "dashboards" / "park.json").read_text(encoding="utf-8")


def test_docker_compose_mounts_the_provisioning_and_the_secrets() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    volumes = compose["services"]["grafana"]["volumes"]
    assert any(re.match(r"\./grafana/provisioning:/etc/grafana/provisioning", v) for v in volumes)
    assert any("/run/secrets/parkcarbon" in v for v in volumes)
