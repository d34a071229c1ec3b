"""Logging setup for the command line. Library code only calls ``logging.getLogger``."""

from __future__ import annotations

import logging
import sys


def configure(level: str = "INFO") -> None:
    """Send log records to stderr as one line each, with UTC timestamps."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%SZ"
    )
    formatter.converter = __import__("time").gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries that are chatty at INFO.
    for name in ("apscheduler", "psycopg.pool", "amqtt", "transitions"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
