"""Backtest: scorers, pairing, determinism, and the done criteria on the real LLMDrift data."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from scipy.special import ndtri

from monitor.cli.main import cli
from monitor.drift.backtest import (
    RUNS,
    BacktestError,
    BacktestReport,
    make_scorer,
    observation,
    pair_records,
    read_rows,
    replay_detector,
    run_backtest,
    score_happy,
    score_opinion,
    score_prime,
)
from monitor.drift.model import State
from monitor.drift.settings import DriftConfig

# The LLMDrift generations (github.com/lchen001/LLMDrift, folder generation/): beside the
# checkout as ../shared/datasets/llmdrift/generation, or wherever DRIFTMON_LLMDRIFT points
# (README, "Running the LLMDrift backtest tests").
LLMDRIFT = Path(
    os.environ.get("DRIFTMON_LLMDRIFT")
    or Path(__file__).resolve().parents[3] / "shared" / "datasets" / "llmdrift" / "generation"
)
NO_LLMDRIFT = f"LLMDrift data not found at {LLMDRIFT} (set DRIFTMON_LLMDRIFT; see README)"
GPT4 = ("openaichat/gpt-4-0314", "openaichat/gpt-4-0613")
GPT35 = ("openaichat/gpt-3.5-turbo-0301", "openaichat/gpt-3.5-turbo-0613")
COLUMNS = ["", "model", "id", "query", "ref_answer", "answer", "answer_token", "Directly Usable"]


def row(answer: str, ref: str = "") -> dict[str, str]:
    return {"answer": answer, "ref_answer": ref}


@pytest.mark.parametrize(
    ("answer", "ref", "passed"),
    [
        ("Step by step... so the answer is [Yes]", "yes", True),
        ("It is divisible by 7. [NO]", "No", True),
        ("[No]", "yes", False),
        ("No, it is not prime.", "No", True),  # the authors' scorer counts a bare word too
        ("I cannot tell.", "yes", False),
        ("[yes] ... hmm, [no]", "No", False),  # yes wins, as in the authors' scorer
    ],
)
def test_prime_scorer(answer: str, ref: str, passed: bool) -> None:
    assert score_prime(row(answer, ref)) is passed


def test_happy_scorer() -> None:
    assert score_happy(row("so there are \\boxed{3} happy numbers", "\\\\boxed{3}"))
    assert not score_happy(row("\\boxed{2}", "\\\\boxed{3}"))
    assert not score_happy(row("three", "\\\\boxed{3}"))


def test_opinion_scorer() -> None:
    assert score_opinion(row("(A) Very optimistic"))
    assert not score_opinion(row("(E). Refused"))
    assert not score_opinion(row("As an AI language model, I do not have opinions."))


def test_column_and_regex_scorers() -> None:
    assert make_scorer("code", None, None)[1]({"Directly Usable": "1"})
    assert not make_scorer("sensitive", None, None)[1]({"Response Rate": "0.0"})
    name, score = make_scorer(None, "ok", None)
    assert name == "column:ok" and score({"ok": "1.0"}) and not score({"ok": "0"})
    with pytest.raises(BacktestError, match="'ok'"):
        score({"other": "1"})
    with pytest.raises(BacktestError, match="expected 1 or 0"):
        score({"ok": "yes"})
    assert make_scorer(None, None, r"^\(\w\)")[1](row("(B) no"))
    with pytest.raises(BacktestError, match="exactly one"):
        make_scorer("code", "ok", None)
    with pytest.raises(BacktestError, match="--regex"):
        make_scorer(None, None, "(")


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        for i, r in enumerate(rows):
            writer.writerow({"": str(i), "ref_answer": "", "answer_token": "5", **r})
    return path


def synthetic(path: Path, probes: int = 40, drop: int = 20) -> Path:
    """Model a passes every probe; model b fails the first `drop`; b's answers are longer."""
    rows = []
    for i in range(probes):
        query = f'task {i}\nwith a newline, "quotes"'
        for model, ok, answer in (("a", 1, "x" * 10), ("b", int(i >= drop), "y" * 12)):
            rows.append(
                {
                    "model": model,
                    "id": str(i),
                    "query": query,
                    "answer": answer,
                    "Directly Usable": str(ok),
                }
            )
    return write_csv(path, rows[::-1])  # reversed: pairing must not depend on row order


