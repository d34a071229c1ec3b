"""Stop on SIGTERM / SIGINT: the one signal helper of every long-running command.

``with stop_on_signals() as stop:`` installs handlers that set the ``threading.Event``
``stop`` (a second signal while stopping is logged and otherwise ignored, so a
graceful stop is never cut short) and restores the previous handlers on exit.
Main thread only, as Python's ``signal.signal`` requires.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def stop_on_signals(event: threading.Event | None = None) -> Iterator[threading.Event]:
    """Set ``event`` (a new one by default) on SIGTERM or SIGINT while inside."""
    stop = event if event is not None else threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del frame
        name = signal.Signals(signum).name
        if stop.is_set():
            log.warning("second %s: already stopping", name)
            return
        log.info("%s received: stopping gracefully", name)
        stop.set()

    for sig in STOP_SIGNALS:
        signal.signal(sig, on_signal)
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
