"""Drift statistics in a short-lived child process, so the daemon does not keep scipy loaded.

scipy.stats costs about 45 MB of memory once imported and never gives it back; a daemon that
evaluates once an hour per target needs it for well under a second each time. Each evaluation
therefore runs in a spawned child process (the observations go in, the verdicts come out; no
database access there) that exits as soon as no evaluation is waiting, and the daemon's own
footprint stays small for the months it runs. The price: about a second of CPU to start the
child for each burst of evaluations, and a child of about 120 MB while it lives
(bench/soak.py measures both).

`driftmon run` uses a child too, for time rather than memory: `PrestartedEvaluator` starts it
before the requests go out, so scipy's import (about a second) overlaps the run instead of
following it (bench/replay.py).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import traceback
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.connection import Connection

from monitor.drift.model import Carry, Dispersion, Evaluation, Observation
from monitor.drift.settings import DriftConfig


def _evaluate(
    baseline: Sequence[Observation],
    current: Sequence[Observation],
    config: DriftConfig,
    carried: Mapping[str, Carry],
    dispersion: Mapping[str, Dispersion] | None = None,
) -> Evaluation:
    from monitor.drift.evaluate import evaluate

    found = dict(dispersion) if dispersion is not None else None
    return evaluate(baseline, current, config, previous=dict(carried), dispersion=found)


def _serve_evaluations(conn: Connection) -> None:
    """The child of a `PrestartedEvaluator`: load the statistics, then evaluate what arrives
    until the parent closes its end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    # The statistics load while the parent sends requests; under contention the parent and
    # its network work come first (an evaluation waits for the run anyway).
    with contextlib.suppress(OSError):
        os.nice(10)
    import monitor.drift.evaluate  # noqa: F401  (scipy: loaded now, before anything is asked)

    while True:
        try:
            job = conn.recv()
        except EOFError:
            # Nothing is buffered or open here: leave without tearing down the interpreter
            # (scipy's modules take about a quarter of a second to dismantle).
            os._exit(0)
        try:
            reply: tuple[bool, object] = (True, _evaluate(*job))
        except Exception:
            reply = (False, traceback.format_exc())
        conn.send(reply)


class StatisticsProcessError(RuntimeError):
    """The statistics child failed or died; the message carries its traceback."""


class PrestartedEvaluator:
    """An `monitor.drift.engine.Evaluator` for one command: its child starts at once and loads
    scipy while the command does its other work (a run's requests, which leave a core idle or
    wait on the network), so the evaluations that follow do not wait for the import (about a
    second). Used as a context manager; the child exits with it."""

    def __init__(self) -> None:
        # spawn, not fork: the command has threads and open database connections.
        context = multiprocessing.get_context("spawn")
        self._conn, child_end = context.Pipe()
        self._process = context.Process(
            target=_serve_evaluations, args=(child_end,), name="driftmon-statistics", daemon=True
        )
        self._process.start()
        child_end.close()
        self._asked = False

    def __enter__(self) -> PrestartedEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.close()  # the child sees the end of its input and exits
        if self._asked:
            self._process.join(timeout=5)
        # Never asked, it may still be importing (an interrupted or failed run): not waited for.
        if self._process.exitcode is None:
            self._process.kill()
        self._process.join()

    def __call__(
        self,
        baseline: Sequence[Observation],
        current: Sequence[Observation],
        config: DriftConfig,
        carried: Mapping[str, Carry],
        dispersion: Mapping[str, Dispersion] | None = None,
    ) -> Evaluation:
        self._asked = True
        try:
            found = dict(dispersion) if dispersion is not None else None
            self._conn.send((list(baseline), list(current), config, dict(carried), found))
            ok, value = self._conn.recv()
        except (EOFError, OSError) as exc:
            code = self._process.exitcode
            message = f"the statistics process ended (exit code {code})"
            raise StatisticsProcessError(message) from exc
        if not ok:
            raise StatisticsProcessError(f"in the statistics process:\n{value}")
        assert isinstance(value, Evaluation)
        return value


class SubprocessEvaluator:
    """An `monitor.drift.engine.Evaluator` that runs evaluations in a child process which
    lives only while evaluations are waiting: the first starts it, the last one out stops it.
    A burst (every target's run of one slot) shares one child; an idle daemon has none."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._waiting = 0

    def __call__(
        self,
        baseline: Sequence[Observation],
        current: Sequence[Observation],
        config: DriftConfig,
        carried: Mapping[str, Carry],
        dispersion: Mapping[str, Dispersion] | None = None,
    ) -> Evaluation:
        with self._lock:
            if self._pool is None:
                # spawn, not fork: the daemon has threads and open database connections.
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
            pool = self._pool
            self._waiting += 1
        try:
            found = dict(dispersion) if dispersion is not None else None
            job = (list(baseline), list(current), config, dict(carried), found)
            return pool.submit(_evaluate, *job).result()
        finally:
            with self._lock:
                self._waiting -= 1
                if self._waiting == 0 and self._pool is pool:
                    self._pool = None
                    # Nothing queued: the child exits. Waiting for it here, under the lock,
                    # keeps the next burst from starting a second child before it is gone.
                    pool.shutdown(wait=True)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