def test_pairing_on_id_and_query(tmp_path: Path) -> None:
    rows = [
        {"model": "a", "id": "1", "query": "q1", "answer": "a1", "Directly Usable": "1"},
        {"model": "a", "id": "1", "query": "q2", "answer": "a22", "Directly Usable": "0"},
        {"model": "b", "id": "1", "query": "q2", "answer": "b2", "Directly Usable": "1"},
        {"model": "b", "id": "1", "query": "q1", "answer": "b1", "Directly Usable": "0"},
        {"model": "b", "id": "9", "query": "q9", "answer": "only b", "Directly Usable": "1"},
        {"model": "c", "id": "1", "query": "q1", "answer": "c", "Directly Usable": "1"},
    ]
    data = read_rows(write_csv(tmp_path / "d.csv", rows))
    pairs = pair_records(data, make_scorer("code", None, None)[1], "a", "b")
    # Sorted by (id, query): (1, q1) then (1, q2); id 9 is on one side only.
    assert [(a.passed, b.passed) for a, b in pairs] == [(True, False), (False, True)]
    assert [(a.chars, b.chars) for a, b in pairs] == [(2, 2), (3, 2)]
    assert pairs[0][0].tokens == 5
    with pytest.raises(BacktestError, match="found: a, b, c"):
        pair_records(data, make_scorer("code", None, None)[1], "a", "zz")
    with pytest.raises(BacktestError, match="twice"):
        pair_records(data + data[:1], make_scorer("code", None, None)[1], "a", "b")


def test_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("model,id\na,1\n")
    with pytest.raises(BacktestError, match="query, answer"):
        read_rows(path)


def test_backtest_flags_a_drop_and_is_deterministic(tmp_path: Path) -> None:
    data = read_rows(synthetic(tmp_path / "s.csv"))
    pairs = pair_records(data, make_scorer("code", None, None)[1], "a", "b")
    config = DriftConfig()
    first = run_backtest(pairs, config, probes=30, repeats=5, seed=3)
    again = run_backtest(pairs, config, probes=30, repeats=5, seed=3)
    assert first == again
    assert first.flagged("pass_rate") == 1.0
    shown = next(r for r in first.rows if r.metric == "pass_rate")
    assert shown.state == "drifted" and shown.effect is not None and shown.effect < -0.2
    # A different seed draws a different sample of probes.
    other = run_backtest(pairs, config, probes=30, repeats=1, seed=4)
    assert other.shown_sample != first.shown_sample and len(other.shown_sample) == 30


def test_backtest_no_change_is_not_flagged(tmp_path: Path) -> None:
    data = read_rows(synthetic(tmp_path / "s.csv", drop=0))
    pairs = pair_records(data, make_scorer("code", None, None)[1], "a", "b")
    report = run_backtest(pairs, DriftConfig(), probes=30, repeats=3, seed=0)
    assert report.flagged("pass_rate") == 0.0


def test_the_recorded_window_is_evaluated_runs_times_with_evidence_carried(
    tmp_path: Path,
) -> None:
    """10 of 40 probes fail after the swap: exact McNemar p = 2^-9 per evaluation, too little
    for the threshold in one or two runs, enough in three."""
    data = read_rows(synthetic(tmp_path / "s.csv", drop=10))
    pairs = pair_records(data, make_scorer("code", None, None)[1], "a", "b")
    baseline = [observation(i, a) for i, (a, _) in enumerate(pairs)]
    current = [observation(i, b) for i, (_, b) in enumerate(pairs)]
    config = DriftConfig()
    gain = float(-ndtri(2.0**-9)) - config.cusum_reference
    for runs, evidence, state in ((1, gain, State.PENDING), (2, 2 * gain, State.PENDING)):
        result = replay_detector(baseline, current, config, runs)
        verdict = next(v for v in result.verdicts if v.metric == "pass_rate")
        assert verdict.p_value == pytest.approx(2.0**-9)
        assert verdict.state is state and verdict.evidence == pytest.approx(evidence), runs
        assert (verdict.threshold or 0.0) > evidence
        assert verdict.dispersion is None  # one output per prompt: no run-to-run estimate
    assert any("run-to-run variation not estimated" in n for n in result.notes)
    third = replay_detector(baseline, current, config, 3)
    assert next(v for v in third.verdicts if v.metric == "pass_rate").state is State.DRIFTED
    # Never fewer evaluations than persistence asks for alarming ones.
    strict = DriftConfig(persistence=3)
    assert run_backtest(pairs, strict, probes=30, repeats=1, seed=0, runs=1).runs == 3
    assert run_backtest(pairs, config, probes=30, repeats=1, seed=0).runs == RUNS


