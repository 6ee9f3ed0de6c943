"""The exit code of `driftmon run` from its runs' outcomes: an outage is never exit 0, and it
wins over drift."""

from __future__ import annotations

import pytest

from monitor.cli.runs import all_calls_failed, exit_code
from monitor.runner import RunOutcome
from monitor.store.states import RunStatus


def outcome(results: int, errors: int) -> RunOutcome:
    passed = results - errors
    return RunOutcome(
        id=1,
        target="t",
        probe_set="s",
        status=RunStatus.COMPLETE,
        results=results,
        passed=passed,
        failed=0,
        errors=errors,
        resumed=False,
        model=None,
        fingerprint=None,
        error_classes={"connection": errors} if errors else {},
    )


HEALTHY, SOME_ERRORS, OUTAGE, EMPTY = outcome(10, 0), outcome(10, 3), outcome(10, 10), outcome(0, 0)


def test_a_run_with_no_output_at_all_is_an_outage() -> None:
    assert all_calls_failed(OUTAGE)
    assert not all_calls_failed(SOME_ERRORS)
    assert not all_calls_failed(HEALTHY)
    assert not all_calls_failed(EMPTY)  # nothing was sent (e.g. over budget): not an outage


@pytest.mark.parametrize(
    ("outcomes", "drifted", "fail_on_drift", "fail_on_error", "expected"),
    [
        ([HEALTHY], False, False, False, 0),
        ([HEALTHY, OUTAGE], False, False, False, 4),  # any run: one target down is an outage
        ([SOME_ERRORS], False, False, False, 0),
        ([SOME_ERRORS], False, False, True, 4),
        ([HEALTHY], False, False, True, 0),
        ([HEALTHY], True, True, False, 3),
        ([HEALTHY], True, False, False, 0),
        ([SOME_ERRORS], True, True, True, 4),  # 4 wins over 3
        ([OUTAGE], True, True, False, 4),
        ([SOME_ERRORS], True, True, False, 3),
    ],
)
def test_exit_code(
    outcomes: list[RunOutcome],
    drifted: bool,
    fail_on_drift: bool,
    fail_on_error: bool,
    expected: int,
) -> None:
    got = exit_code(
        outcomes,
        drifted=drifted,
        evaluation_failed=False,
        fail_on_drift=fail_on_drift,
        fail_on_error=fail_on_error,
    )
    assert got == expected


def test_a_failed_evaluation_is_a_runtime_failure_first() -> None:
    got = exit_code(
        [OUTAGE], drifted=True, evaluation_failed=True, fail_on_drift=True, fail_on_error=True
    )
    assert got == 1
