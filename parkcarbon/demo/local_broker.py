"""A private MQTT broker for the demo: ``mosquitto`` if installed, else amqtt.

``LocalBroker`` starts ``mosquitto`` with a generated configuration on a free port, else
the pure-Python amqtt broker (MQTT 3.1.1 only) as a subprocess (a subprocess, not an
in-process asyncio loop: it stops with a signal and leaves no threads behind). Both are
anonymous and listen on 127.0.0.1 only.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from parkcarbon.demo.embedded import free_port, wait_port
from parkcarbon.demo.errors import EmbeddedError

log = logging.getLogger(__name__)


@dataclass
class LocalBroker:
    """A private anonymous MQTT broker on 127.0.0.1: mosquitto if installed, else amqtt.

    ``kind`` is ``"auto"``, ``"mosquitto"`` or ``"amqtt"``; after ``start()`` it names
    what runs. ``protocol`` is the MQTT version clients must speak ("5" or "3.1.1").
    """

    workdir: Path
    kind: Literal["auto", "mosquitto", "amqtt"] = "auto"
    port: int | None = None
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = None

    @property
    def protocol(self) -> Literal["5", "3.1.1"]:
        return "5" if self.kind == "mosquitto" else "3.1.1"

    @property
    def log_file(self) -> Path:
        return self.workdir / f"{self.kind}.log"

    def _mosquitto_cmd(self) -> list[str]:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {data}/",
            "max_queued_messages 0",  # the demo publishes a month at once; queue it all
            "max_inflight_messages 1000",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to "mosquitto", who cannot write here
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return [shutil.which("mosquitto") or "mosquitto", "-c", str(conf)]

    def _amqtt_cmd(self) -> list[str]:
        import yaml

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
        conf = self.workdir / "amqtt.yaml"
        conf.write_text(yaml.safe_dump(config), encoding="utf-8")
        code = "from amqtt.scripts.broker_script import main; main()"
        return [sys.executable, "-c", code, "-c", str(conf)]

    def start(self, timeout_seconds: float = 15.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.kind == "auto":
            self.kind = "mosquitto" if shutil.which("mosquitto") else "amqtt"
        if self.kind == "amqtt":
            try:
                import amqtt  # noqa: F401
            except ImportError as exc:
                raise EmbeddedError(
                    "no MQTT broker: mosquitto is not installed and amqtt is missing",
                    hint="apt-get install mosquitto, or pip install 'parkcarbon[embedded]'",
                ) from exc
        self.port = self.port or free_port(self.host)
        cmd = self._mosquitto_cmd() if self.kind == "mosquitto" else self._amqtt_cmd()
        with self.log_file.open("ab") as out:
            self.process = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        try:
            wait_port(self.host, self.port, timeout_seconds, self.process)
        except EmbeddedError:
            self.stop()
            raise
        log.info("local %s broker on %s:%d (%s)", self.kind, self.host, self.port, self.workdir)

    def stop(self, timeout_seconds: float = 10.0) -> None:
        if self.process is None:
            return
        proc, self.process = self.process, None
        if proc.poll() is None:
            # amqtt shuts down cleanly on SIGINT (KeyboardInterrupt); mosquitto on either.
            proc.send_signal(signal.SIGINT if self.kind == "amqtt" else signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_seconds)
            except subprocess.TimeoutExpired:
                log.warning(
                    "%s broker did not stop in %.0f s; killing it", self.kind, timeout_seconds
                )
                proc.kill()
                proc.wait(timeout=timeout_seconds)
        log.info("local %s broker stopped", self.kind)

    def __enter__(self) -> LocalBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
