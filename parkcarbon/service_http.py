"""The service's HTTP endpoint: ``/healthz`` (JSON, 200 or 503) and ``/metrics``."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)


class HealthServer:
    """Serves ``health()`` as JSON at /healthz (/health) and ``metrics()`` at /metrics.

    Raises ``OSError`` when the port cannot be bound.
    """

    def __init__(
        self,
        health: Callable[[], dict[str, Any]],
        metrics: Callable[[], str],
        port: int,
        host: str = "0.0.0.0",
    ) -> None:
        class Handler(BaseHTTPRequestHandler):
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
                    self.send_error(404)
                    return
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("health: " + format, *args)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="parkcarbon-health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
