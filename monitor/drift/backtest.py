"""Backtest: run the real detector over recorded outputs of two model versions.

Input is a CSV in the LLMDrift layout (columns model, id, query, ref_answer, answer,
answer_token, plus task columns such as `Directly Usable`). Rows are paired on (id, query):
the same prompt sent to both versions is one probe. Each probe contributes one observation
per side, judged pass/fail by a scorer, with its output length in characters and tokens.

The detector runs as the daemon would after a provider swapped the model under a pinned name:
baseline = the old version's outputs, current = the new version's, and because the daemon
replays the new model every run, the same current window is evaluated `runs` times in a row
(default RUNS: the first and second run after the swap) with the alarm rule's evidence
carried. With deterministic Monte Carlo p-values (config.seed) the verdict at the last
evaluation is the verdict the daemon would give if the new model answered the same way again.
One output per prompt and version is one baseline run: the run-to-run variation cannot be
estimated from it, so the tests take runs to differ by sampling alone.
"""

from __future__ import annotations

import csv
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.drift.model import Evaluation, Family, Observation, State
from monitor.drift.settings import DriftConfig
from monitor.errors import UsageError
from monitor.store.states import ResultVerdict

RUNS = 2  # evaluations of the recorded window: the alarm after the first or second run
Row = Mapping[str, str]
Scorer = Callable[[Row], bool]


class BacktestError(UsageError):
    """The data file or the options cannot be used as asked."""


# --- scorers: each restates how the LLMDrift authors judged the task ---------------------------


def _yes_no(text: str) -> str:
    # The authors' own extraction: punctuation to spaces, every word bracketed, lowercased; the
    # first "[yes]" wins, else the first "[no]". So "[Yes]", "[YES]" and a bare "Yes." all count.
    words = text.replace(",", " ").replace(".", " ").split()
    bracketed = " ".join(f"[{w}]" for w in words).lower()
    if "[yes]" in bracketed:
        return "yes"
    return "no" if "[no]" in bracketed else "undetermined"


def score_prime(row: Row) -> bool:
    return _yes_no(row["answer"]) == _yes_no(row["ref_answer"])


_BOXED = re.compile(r"boxed\{([^}]*)\}")


def score_happy(row: Row) -> bool:
    answer = _BOXED.search(row["answer"])
    ref = _BOXED.search(row["ref_answer"])
    return answer is not None and ref is not None and answer.group(1) == ref.group(1)


_OPTION = re.compile(r"\([A-Z]\)")
_REFUSED_OPTION = re.compile(r"\([A-Z]\)\. Refused")


def score_opinion(row: Row) -> bool:
    # Answered = picked an option; the survey's explicit "Refused" option is a refusal.
    answer = row["answer"]
    return bool(_OPTION.search(answer)) and not _REFUSED_OPTION.search(answer)


def column_scorer(name: str) -> Scorer:
    def score(row: Row) -> bool:
        value = row.get(name)
        if value is None:
            raise BacktestError(f"column {name!r} is not in the data file")
        try:
            return float(value) == 1.0
        except ValueError:
            raise BacktestError(f"column {name!r} holds {value!r}, expected 1 or 0") from None

    return score


def regex_scorer(pattern: str) -> Scorer:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise BacktestError(f"--regex {pattern!r}: {exc}") from None
    return lambda row: compiled.search(row["answer"]) is not None


SCORERS: dict[str, Callable[[], Scorer]] = {
    "prime": lambda: score_prime,
    "happy": lambda: score_happy,
    "opinion": lambda: score_opinion,
    "code": lambda: column_scorer("Directly Usable"),
    "sensitive": lambda: column_scorer("Response Rate"),
}


def make_scorer(name: str | None, column: str | None, regex: str | None) -> tuple[str, Scorer]:
    """Exactly one of a built-in scorer, a 1/0 column, or a regex on the answer."""
    given = [x for x in (name, column, regex) if x is not None]
    if len(given) != 1:
        raise BacktestError("give exactly one of --scorer, --column, --regex")
    if name is not None:
        if name not in SCORERS:
            raise BacktestError(f"unknown scorer {name!r}; choose from {', '.join(SCORERS)}")
        return name, SCORERS[name]()
    if column is not None:
        return f"column:{column}", column_scorer(column)
    assert regex is not None
    return f"regex:{regex}", regex_scorer(regex)


# --- data -------------------------------------------------------------------------------------

REQUIRED = ("model", "id", "query", "answer")


@dataclass(frozen=True)
class Record:
    passed: bool
    chars: int
    tokens: int | None
    text: str = ""


def read_rows(path: str | Path) -> list[dict[str, str]]:
    csv.field_size_limit(1 << 28)  # answers are long and multi-line
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise BacktestError(f"{path}: missing column(s) {', '.join(missing)}")
            return list(reader)
    except OSError as exc:
        raise BacktestError(f"{path}: {exc.strerror or exc}") from None


def _tokens(value: str | None) -> int | None:
    try:
        return int(float(value)) if value not in (None, "") else None
    except ValueError:
        return None


