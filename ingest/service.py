"""The ingest service: MQTT persistent session in, committed readings out.

Two processes. This one holds the MQTT session: paho's network loop (``on_message``
only appends the raw message to an inbox), a forwarder thread that sends the inbox
in chunks to the store worker every few milliseconds, and a results thread that
acknowledges chunks once the worker reports them committed, in receive order, with
one write per run of PUBACKs. The store worker (``parkcarbon.ingest.worker``, a
process of its own, started as a fresh interpreter) parses, COPYs and commits.
Keeping paho alone with this process's interpreter lock is what lets ingest keep up
with a bare paho subscriber.

A message is acknowledged (paho manual ack) only after everything it carried is
committed, as readings or as dead letters; acknowledgements of a previous connection
are dropped (the broker redelivers those messages and storage is idempotent). While
the database is down the worker retries the batch in hand with backoff and nothing is
acknowledged, so the broker stops sending once the in-flight window (Receive Maximum)
is full.

Adaptive commit: the service learns the broker's window (the most QoS 1 messages it has
held unacknowledged on this connection). When it holds that many again, the broker is
waiting for acknowledgements: the forwarder wakes at once and marks the chunk it sends
"last", and the worker commits it without waiting out ``flush_interval_seconds``. When
nothing arrives for ``IDLE_GAP_SECONDS`` while messages wait for their commit, it sends
``flush`` to the same effect. Acknowledgement still follows the commit.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

import paho.mqtt.client as mqtt

from parkcarbon import mqtt as pcmqtt
from parkcarbon.db import redact_dsn
from parkcarbon.http import HealthServer
from parkcarbon.ingest import constants as C
from parkcarbon.ingest import session as sessions
from parkcarbon.ingest.client import AUTH_FAILURES, ack_many, connect_async, make_client
from parkcarbon.ingest.client import subscription_topic as subscription_topic
from parkcarbon.ingest.errors import BrokerAuthError, BrokerError, IngestError
from parkcarbon.ingest.metrics import IngestStats, Metrics, prometheus_text, summary_text
from parkcarbon.ingest.startup import check_broker, check_database
from parkcarbon.registry import Registry
from parkcarbon.settings import Settings
from parkcarbon.signals import stop_on_signals

log = logging.getLogger(__name__)

# How the store worker process starts: its end of the socket pair is argv[1].
_WORKER_BOOT = "import sys; from parkcarbon.ingest.worker import main; main(int(sys.argv[1]))"
# (connection generation, packet id, QoS) of a message sent to the worker
_Token = tuple[int, int, int]


class IngestService:
    """Runs the pipeline; ``start()``/``stop()`` from a host process, or ``run_forever()``."""

    def __init__(self, settings: Settings, registry: Registry) -> None:
        self.settings = settings
        self.registry = registry
        self.metrics = Metrics()
        # paho thread -> forwarder: (generation, mid, qos, topic bytes, payload, dup)
        self._inbox: collections.deque[tuple[int, int, int, bytes, bytes, bool]] = (
            collections.deque())
        self._lock = threading.Lock()  # guards the chunk bookkeeping below
        self._next_seq = 0  # seq of the next chunk sent to the worker
        self._pending: dict[int, list[_Token]] = {}  # sent, not yet acknowledged
        self._committed: set[int] = set()  # committed by the worker, waiting for order
        self._next_ack = 0  # chunks are acknowledged in the order they were sent
        self._in_hand = 0  # messages sent to the worker, not yet acknowledged
        # The broker's window: QoS 1 messages received on this connection (paho thread)
        # minus those acknowledged (results thread), and the highest that count reached.
        self._received = 0
        self._released = 0
        self._window = 0
        self._wake = threading.Event()  # paho thread -> forwarder: the window is full
        self._generation = 0
        self._accepting = True
        self._stop = threading.Event()  # run_forever: stop
        self._subscribed = threading.Event()  # SUBACK of the current connection received
        self._forward_stop = threading.Event()  # forwarder: send the rest, then "stop"
        self._worker_stopped = threading.Event()
        self._abandoned = 0
        self._fatal: IngestError | BrokerError | None = None
        self._last_receive = time.monotonic()
        self._pipe: Any = None  # multiprocessing.connection.Connection once started
        self._process: subprocess.Popen[bytes] | None = None
        self._threads: list[threading.Thread] = []
        self._metrics_server: HealthServer | None = None
        self._summary_at = time.monotonic()
        self._summary_prev: tuple[float, int] = (time.monotonic(), 0)
        self.metrics.queued_fn = lambda: len(self._inbox) + self._in_hand
        # Session bookkeeping (see parkcarbon.ingest.session): did this process hold a
        # session, when did its connection drop, what the database remembers.
        self._had_session = False
        self._last_disconnect_at: datetime | None = None
        self._session_record: sessions.SessionRecord | None = None
        self._connected_at: float | None = None  # monotonic time of the last CONNACK
        self._takeovers = 0  # session takeovers in a row (no stable connection between)
        self._short_drops = 0  # MQTT 3.1.1: connections dropped right after CONNACK
        self._connect_fail_logged_at: float | None = None
        self._subscribe_mid: int | None = None
        self._client = self._make_client()

    # --- MQTT ----------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = make_client(self.settings)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_connect_fail = self._on_connect_fail
        return client

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        now = time.monotonic()
        self._short_drops = 0  # the broker is away: not another client taking over
        self.metrics.add(broker_connect_failures=1)
        last = self._connect_fail_logged_at
        if last is None or now - last >= C.CONNECT_FAIL_LOG_INTERVAL_SECONDS:
            self._connect_fail_logged_at = now
            log.warning("cannot connect to MQTT broker %s:%d; retrying (every 1 to %d s)",
                        self.settings.mqtt_host, self.settings.mqtt_port,
                        pcmqtt.RECONNECT_MAX_SECONDS)

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
        with self._lock:
            self._generation += 1
            self._received = self._released = self._window = 0  # learnt again
        self.metrics.connected = True
        self._connected_at = time.monotonic()
        self._connect_fail_logged_at = None
        if self._takeovers:  # back to the normal backoff after a takeover's long one
            client.reconnect_delay_set(pcmqtt.RECONNECT_MIN_SECONDS,
                                       pcmqtt.RECONNECT_MAX_SECONDS)
        topic = subscription_topic(self.settings)
        present = bool(flags.session_present)
        log.info("connected to %s:%d as %s (session present: %s); subscribing to %s",
                 self.settings.mqtt_host, self.settings.mqtt_port, self.settings.mqtt_client_id,
                 present, topic)
        self._check_session(present)
        self._subscribe_mid = client.subscribe(topic, qos=1)[1]
        client.subscribe(C.SYS_DROPPED_TOPIC, qos=0)

    def _check_session(self, present: bool) -> None:
        """ERROR when the broker has no session although ingest held one: everything
        published since the session vanished was not queued for ingest."""
        s = self.settings
        persistent = s.mqtt_protocol != "5" or s.mqtt_session_expiry_seconds > 0
        since: datetime | None = None
        if persistent and self._had_session:
            since = self._last_disconnect_at or datetime.now(UTC)
        elif persistent and self._session_record is not None:
            since = self._session_record.last_seen_at
        self._had_session = True
        if not present and since is not None:
            now = datetime.now(UTC)
            detail = (
                f"broker {sessions.broker_key(s)} has no session for client id "
                f"{s.mqtt_client_id} although ingest held one (last known to exist at "
                f"{since:%Y-%m-%dT%H:%M:%SZ}): readings published from then until "
                f"{now:%Y-%m-%dT%H:%M:%SZ} were not queued for ingest and are probably lost "
                "(a broker crash before it saved the session, a clean-session client "
                "with this client id, or an expired session)")
            log.error("%s; see docs/ingest.md, broker durability", detail)
            self.metrics.add(sessions_lost=1)
            self._background(sessions.record_incident, s, "session_lost", detail,
                             window_start=since, window_end=now)
        self._background(sessions.record_session, s, new=not present)

    def _background(self, func: Any, *args: Any, **kwargs: Any) -> None:
        """Run a short database call off paho's network thread."""
        threading.Thread(target=func, args=args, kwargs=kwargs, name="ingest-session",
                         daemon=True).start()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int,
                      reason_codes: Any, properties: Any) -> None:
        if mid != self._subscribe_mid:
            return  # the broker's $SYS counters: optional (a broker may refuse them)
        failures = [rc for rc in reason_codes if rc.is_failure]
        for rc in failures:
            log.error("broker refused the subscription: %s", rc)
        if not failures:
            log.info("subscribed to %s", subscription_topic(self.settings))
            self._subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any,
                       reason_code: Any, properties: Any) -> None:
        self.metrics.connected = False
        self._subscribed.clear()
        self._last_disconnect_at = datetime.now(UTC)
        lasted = None if self._connected_at is None else time.monotonic() - self._connected_at
        self._connected_at = None
        if not self._accepting or self._fatal is not None:
            return
        if lasted is not None and lasted >= C.TAKEOVER_STREAK_RESET_SECONDS:
            self._takeovers = 0  # it had been stable: a new story
        if getattr(reason_code, "value", None) == C.SESSION_TAKEN_OVER:
            self._taken_over(client, "MQTT 5 reason code 142, Session taken over")
            return
        # Without that reason code (MQTT 3.1.1; Mosquitto 2.0 just closes the older
        # client's connection) the pattern is connections dropped right after CONNACK,
        # each reconnect accepted at once (a broker going down refuses reconnects).
        if lasted is not None and lasted < C.TAKEOVER_SUSPECT_SECONDS:
            self._short_drops += 1
        else:
            self._short_drops = 0
        if self._short_drops >= C.TAKEOVER_SUSPECT_DROPS:
            self._short_drops = 0
            self._taken_over(client, f"the broker dropped {C.TAKEOVER_SUSPECT_DROPS} "
                             f"connections in a row within {C.TAKEOVER_SUSPECT_SECONDS:g} s "
                             "of accepting them, reconnects accepted at once")
            return
        log.warning("disconnected from broker: %s; reconnecting", reason_code)

    def _taken_over(self, client: mqtt.Client, how: str) -> None:
        """Another client connected with this client id: say so once, then back off for
        long; if it happens again, stop (one instance keeps the session)."""
        s = self.settings
        self._takeovers += 1
        self.metrics.add(session_takeovers=1)
        hint = ("give each ingest instance its own PARKCARBON_MQTT_CLIENT_ID (and one "
                "PARKCARBON_MQTT_SHARED_GROUP to split the load between them)")
        if self._takeovers >= C.TAKEOVERS_BEFORE_STOPPING:
            self._fatal = BrokerError(
                f"another client keeps taking over the MQTT session of client id "
                f"{s.mqtt_client_id} on {sessions.broker_key(s)} ({how}): another ingest "
                "instance uses the same client id; this one stops and leaves it the session",
                hint=hint)
            log.error("%s", self._fatal)
            self._background(sessions.record_incident, s, "session_taken_over", str(self._fatal))
            # paho reconnects after this callback whatever it calls: park the reconnect
            # for an hour, and disconnect from another thread (that ends the wait)
            client.reconnect_delay_set(3600, 3600)
            self._background(client.disconnect)
            self._stop.set()
            return
        backoff = C.TAKEOVER_BACKOFF_SECONDS
        log.error("another client took over the MQTT session of client id %s on %s (%s): "
                  "probably another ingest instance with the same client id; reconnecting in "
                  "%g s and stopping if it happens again (%s)", s.mqtt_client_id,
                  sessions.broker_key(s), how, backoff, hint)
        client.reconnect_delay_set(max(1, round(backoff)), max(1, round(backoff)))

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # The hot path of this process: no parsing here (the worker does it).
        if msg._topic.startswith(b"$SYS/"):  # the broker's own counters (QoS 0, no ack)
            with contextlib.suppress(ValueError):
                self.metrics.broker_dropped = int(float(msg.payload))
            return
        if self._accepting:  # else: not acknowledged, the broker keeps it
            self._inbox.append((self._generation, msg.mid, msg.qos, msg._topic,
                                bytes(msg.payload), msg.dup))
            self._last_receive = time.monotonic()
            if msg.qos == 1:
                self._received += 1
                unacked = self._received - self._released
                if unacked > self._window:
                    self._window = unacked  # a new ceiling: not known to be full yet
                elif unacked == self._window and unacked >= C.WINDOW_MIN_MESSAGES:
                    self._wake.set()  # back at the ceiling: the broker waits for acks

    # --- to the worker ---------------------------------------------------------------

    def _forward_main(self) -> None:
        """Every ``LINGER_SLICE_SECONDS``, or at once when the broker's window is full:
        send what arrived, in chunks of at most ``CHUNK_MAX_MESSAGES`` messages and
        about ``CHUNK_MAX_BYTES`` of payload. A chunk sent because the window is full is
        marked last (commit it now); after ``IDLE_GAP_SECONDS`` without a message,
        ``flush`` asks the worker to commit what it holds."""
        inbox, pipe, wake = self._inbox, self._pipe, self._wake
        full = False  # the window was full: the next chunk that empties the inbox is last
        idle_armed = False  # chunks were sent since the last commit request
        while True:
            stopping = self._forward_stop.is_set()
            if wake.is_set():
                wake.clear()
                full = True
            n = len(inbox)
            if n:
                items: list[tuple[int, int, int, bytes, bytes, bool]] = []
                size = 0
                while inbox and len(items) < C.CHUNK_MAX_MESSAGES and size < C.CHUNK_MAX_BYTES:
                    item = inbox.popleft()
                    items.append(item)
                    size += len(item[4])
                n = len(items)
                with self._lock:
                    seq = self._next_seq
                    self._next_seq += 1
                    self._pending[seq] = [(g, mid, qos) for g, mid, qos, _, _, _ in items]
                    self._in_hand += n
                last = full and not inbox
                try:
                    pipe.send(("chunk", seq, [(t, p, d) for _, _, _, t, p, d in items], last))
                except OSError:
                    return  # the worker is gone: the results thread reports it
                if inbox:
                    continue  # more than one chunk's worth arrived
                full, idle_armed = False, not last
            elif full or (idle_armed and time.monotonic() - self._last_receive
                          >= C.IDLE_GAP_SECONDS):
                full = idle_armed = False
                try:
                    pipe.send(("flush",))
                except OSError:
                    return
            elif stopping:
                break
            wake.wait(C.LINGER_SLICE_SECONDS)
        with contextlib.suppress(OSError):
            pipe.send(("stop",))

    # --- from the worker -------------------------------------------------------------

    def _results_main(self) -> None:
        pipe = self._pipe
        while True:
            try:
                message = pipe.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            if kind == "done":
                self._committed_chunks(message[1], message[2])
            elif kind == "log":
                logging.getLogger(message[2]).log(message[1], "%s", message[3])
            elif kind == "db":
                self.metrics.db_ok = message[1]
                if message[2]:
                    self.metrics.add(db_errors=message[2])
            elif kind == "stopped":
                self._abandoned = message[1]
                self._worker_stopped.set()
                return
            self._maybe_summary()
        if not self._worker_stopped.is_set():
            code = None
            if self._process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    code = self._process.wait(5)
            self._fatal = IngestError(
                f"the ingest store worker process exited unexpectedly (exit code {code}); "
                f"{self._in_hand} messages in hand stay unacknowledged for the broker to "
                "redeliver", hint="see the log lines before this one for the cause")
            log.error("%s", self._fatal)
            self._accepting = False
            self._stop.set()
            self._worker_stopped.set()

    def _committed_chunks(self, seqs: list[int], counts: dict[str, Any]) -> None:
        """Acknowledge every chunk now committed whose predecessors are too (MQTT wants
        PUBACKs in receive order), with one socket write for all of them."""
        with self._lock:
            self._committed.update(seqs)
            generation = self._generation
            mids: list[int] = []
            released = 0
            while self._next_ack in self._committed:
                self._committed.discard(self._next_ack)
                tokens = self._pending.pop(self._next_ack)
                self._next_ack += 1
                released += len(tokens)
                mids.extend(mid for g, mid, qos in tokens if qos == 1 and g == generation)
            # counted before the PUBACKs leave: the broker's next message may arrive
            # before this thread runs again, and must not look like a wider window
            self._released += len(mids)
            ack_many(self._client, mids)
            self._in_hand -= released
        self.metrics.db_ok = True  # a commit went through
        self.metrics.add(messages=counts["messages"], redeliveries=counts["redeliveries"],
                         messages_acked=len(mids))
        self.metrics.committed(
            messages=counts["messages"], stored=counts["stored"],
            duplicates=counts["duplicates"], reasons=collections.Counter(counts["reasons"]),
            newest_ts_us=counts["newest_ts_us"], conflicting=counts["conflicting"])

    def _maybe_summary(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._summary_at < C.SUMMARY_INTERVAL_SECONDS:
                return
            self._summary_at = now
        log.info("%s", self.summary_line())
        if self.metrics.connected:  # never on the thread that acknowledges commits
            self._background(sessions.record_session, self.settings, new=False)

    def summary_line(self) -> str:
        """One line: messages/s since the previous line, totals, queue and lag."""
        st = self.stats()
        now = time.monotonic()
        prev_t, prev_n = self._summary_prev
        rate = (st.messages - prev_n) / max(now - prev_t, 1e-9)
        self._summary_prev = (now, st.messages)
        return summary_text(st, rate)

    # --- lifecycle -----------------------------------------------------------------

    def start_worker(self, timeout_seconds: float = 60.0) -> None:
        """Start the store worker process and wait until it is ready (about a second:
        a fresh interpreter imports the parser and psycopg). ``start()`` calls it;
        calling it first keeps that second out of a measurement. Idempotent."""
        if self._process is not None:
            return
        # A fresh interpreter (not fork: this process may already run threads, paho or a
        # scheduler; not multiprocessing's spawn: it re-runs the caller's main script,
        # which breaks any script without a __main__ guard). One socket pair carries
        # pickled tuples both ways (multiprocessing.connection framing).
        ours, theirs = socket.socketpair()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _WORKER_BOOT, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        self._pipe = Connection(ours.detach())
        self._pipe.send((self.settings, self.registry, logging.getLogger().getEffectiveLevel()))
        answer: Any = f"no answer in {timeout_seconds:.0f} s"
        try:
            if self._pipe.poll(timeout_seconds):
                answer = self._pipe.recv()
        except (EOFError, OSError):
            answer = "it exited (its traceback is on stderr)"
        if answer != ("ready",):
            self._process.kill()
            self._process.wait(5)
            self._process = None
            raise IngestError(f"the ingest store worker process did not start: {answer}",
                              hint="see the lines printed before this one for the cause")
        self._threads = [
            threading.Thread(target=self._forward_main, name="ingest-forward", daemon=True),
            threading.Thread(target=self._results_main, name="ingest-results", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def start(self) -> None:
        """Start the worker process and the threads, then connect (the connection is
        non-blocking; paho retries the broker)."""
        s = self.settings
        if check_database(s):  # raises for an unmigrated database: exit with the hint
            self._session_record = sessions.load_session(s)
        else:
            self.metrics.db_ok = False  # until the worker's first commit says otherwise
        check_broker(s)
        if s.metrics_port:
            self._metrics_server = HealthServer(self.health, self.metrics_text, s.metrics_port,
                                                host=s.metrics_host)
            self._metrics_server.start()
        self.start_worker()
        connect_async(self._client, s)
        self._client.loop_start()
        log.info("ingest started: broker %s:%d (MQTT %s), database %s, store worker pid %s",
                 s.mqtt_host, s.mqtt_port, s.mqtt_protocol,
                 redact_dsn(s.database_url.get_secret_value()),
                 self._process.pid if self._process else None)

    def stop(self, timeout_seconds: float = 30.0) -> None:
        """Stop taking messages, commit and acknowledge what was received, disconnect.

        If the database stays down past ``timeout_seconds``, the batch in hand is left
        unacknowledged: the broker redelivers it to the next session.
        """
        self._accepting = False
        self._stop.set()
        if self._process is not None:
            self._forward_stop.set()
            if not self._worker_stopped.wait(timeout_seconds):
                with contextlib.suppress(OSError):
                    self._pipe.send(("abandon",))
                self._worker_stopped.wait(C.DB_RETRY_MAX_SECONDS + 5)
            if self._abandoned:
                log.warning("%d uncommitted messages left to the broker", self._abandoned)
            for thread in self._threads:
                thread.join(5)
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                log.error("the ingest store worker did not exit; killing it")
                self._process.kill()
                self._process.wait(5)
            self._pipe.close()
        log.info("%s", self.summary_line())
        if self._had_session and self._fatal is None:
            sessions.record_session(self.settings, new=False)  # alive until now
        self._client.disconnect()
        self._client.loop_stop()
        if self._metrics_server is not None:
            self._metrics_server.stop()
            self._metrics_server = None
        log.info("ingest stopped")

    def run_forever(self) -> None:
        """Start, block until SIGTERM/SIGINT (or a fatal error), stop."""
        with stop_on_signals(self._stop):
            try:
                self.start()
                while not self._stop.wait(1.0):
                    self._maybe_summary()
            finally:
                self.stop()
        if self._fatal is not None:
            raise self._fatal

    # --- observation ---------------------------------------------------------------

    def stats(self) -> IngestStats:
        return self.metrics.snapshot()

    def health(self) -> dict[str, Any]:
        """The /healthz report of ``parkcarbon ingest`` (same shape as ``parkcarbon run``)."""
        ok = self.healthy()
        return {"parts": ["ingest"], "healthy": ok,
                "ingest": {"healthy": ok, "stats": asdict(self.stats())}}

    def metrics_text(self) -> str:
        return prometheus_text(self.stats())

    @property
    def fatal_error(self) -> IngestError | BrokerError | None:
        return self._fatal

    def healthy(self) -> bool:
        """Broker session up, last database write ok, worker alive, no fatal error."""
        alive = self._process is not None and self._process.poll() is None and all(
            t.is_alive() for t in self._threads)
        return alive and self._fatal is None and self.metrics.connected and self.metrics.db_ok

    def wait_subscribed(self, timeout_seconds: float = 10.0) -> bool:
        """Block until the broker has granted the subscription (SUBACK received), so
        what is published from now on reaches ingest. False on timeout; raises the
        fatal error (bad credentials) if there is one."""
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self._fatal is not None:
                raise self._fatal
            if self._subscribed.wait(0.02):
                return True
        return False


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
