"""The one HTTP endpoint of a parkcarbon process: ``/healthz`` and ``/metrics``.

``/healthz`` (also ``/health``) answers the JSON report of ``health()`` with status 200
when its ``healthy`` member is true and 503 otherwise; ``/metrics`` answers the
Prometheus text of ``metrics()``. ``parkcarbon run`` and ``parkcarbon ingest`` both
serve through it, so both answer the same way. Neither path has authentication, so it
listens on 127.0.0.1 unless the ``metrics_host`` setting says otherwise.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from parkcarbon.errors import EndpointError

log = logging.getLogger(__name__)

# An extra route: (method, request target with query, body, client address) ->
# (status, content type, body). Feature packages offer them (the alerts' acknowledge
# link); ``parkcarbon run`` mounts them with ``routes=``.
Route = Callable[[str, str, bytes, str], tuple[int, str, bytes]]
MAX_BODY_BYTES = 65_536


class HealthServer:
    """Serves ``health()`` as JSON at /healthz (/health) and ``metrics()`` at /metrics.

    Raises ``EndpointError`` when the port cannot be bound.
    """

    def __init__(
        self,
        health: Callable[[], dict[str, Any]],
        metrics: Callable[[], str],
        port: int,
        host: str = "127.0.0.1",
        routes: dict[str, Route] | None = None,
    ) -> None:
        extra = dict(routes or {})

        class Handler(BaseHTTPRequestHandler):
            def _route(self, method: str) -> bool:
                route = extra.get(self.path.split("?")[0])
                if route is None:
                    return False
                data = b""
                if method == "POST":
                    raw = (self.headers.get("Content-Length") or "0").strip()
                    if not (raw.isascii() and raw.isdigit()):
                        self._plain(400, f"bad Content-Length {raw[:40]!r}: not a byte count")
                        return True
                    if int(raw) > MAX_BODY_BYTES:
                        self._plain(413, f"request body of {raw} bytes is over the "
                                    f"{MAX_BODY_BYTES}-byte limit")
                        return True
                    data = self.rfile.read(int(raw))
                try:
                    status, ctype, body = route(method, self.path, data,
                                                self.client_address[0])
                except Exception:  # a route's bug answers 500, the server keeps serving
                    log.exception("HTTP route %s failed", self.path.split("?")[0])
                    self._plain(500, "internal error; the service log has the details")
                    return True
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return True

            def _plain(self, status: int, text: str) -> None:
                body = (text + "\n").encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                if not self._route("POST"):
                    self.send_error(404)

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path in ("/healthz", "/health"):
                    report = health()
                    body = json.dumps(report, default=str).encode()
                    status, ctype = (200 if report["healthy"] else 503), "application/json"
                elif path == "/metrics":
                    body, status = metrics().encode(), 200
                    ctype = "text/plain; version=0.0.4; charset=utf-8"
                else:
                    if not self._route("GET"):
                        self.send_error(404)
                    return
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("health: " + format, *args)

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise EndpointError(
                f"cannot serve /healthz and /metrics on {host}:{port}: {exc}",
                hint="set PARKCARBON_METRICS_PORT to a free port (0 turns it off) or "
                "PARKCARBON_METRICS_HOST to an address of this host",
            ) from exc
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="parkcarbon-health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        log.info("health and metrics on http://%s:%d/healthz and /metrics",
                 *self._server.server_address[:2])

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
