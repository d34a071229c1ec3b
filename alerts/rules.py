"""Loading and checking ``config/alerts.yaml`` (setting ``alerts_file``).

``load_alerts(path, registry)`` validates the file like the registry: every problem at
once, each naming file, entry and field, e.g.::

    config/alerts.yaml: rules[3] (gas-flow): threshold: Field required
    config/alerts.yaml: routes[0]: to: recipient 'e02-manager' (enterprise E02) would
        receive alerts of E01

Cross-checks: ids unique; channels, recipients, enterprises and meters exist; a
recipient of one enterprise only uses that enterprise's channels (or its own); a route
naming an enterprise's recipients matches that enterprise alone (isolation); overrides
name meters and enterprises the rule covers. ``secret_problems(config)`` lists secret
references that do not resolve (``alerts check`` reports them too).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from parkcarbon.alerts.errors import AlertsConfigError
from parkcarbon.alerts.models import AlertsConfig, AnyRule, Effective, Route
from parkcarbon.registry import Registry
from parkcarbon.yamlfile import read_yaml

SECTIONS = ("defaults", "ack", "delivery", "grafana_url", "channels", "recipients", "routes",
            "inhibit", "rules")


def _label(section: str, index: int, raw: Any) -> str:
    ident = raw.get("id") or raw.get("name") if isinstance(raw, dict) else None
    return f"{section}[{index}]" + (f" ({ident})" if ident else "")


def _msg(err: Any) -> str:
    return re.sub(r"^(Value error|Assertion failed), ", "", err["msg"])


def _pydantic_problems(source: str, data: dict[str, Any], exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = list(err["loc"])
        prefix = source
        if len(loc) >= 2 and isinstance(loc[1], int) and loc[0] in data:
            raw_list = data.get(str(loc[0])) or []
            raw = raw_list[loc[1]] if loc[1] < len(raw_list) else None
            prefix = f"{source}: {_label(str(loc[0]), loc[1], raw)}"
            loc = loc[2:]
            # the discriminated union adds the kind/type tag as a location step
            if loc and isinstance(raw, dict) and loc[0] in (raw.get("kind"), raw.get("type")):
                loc = loc[1:]
        elif loc:
            prefix = f"{source}: {loc[0]}"
            loc = loc[1:]
        fld = ".".join(str(p) for p in loc)
        out.append(f"{prefix}: {fld}: {_msg(err)}" if fld else f"{prefix}: {_msg(err)}")
    return out


def parse_alerts(data: Any, source: str = "<memory>",
                 registry: Registry | None = None) -> AlertsConfig:
    """Validate an alerts document (parsed YAML); ``AlertsConfigError`` lists every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise AlertsConfigError(f"{source}: expected a mapping ({', '.join(SECTIONS)})")
    problems = [f"{source}: {k}: unknown section" for k in sorted(set(data) - set(SECTIONS))]
    clean = {k: v for k, v in data.items() if k in SECTIONS}
    try:
        config = AlertsConfig.model_validate({**clean, "source": source})
    except ValidationError as exc:
        raise AlertsConfigError(problems + _pydantic_problems(source, clean, exc)) from exc
    problems += cross_check(config, registry)
    if problems:
        raise AlertsConfigError(problems)
    return config


def load_alerts(path: Path | str, registry: Registry | None = None) -> AlertsConfig:
    """Load and validate the alerts file (``AlertsConfigError`` lists every problem)."""
    data = read_yaml(path, what="alerts file", hint="set PARKCARBON_ALERTS_FILE",
                     error=AlertsConfigError)
    return parse_alerts(data, str(path), registry)


def _dupes(kind: str, ids: list[str], source: str) -> list[str]:
    return [f"{source}: {kind}: id {i!r} appears {n} times"
            for i, n in Counter(ids).items() if n > 1]


