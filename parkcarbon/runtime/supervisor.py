"""``parkcarbon run``: ingest and the scheduler in one supervised service.

::

    Supervisor(settings, registry, parts=("ingest", "scheduler"))
     ├── ingest     parkcarbon.ingest.service.IngestService (its threads + a store worker process)
     ├── scheduler  APScheduler BackgroundScheduler running parkcarbon.runtime.schedule
     └── endpoint   on settings.metrics_port: GET /healthz (200 when every part is
                    healthy, 503 otherwise, JSON details) and GET /metrics (the
                    ingest's Prometheus text plus scheduler job counters)

Shutdown (SIGTERM, SIGINT or ``stop()``): the scheduler stops taking new runs and
waits for the job in hand, then ingest stops gracefully (it finishes the batch in
hand, acknowledges what is committed and leaves the rest queued in the broker).
``parts`` lets one machine run ingest and another the scheduler
(``parkcarbon run --only ingest`` / ``--only scheduler``); several ingest workers
split the load with ``PARKCARBON_MQTT_SHARED_GROUP``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.background import BackgroundScheduler

from parkcarbon.errors import ParkcarbonError
from parkcarbon.registry import Registry
from parkcarbon.runtime.errors import ServiceError
from parkcarbon.runtime.schedule import JobContext, ScheduledJob, collect_jobs, utc_now
from parkcarbon.settings import Settings
from parkcarbon.signals import stop_on_signals

if TYPE_CHECKING:
    from parkcarbon.ingest.service import IngestService

log = logging.getLogger(__name__)

Part = Literal["ingest", "scheduler"]
PARTS: tuple[Part, ...] = ("ingest", "scheduler")
# A job is unhealthy after this many failures in a row (one failure can be a blip:
# a database restart, a lock timeout).
MAX_CONSECUTIVE_FAILURES = 3
# A scheduled run may start this late (busy CPU) and still run; later ones are skipped.
MISFIRE_GRACE_SECONDS = 30


@dataclass
class JobHealth:
    name: str
    runs: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_success: datetime | None = None
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "failures": self.failures,
            "consecutive_failures": self.consecutive_failures,
            "last_success": self.last_success.isoformat() if self.last_success else None,
            "last_error": self.last_error,
            "healthy": self.consecutive_failures < MAX_CONSECUTIVE_FAILURES,
        }


class _UserErrorFilter(logging.Filter):
    """Drops APScheduler's traceback of a job that failed with a ``ParkcarbonError`` (a
    database that went away, say): the supervisor logs that failure in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ParkcarbonError)


_USER_ERROR_FILTER = _UserErrorFilter()


def _quiet_user_error_tracebacks() -> None:
    logger = logging.getLogger("apscheduler.executors.default")
    if _USER_ERROR_FILTER not in logger.filters:
        logger.addFilter(_USER_ERROR_FILTER)


