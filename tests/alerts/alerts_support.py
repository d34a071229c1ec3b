"""Helpers of the alert tests (imported by the test modules; conftest puts this folder
on sys.path): the Sink HTTP server record, direct writers of usage and readings, a base
alerts document."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

T0 = datetime(2026, 10, 12, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in the park


@dataclass
class Sink:
    """A real HTTP server recording every request; ``replies`` are (status, JSON body)
    answered in turn (the last one repeats)."""

    server: ThreadingHTTPServer
    requests: list[dict[str, Any]] = field(default_factory=list)
    replies: list[tuple[int, Any]] = field(default_factory=lambda: [(200, {"errcode": 0})])
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def bodies(self) -> list[Any]:
        return [r["json"] for r in self.requests]



def start_sink() -> Sink:
    """A Sink listening on a free port (stop with ``stop_sink``)."""
    holder: dict[str, Sink] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            s = holder["sink"]
            with lock:
                s.requests.append({"path": self.path, "headers": dict(self.headers),
                                   "json": json.loads(body)})
                status, reply = s.replies[0] if len(s.replies) == 1 else s.replies.pop(0)
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["sink"] = Sink(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    holder["sink"].thread = thread
    return holder["sink"]


def stop_sink(s: Sink) -> None:
    s.server.shutdown()
    s.server.server_close()
    if s.thread is not None:
        s.thread.join(5)


def slots(t1: datetime, n: int) -> list[datetime]:
    """The n 15-minute slot starts before t1 (t1 on a slot boundary)."""
    return [t1 - timedelta(minutes=15 * (k + 1)) for k in range(n)]


def put_usage(dsn: str, meter: str, rows: list[tuple[datetime, float]],
              estimated: bool = False) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO usage (meter_id, ts, quantity, estimated) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (meter_id, ts) DO UPDATE SET quantity = excluded.quantity, "
            "estimated = excluded.estimated",
            [(meter, ts, q, estimated) for ts, q in rows])


def put_readings(dsn: str, meter: str, times: list[datetime]) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO readings (meter_id, ts, value) VALUES (%s, %s, %s) "
                        "ON CONFLICT DO NOTHING",
                        [(meter, ts, float(n)) for n, ts in enumerate(times)])


def base_config(sink_url: str, **more: Any) -> dict[str, Any]:
    """An alerts document: one webhook channel per recipient, E01's manager and the park
    officer, the enterprise route with escalation after 30 minutes."""
    doc: dict[str, Any] = {
        "defaults": {"for": "0s", "group_wait": "0s", "group_interval": "5m",
                     "repeat_interval": "4h"},
        "channels": [
            {"id": "e01-hook", "type": "webhook", "enterprise": "E01",
             "url": f"{sink_url}/e01"},
            {"id": "e02-hook", "type": "webhook", "enterprise": "E02",
             "url": f"{sink_url}/e02"},
            {"id": "park-hook", "type": "webhook", "url": f"{sink_url}/park"},
        ],
        "recipients": [
            {"id": "e01-manager", "enterprise": "E01", "channels": ["e01-hook"]},
            {"id": "e02-manager", "enterprise": "E02", "channels": ["e02-hook"]},
            {"id": "park-officer", "channels": ["park-hook"]},
        ],
        "routes": [{"to": "enterprise", "escalate": [{"after": "30m", "to": ["park-officer"]}]}],
        "rules": [
            {"id": "demand", "kind": "threshold", "carriers": ["electricity"],
             "meters": ["E01-ELEC-1", "E02-ELEC-1"], "metric": "rate", "window": "15m",
             "threshold": 1000, "clear": 800, "severity": "major"},
        ],
    }
    doc.update(more)
    return doc


def put_demand_readings(dsn: str, meter: str, start: datetime, kws: list[float],
                        multiplier: float = 400.0) -> None:
    """Cumulative register readings every 15 minutes from ``start`` so that derivation
    gives slot k a demand of ``kws[k]`` kW (E01-ELEC-1 has multiplier 400)."""
    import psycopg

    register, rows = 1000.0, []
    for k in range(len(kws) + 1):
        rows.append((meter, start + timedelta(minutes=15 * k), register))
        if k < len(kws):
            register += kws[k] / 4 / multiplier
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO readings (meter_id, ts, value) VALUES (%s, %s, %s) "
                        "ON CONFLICT (meter_id, ts) DO UPDATE SET value = excluded.value", rows)
