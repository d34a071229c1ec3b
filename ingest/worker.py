"""The store worker: a process of its own that parses messages and commits them.

The ingest service (``parkcarbon.ingest.service``) keeps only the MQTT session in its
process: paho's network loop, a forwarder and the acknowledgements. Everything else a
message costs in Python, parsing and building the COPY stream, runs here, on the other
core, so it never competes with paho for the interpreter lock (measured: in one
process that competition held ingest at ~0.7x a bare paho subscriber).

Protocol over one socket pair (``multiprocessing.connection`` framing), every message a
pickled tuple; the first, from the service, is ``(settings, registry, log_level)``:

service -> worker
    ``("chunk", seq, [(topic_bytes, payload, dup), ...], last)``  messages in receive
                       order; ``last``: the broker's window is full, commit it now
    ``("flush",)``     nothing more is arriving: commit the batch being collected now
    ``("stop",)``      commit everything received, then report ``stopped`` and exit
    ``("abandon",)``   the database stayed down past the stop timeout: give up the
                       batch in hand (never acknowledged, so the broker redelivers it)
worker -> service
    ``("ready",)``
    ``("done", [seq, ...], counts)``  those chunks are committed (readings and dead
                       letters); ``counts`` feeds the service's metrics
    ``("db", ok, errors)``  the database went down (``ok`` False) or came back
    ``("log", levelno, logger_name, text)``  a log record, re-emitted by the service
    ``("stopped", abandoned_messages)``

Chunks are committed whole: a batch (one transaction) is one or more chunks, grouped
by ``flush_interval_seconds`` and bounded by ``batch_size`` readings, and ended early
by a chunk marked last or by ``flush`` (adaptive commit, see the service). Two writer
threads each hold a connection, so one commits while the next batch is written; the
service acknowledges chunks in ``seq`` order whatever order they commit in.

The worker ignores SIGINT and SIGTERM (a Ctrl-C in a terminal reaches the whole
process group): the service decides when it stops. If the service dies, the pipe
closes and the worker exits; what it had not committed was never acknowledged.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import signal
import threading
import time
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

import psycopg

from parkcarbon.db import connect, redact_dsn
from parkcarbon.errors import DatabaseError
from parkcarbon.ingest import constants as C
from parkcarbon.ingest.models import Reading, ReasonCode, Rejection
from parkcarbon.ingest.parse import Parser
from parkcarbon.ingest.writer import Writer, WriteResult
from parkcarbon.registry import Registry
from parkcarbon.settings import Settings

log = logging.getLogger("parkcarbon.ingest.service")

_TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError, DatabaseError)
_POISON = (psycopg.DataError, psycopg.IntegrityError)

RawMessage = tuple[bytes, bytes, bool]  # topic as received, payload, DUP flag


class Parsed(NamedTuple):
    topic: str
    payload: bytes
    dup: bool
    readings: list[Reading]
    rejections: list[Rejection]


class Chunk(NamedTuple):
    seq: int  # _FLUSH's is -1
    messages: list[Parsed]
    readings: int
    last: bool = False  # commit the batch that holds it at once


_FLUSH = Chunk(-1, [], 0, True)  # "commit the batch being collected now"


def parse_raw(parser: Parser, raw: RawMessage) -> Parsed:
    """One received message, parsed; never raises (a parser bug is a dead letter)."""
    topic_bytes, payload, dup = raw
    try:
        topic = topic_bytes.decode("utf-8")
    except UnicodeDecodeError:
        topic = repr(topic_bytes)
    try:
        readings, rejections = parser.parse(topic, payload)
    except Exception as exc:  # a parser bug must not lose the message
        log.exception("cannot parse message on %s", topic)
        readings, rejections = [], [Rejection(
            ReasonCode.internal_error, f"ingest failed to parse it: {exc!r}", payload)]
    return Parsed(topic, payload, dup, readings, rejections)


class _PipeLogHandler(logging.Handler):
    """Sends log records to the service, which logs them with its own configuration."""

    def __init__(self, send: Any) -> None:
        super().__init__()
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            self._send(("log", record.levelno, record.name, text))
        except Exception:  # the pipe is gone: nobody to tell
            pass


class StoreWorker:
    """Runs in the worker process: receive chunks, parse, commit, report."""

    def __init__(self, pipe: Connection, settings: Settings, registry: Registry) -> None:
        self.pipe = pipe
        self.settings = settings
        self.parser = Parser.from_settings(registry, settings)
        prefix = settings.topic_prefix
        self._meter_info = {m.id: (f"{prefix}/{m.enterprise}/{m.id}", m.canonical_unit)
                            for m in registry.meters}
        self._send_lock = threading.Lock()
        self._queue: queue.SimpleQueue[Chunk] = queue.SimpleQueue()
        self._take_lock = threading.Lock()
        self._stop = threading.Event()  # writers: drain the queue and exit
        self._abandon = threading.Event()  # writers: give up the batch in hand
        self._db_ok = True
        self._abandoned = 0

    def send(self, message: tuple[Any, ...]) -> None:
        # OSError: the service is gone; run() notices and exits
        with self._send_lock, contextlib.suppress(OSError):
            self.pipe.send(message)

    # --- receiving -----------------------------------------------------------------

    def run(self) -> None:
        writers = [threading.Thread(target=self._writer_main, name=f"ingest-writer-{i}",
                                    daemon=True) for i in range(C.WRITER_THREADS)]
        for thread in writers:
            thread.start()
        self.send(("ready",))
        parent_gone = False
        while True:
            try:
                message = self.pipe.recv()
            except (EOFError, OSError):
                parent_gone = True  # nobody can acknowledge any more: stop now
                self._abandon.set()
                self._stop.set()
                break
            kind = message[0]
            if kind == "chunk":
                parser = self.parser
                parsed = [parse_raw(parser, raw) for raw in message[2]]
                self._queue.put(Chunk(message[1], parsed, sum(len(p.readings) for p in parsed),
                                      bool(message[3])))
            elif kind == "flush":
                self._queue.put(_FLUSH)
            elif kind == "stop":
                self._stop.set()
                threading.Thread(target=self._abandon_listener, daemon=True).start()
                break
            elif kind == "abandon":
                self._abandon.set()
        for thread in writers:
            thread.join(None if not parent_gone else C.DB_RETRY_MAX_SECONDS + 5)
        if not parent_gone:
            self.send(("stopped", self._abandoned))

    def _abandon_listener(self) -> None:
        """After ``stop``: the service may still send ``abandon``."""
        try:
            while True:
                if self.pipe.recv()[0] == "abandon":
                    self._abandon.set()
                    return
        except (EOFError, OSError):
            self._abandon.set()

    # --- writing -------------------------------------------------------------------

    def _take(self) -> list[Chunk]:
        """The next batch: a chunk, plus the chunks that arrive within
        ``flush_interval_seconds`` (group commit), up to the batch limits; a chunk
        marked last or a flush ends it at once (the broker sends nothing more until
        this batch is acknowledged)."""
        with self._take_lock:
            try:
                first = self._queue.get(timeout=0.1)
            except queue.Empty:
                return []
            if first.seq < 0:
                return []  # a flush with no batch being collected
            batch = [first]
            readings, messages = first.readings, len(first.messages)
            deadline = time.monotonic() + self.settings.flush_interval_seconds
            last = first.last
            while (not last and readings < self.settings.batch_size
                   and messages < C.MAX_BATCH_MESSAGES):
                try:
                    chunk = self._queue.get_nowait()
                except queue.Empty:
                    wait = deadline - time.monotonic()
                    if wait <= 0 or self._stop.is_set():
                        break
                    try:  # wakes as soon as a chunk or a flush arrives
                        chunk = self._queue.get(timeout=min(wait, C.STOP_CHECK_SECONDS))
                    except queue.Empty:
                        continue
                if chunk.seq < 0:
                    break
                batch.append(chunk)
                readings += chunk.readings
                messages += len(chunk.messages)
                last = chunk.last
            return batch

    def _writer_main(self) -> None:
        writer: Writer | None = None
        while True:
            if self._abandon.is_set():  # the service gave up, or is gone: nothing more
                self._drop_queue()      # will be acknowledged, so stop writing
                break
            batch = self._take()
            if batch:
                writer = self._commit(batch, writer)
                if writer is None:  # abandoned during an outage: never acknowledged
                    with self._take_lock:
                        self._abandoned += sum(len(c.messages) for c in batch)
                    self._drop_queue()
                    break
            elif self._stop.is_set() and self._queue.empty():
                break
        if writer is not None:
            writer.conn.close()

    def _drop_queue(self) -> None:
        """Count what is still queued as abandoned (the broker redelivers it)."""
        with self._take_lock:
            while True:
                try:
                    self._abandoned += len(self._queue.get_nowait().messages)
                except queue.Empty:
                    return

    def _commit(self, batch: list[Chunk], writer: Writer | None) -> Writer | None:
        messages = [m for chunk in batch for m in chunk.messages]
        readings = [r for m in messages for r in m.readings]
        dead = [(m.topic, rj) for m in messages for rj in m.rejections]
        delay = C.DB_RETRY_INITIAL_SECONDS
        while True:
            try:
                if writer is None:
                    writer = Writer(connect(self.settings),
                                    keep_bytes=self.settings.dead_letter_keep_bytes,
                                    meter_info=self._meter_of)
                try:
                    result = writer.write(readings, dead)
                except _POISON as exc:
                    log.error("database refused a batch (%s); storing message by message", exc)
                    result = self._write_one_by_one(writer, messages)
                break
            except _TRANSIENT as exc:
                if self._db_ok:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                    log.warning("database unavailable (%s): %s; holding %d messages "
                                "unacknowledged, retrying", redact_dsn(
                                    self.settings.database_url.get_secret_value()),
                                first, len(messages))
                self._db_ok = False
                self.send(("db", False, 1))
                if writer is not None:
                    writer.conn.close()
                    writer = None
                if self._abandon.wait(delay):
                    log.warning("stopping: %d uncommitted messages left to the broker",
                                len(messages))
                    return None
                delay = min(delay * 2, C.DB_RETRY_MAX_SECONDS)
            except psycopg.Error as exc:
                self._db_ok = False
                self.send(("db", False, 1))
                log.error("database write failed: %s; retrying", exc)
                if writer is not None:
                    writer.conn.close()
                    writer = None
                if self._abandon.wait(C.DB_RETRY_MAX_SECONDS):
                    return None
        if not self._db_ok:
            log.info("database available again")
            self._db_ok = True
            self.send(("db", True, 0))
        for topic, rj in dead:
            log.warning("dead letter %s on %s: %s", rj.reason_code.value, topic, rj.reason)
        counts = {
            "messages": len(messages),
            "redeliveries": sum(1 for m in messages if m.dup),
            "stored": result.stored,
            "duplicates": result.duplicates,
            "reasons": dict(Counter(rj.reason_code.value for _, rj in dead)
                            + Counter({ReasonCode.conflicting_value.value: result.conflicts})),
            "conflicting": result.conflicts,
            "newest_ts_us": max((r.ts_us for r in readings), default=None),
        }
        self.send(("done", [chunk.seq for chunk in batch], counts))
        return writer

    def _meter_of(self, meter_id: str) -> tuple[str, str | None]:
        return self._meter_info.get(meter_id, (meter_id, None))

    def _write_one_by_one(self, writer: Writer, messages: list[Parsed]) -> WriteResult:
        stored = duplicates = dead_n = conflicts = 0
        for m in messages:
            dead = [(m.topic, rj) for rj in m.rejections]
            try:
                res = writer.write(m.readings, dead)
            except _POISON as exc:
                reason = f"the database refused the message: {str(exc).strip()[:300]}"
                res = writer.write([], [(m.topic, Rejection(
                    ReasonCode.storage_rejected, reason, m.payload))])
            stored += res.stored
            duplicates += res.duplicates
            dead_n += res.dead_letters
            conflicts += res.conflicts
        return WriteResult(stored=stored, duplicates=duplicates, dead_letters=dead_n,
                           conflicts=conflicts)


def main(fd: int) -> None:
    """Entry point of the worker process: ``fd`` is its end of the service's socket
    pair; the first message is ``(settings, registry, log_level)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    pipe = Connection(fd)
    try:
        settings, registry, log_level = pipe.recv()
    except (EOFError, OSError):
        return  # the service went away before it sent anything
    worker_main(pipe, settings, registry, log_level)


def worker_main(pipe: Connection, settings: Settings, registry: Registry,
                log_level: int) -> None:
    """Run the store worker on ``pipe`` until told to stop or the service is gone."""
    worker = StoreWorker(pipe, settings, registry)
    root = logging.getLogger()
    root.handlers[:] = [_PipeLogHandler(worker.send)]
    root.setLevel(log_level)
    for name in ("psycopg", "psycopg.pool"):
        logging.getLogger(name).setLevel(max(logging.WARNING, log_level))
    try:
        worker.run()
    except Exception:
        log.exception("the ingest store worker failed")
        raise
