"""The alerts file is validated like the registry (every problem at once, naming file,
entry and field), secrets are references, isolation is checked; the state machine of
one instance, step by step."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from alerts_support import T0

from parkcarbon.alerts.errors import AlertsConfigError
from parkcarbon.alerts.evaluate import step
from parkcarbon.alerts.models import Effective, Instance, parse_duration
from parkcarbon.alerts.rules import effective, load_alerts, parse_alerts, secret_problems
from support import ROOT

EXAMPLE = ROOT / "config" / "alerts.yaml"


def test_the_shipped_example_is_valid(registry):
    config = load_alerts(EXAMPLE, registry)
    kinds = {getattr(r, "kind") for r in config.rules}  # noqa: B009
    assert kinds == {"threshold", "baseline", "offline", "completeness", "counter_anomaly",
                     "carbon_budget", "dead_letters", "ingest_incident"}
    assert {c.type for c in config.channels} == {"email", "webhook", "wecom", "dingtalk",
                                                 "feishu", "mqtt"}


def test_every_problem_is_reported_at_once_naming_file_entry_field(registry):
    doc = {
        "colours": {},
        "channels": [
            {"id": "e01-robot", "type": "wecom", "enterprise": "E01", "key": "abc123"},
            {"id": "e02-mail", "type": "email", "enterprise": "E02", "host": "smtp",
             "from": "a@b.cn", "to": ["x@y.cn"]},
        ],
        "recipients": [{"id": "e01", "enterprise": "E01", "channels": ["e01-robot"]}],
        "rules": [{"id": "demand", "kind": "threshold", "window": "15m"},
                  {"id": "gone", "kind": "offline", "intervals": -1}],
    }
    with pytest.raises(AlertsConfigError) as exc:
        parse_alerts(doc, "alerts.yaml", registry)
    problems = exc.value.problems
    text = "\n".join(problems)
    assert "alerts.yaml: colours: unknown section" in text
    assert "alerts.yaml: channels[0] (e01-robot): key: must be a reference {env: NAME} or " \
        "{file: PATH}, never a literal" in text
    assert "alerts.yaml: rules[0] (demand): threshold: Field required" in text
    assert "alerts.yaml: rules[1] (gone): intervals: Input should be greater than 0" in text
    assert len(problems) == 4


def test_cross_checks_and_isolation(registry):
    doc = {
        "channels": [
            {"id": "e01-hook", "type": "webhook", "enterprise": "E01", "url": "http://x/1"},
            {"id": "e02-hook", "type": "webhook", "enterprise": "E02", "url": "http://x/2"},
            {"id": "park-hook", "type": "webhook", "url": "http://x/p"},
        ],
        "recipients": [
            {"id": "e01", "enterprise": "E01", "channels": ["e01-hook"]},
            {"id": "e02", "enterprise": "E02", "channels": ["e02-hook", "e01-hook"]},
            {"id": "officer", "channels": ["park-hook", "nope"]},
        ],
        "routes": [
            {"name": "all-to-e01", "to": ["e01", "officer"]},
            {"name": "e01", "match": {"enterprise": "E01"}, "to": ["e01"],
             "escalate": [{"after": "30m", "to": ["e02"]}]},
            {"name": "ok", "match": {"enterprise": "E02"}, "to": ["e02", "officer"]},
        ],
        "inhibit": [{"source": {"rule": "missing"}, "target": {"rule": "demand"}}],
        "rules": [{"id": "demand", "kind": "threshold", "threshold": 5, "clear": 9,
                   "meters": ["NOPE-1"],
                   "overrides": [{"meter": "E01-ELEC-1", "threshold": 1},
                                 {"enterprise": "E99", "threshold": 2}]},
                  {"id": "demand", "kind": "offline"}],
    }
    with pytest.raises(AlertsConfigError) as exc:
        parse_alerts(doc, "a.yaml", registry)
    text = "\n".join(exc.value.problems)
    assert "a.yaml: rules: id 'demand' appears 2 times" in text
    assert ("a.yaml: recipients[1] (e02): channels: channel 'e01-hook' belongs to "
            "enterprise E01, not to E02") in text
    assert "a.yaml: recipients[2] (officer): channels: unknown channel 'nope'" in text
    assert ("a.yaml: routes[0] (all-to-e01): to: recipient 'e01' (enterprise E01) would "
            "receive alerts of every enterprise") in text
    assert ("a.yaml: routes[1] (e01): escalate[0].to: recipient 'e02' (enterprise E02) "
            "would receive alerts of E01") in text
    assert "routes[2]" not in text  # E02's own route to E02's recipient and park staff
    assert "a.yaml: inhibit[0]: source.rule: unknown rule 'missing'" in text
    assert "a.yaml: rules[0] (demand): meters: unknown meter 'NOPE-1'" in text
    assert ("a.yaml: rules[0] (demand): overrides[1]: enterprise: unknown enterprise "
            "'E99'") in text
    assert "a.yaml: rules[0] (demand): clear: must be on the normal side" in text


def test_secrets_are_references_resolved_from_env_or_file(tmp_path, monkeypatch):
    key = tmp_path / "key"
    key.write_text("filekey\n")
    doc = {"channels": [
        {"id": "w", "type": "wecom", "key": {"env": "PC_TEST_WECOM_KEY"}},
        {"id": "d", "type": "dingtalk", "access_token": {"file": str(key)},
         "secret": {"file": str(tmp_path / "missing")}},
    ]}
    config = parse_alerts(doc)
    monkeypatch.delenv("PC_TEST_WECOM_KEY", raising=False)
    problems = secret_problems(config)
    assert problems == [
        "<memory>: channels (w): key: environment variable PC_TEST_WECOM_KEY is not set",
        f"<memory>: channels (d): secret: cannot read {tmp_path / 'missing'}: "
        f"[Errno 2] No such file or directory: '{tmp_path / 'missing'}'",
    ]
    monkeypatch.setenv("PC_TEST_WECOM_KEY", "envkey")
    assert config.channels[0].key.resolve() == "envkey"  # type: ignore[union-attr]
    assert config.channels[1].access_token.resolve() == "filekey"  # type: ignore[union-attr]


def test_check_command_lists_problems_and_exits_3(tmp_path):
    bad = tmp_path / "alerts.yaml"
    bad.write_text(yaml.safe_dump({"rules": [{"id": "x", "kind": "threshold"},
                                             {"id": "y", "kind": "nope"}]}))
    env = {**os.environ, "PARKCARBON_ALERTS_FILE": str(bad)}
    run = subprocess.run([sys.executable, "-m", "parkcarbon", "alerts", "check"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert run.returncode == 3
    assert f"{bad}: rules[0] (x): threshold: Field required" in run.stderr
    assert f"{bad}: rules[1] (y): Input tag 'nope' found using 'kind' does not match" \
        in run.stderr
    assert "Traceback" not in run.stderr
    env["PARKCARBON_ALERTS_FILE"] = str(EXAMPLE)
    for var in ("ALERTS_ACK_SECRET", "ALERTS_SMTP_PASSWORD", "E01_WECOM_KEY"):
        env.pop(var, None)
    run = subprocess.run([sys.executable, "-m", "parkcarbon", "alerts", "check"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert run.returncode == 3 and "environment variable E01_WECOM_KEY is not set" in run.stderr
    run = subprocess.run([sys.executable, "-m", "parkcarbon", "alerts", "check",
                          "--skip-secrets", "--format", "json"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert run.returncode == 0, run.stderr
    assert '"ok": true' in run.stdout


def test_overrides_meter_beats_enterprise_beats_rule(registry):
    config = parse_alerts({"rules": [{
        "id": "demand", "kind": "threshold", "threshold": 100, "clear": 90,
        "overrides": [{"meter": "E01-ELEC-1", "threshold": 300},
                      {"enterprise": "E01", "threshold": 200, "severity": "critical"},
                      {"meter": "E01-GAS-1", "enabled": False}]}]}, "a", registry)
    rule = config.rules[0]
    assert effective(config, rule, "E02", "E02-ELEC-1").threshold == 100
    e = effective(config, rule, "E01", "E01-WATER-1")
    assert (e.threshold, e.clear, e.severity) == (200, 200, "critical")
    e = effective(config, rule, "E01", "E01-ELEC-1")
    assert (e.threshold, e.severity) == (300, "critical")
    assert not effective(config, rule, "E01", "E01-GAS-1").enabled


def test_durations():
    assert parse_duration("90s") == 90 and parse_duration("15m") == 900
    assert parse_duration("4h") == 14400 and parse_duration(30) == 30
    with pytest.raises(ValueError):
        parse_duration("soon")


# --- the state machine ---------------------------------------------------------------

EFF = Effective(enabled=True, threshold=10, clear=8, severity="major", for_seconds=600,
                keep_firing_for=300, no_data="nodata", op="above")


def _walk(values, eff=EFF, minutes=5):
    inst = Instance("r", "M1", "E01", "M1", "threshold", "major")
    states = []
    for n, v in enumerate(values):
        inst, _ = step(inst, v, eff, T0 + timedelta(minutes=minutes * n))
        states.append(inst.state)
    return inst, states


def test_pending_for_then_firing_hysteresis_and_keep_firing_for():
    inst, states = _walk([11, 11, 11, 9, 7, 9, 7, 7, 7])
    # keep_firing_for 5 min: recovering at 30 min, resolved at 35 min
    assert states == ["pending", "pending", "firing", "firing", "recovering", "firing",
                      "recovering", "normal", "normal"]
    assert inst.episode == 1 and inst.resolved_at == T0 + timedelta(minutes=35)


def test_pending_that_clears_never_fires():
    inst, states = _walk([11, 9, 11, 11, 11])
    assert states == ["pending", "normal", "pending", "pending", "firing"]
    assert inst.active_since == T0 + timedelta(minutes=20)


def test_no_data_is_a_state_of_the_same_instance():
    inst, states = _walk([11, 11, 11, None, None, 12, 1])
    eff0 = Effective(**{**EFF.__dict__, "keep_firing_for": 0})
    assert states[:5] == ["pending", "pending", "firing", "nodata", "nodata"]
    assert states[5] == "firing" and inst.episode == 1  # the same episode continues
    for mode, expected in (("keep", "firing"), ("normal", "normal"), ("alerting", "firing")):
        eff = Effective(**{**eff0.__dict__, "no_data": mode})
        _, states = _walk([11, 11, 11, None], eff)
        assert states[-1] == expected, mode


def test_error_state_and_back():
    inst = Instance("r", "M1", "E01", "M1", "threshold", "major")
    inst, t = step(inst, None, EFF, T0, error="UndefinedTable: usage")
    assert inst.state == "error" and t is not None and inst.episode == 1
    inst, t = step(inst, 1.0, EFF, T0 + timedelta(minutes=1))
    assert inst.state == "recovering"


def test_below_operator():
    eff = Effective(enabled=True, threshold=0.9, clear=0.95, severity="minor",
                    for_seconds=0, keep_firing_for=0, no_data="keep", op="below")
    _, states = _walk([0.95, 0.85, 0.92, 0.96], eff)
    assert states == ["normal", "firing", "firing", "normal"]


def test_example_file_path_is_the_setting_default():
    from parkcarbon.settings import Settings

    assert Settings.model_fields["alerts_file"].default == Path("config/alerts.yaml")


def test_rule_kinds_and_channel_types_are_the_registries():
    import typing

    from parkcarbon.alerts.models import CHANNEL_TYPES, RULE_KINDS, Channel, Rule

    def tags(union: object) -> set[str]:
        members = typing.get_args(typing.get_args(union)[0])
        fields = [m.model_fields.get("kind") or m.model_fields["type"] for m in members]
        return {typing.get_args(f.annotation)[0] for f in fields}

    assert tags(Rule) == set(RULE_KINDS)
    assert tags(Channel) == set(CHANNEL_TYPES)