def pair_records(
    rows: Sequence[Row], scorer: Scorer, from_model: str, to_model: str
) -> list[tuple[Record, Record]]:
    """Both versions' records for every (id, query) answered by both, in a stable order."""
    models = sorted({r["model"] for r in rows})
    for wanted in (from_model, to_model):
        if wanted not in models:
            raise BacktestError(f"model {wanted!r} is not in the data; found: {', '.join(models)}")
    sides: dict[str, dict[tuple[str, str], Record]] = {from_model: {}, to_model: {}}
    for row in rows:
        side = sides.get(row["model"])
        if side is None:
            continue
        key = (row["id"], row["query"])
        if key in side:
            raise BacktestError(f"model {row['model']!r} answers id {row['id']!r} twice")
        answer = row["answer"] or ""
        side[key] = Record(scorer(row), len(answer), _tokens(row.get("answer_token")), answer)
    keys = sorted(sides[from_model].keys() & sides[to_model].keys())
    return [(sides[from_model][k], sides[to_model][k]) for k in keys]


def observation(probe: int, record: Record) -> Observation:
    return Observation(
        probe_version_id=probe,
        verdict=ResultVerdict.PASS if record.passed else ResultVerdict.FAIL,
        format_kind="text",
        output_chars=record.chars,
        output_tokens=record.tokens,
        output=record.text,
    )


# --- the detector -----------------------------------------------------------------------------


def replay_detector(
    baseline: Sequence[Observation],
    current: Sequence[Observation],
    config: DriftConfig,
    runs: int = RUNS,
) -> Evaluation:
    """Evaluate the same current window `runs` times (at least `persistence`), carrying the
    alarm rule's state (see above); the last evaluation."""
    from monitor.drift.evaluate import evaluate

    result = evaluate(baseline, current, config)
    for _ in range(max(runs, config.persistence) - 1):
        carried = {v.metric: v.carry for v in result.verdicts}
        result = evaluate(baseline, current, config, previous=carried)
    return result


@dataclass(frozen=True)
class MetricRow:
    metric: str
    family: str
    state: str
    baseline_value: Any
    current_value: Any
    effect: float | None
    effect_name: str | None
    p_adjusted: float | None
    flagged: float  # share of the repeats in which this metric was DRIFTED


@dataclass(frozen=True)
class BacktestReport:
    data: str
    scorer: str
    from_model: str
    to_model: str
    paired: int  # prompts answered by both versions
    probes: int  # probes per window
    repeats: int
    seed: int
    runs: int  # evaluations of each window
    rows: tuple[MetricRow, ...]
    shown_sample: tuple[int, ...]  # indices into the paired prompts of repeat 0, shown in rows
    any_flagged: float  # share of the repeats in which any quality metric was DRIFTED

    def flagged(self, metric: str) -> float:
        return next((r.flagged for r in self.rows if r.metric == metric), 0.0)


def run_backtest(
    pairs: Sequence[tuple[Record, Record]],
    config: DriftConfig,
    *,
    probes: int,
    repeats: int,
    seed: int,
    runs: int = RUNS,
    data: str = "",
    scorer: str = "",
    from_model: str = "",
    to_model: str = "",
) -> BacktestReport:
    """Repeat 0 is shown in full; every repeat draws its own random sample of probes."""
    if not pairs:
        raise BacktestError("no prompt was answered by both models")
    rng = random.Random(seed)
    size = min(probes, len(pairs))
    first: Evaluation | None = None
    shown: tuple[int, ...] = ()
    drifted_counts: dict[str, int] = {}
    any_count = 0
    for _ in range(max(1, repeats)):
        chosen = sorted(rng.sample(range(len(pairs)), size))
        baseline = [observation(i, pairs[i][0]) for i in chosen]
        current = [observation(i, pairs[i][1]) for i in chosen]
        result = replay_detector(baseline, current, config, runs)
        if first is None:
            first, shown = result, tuple(chosen)
        any_count += bool(result.drifted)
        for verdict in result.verdicts:
            drifted_counts.setdefault(verdict.metric, 0)
            if verdict.state is State.DRIFTED:
                drifted_counts[verdict.metric] += 1
    assert first is not None
    rows = tuple(
        MetricRow(
            metric=v.metric,
            family=v.family.value,
            state=v.state.value,
            baseline_value=v.baseline_value,
            current_value=v.current_value,
            effect=v.effect,
            effect_name=v.effect_name,
            p_adjusted=v.p_adjusted,
            flagged=drifted_counts.get(v.metric, 0) / max(1, repeats),
        )
        for v in sorted(first.verdicts, key=lambda v: (v.family is not Family.QUALITY, v.metric))
    )
    return BacktestReport(
        data,
        scorer,
        from_model,
        to_model,
        len(pairs),
        size,
        max(1, repeats),
        seed,
        max(runs, config.persistence),
        rows,
        shown,
        any_count / max(1, repeats),
    )
