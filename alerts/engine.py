"""One alert cycle: evaluate every rule, step every instance, dispatch, deliver.

``evaluate(conn, config, ctx)`` runs in the caller's transaction under the advisory lock
``LockKey.ALERTS`` (``pg_try_advisory_xact_lock``): of two ``parkcarbon run`` instances
against one database only one evaluates at a time; the other skips the cycle (and still
delivers, sharing the outbox through ``FOR UPDATE SKIP LOCKED``). Each rule reads its
subjects with one statement, inside a savepoint: a rule whose query fails puts its
instances in the ``error`` state and the others go on.

``run_cycle(settings, registry, config, now)`` is the scheduled job's body: evaluate and
dispatch in one transaction, then deliver.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from parkcarbon.alerts import state
from parkcarbon.alerts.deliver import DeliveryResult, deliver
from parkcarbon.alerts.dispatch import Plan, dispatch
from parkcarbon.alerts.errors import AlertsConfigError
from parkcarbon.alerts.evaluate import breached, step
from parkcarbon.alerts.models import AlertsConfig, Instance, Transition
from parkcarbon.alerts.rules import effective
from parkcarbon.alerts.sources import Context, observe
from parkcarbon.db import LockKey, connect
from parkcarbon.registry import Registry

log = logging.getLogger(__name__)
_warned: set[str] = set()


@dataclass
class CycleResult:
    evaluated: bool = False  # False: another instance holds the evaluation lock
    rules: int = 0
    subjects: int = 0
    transitions: list[Transition] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # rule id -> error
    plan: Plan = field(default_factory=Plan)
    delivery: DeliveryResult = field(default_factory=DeliveryResult)

    def summary(self) -> dict[str, Any]:
        return {
            "evaluated": self.evaluated, "rules": self.rules, "subjects": self.subjects,
            "transitions": len(self.transitions),
            "firing": sum(t.to_state == "firing" for t in self.transitions),
            "resolved": sum(t.to_state == "normal" and t.from_state != "pending"
                            for t in self.transitions),
            "errors": self.errors, "messages_enqueued": self.plan.messages,
            "sent": self.delivery.sent, "failed": self.delivery.failed,
            "deferred": self.delivery.deferred,
        }


def ack_secret(config: AlertsConfig) -> str | None:
    if config.ack.secret is None:
        return None
    try:
        return config.ack.secret.resolve()
    except AlertsConfigError as exc:
        if str(exc) not in _warned:  # once per process, not every minute
            _warned.add(str(exc))
            log.warning("alerts: no acknowledge links in messages: %s", exc)
        return None


def _new(rule: Any, obs: Any, severity: str) -> Instance:
    return Instance(rule.id, obs.subject, obs.enterprise_id, obs.meter_id, rule.kind,
                    severity)


def evaluate(conn: psycopg.Connection, config: AlertsConfig, ctx: Context,
             result: CycleResult | None = None, *, only: set[str] | None = None
             ) -> CycleResult:
    """Step every instance of every enabled rule at ``ctx.now`` and store the changes.

    ``only``: evaluate these rules alone and leave the others' instances as they are.
    """
    result = result or CycleResult()
    got = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (int(LockKey.ALERTS),)).fetchone()
    if not got or not got[0]:
        log.info("alerts: another instance is evaluating; skipping this cycle")
        return result
    result.evaluated = True
    rules = [r for r in config.rules if r.enabled and (only is None or r.id in only)]
    known = state.load_instances(conn, [r.id for r in config.rules])
    changed: list[Instance] = []
    transitions: list[Transition] = []
    for rule in rules:
        result.rules += 1
        try:
            with conn.transaction():
                observations = observe(conn, rule, ctx)
            error = None
        except psycopg.Error as exc:
            error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
            observations = {}
        except Exception as exc:  # a source bug or a carbon API change: an error state
            log.exception("alerts: rule %s could not be evaluated", rule.id)
            error = f"{type(exc).__name__}: {exc}"
            observations = {}
        if error is not None:
            result.errors[rule.id] = error
            log.warning("alerts: rule %s: %s", rule.id, error)
            for (rid, _), inst in known.items():
                if rid != rule.id:
                    continue
                eff = effective(config, rule, inst.enterprise_id, inst.meter_id)
                new, t = step(inst, None, eff, ctx.now, error=error)
                if t is not None:
                    changed.append(new)
                    transitions.append(t)
            continue
        seen = set()
        base = effective(config, rule, None, None)  # the same for every subject without
        for obs in observations.values():           # an override
            result.subjects += 1
            seen.add(obs.subject)
            eff = effective(config, rule, obs.enterprise_id, obs.meter_id) \
                if rule.overrides else base
            found = known.get((rule.id, obs.subject))
            if found is None and eff.enabled and obs.value is not None \
                    and not breached(obs.value, eff):
                continue  # normal and staying normal: no row, nothing to do
            if not eff.enabled:
                if found is None or found.state == "normal":
                    continue
                value = None
                eff = type(eff)(**{**eff.__dict__, "no_data": "normal"})
            else:
                value = obs.value
            if found is None:
                if value is None and eff.no_data in ("normal", "keep"):
                    continue
                inst = _new(rule, obs, eff.severity)
            else:
                inst = found
            inst.detail = {**inst.detail, **obs.detail}
            new, t = step(inst, value, eff, ctx.now)
            if t is not None:
                transitions.append(t)
                changed.append(new)
            elif new.state != "normal" and (new.value != inst.value or
                                            new.severity != inst.severity):
                changed.append(new)
        # a subject that left the rule (meter removed, rule narrowed) resolves
        for (rid, subject), inst in known.items():
            if rid == rule.id and subject not in seen and inst.state != "normal":
                eff = effective(config, rule, inst.enterprise_id, inst.meter_id)
                eff = type(eff)(**{**eff.__dict__, "no_data": "normal",
                                   "keep_firing_for": 0.0})
                new, t = step(inst, None, eff, ctx.now)
                if t is not None:
                    transitions.append(t)
                    changed.append(new)
    # instances of rules removed from the file or disabled resolve too
    active_rules = {r.id for r in rules}
    for inst in state.active_instances(conn) if only is None else []:
        if inst.rule_id not in active_rules:
            prev = inst.state
            inst.state, inst.resolved_at = "normal", ctx.now
            inst.pending_since = inst.active_since = inst.recovering_since = None
            changed.append(inst)
            transitions.append(Transition(inst, prev, "normal", ctx.now,
                                          "rule removed or disabled"))
    state.save(conn, changed, transitions)
    result.transitions += transitions
    for t in transitions:
        log.info("alerts: %s %s: %s -> %s (value %s)", t.instance.rule_id, t.instance.subject,
                 t.from_state, t.to_state, t.instance.value)
    return result


def run_cycle(settings: Any, registry: Registry, config: AlertsConfig, now: datetime, *,
              send: bool = True, only: set[str] | None = None) -> CycleResult:
    """Evaluate and dispatch (one transaction), then deliver what is due (``only``: the
    rules to evaluate, default all)."""
    result = CycleResult()
    ctx = Context(registry=registry, now=now, tz=settings.tz, settings=settings)
    with connect(settings) as conn:
        evaluate(conn, config, ctx, result, only=only)
        if result.evaluated:
            result.plan = dispatch(conn, config, now=now, tz=settings.tz, registry=registry,
                                   ack_secret=ack_secret(config))
        conn.commit()
    if send:
        result.delivery = deliver(settings, config, now=now)
    return result