def cross_check(config: AlertsConfig, registry: Registry | None) -> list[str]:
    """Problems between entries (and against the registry when given)."""
    src = config.source
    problems: list[str] = []
    problems += _dupes("channels", [c.id for c in config.channels], src)
    problems += _dupes("recipients", [r.id for r in config.recipients], src)
    problems += _dupes("rules", [r.id for r in config.rules], src)
    enterprises = {e.id for e in registry.enterprises} if registry else None
    meters = registry.meters_by_id() if registry else None
    channels = {c.id: c for c in config.channels}
    recipients = {r.id: r for r in config.recipients}

    def unknown_enterprise(where: str, ident: str | None) -> None:
        if ident is not None and enterprises is not None and ident not in enterprises:
            problems.append(f"{src}: {where}: enterprise: unknown enterprise {ident!r}")

    for i, c in enumerate(config.channels):
        unknown_enterprise(f"channels[{i}] ({c.id})", c.enterprise)
    for i, r in enumerate(config.recipients):
        where = f"recipients[{i}] ({r.id})"
        unknown_enterprise(where, r.enterprise)
        for cid in r.channels:
            ch = channels.get(cid)
            if ch is None:
                problems.append(f"{src}: {where}: channels: unknown channel {cid!r}")
            elif ch.enterprise is not None and ch.enterprise != r.enterprise:
                owner = r.enterprise or "the park"
                problems.append(
                    f"{src}: {where}: channels: channel {cid!r} belongs to enterprise "
                    f"{ch.enterprise}, not to {owner}: it would receive another's alerts")
    for i, route in enumerate(config.routes):
        problems += _route_problems(src, i, route, recipients, enterprises)
    for i, rule in enumerate(config.rules):
        problems += _rule_problems(src, i, rule, enterprises, meters)
    rule_ids = {r.id for r in config.rules}
    for i, inh in enumerate(config.inhibit):
        for side in ("source", "target"):
            want = getattr(inh, side).get("rule")
            for rid in [want] if isinstance(want, str) else (want or []):
                if rid not in rule_ids:
                    problems.append(f"{src}: inhibit[{i}]: {side}.rule: unknown rule {rid!r}")
    if config.recipients and not config.routes:
        problems.append(f"{src}: routes: recipients are defined but no route sends to them")
    return problems


def route_enterprises(route: Route) -> set[str] | None:
    """The enterprises a route's matcher admits (None: any)."""
    want = route.match.get("enterprise")
    if want is None:
        return None
    return {want} if isinstance(want, str) else set(want)


def _route_problems(src: str, i: int, route: Route, recipients: dict[str, Any],
                    enterprises: set[str] | None) -> list[str]:
    where = f"routes[{i}]" + (f" ({route.name})" if route.name else "")
    problems = []
    admitted = route_enterprises(route)
    for e in sorted(admitted or ()):
        if e and enterprises is not None and e not in enterprises:  # "": park-level
            problems.append(f"{src}: {where}: match.enterprise: unknown enterprise {e!r}")
    lists: list[tuple[str, tuple[str, ...]]] = []
    if route.to != "enterprise":
        lists.append(("to", tuple(route.to)))
    lists += [(f"escalate[{n}].to", esc.to) for n, esc in enumerate(route.escalate)]
    for fld, ids in lists:
        for rid in ids:
            rec = recipients.get(rid)
            if rec is None:
                problems.append(f"{src}: {where}: {fld}: unknown recipient {rid!r}")
                continue
            if rec.enterprise is None:
                continue  # park staff may receive everything
            others = ("alerts of every enterprise" if admitted is None
                      else "alerts of " + ", ".join(sorted(admitted - {rec.enterprise})))
            if admitted is None or admitted - {rec.enterprise}:
                problems.append(
                    f"{src}: {where}: {fld}: recipient {rid!r} (enterprise "
                    f"{rec.enterprise}) would receive {others}; match one enterprise or "
                    "use `to: enterprise`")
    return problems


