"""The state machine of one alert instance: pure, no I/O, an explicit ``now``.

::

    normal --breached--> pending --breached for `for`--> firing --cleared--> recovering
      ^                     |                              ^  |                 |
      |                     +--not breached--> normal      |  +--(keep 0)--> normal
      +------------- cleared for `keep_firing_for` --------+--breached again---+

``breached``: the value is past the threshold (``above``: ``value > threshold``;
``below``: ``value < threshold``). ``cleared``: past the clear level the other way
(``above``: ``value <= clear``), so a value between clear and threshold keeps a firing
instance firing (hysteresis). No data and evaluation errors are states of the same
instance (``nodata``, ``error``): ``no_data: nodata`` enters ``nodata`` at once,
``alerting`` treats no data as breached, ``normal`` as cleared, ``keep`` leaves the
state as it is (the default of most kinds; offline: alerting). An instance that was
active (firing, recovering, nodata, error) and returns to normal is *resolved*: its
resolve message is owed.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from parkcarbon.alerts.constants import ACTIVE_STATES
from parkcarbon.alerts.models import Effective, Instance, Transition


def breached(value: float, eff: Effective) -> bool:
    return value > eff.threshold if eff.op == "above" else value < eff.threshold


def cleared(value: float, eff: Effective) -> bool:
    return value <= eff.clear if eff.op == "above" else value >= eff.clear


def step(
    inst: Instance,
    value: float | None,
    eff: Effective,
    now: datetime,
    *,
    error: str | None = None,
) -> tuple[Instance, Transition | None]:
    """Advance one instance by one evaluation; returns the new instance and the change."""
    new = replace(inst, last_eval_at=now, severity=eff.severity, threshold=eff.threshold,
                  detail=dict(inst.detail))
    before = inst.state
    if error is not None:
        new.detail["error"] = error
        target = "error"
    elif value is None:
        mode = eff.no_data
        if mode == "keep":
            return new, None
        if mode == "nodata":
            target = "nodata"
        else:
            target = _next(new, mode == "alerting", mode == "normal", eff, now)
    else:
        new.value = value
        new.detail.pop("error", None)
        target = _next(new, breached(value, eff), cleared(value, eff), eff, now)
    if before in ("nodata", "error") and target in ("nodata", "error") and before == target:
        return new, None
    return _enter(new, before, target, now)


def _next(inst: Instance, is_breached: bool, is_cleared: bool, eff: Effective,
          now: datetime) -> str:
    state = inst.state
    if state in ("nodata", "error"):
        # data is back: an active instance continues its episode as firing or recovers
        state = "firing" if inst.active_since is not None else "normal"
    if state == "normal":
        if not is_breached:
            return "normal"
        return "firing" if eff.for_seconds <= 0 else "pending"
    if state == "pending":
        if not is_breached:
            return "normal"
        assert inst.pending_since is not None
        waited = (now - inst.pending_since).total_seconds()
        return "firing" if waited >= eff.for_seconds else "pending"
    if state == "firing":
        if not is_cleared:
            return "firing"
        return "recovering" if eff.keep_firing_for > 0 else "normal"
    # recovering
    if not is_cleared:
        return "firing"
    assert inst.recovering_since is not None
    held = (now - inst.recovering_since).total_seconds()
    return "normal" if held >= eff.keep_firing_for else "recovering"


def _enter(inst: Instance, before: str, target: str, now: datetime
           ) -> tuple[Instance, Transition | None]:
    if target == before:
        return inst, None
    was_active = before in ACTIVE_STATES
    if target == "pending":
        inst.pending_since = now
    elif target in ACTIVE_STATES:
        if not was_active:
            inst.episode += 1
            inst.active_since = now
            inst.resolved_at = None
            inst.ack_by = inst.ack_until = inst.ack_comment = None
        inst.recovering_since = now if target == "recovering" else None
        if target != "recovering":
            inst.pending_since = None
    elif target == "normal":
        if was_active:
            inst.resolved_at = now
        inst.pending_since = inst.active_since = inst.recovering_since = None
        inst.ack_by = inst.ack_until = inst.ack_comment = None
    inst.state = target
    return inst, Transition(inst, before, target, now)