class Supervisor:
    """Runs the chosen parts; ``start()`` / ``stop()`` or ``run_forever()`` (signals)."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        *,
        parts: Sequence[Part] = PARTS,
        jobs: Iterable[ScheduledJob] | None = None,
        health_port: int | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        unknown = set(parts) - set(PARTS)
        if unknown or not parts:
            raise ServiceError(f"unknown service parts {sorted(unknown)}; choose from {PARTS}")
        self.settings = settings
        self.registry = registry
        self.parts = tuple(dict.fromkeys(parts))
        self.clock = clock
        self._jobs = list(jobs) if jobs is not None else None
        self.health_port = settings.metrics_port if health_port is None else health_port
        self.ingest: IngestService | None = None
        self.scheduler: BackgroundScheduler | None = None
        self.job_health: dict[str, JobHealth] = {}
        self._http: Any = None  # parkcarbon.http.HealthServer
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        log.info("starting parkcarbon service: %s", ", ".join(self.parts))
        from parkcarbon.ingest.startup import check_database

        # An unmigrated database stops the service here with the hint to migrate; an
        # unreachable one is a WARNING now (the parts retry).
        check_database(self.settings)
        _quiet_user_error_tracebacks()
        try:
            if "ingest" in self.parts:
                self._start_ingest()
            if "scheduler" in self.parts:
                self._start_scheduler()
            if self.health_port:
                self._start_health_server(self.health_port)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout_seconds: float = 30.0) -> None:
        """Scheduler first (wait for the running job), then ingest (graceful), then health."""
        self._stop_event.set()
        if self.scheduler is not None:
            scheduler, self.scheduler = self.scheduler, None
            if scheduler.running:
                scheduler.shutdown(wait=True)
            log.info("scheduler stopped")
        if self.ingest is not None:
            ingest, self.ingest = self.ingest, None
            ingest.stop(timeout_seconds=timeout_seconds)
            log.info("ingest stopped")
        if self._http is not None:
            self._http.stop()
            self._http = None

    def run_forever(self) -> None:
        """Start, wait for SIGTERM or SIGINT, stop gracefully. Main thread only."""
        fatal = None
        with stop_on_signals(self._stop_event):
            try:
                self.start()
                while not self._stop_event.wait(1.0):
                    fatal = self.ingest.fatal_error if self.ingest is not None else None
                    if fatal is not None:
                        break
            finally:
                self.stop()
        log.info("parkcarbon service stopped")
        if fatal is not None:
            raise fatal  # bad broker credentials: a user error, exit code 5

    def request_stop(self) -> None:
        """Ask ``run_forever`` to return (thread-safe, for tests and embedding)."""
        self._stop_event.set()

    # --- ingest ------------------------------------------------------------------

    def _start_ingest(self) -> None:
        from parkcarbon.ingest.service import IngestService

        # The supervisor serves /metrics and /healthz for every part on metrics_port,
        # so ingest's own endpoint stays off.
        settings = self.settings.model_copy(update={"metrics_port": None})
        self.ingest = IngestService(settings, self.registry)
        self.ingest.start()

    # --- scheduler ---------------------------------------------------------------

    def _start_scheduler(self) -> None:
        jobs = self._jobs if self._jobs is not None else collect_jobs(self.settings)
        scheduler = BackgroundScheduler(
            timezone=self.settings.tz,
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": MISFIRE_GRACE_SECONDS,
            },
        )
        scheduler.add_listener(
            self._on_job_event, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED
        )
        for job in jobs:
            self._add_job(scheduler, job)
        scheduler.start()
        self.scheduler = scheduler
        log.info(
            "scheduler started with %d job(s): %s",
            len(jobs),
            ", ".join(j.name for j in jobs) or "-",
        )

    def _add_job(self, scheduler: BackgroundScheduler, job: ScheduledJob) -> None:
        self.job_health[job.name] = JobHealth(job.name)
        kwargs: dict[str, Any] = {"id": job.name, "name": job.name, "args": (job,)}
        if job.run_at_start:
            kwargs["next_run_time"] = utc_now()  # wall time: the clock only feeds jobs
        if job.interval_seconds is not None:
            scheduler.add_job(self._run_job, "interval", seconds=job.interval_seconds, **kwargs)
        else:
            scheduler.add_job(self._run_job, "cron", **job.cron, **kwargs)

    def _run_job(self, job: ScheduledJob) -> Any:
        ctx = JobContext(settings=self.settings, registry=self.registry, now=self.clock())
        return job.func(ctx)

    def run_job_now(self, name: str) -> Any:
        """Run one scheduled job in the calling thread (the CLI and tests use it)."""
        jobs = self._jobs if self._jobs is not None else collect_jobs(self.settings)
        for job in jobs:
            if job.name == name:
                return self._run_job(job)
        raise ServiceError(f"no scheduled job named {name!r}")

    def _on_job_event(self, event: JobEvent) -> None:
        with self._lock:
            health = self.job_health.setdefault(event.job_id, JobHealth(event.job_id))
            if event.code == EVENT_JOB_MISSED:
                log.warning("job %s missed its run time", event.job_id)
                return
            health.runs += 1
            exc = getattr(event, "exception", None)
            if exc is None:
                health.consecutive_failures = 0
                health.last_success = self.clock()
                return
            health.failures += 1
            health.consecutive_failures += 1
            health.last_error = f"{type(exc).__name__}: {exc}"
            # APScheduler already logged the traceback; one line with the count here.
            log.warning(
                "job %s failed (%d in a row): %s",
                event.job_id,
                health.consecutive_failures,
                health.last_error,
            )

    def scheduler_health(self) -> dict[str, Any]:
        with self._lock:
            jobs = {name: h.as_dict() for name, h in self.job_health.items()}
        running = self.scheduler is not None and self.scheduler.running
        return {
            "healthy": running and all(j["healthy"] for j in jobs.values()),
            "running": running,
            "jobs": jobs,
        }

    # --- health ------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """Health of every running part; ``healthy`` is true only if all are."""
        report: dict[str, Any] = {"parts": list(self.parts)}
        ok = not self._stop_event.is_set()
        if "ingest" in self.parts:
            part: dict[str, Any] = (self.ingest.health()["ingest"] if self.ingest is not None
                                    else {"healthy": False, "stats": {}})
            report["ingest"] = part
            ok = ok and bool(part["healthy"])
        if "scheduler" in self.parts:
            report["scheduler"] = self.scheduler_health()
            ok = ok and report["scheduler"]["healthy"]
        report["healthy"] = ok
        return report

    def metrics_text(self) -> str:
        """Prometheus text: ingest counters (when ingest runs) and scheduler job counters."""
        out: list[str] = []
        if self.ingest is not None:
            out.append(self.ingest.metrics_text().rstrip("\n"))
        if "scheduler" in self.parts:
            with self._lock:
                rows = [
                    (h.name, h.runs, h.failures, h.consecutive_failures < MAX_CONSECUTIVE_FAILURES)
                    for h in self.job_health.values()
                ]
            for metric, kind, text, index in (
                ("parkcarbon_job_runs_total", "counter", "Scheduled job runs", 1),
                ("parkcarbon_job_failures_total", "counter", "Scheduled job failures", 2),
                ("parkcarbon_job_healthy", "gauge", "Job healthy (1) or failing (0)", 3),
            ):
                out += [f"# HELP {metric} {text}", f"# TYPE {metric} {kind}"]
                out += [f'{metric}{{job="{row[0]}"}} {int(row[index])}' for row in rows]
        return "\n".join(out) + "\n"

    def _start_health_server(self, port: int) -> None:
        from parkcarbon.alerts.jobs import http_routes
        from parkcarbon.http import HealthServer

        routes = http_routes(self.settings) if "scheduler" in self.parts else {}
        self._http = HealthServer(self.health, self.metrics_text, port,
                                  host=self.settings.metrics_host, routes=routes)
        self.health_port = self._http.port
        self._http.start()
