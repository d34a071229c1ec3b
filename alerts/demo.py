"""The demo's alerts: the example rules raised by the demo's injected faults.

``demo_alerts(settings, registry, start, end)`` loads the alerts file (the example
``config/alerts.yaml``), points every channel at a local webhook sink it starts (same
channel ids and enterprises, so routes and isolation are the example's), and evaluates
at the simulated times where the faults show: in the middle of the gap (meter offline),
after it (resolved), the next local day (its completeness), after the counter reset
(counter anomaly) and at the end of the period (the carbon budget rules). The garbage
payloads were dead-lettered at the wall-clock time of the run, so the dead-letter rule
is evaluated at that time. Returns what the sink received.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from parkcarbon.alerts.engine import run_cycle
from parkcarbon.alerts.rules import parse_alerts
from parkcarbon.db import connect
from parkcarbon.periods import utc_now
from parkcarbon.registry import Registry
from parkcarbon.yamlfile import read_yaml

log = logging.getLogger(__name__)

FAULT_EVENTS = """
SELECT kind, meter_id, coalesce(ts_start, ts), ts FROM meter_events
WHERE kind IN ('gap', 'reset') AND ts > %s AND ts <= %s ORDER BY ts
"""


@dataclass
class DemoAlerts:
    sink_url: str
    cycles: int = 0
    notifications: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)  # alerts raised (fired), by rule
    told: int = 0  # firing alerts in the notifications
    resolved: int = 0  # resolved alerts in the notifications
    payloads: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"sink_url": self.sink_url, "cycles": self.cycles,
                "notifications": self.notifications, "by_rule": self.by_rule,
                "told": self.told, "resolved": self.resolved}

    def line(self) -> str:
        rules = ", ".join(f"{r} {n}" for r, n in sorted(self.by_rule.items()))
        return (f"{sum(self.by_rule.values())} raised ({rules or 'none'}); "
                f"{self.notifications} notifications to the demo webhook sink "
                f"({self.told} firing, {self.resolved} resolved)")


class _Sink:
    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        lock = threading.Lock()
        payloads = self.payloads

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    payloads.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       name="parkcarbon-demo-alert-sink")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> _Sink:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def _times(settings: Any, start: datetime, end: datetime) -> list[datetime]:
    tz = settings.tz
    out = set()
    with connect(settings) as conn:
        events = conn.execute(FAULT_EVENTS, (start, end)).fetchall()
    for kind, _, t0, t1 in events:
        if kind == "gap":
            out.add(t0 + (t1 - t0) / 2)
            out.add(t1 + timedelta(minutes=30))
            local = (t1.astimezone(tz) + timedelta(days=1)).replace(hour=1, minute=0)
            out.add(local.astimezone(t1.tzinfo))
        else:
            out.add(t1 + timedelta(minutes=30))
    out.add(end)
    # not before the first simulated day is complete: the day before the simulation has
    # no data at all, and its completeness would be an artefact of the demo
    first = start + timedelta(days=1, hours=1)
    return sorted({max(t, first) for t in out if start < t <= end and first <= end})


def demo_alerts(settings: Any, registry: Registry, start: datetime, end: datetime,
                now: datetime | None = None) -> DemoAlerts | None:
    """Raise and deliver the demo's alerts; None without an alerts file."""
    if not settings.alerts_file.is_file():
        return None
    data = read_yaml(settings.alerts_file, what="alerts file")
    with _Sink() as sink:
        data = dict(data or {})
        data["channels"] = [
            {"id": c["id"], "type": "webhook", "url": f"{sink.url}/{c['id']}",
             **({"enterprise": c["enterprise"]} if c.get("enterprise") else {})}
            for c in data.get("channels") or []]
        config = parse_alerts(data, f"{settings.alerts_file} (demo sink)", registry)
        result = DemoAlerts(sink.url)
        wait = timedelta(seconds=config.defaults.group_wait + 1)
        wall = now or utc_now()
        dead = {r.id for r in config.rules if getattr(r, "kind") == "dead_letters"}  # noqa: B009
        steps = [(t, None) for t in _times(settings, start, end)] + [(wall, dead)]
        raised: Counter[str] = Counter()
        for t, only in steps:
            r = run_cycle(settings, registry, config, t, only=only)
            raised.update(tr.instance.rule_id for tr in r.transitions
                          if tr.to_state == "firing" and tr.from_state in ("normal", "pending"))
            # a dispatch-only pass once group_wait is over, as the minute job would do
            run_cycle(settings, registry, config, t + wait, only=set())
            result.cycles += 1
        result.payloads = list(sink.payloads)
    for p in result.payloads:
        for a in p["alerts"]:
            if a["status"] == "firing":
                result.told += 1
            else:
                result.resolved += 1
    result.notifications = len(result.payloads)
    result.by_rule = dict(raised)
    log.info("demo alerts: %s", result.line())
    return result
