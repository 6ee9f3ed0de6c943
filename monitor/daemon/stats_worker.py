"""Drift statistics in a short-lived child process, so the daemon does not keep scipy loaded.

scipy.stats costs about 45 MB of memory once imported and never gives it back; a daemon that
evaluates once an hour per target needs it for well under a second each time. Each evaluation
therefore runs in a spawned child process (the observations go in, the verdicts come out; no
database access there) that exits as soon as no evaluation is waiting, and the daemon's own
footprint stays small for the months it runs. The price: about a second of CPU to start the
child for each burst of evaluations, and a child of about 120 MB while it lives
(bench/soak.py measures both).
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor

from monitor.drift.model import Evaluation, Observation
from monitor.drift.settings import DriftConfig


def _evaluate(
    baseline: Sequence[Observation],
    current: Sequence[Observation],
    config: DriftConfig,
    streaks: Mapping[str, int],
) -> Evaluation:
    from monitor.drift.evaluate import evaluate

    return evaluate(baseline, current, config, previous_streaks=dict(streaks))


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
        streaks: Mapping[str, int],
    ) -> Evaluation:
        with self._lock:
            if self._pool is None:
                # spawn, not fork: the daemon has threads and open database connections.
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
            pool = self._pool
            self._waiting += 1
        try:
            return pool.submit(_evaluate, list(baseline), list(current), config,
                               dict(streaks)).result()  # fmt: skip
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