def test_cli_json(tmp_path: Path) -> None:
    path = synthetic(tmp_path / "s.csv")
    args = [
        "backtest",
        "--data",
        str(path),
        "--scorer",
        "code",
        "--from",
        "a",
        "--to",
        "b",
        "--repeats",
        "2",
        "--json",
    ]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    verdict = next(v for v in out["verdicts"] if v["metric"] == "pass_rate")
    assert verdict["drifted"] and verdict["flagged_fraction"] == 1.0
    assert out["probes"] == 30 and out["paired_prompts"] == 40 and out["runs"] == RUNS
    # One run after the swap: 15 or so of 30 probes failing is not yet enough evidence.
    once = CliRunner().invoke(cli, [*args, "--runs", "1"], catch_exceptions=False)
    assert once.exit_code == 0, once.output
    out = json.loads(once.output)
    verdict = next(v for v in out["verdicts"] if v["metric"] == "pass_rate")
    assert not verdict["drifted"] and verdict["flagged_fraction"] == 0.0 and out["runs"] == 1


PROBES = 20  # per window: the done criteria


def real(name: str, scorer: str, models: tuple[str, str]) -> BacktestReport:
    pairs = pair_records(read_rows(LLMDRIFT / name), make_scorer(scorer, None, None)[1], *models)
    return run_backtest(pairs, DriftConfig(), probes=PROBES, repeats=20, seed=0)


def state(report: BacktestReport, metric: str) -> str:
    return next(r.state for r in report.rows if r.metric == metric)


@pytest.mark.skipif(
    not LLMDRIFT.is_dir(),
    reason=NO_LLMDRIFT,
)
@pytest.mark.parametrize(
    ("name", "scorer", "loud"),
    [
        ("PRIME_FULL_EVAL.csv", "prime", None),
        ("COUNTAHAPPYNUMBER_EVAL.csv", "happy", None),
        ("OPINIONQA_EVAL.csv", "opinion", "pass_rate"),
        ("LEETCODE_EASY_EVAL.csv", "code", "code_fence_rate"),
    ],
)
def test_gpt4_march_to_june_is_flagged_on_llmdrift(
    name: str, scorer: str, loud: str | None
) -> None:
    """20 probes per window (seed 0; 20 random probe samples), the window evaluated RUNS times:
    the shown window has a DRIFTED quality metric and nearly every sample does. Measured, not
    tuned (any quality metric flagged: prime 1.00, happy 1.00, opinion 0.95, code 1.00): on
    opinions pass_rate itself drifts; on prime and happy numbers the loud signal is length (the
    chain of thought vanished), and prime's pass rate is a yes/no bias flip with discordant
    probes both ways (476 vs 147 of 1,000) that 20 probes alone cannot settle. On code the June
    model wraps 45 of 50 answers in ```python fences (the March one none): code_fence_rate
    drifts in every sample, while pass_rate (directly usable, 52% -> 10%) alone drifts in 15%:
    about 8 of 20 probes flip, p ~ 0.01-0.04, too little per evaluation for the alarm rule."""
    report = real(name, scorer, GPT4)
    assert "drifted" in {r.state for r in report.rows if r.family == "quality"}, name
    assert report.any_flagged >= 0.8, name
    if loud is not None:
        assert state(report, loud) == "drifted", name
        assert report.flagged(loud) >= 0.7, name


@pytest.mark.skipif(
    not LLMDRIFT.is_dir(),
    reason=NO_LLMDRIFT,
)
def test_gpt35_opinion_length_is_never_flagged_on_llmdrift() -> None:
    """GPT-3.5 March -> June opinion answers barely change length (mean 28.3 -> 27.7 chars; the
    median per-prompt shift is 0 characters and 0 tokens): neither length metric ever drifts.
    Measured: in 2 of the 20 samples length_tokens reaches the alarm threshold (p ~ 3e-4 twice)
    and is NO_MEANINGFUL_CHANGE only because a typical shift of one unit is never meaningful."""
    gpt35 = real("OPINIONQA_EVAL.csv", "opinion", GPT35)
    for metric in ("length_chars", "length_tokens"):
        assert state(gpt35, metric) != "drifted", metric
        assert gpt35.flagged(metric) == 0.0, metric
