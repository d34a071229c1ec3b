"""The ingest service: MQTT persistent session in, committed readings out.

Threads: paho's network loop (``on_message`` parses and queues), two writer threads
(COPY, commit, then acknowledge in receive order), and the optional metrics endpoint. A message is
acknowledged (paho manual ack) only after everything it carried is committed, as
readings or as dead letters; acknowledgements of a previous connection are dropped
(the broker redelivers those messages and storage is idempotent). While the database
is down the writer retries the batch in hand with backoff and acknowledges nothing,
so the broker stops sending once the in-flight window (Receive Maximum) is full.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections import Counter
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
import psycopg

from parkcarbon.db import connect, redact_dsn
from parkcarbon.errors import DatabaseError
from parkcarbon.ingest import constants as C
from parkcarbon.ingest.client import AUTH_FAILURES, connect_async, make_client
from parkcarbon.ingest.client import subscription_topic as subscription_topic
from parkcarbon.ingest.errors import BrokerAuthError, IngestError
from parkcarbon.ingest.metrics import IngestStats, Metrics, MetricsServer, summary_text
from parkcarbon.ingest.models import Reading, ReasonCode, Rejection
from parkcarbon.ingest.parse import Parser
from parkcarbon.ingest.writer import Writer, WriteResult
from parkcarbon.registry import Registry
from parkcarbon.settings import Settings

log = logging.getLogger(__name__)

_TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError, DatabaseError)
_POISON = (psycopg.DataError, psycopg.IntegrityError)


class _Inbound(NamedTuple):
    """A received message, already parsed (in paho's thread: the writer thread then
    mostly waits on the database, which releases the GIL)."""

    generation: int
    mid: int
    qos: int
    topic: str
    payload: bytes
    dup: bool
    readings: list[Reading]
    rejections: list[Rejection]


class IngestService:
    """Runs the pipeline; ``start()``/``stop()`` from a host process, or ``run_forever()``."""

    def __init__(self, settings: Settings, registry: Registry) -> None:
        self.settings = settings
        self.parser = Parser.from_settings(registry, settings)
        self.metrics = Metrics()
        self._queue: queue.SimpleQueue[_Inbound] = queue.SimpleQueue()
        self._in_hand = 0  # messages taken off the queue, not yet acknowledged
        self._take_lock = threading.Lock()  # one writer drains the queue at a time
        self._next_batch = 0  # sequence number of the next batch taken
        self._ack_lock = threading.Lock()
        self._next_ack = 0  # batches are acknowledged in the order they were taken
        self._committed: dict[int, list[_Inbound]] = {}
        self._generation = 0
        self._accepting = True
        self._stop = threading.Event()  # writer: drain and exit
        self._abandon = threading.Event()  # writer: give up the batch in hand
        self._fatal: IngestError | None = None
        self._last_receive = time.monotonic()
        self._writer_threads: list[threading.Thread] = []
        self._metrics_server: MetricsServer | None = None
        self._summary_at = time.monotonic()
        self._summary_prev: tuple[float, int] = (time.monotonic(), 0)
        self.metrics.queued_fn = lambda: self._queue.qsize() + self._in_hand
        self._client = self._make_client()

    # --- MQTT ----------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = make_client(self.settings)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any,
                    reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            if reason_code.value in AUTH_FAILURES:
                self._fatal = BrokerAuthError(
                    f"broker {self.settings.mqtt_host}:{self.settings.mqtt_port} refused the "
                    f"credentials: {reason_code}",
                    hint="check PARKCARBON_MQTT_USERNAME and PARKCARBON_MQTT_PASSWORD",
                )
                log.error("%s; not retrying", self._fatal)
                client.disconnect()
                self._stop.set()
            else:
                log.warning("broker refused the connection: %s; retrying", reason_code)
            return
        self._generation += 1
        self.metrics.connected = True
        topic = subscription_topic(self.settings)
        log.info("connected to %s:%d as %s (session present: %s); subscribing to %s",
                 self.settings.mqtt_host, self.settings.mqtt_port, self.settings.mqtt_client_id,
                 flags.session_present, topic)
        client.subscribe(topic, qos=1)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int,
                      reason_codes: Any, properties: Any) -> None:
        for rc in reason_codes:
            if rc.is_failure:
                log.error("broker refused the subscription: %s", rc)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any,
                       reason_code: Any, properties: Any) -> None:
        self.metrics.connected = False
        if self._accepting and self._fatal is None:
            log.warning("disconnected from broker: %s; reconnecting", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if not self._accepting:
            return  # stopping: not acknowledged, the broker keeps it for the next session
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = repr(msg._topic)
        payload = bytes(msg.payload)
        try:
            readings, rejections = self.parser.parse(topic, payload)
        except Exception as exc:  # a parser bug must not kill paho's loop or lose the message
            log.exception("cannot parse message on %s", topic)
            readings, rejections = [], [Rejection(
                ReasonCode.internal_error, f"ingest failed to parse it: {exc!r}", payload)]
        self._last_receive = time.monotonic()
        self._queue.put(_Inbound(self._generation, msg.mid, msg.qos, topic, payload,
                                 bool(msg.dup), readings, rejections))

    # --- writer --------------------------------------------------------------------

    def _take_batch(self) -> tuple[int, list[_Inbound]]:
        with self._take_lock:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                return -1, []
            batch = self._drain(item)
            seq = self._next_batch
            self._next_batch += 1
            with self._ack_lock:
                self._in_hand += len(batch)
        return seq, batch

    def _drain(self, item: _Inbound) -> list[_Inbound]:
        """The batch that starts with ``item``: what has arrived, plus what arrives within
        ``flush_interval_seconds`` (group commit), up to the batch limits."""
        batch = [item]
        readings = len(item.readings)
        limit = self.settings.batch_size
        deadline = time.monotonic() + self.settings.flush_interval_seconds
        while readings < limit and len(batch) < C.MAX_BATCH_MESSAGES:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                wait = deadline - time.monotonic()
                if wait <= 0 or self._stop.is_set():
                    break
                # Sleep rather than block in get(): a blocked getter is woken by every
                # put, a GIL hand-off per message that halved the receive rate.
                time.sleep(min(wait, C.LINGER_SLICE_SECONDS))
                continue
            batch.append(item)
            readings += len(item.readings)
        return batch

    def _writer_main(self) -> None:
        writer: Writer | None = None
        while True:
            seq, batch = self._take_batch()
            if batch:
                writer = self._commit(batch, writer)
                if writer is None:  # abandoned during an outage: never acknowledged
                    break
                self._acknowledge(seq, batch)
            elif self._stop.is_set():
                break
            self._maybe_summary()
        if writer is not None:
            writer.conn.close()

    def _commit(self, batch: list[_Inbound], writer: Writer | None) -> Writer | None:
        readings = [r for m in batch for r in m.readings]
        dead = [(m.topic, rj) for m in batch for rj in m.rejections]
        delay = C.DB_RETRY_INITIAL_SECONDS
        while True:
            try:
                if writer is None:
                    writer = Writer(connect(self.settings))
                try:
                    result = writer.write(readings, dead)
                except _POISON as exc:
                    log.error("database refused a batch (%s); storing message by message", exc)
                    result = self._write_one_by_one(writer, batch)
                break
            except _TRANSIENT as exc:
                self.metrics.add(db_errors=1)
                if self.metrics.db_ok:
                    log.warning("database unavailable (%s): %s; holding %d messages "
                                "unacknowledged, retrying", redact_dsn(
                                    self.settings.database_url.get_secret_value()),
                                str(exc).strip().splitlines()[0] if str(exc).strip() else exc,
                                len(batch))
                self.metrics.db_ok = False
                if writer is not None:
                    writer.conn.close()
                    writer = None
                if self._abandon.wait(delay):
                    log.warning("stopping: %d uncommitted messages left to the broker",
                                len(batch))
                    return None
                delay = min(delay * 2, C.DB_RETRY_MAX_SECONDS)
            except psycopg.Error as exc:
                self.metrics.add(db_errors=1)
                self.metrics.db_ok = False
                log.error("database write failed: %s; retrying", exc)
                if writer is not None:
                    writer.conn.close()
                    writer = None
                if self._abandon.wait(C.DB_RETRY_MAX_SECONDS):
                    return None
        if not self.metrics.db_ok:
            log.info("database available again")
            self.metrics.db_ok = True
        reasons = Counter(rj.reason_code.value for _, rj in dead)
        for topic, rj in dead:
            log.warning("dead letter %s on %s: %s", rj.reason_code.value, topic, rj.reason)
        self.metrics.add(messages=len(batch), redeliveries=sum(1 for m in batch if m.dup))
        self.metrics.committed(
            messages=len(batch), stored=result.stored, duplicates=result.duplicates,
            reasons=reasons, newest_ts_us=max((r.ts_us for r in readings), default=None),
        )
        return writer

    def _acknowledge(self, seq: int, batch: list[_Inbound]) -> None:
        """Acknowledge committed batches in the order they were taken (MQTT wants
        PUBACKs in receive order); a batch waits for the writers of earlier ones."""
        with self._ack_lock:
            self._committed[seq] = batch
            acked = released = 0
            generation = self._generation
            ack = self._client.ack
            while self._next_ack in self._committed:
                done = self._committed.pop(self._next_ack)
                self._next_ack += 1
                released += len(done)
                for m in done:
                    if m.qos and m.generation == generation:
                        ack(m.mid, m.qos)
                        acked += 1
            self._in_hand -= released
        self.metrics.add(messages_acked=acked)

    def _write_one_by_one(self, writer: Writer, batch: list[_Inbound]) -> WriteResult:
        stored = duplicates = dead_n = 0
        for m in batch:
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
        return WriteResult(stored=stored, duplicates=duplicates, dead_letters=dead_n)

    def _maybe_summary(self) -> None:
        now = time.monotonic()
        if now - self._summary_at < C.SUMMARY_INTERVAL_SECONDS:
            return
        self._summary_at = now
        log.info("%s", self.summary_line())

    def summary_line(self) -> str:
        """One line: messages/s since the previous line, totals, queue and lag."""
        st = self.stats()
        now = time.monotonic()
        prev_t, prev_n = self._summary_prev
        rate = (st.messages - prev_n) / max(now - prev_t, 1e-9)
        self._summary_prev = (now, st.messages)
        return summary_text(st, rate)

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Start the threads and connect (non-blocking; paho retries the broker)."""
        s = self.settings
        if s.metrics_port:
            self._metrics_server = MetricsServer(self.stats, self.healthy, s.metrics_port)
            self._metrics_server.start()
        self._writer_threads = [
            threading.Thread(target=self._writer_main, name=f"ingest-writer-{i}", daemon=True)
            for i in range(C.WRITER_THREADS)
        ]
        for thread in self._writer_threads:
            thread.start()
        connect_async(self._client, s)
        self._client.loop_start()
        log.info("ingest started: broker %s:%d (MQTT %s), database %s", s.mqtt_host,
                 s.mqtt_port, s.mqtt_protocol, redact_dsn(s.database_url.get_secret_value()))

    def stop(self, timeout_seconds: float = 30.0) -> None:
        """Stop taking messages, commit and acknowledge what was received, disconnect.

        If the database stays down past ``timeout_seconds``, the batch in hand is left
        unacknowledged: the broker redelivers it to the next session.
        """
        self._accepting = False
        self._stop.set()
        deadline = time.monotonic() + timeout_seconds
        for thread in self._writer_threads:
            thread.join(max(deadline - time.monotonic(), 0.01))
        if any(t.is_alive() for t in self._writer_threads):
            self._abandon.set()
            for thread in self._writer_threads:
                thread.join(C.DB_RETRY_MAX_SECONDS + 5)
        log.info("%s", self.summary_line())
        self._client.disconnect()
        self._client.loop_stop()
        if self._metrics_server is not None:
            self._metrics_server.stop()
            self._metrics_server = None
        log.info("ingest stopped")

    def run_forever(self) -> None:
        """Start, block until SIGTERM/SIGINT (or a fatal broker error), stop."""
        def on_signal(signum: int, frame: Any) -> None:
            log.info("signal %s: stopping", signal.Signals(signum).name)
            self._stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM,
                                                                   signal.SIGINT)}
        try:
            self.start()
            while not self._stop.wait(1.0):
                pass
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self._fatal is not None:
            raise self._fatal

    # --- observation ---------------------------------------------------------------

    def stats(self) -> IngestStats:
        return self.metrics.snapshot()

    @property
    def fatal_error(self) -> IngestError | None:
        return self._fatal

    def healthy(self) -> bool:
        """Broker session up, last database write ok, writer alive, no fatal error."""
        alive = bool(self._writer_threads) and all(t.is_alive() for t in self._writer_threads)
        return alive and self._fatal is None and self.metrics.connected and self.metrics.db_ok

    def wait_connected(self, timeout_seconds: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self._fatal is not None:
                raise self._fatal
            if self.metrics.connected:
                return True
            time.sleep(0.02)
        return False

    def wait_idle(self, quiet_seconds: float = 0.5, timeout_seconds: float = 30.0) -> bool:
        """Wait until nothing is queued or in hand and no message arrived for
        ``quiet_seconds`` (the broker has nothing more for us). True if reached."""
        return flush_and_wait_idle(self, quiet_seconds=quiet_seconds,
                                   timeout_seconds=timeout_seconds)


def flush_and_wait_idle(service: IngestService, *, quiet_seconds: float = 0.5,
                        timeout_seconds: float = 30.0, min_messages: int = 0) -> bool:
    """Block until ``service`` has committed and acknowledged everything it received,
    has received at least ``min_messages`` in total, and the broker delivered nothing
    for ``quiet_seconds``. Returns False on timeout. For demos and tests."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        st = service.stats()
        quiet = time.monotonic() - service._last_receive >= quiet_seconds
        if st.queued == 0 and quiet and st.messages >= min_messages and st.connected:
            return True
        time.sleep(0.05)
    return False
