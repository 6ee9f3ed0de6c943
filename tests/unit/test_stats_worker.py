"""The statistics child of `driftmon run`: errors come back with their traceback, a dead child
is an error, not a hang, and the child exits by itself when the command is done with it."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from monitor.daemon.stats_worker import PrestartedEvaluator, StatisticsProcessError
from monitor.drift.evaluate import evaluate
from monitor.drift.model import Carry, Observation
from monitor.drift.settings import DriftConfig

SAMPLE = [Observation(probe_version_id=p, verdict="pass", parsed=True) for p in range(20)]


def test_an_error_in_the_child_comes_back_with_its_traceback() -> None:
    not_a_config: Any = "not a config"
    with PrestartedEvaluator() as child:
        with pytest.raises(StatisticsProcessError, match="Traceback") as raised:
            child(SAMPLE, SAMPLE, not_a_config, {})
        assert "AttributeError" in str(raised.value)
        # The child survives its error and evaluates the next request.
        result = child(SAMPLE, SAMPLE, DriftConfig(), {})
        assert not result.drifted and result.paired_probes == 20


def test_the_carried_state_reaches_the_child_and_its_verdicts_come_back_whole() -> None:
    seven_fail = [Observation(p, "pass" if p >= 7 else "fail", parsed=True) for p in range(20)]
    carried = {"pass_rate": Carry(1, 1.0)}
    with PrestartedEvaluator() as child:
        fresh = child(SAMPLE, seven_fail, DriftConfig(), {})
        resumed = child(SAMPLE, seven_fail, DriftConfig(), carried)
    assert resumed == evaluate(SAMPLE, seven_fail, DriftConfig(), previous=carried)
    before, after = (
        next(v for v in e.verdicts if v.metric == "pass_rate") for e in (fresh, resumed)
    )
    # The CUSUM is floored at 0 and held at the threshold: the carried 1.0 shows up as a plain
    # sum only when neither bound is reached (p = 2^-7 brings 0.65 over the reference).
    assert before.evidence is not None and after.threshold is not None
    assert before.evidence > 0.0 and before.evidence + 1.0 < after.threshold
    assert after.evidence == pytest.approx(before.evidence + 1.0)


def test_a_child_that_died_is_an_error_not_a_hang() -> None:
    with PrestartedEvaluator() as child:
        pid = child._process.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        child._process.join(10)
        with pytest.raises(StatisticsProcessError, match="exit code -9"):
            child(SAMPLE, SAMPLE, DriftConfig(), {})


def test_the_child_exits_by_itself_once_the_command_is_done() -> None:
    child = PrestartedEvaluator()
    child(SAMPLE, SAMPLE, DriftConfig(), {})
    child.__exit__(None, None, None)
    assert child._process.exitcode == 0  # it left on its own; a kill would show as -9


def test_a_child_never_asked_is_stopped_not_waited_for() -> None:
    # An interrupted run leaves before any evaluation: the child may still be importing scipy,
    # and the command must not wait for that.
    child = PrestartedEvaluator()
    child.__exit__(None, None, None)
    assert child._process.exitcode == -signal.SIGKILL