def _rule_problems(src: str, i: int, rule: AnyRule, enterprises: set[str] | None,
                   meters: dict[str, Any] | None) -> list[str]:
    where = f"rules[{i}] ({rule.id})"
    problems = []
    for e in rule.enterprises:
        if enterprises is not None and e not in enterprises:
            problems.append(f"{src}: {where}: enterprises: unknown enterprise {e!r}")
    for m in rule.meters:
        if meters is not None and m not in meters:
            problems.append(f"{src}: {where}: meters: unknown meter {m!r}")
    if rule.meters and rule.subject != "meter":
        problems.append(f"{src}: {where}: meters: only meter rules select meters")
    for n, o in enumerate(rule.overrides):
        ow = f"{where}: overrides[{n}]"
        if o.meter is not None:
            if rule.subject != "meter":
                problems.append(f"{src}: {ow}: meter: a {rule.subject} rule has no meter "
                                "overrides")
            elif meters is not None and o.meter not in meters:
                problems.append(f"{src}: {ow}: meter: unknown meter {o.meter!r}")
        if o.enterprise is not None and enterprises is not None \
                and o.enterprise not in enterprises:
            problems.append(f"{src}: {ow}: enterprise: unknown enterprise {o.enterprise!r}")
    if rule.clear is not None:
        wrong = rule.clear > rule.threshold if rule.op == "above" else \
            rule.clear < rule.threshold
        if wrong:
            problems.append(f"{src}: {where}: clear: must be on the normal side of the "
                            f"threshold ({'<=' if rule.op == 'above' else '>='} "
                            f"{rule.threshold:g})")
    return problems


def secret_problems(config: AlertsConfig) -> list[str]:
    """Secret references that do not resolve now (env unset, file missing)."""
    out = []
    refs = [(f"channels ({c.id})", name, ref) for c in config.channels for name, ref in c.secrets()]
    if config.ack.secret is not None:
        refs.append(("ack", "secret", config.ack.secret))
    for where, name, ref in refs:
        try:
            ref.resolve()
        except AlertsConfigError as exc:
            out.append(f"{config.source}: {where}: {name}: {exc}")
    return out


def effective(config: AlertsConfig, rule: AnyRule, enterprise_id: str | None,
              meter_id: str | None) -> Effective:
    """The rule's settings for one subject: the rule, then enterprise, then meter override."""
    d = config.defaults
    values: dict[str, Any] = {
        "enabled": rule.enabled,
        "threshold": _threshold(rule),
        "clear": None,
        "severity": rule.severity or d.severity,
        "for_seconds": d.for_seconds if rule.for_seconds is None else rule.for_seconds,
        "keep_firing_for": d.keep_firing_for if rule.keep_firing_for is None
        else rule.keep_firing_for,
        "no_data": rule.no_data or rule.default_no_data,
        "op": _op(rule),
    }
    values["clear"] = _clear(rule)
    ordered = sorted(rule.overrides, key=lambda o: o.meter is not None)
    for o in ordered:
        if (o.enterprise is not None and o.enterprise == enterprise_id) or \
                (o.meter is not None and o.meter == meter_id):
            for key in ("enabled", "severity", "for_seconds"):
                if getattr(o, key) is not None:
                    values[key] = getattr(o, key)
            if o.threshold is not None:
                values["threshold"] = o.threshold
                values["clear"] = o.threshold if o.clear is None else o.clear
            elif o.clear is not None:
                values["clear"] = o.clear
    return Effective(**values)


def _op(rule: AnyRule) -> str:
    kind = getattr(rule, "kind", "")
    if kind == "baseline":
        return "above" if getattr(rule, "direction", "spike") == "spike" else "below"
    if kind == "completeness":
        return "below"
    if kind in ("counter_anomaly", "ingest_incident"):
        return "above"
    return rule.op


def _threshold(rule: AnyRule) -> float:
    kind = getattr(rule, "kind", "")
    if kind == "baseline":
        return float(getattr(rule, "ratio"))  # noqa: B009
    if kind == "offline":
        return float(getattr(rule, "intervals"))  # noqa: B009
    if kind == "completeness":
        return float(getattr(rule, "min_share"))  # noqa: B009
    if kind in ("counter_anomaly", "ingest_incident"):
        return 0.0  # at least one event
    return float(rule.threshold)


def _clear(rule: AnyRule) -> float:
    kind = getattr(rule, "kind", "")
    if kind == "baseline":
        cr = getattr(rule, "clear_ratio", None)
        return float(cr) if cr is not None else _threshold(rule)
    if rule.clear is not None and kind not in ("offline", "completeness", "counter_anomaly",
                                                "ingest_incident"):
        return float(rule.clear)
    return _threshold(rule)
