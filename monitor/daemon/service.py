"""`driftmon serve`: the scheduled replay service.

One asyncio loop holds an APScheduler 3 `AsyncIOScheduler` (in-memory jobs, rebuilt from the
config at start and on SIGHUP; our `run` table is the history). Each (target, probe set) is a
job on its cadence; each firing claims its slot in the database (`Run.slot` is unique), runs,
evaluates drift and alerts, and delivers the outbox (`monitor.after_run`). Periodic jobs
deliver the outbox (retries), refresh the heartbeat, prune old results and checkpoint SQLite's
WAL.

Discipline, after healthchecks' sendalerts: signal handlers only set flags; each job catches
and logs its own errors, so one bad run cannot stop the scheduler; every blocking database
call runs in a worker thread, never on the loop.

Stopping (SIGTERM, SIGINT): no new runs start; runs in flight get `server.drain` to finish;
what is left is cancelled and its run marked interrupted (results already stored are kept;
nothing is sent twice); the outbox gets one last delivery; exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor import __version__
from monitor.after_run import DELIVERY_BUDGET, deliver, evaluate_and_alert, notifier_for
from monitor.alerts.manager import AlertPolicy
from monitor.alerts.message import AlertMessage
from monitor.alerts.outbox import outbox_depth, queue
from monitor.config import LoadedConfig, load_config
from monitor.daemon.budget import over_budget
from monitor.daemon.health import HealthServer, last_runs, overdue_after
from monitor.daemon.housekeeping import checkpoint_wal, prune, release_free_memory
from monitor.daemon.metrics import DaemonMetrics
from monitor.daemon.schedule import Cadence, check_schedules, slot_key
from monitor.daemon.stats_worker import SubprocessEvaluator
from monitor.durations import parse_duration
from monitor.errors import ConfigError, DriftmonError
from monitor.probes.loader import load_probe_sets
from monitor.replay import Job, make_client, runner_for, select_jobs
from monitor.runner import Runner, RunOutcome
from monitor.store.db import ping
from monitor.store.models import utcnow
from monitor.store.processes import (
    beat,
    owner_id,
    owner_is_dead,
    register_daemon,
    unregister_daemon,
)
from monitor.store.runs import record_skipped_run, result_stats, run_in_slot
from monitor.store.states import RunStatus, RunTrigger
from monitor.store.writes import ensure_target

if TYPE_CHECKING:
    from monitor.alerts import Notifier

log = logging.getLogger("driftmon.daemon")

OUTBOX_EVERY = 20.0  # seconds between outbox passes (retries of failed deliveries)
HEARTBEAT_EVERY = 10.0
CHECKPOINT_EVERY = 600.0
PRUNE_EVERY = 3600.0
TRIM_EVERY = 300.0
FINAL_DELIVERY = 10.0  # seconds for the last pass at shutdown
PERIODIC = "periodic:"


@dataclass(frozen=True)
class ScheduledJob:
    key: str  # "target/set"
    job: Job
    cadence: Cadence


def build_schedule(config: LoadedConfig, jobs: list[Job]) -> dict[str, ScheduledJob]:
    """Every (target, set) with its cadence; a bad cadence is a ConfigError naming the file,
    key and line."""
    cadences = check_schedules(config)
    out: dict[str, ScheduledJob] = {}
    for job in jobs:
        key = f"{job.target.name}/{job.probe_set.name}"
        out[key] = ScheduledJob(key, job, cadences[job.target.name])
    return out


class Daemon:
    def __init__(
        self,
        config: LoadedConfig,
        engine: Engine,
        *,
        db_override: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine, self.db_override, self.clock = engine, db_override, clock
        self.metrics = DaemonMetrics()
        self.started_at = clock()
        self.owner = f"{owner_id()}:{int(time.time())}"
        self._stop = asyncio.Event()
        self._reload_requested = False
        self._stopping = False
        self._inflight: set[asyncio.Task[None]] = set()
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._retired_clients: list[httpx.AsyncClient] = []
        self._scheduler: AsyncIOScheduler | None = None
        self._evaluator = SubprocessEvaluator()
        self._health: HealthServer | None = None
        self._apply(config, *self._prepare(config))

    # --- configuration --------------------------------------------------------------------
    def _prepare(
        self, config: LoadedConfig
    ) -> tuple[dict[str, ScheduledJob], Runner, AlertPolicy, Notifier | None]:
        """Everything a config needs, built before anything is swapped: a reload that fails
        here leaves the running config untouched."""
        sets = load_probe_sets(config.probe_paths)
        schedule = build_schedule(config, select_jobs(config, sets))
        for scheduled in schedule.values():
            if scheduled.job.target.api_key is not None:
                scheduled.job.target.api_key.resolve()  # a missing secret fails now, not later
        return (
            schedule,
            runner_for(config, self.engine),
            AlertPolicy.from_settings(config.settings.alerts),
            notifier_for(config),
        )

    def _apply(
        self,
        config: LoadedConfig,
        schedule: dict[str, ScheduledJob],
        runner: Runner,
        policy: AlertPolicy,
        notifier: Notifier | None,
    ) -> None:
        self.config, self.schedule, self.runner = config, schedule, runner
        self.policy, self.notifier = policy, notifier
        self.drain = parse_duration(config.settings.server.drain)
        self.metrics.set_schedule(
            {
                (job.job.target.name, job.job.probe_set.name): job.cadence.period.total_seconds()
                for job in schedule.values()
            }
        )
        old, self._clients = self._clients, {}
        for scheduled in schedule.values():
            target = scheduled.job.target
            if target.name not in self._clients:
                self._clients[target.name] = make_client(target)
        self._retired_clients += old.values()  # runs in flight may still use them

    # --- lifecycle ------------------------------------------------------------------------
    async def serve(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._request_reload)
        listen = self.config.settings.server.listen
        try:
            self._health = HealthServer(listen, self.metrics.registry, self.health)
        except OSError as exc:  # e.g. the port is taken by another daemon
            where = str(self.config.path) if self.config.path else None
            raise ConfigError(
                f"cannot listen on {listen}: {exc.strerror or exc}", file=where, key="server.listen"
            ) from None
        self._health.start()
        await asyncio.to_thread(self._register)
        scheduler = self._scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_listener(self._on_firing_dropped, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        scheduler.start()
        self.metrics.scheduler_up.set(1)
        self._schedule_runs(catch_up=True)
        self._schedule_periodic()
        log.info(
            "driftmon serve started",
            extra={
                "event": "started",
                "version": __version__,
                "listen": self._health.address,
                "jobs": len(self.schedule),
                "drain_s": self.drain,
            },
        )
        try:
            while not self._stop.is_set():
                await self._stop_or_reload()
        finally:
            await self._shutdown()
        return 0

    async def _stop_or_reload(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=1.0)
        if self._reload_requested and not self._stop.is_set():
            self._reload_requested = False
            await self._reload()

    def _request_reload(self) -> None:
        self._reload_requested = True

    async def _reload(self) -> None:
        try:
            config = await asyncio.to_thread(load_config, str(self.config.path))
            prepared = await asyncio.to_thread(self._prepare, config)
        except (DriftmonError, OSError) as exc:
            self.metrics.reloads.labels("refused").inc()
            log.error(
                "reload refused, keeping the running config: %s",
                exc,
                extra={"event": "reload_refused"},
            )
            return
        self._apply(config, *prepared)
        self._schedule_runs(catch_up=True)
        self.metrics.reloads.labels("applied").inc()
        log.info("config reloaded", extra={"event": "reloaded", "jobs": len(self.schedule)})

    async def _shutdown(self) -> None:
        self._stopping = True
        log.info(
            "stopping: %d run(s) in flight, drain %.0f s",
            len(self._inflight),
            self.drain,
            extra={"event": "stopping"},
        )
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)  # in-flight runs are shielded from this
        self.metrics.scheduler_up.set(0)
        if self._inflight:
            _done, pending = await asyncio.wait(set(self._inflight), timeout=self.drain)
            for task in pending:
                task.cancel()  # the runner marks its run interrupted
            if pending:
                await asyncio.wait(pending, timeout=10)
                log.warning(
                    "%d run(s) did not finish within the drain time: interrupted",
                    len(pending),
                    extra={"event": "interrupted"},
                )
        await self._deliver(budget=FINAL_DELIVERY)
        await asyncio.to_thread(self._evaluator.close)
        for client in [*self._clients.values(), *self._retired_clients]:
            await client.aclose()
        await asyncio.to_thread(self._unregister)
        if self._health is not None:
            self._health.stop()
        log.info("driftmon serve stopped", extra={"event": "stopped"})

    # --- scheduling -----------------------------------------------------------------------
    def _schedule_runs(self, *, catch_up: bool) -> None:
        scheduler = self._scheduler
        assert scheduler is not None
        for job in scheduler.get_jobs():
            if not job.id.startswith(PERIODIC):
                job.remove()
        now = self.clock()
        for key, scheduled in self.schedule.items():
            # A slot whose run has not happened (a new job, or the daemon was down) runs once
            # now: one catch-up, not one per missed slot.
            start = scheduled.cadence.slot_start(now)
            due = catch_up and start is not None and not self._slot_taken(scheduled, start)
            period = scheduled.cadence.period.total_seconds()
            scheduler.add_job(
                self._fire,
                scheduled.cadence.scheduled_trigger(),
                args=[key],
                id=key,
                coalesce=True,
                max_instances=1,
                # Late by less than a period (a busy loop, a suspended VM): still run it, as
                # the slot it belongs to. Later than that, the next slot is due anyway.
                misfire_grace_time=max(1, int(period)),
                **({"next_run_time": datetime.now(UTC)} if due else {}),
            )

    def _on_firing_dropped(self, event: JobEvent) -> None:
        """A slot APScheduler did not start: the previous run of the same target and set was
        still going (`overrun`), or the loop reached the slot later than its grace (`late`).
        Both are right to skip (runs of one job never overlap, and one late slot is not
        worth two runs back to back), but an operator must be able to see them."""
        scheduled = self.schedule.get(event.job_id)
        if scheduled is None:  # a periodic job: its next firing is soon enough
            return
        reason = "overrun" if event.code == EVENT_JOB_MAX_INSTANCES else "late"
        target, probe_set = scheduled.job.target.name, scheduled.job.probe_set.name
        self.metrics.skipped.labels(target, probe_set, reason).inc()
        times = getattr(event, "scheduled_run_times", None) or [
            getattr(event, "scheduled_run_time", None)
        ]
        slots = [slot_key(target, probe_set, t) for t in times if t is not None]
        log.warning(
            "slot of %s skipped (%s): %s",
            event.job_id,
            reason,
            ", ".join(slots),
            extra={"event": "slot_skipped", "job": event.job_id, "reason": reason, "slots": slots},
        )

    def _slot_taken(self, scheduled: ScheduledJob, start: datetime) -> bool:
        """Whether this slot has its run; a run whose process died does not count (the
        runner resumes it: only its missing samples are sent)."""
        key = slot_key(scheduled.job.target.name, scheduled.job.probe_set.name, start)
        run = run_in_slot(self.engine, key)
        if run is None:
            return False
        return run.status != RunStatus.RUNNING or not owner_is_dead(
            run.owner, self.clock() - run.heartbeat_at
        )

    def _schedule_periodic(self) -> None:
        scheduler = self._scheduler
        assert scheduler is not None
        jobs: list[tuple[str, Callable[[], Any], float]] = [
            ("outbox", self._deliver, OUTBOX_EVERY),
            ("heartbeat", self._heartbeat, HEARTBEAT_EVERY),
            ("prune", self._prune, PRUNE_EVERY),
            ("trim", self._trim, TRIM_EVERY),
        ]
        if self.engine.dialect.name == "sqlite":
            jobs.append(("checkpoint", self._checkpoint, CHECKPOINT_EVERY))
        for name, fn, every in jobs:
            scheduler.add_job(
                self._guarded(name, fn),
                "interval",
                seconds=every,
                id=PERIODIC + name,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=int(every),
            )

    def _guarded(self, name: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        async def job() -> None:
            try:
                await fn()
            except asyncio.CancelledError:
                if not self._stopping:
                    raise
                # The loop closes under a job still running at shutdown (a heartbeat in its
                # thread): nothing failed, and APScheduler would log the cancel as an error.
            except Exception:
                self.metrics.job_errors.labels(name).inc()
                log.exception("periodic job %s failed", name, extra={"event": "job_error"})

        return job

    # --- one scheduled run ----------------------------------------------------------------
    async def _fire(self, key: str) -> None:
        if self._stopping:
            return
        task = asyncio.create_task(self._run_slot(key), name=f"run {key}")
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        try:
            await asyncio.shield(task)  # the scheduler's shutdown cancels us, not the run
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # Stopping: the run goes on draining under _shutdown; this job is just done.

    async def _run_slot(self, key: str) -> None:
        try:
            await self._run_slot_unguarded(key)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.metrics.job_errors.labels("run").inc()
            log.exception(
                "scheduled run of %s failed", key, extra={"event": "run_error", "job": key}
            )

    async def _run_slot_unguarded(self, key: str) -> None:
        scheduled = self.schedule.get(key)
        if scheduled is None:  # removed by a reload while this firing waited
            return
        target, probe_set = scheduled.job.target, scheduled.job.probe_set
        start = scheduled.cadence.slot_start(self.clock())
        if start is None:
            return
        slot = slot_key(target.name, probe_set.name, start)
        labels = (target.name, probe_set.name)
        if await asyncio.to_thread(self._slot_taken, scheduled, start):
            self.metrics.skipped.labels(*labels, "slot_taken").inc()
            return
        reason = await asyncio.to_thread(over_budget, self.engine, target, probe_set, self.clock())
        if reason is not None:
            await asyncio.to_thread(self._skip_for_budget, scheduled, slot, reason)
            return
        t0 = time.monotonic()
        try:
            outcome = await self.runner.run(
                target,
                probe_set,
                client=self._clients[target.name],
                trigger=RunTrigger.SCHEDULE,
                slot=slot,
            )
        except IntegrityError:
            if not await asyncio.to_thread(self._slot_taken, scheduled, start):
                raise
            self.metrics.skipped.labels(*labels, "slot_taken").inc()  # another daemon was first
            return
        record = None
        if outcome.status == RunStatus.COMPLETE:
            with self.metrics.evaluation.labels(target.name).time():
                record = await asyncio.to_thread(
                    evaluate_and_alert,
                    self.engine,
                    outcome.id,
                    self.config.settings.drift,
                    self.policy,
                    evaluator=self._evaluator,
                )
        await asyncio.to_thread(self._observe, outcome, record)
        fields = {
            "event": "run",
            "run_id": outcome.id,
            "target": target.name,
            "probe_set": probe_set.name,
            "slot": slot,
            "status": outcome.status,
            "results": outcome.results,
            "passed": outcome.passed,
            "failed": outcome.failed,
            "errors": outcome.errors,
            "error_classes": outcome.error_classes,
            "model": outcome.model,
            "seconds": round(time.monotonic() - t0, 2),
            "drift": None if record is None else record.status,
            "drifted": [] if record is None else [v.metric for v in record.drifted],
        }
        log.info(
            "run %s %s/%s: %s",
            outcome.id,
            target.name,
            probe_set.name,
            outcome.status,
            extra=fields,
        )
        await self._deliver()

    def _observe(self, outcome: RunOutcome, record: Any) -> None:
        labels = (outcome.target, outcome.probe_set)
        self.metrics.runs.labels(*labels, outcome.status).inc()
        self.metrics.last_run.labels(*labels).set(time.time())
        if outcome.pass_rate is not None and outcome.status == RunStatus.COMPLETE:
            self.metrics.pass_rate.labels(*labels).set(outcome.pass_rate)
        if record is not None and record.evaluation_id is not None:
            self.metrics.drifted.labels(*labels).set(1 if record.drifted else 0)
            if record.identity_change is not None:
                self.metrics.identity_changes.labels(outcome.target).inc()
        for verdict, error_class, latency_ms in result_stats(self.engine, outcome.id):
            self.metrics.results.labels(outcome.target, verdict, error_class or "").inc()
            if latency_ms is not None:
                self.metrics.latency.labels(outcome.target).observe(latency_ms / 1000)

    def _skip_for_budget(self, scheduled: ScheduledJob, slot: str, reason: str) -> None:
        target, probe_set = scheduled.job.target, scheduled.job.probe_set
        self.metrics.skipped.labels(target.name, probe_set.name, "budget").inc()
        log.warning(
            "run of %s skipped: %s",
            scheduled.key,
            reason,
            extra={"event": "run_skipped", "job": scheduled.key},
        )
        target_id = ensure_target(
            self.engine,
            name=target.name,
            kind=target.kind,
            model=target.model,
            base_url=target.base_url,
        )
        now = self.clock()

        def announce(s: Session) -> None:
            msg = AlertMessage(
                kind="budget", target=target.name, probe_set=probe_set.name, note=reason
            )
            queue(s, f"budget:{target.name}:{now:%Y-%m-%d}", msg, alert_id=None, now=now)

        # False when another daemon recorded this slot first: nothing to do.
        record_skipped_run(
            self.engine,
            target_id=target_id,
            probe_set=probe_set.name,
            slot=slot,
            note=reason,
            now=now,
            # Once per target and day (the outbox key), however many runs it skips.
            also=announce if self.policy.notify else None,
        )

    # --- periodic jobs --------------------------------------------------------------------
    async def _deliver(self, budget: float = DELIVERY_BUDGET) -> None:
        if self.notifier is None:
            return
        notifier = self.notifier
        report = await asyncio.to_thread(
            deliver, self.engine, notifier, owner=self.owner, deadline=time.monotonic() + budget
        )
        for outcome, n in (
            ("sent", report.sent),
            ("transient", report.retrying),
            ("permanent", report.failed),
        ):
            if n:
                self.metrics.deliveries.labels(outcome).inc(n)
        with Session(self.engine) as s:
            depth = outbox_depth(s)
        for status in ("pending", "failed"):
            self.metrics.outbox.labels(status).set(depth.get(status, 0))

    async def _heartbeat(self) -> None:
        await asyncio.to_thread(self._beat)

    def _beat(self) -> None:
        beat(self.engine, daemon_owner=self.owner, jobs=len(self.schedule), now=self.clock())
        self.metrics.heartbeat.set_to_current_time()

    async def _prune(self) -> None:
        retention = self.config.settings.storage.retention
        if retention is not None:
            await asyncio.to_thread(prune, self.engine, self.clock(), parse_duration(retention))

    async def _trim(self) -> None:
        await asyncio.to_thread(release_free_memory)

    async def _checkpoint(self) -> None:
        busy, _log, _moved = await asyncio.to_thread(checkpoint_wal, self.engine)
        if busy:  # readers kept part of the log; the next checkpoint finishes the job
            log.debug("WAL checkpoint incomplete: readers active", extra={"event": "checkpoint"})

    def _register(self) -> None:
        register_daemon(
            self.engine,
            owner=self.owner,
            listen=self._health.address if self._health is not None else None,
            jobs=len(self.schedule),
            now=self.clock(),
        )
        self.metrics.heartbeat.set_to_current_time()  # registering is the first beat

    def _unregister(self) -> None:
        unregister_daemon(self.engine, self.owner, self.clock())

    # --- health ---------------------------------------------------------------------------
    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy when the scheduler runs, the database answers, and no job is overdue."""
        reasons: list[str] = []
        scheduler = self._scheduler
        if scheduler is None or not scheduler.running or self._stopping:
            reasons.append("scheduler not running")
        now = self.clock()
        last: dict[tuple[str, str], datetime] = {}
        try:
            ping(self.engine)
            last = last_runs(self.engine)
        except Exception as exc:  # any database failure is the answer, not a crash
            reasons.append(f"database unavailable: {type(exc).__name__}")
        jobs = {}
        for key, scheduled in list(self.schedule.items()):
            target, probe_set = scheduled.job.target.name, scheduled.job.probe_set.name
            seen = max(last.get((target, probe_set), self.started_at), self.started_at)
            allowed = overdue_after(scheduled.cadence)
            late = now - seen > allowed
            when = last.get((target, probe_set))
            jobs[key] = {"last_run_at": when and when.isoformat(), "overdue": late}
            if late:
                quiet = int((now - seen).total_seconds())
                reasons.append(f"{key}: no run for {quiet} s ({scheduled.cadence.describe})")
        return not reasons, {"reasons": reasons, "jobs": jobs}
