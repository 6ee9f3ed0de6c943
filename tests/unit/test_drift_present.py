"""`driftmon drift` and `run` say why a metric was not tested, naming the setting behind it."""

from __future__ import annotations

import pytest

from monitor.cli.drift import print_record, summary_line
from monitor.drift.model import Family, State, Verdict
from monitor.drift.present import reason, untested_reason
from monitor.drift.queries import EvaluationRecord

PROBES = "2 probe versions with data on both sides (need 10)"


def _untested(metric: str, note: str, family: Family = Family.QUALITY) -> Verdict:
    return Verdict(
        metric,
        family,
        State.INSUFFICIENT_DATA,
        None,
        None,
        None,
        None,
        None,
        18,
        None,
        6,
        None,
        note=note,
    )


def _pending(metric: str) -> Verdict:
    return Verdict(
        metric,
        Family.QUALITY,
        State.PENDING,
        1e-4,
        1e-3,
        -0.3,
        "rate difference",
        "exact",
        46,
        0.95,
        20,
        0.6,
        evidence=2.39,
        threshold=3.17,
    )


def _record(*verdicts: Verdict) -> EvaluationRecord:
    return EvaluationRecord(
        target="t",
        probe_set="starter",
        run_id=8,
        status="evaluated",
        evaluation_id=2,
        baseline_id=1,
        run_ids=(8,),
        verdicts=verdicts,
        paired_probes=2,
        notes=("run-to-run variation not estimated: the baseline has fewer than 8 runs",),
    )


def test_reason_names_the_setting() -> None:
    assert reason(PROBES) == (
        "2 probe versions with data on both sides (need 10, drift.min_probes)"
    )
    assert reason("baseline has 9 values and current window has 3 values (need 20)") == (
        "baseline has 9 values and current window has 3 values (need 20, drift.min_samples)"
    )
    assert reason("no data in the baseline") == "no data in the baseline"


def test_untested_reason_is_the_note_most_quality_metrics_share() -> None:
    verdicts = [
        _untested("pass_rate", PROBES),
        _untested("length_chars", PROBES),
        _untested("check:2", "1 probe version with data on both sides (need 10)"),
        _untested("latency", "no data in the baseline", Family.OPERATIONAL),
    ]
    assert untested_reason(verdicts) == reason(PROBES)


def test_drift_output_shows_why_nothing_was_tested(capsys: pytest.CaptureFixture[str]) -> None:
    record = _record(_untested("pass_rate", PROBES), _untested("check:1", PROBES))
    print_record(record)
    out = capsys.readouterr().out
    assert f"not tested: too little data: {reason(PROBES)}" in out
    assert f"why:\n  all metrics: {reason(PROBES)}" in out
    # `run` gives the metrics' reason, not the first note of the evaluation.
    assert summary_line(record) == (
        f"  drift: not tested, too little data: {reason(PROBES)} (evaluation 2)"
    )


def test_drift_output_shows_how_far_pending_metrics_are(
    capsys: pytest.CaptureFixture[str],
) -> None:
    print_record(_record(_pending("pass_rate"), _untested("check:2", PROBES)))
    out = capsys.readouterr().out
    assert "no drift yet; pending: pass_rate" in out
    assert "95.0% → 60.0%" in out
    assert "  check:2: " + reason(PROBES) in out
    assert "pending, evidence so far / needed to count as drift: pass_rate 2.39/3.17" in out


def test_one_probe_version_is_singular_and_still_names_its_setting() -> None:
    assert reason("1 probe version with data on both sides (need 10)") == (
        "1 probe version with data on both sides (need 10, drift.min_probes)"
    )
