"""What is measured: observations -> one MetricData per metric, paired by probe version.

Only probe versions present in both windows are kept (a version on one side only was edited,
added or removed since the baseline: comparing it would show the edit, not the model). A probe
version enters a metric's dict on a side only when it has a value for that metric there, so
"data on both sides" means: a key in both dicts. A metric with no data at all is skipped; one
with data on one side only is kept, so the verdict can say why it is not tested.

Which results feed which metric (SPEC names):
  quality (errors excluded: an outage is not behaviour)
    pass_rate         BINARY       verdict == "pass", over pass/fail results
    check:<n>         BINARY       the n-th expect check (1-based), where it could be evaluated
    json_parse_rate   BINARY       parsed, over results of JSON probe versions
    format            CATEGORICAL  format_kind of results of JSON probe versions
    code_fence_rate   BINARY       the output holds a Markdown code fence, over the stored
                                   outputs of text results (format_kind "text")
    refusal_rate      BINARY       the refusal flag: the provider declined (OpenAI `refusal`,
                                   Anthropic stop_reason "refusal"), or the text heuristic
    finish_reason     CATEGORICAL  the provider's normalised finish reason
    field:<name>      NUMERIC if every value on both sides is a finite int/float (not bool),
                      else CATEGORICAL on a canonical string (JSON null is "null"); results
                      lacking the field add nothing (when the schema requires it, pass_rate
                      sees the failure)
    length_chars, length_tokens   NUMERIC
    text_distribution TEXT         the output strings themselves, where stored
    tool_call_rate    BINARY       tool_called, over results of tool_call probe versions
    tool_name         CATEGORICAL  the name of the tool called, over results with a call
    tool_args_valid   BINARY       the call's arguments validated, over results with a call
  operational
    error_rate        BINARY       verdict == "error", over all results
    latency           NUMERIC      latency_ms of non-error results

NUMERIC values are ints or floats as stored (counts stay ints); NaN/inf are dropped.
A JSON probe version is one with no "text" format_kind on either side and no tool_called
value (a tool_call probe version: its judge records tool_called on every judged result).
Observations carry no response_format, and the result-level rule ("format_kind not text") would
count a text probe's empty output ("empty") as a JSON parse failure. The tool metrics stay
absent unless some result carries tool_called: results stored before it was recorded have
None there, like every non-tool probe.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from itertools import accumulate
from operator import attrgetter
from typing import Any, NamedTuple

from monitor.drift.model import Family, MetricData, MetricKind, Observation
from monitor.store.states import ResultVerdict

Groups = dict[int, list[Observation]]
Values = dict[int, list[Any]]
_MISSING: Any = object()  # a tracked field absent from the output (JSON null is a value)
# Bound once: an enum attribute looked up per result costs several times the comparison.
_PASS, _ERROR = ResultVerdict.PASS, ResultVerdict.ERROR
# A CommonMark fence: a line opening with ``` or ~~~ after at most three spaces. Why a metric of
# its own: a model that starts wrapping its answers in fences breaks every consumer that runs or
# parses them (LLMDrift: GPT-4's directly executable code fell from 52% to 10% for exactly this),
# and with one output per prompt that shape is the loudest signal there is.
_FENCE = re.compile(r"^ {0,3}(?:`{3}|~{3})", re.MULTILINE)


def has_code_fence(text: str) -> bool:
    # The substring checks run in C and rule out most outputs before the regex is needed.
    return ("```" in text or "~~~" in text) and _FENCE.search(text) is not None


def group_by_version(observations: Iterable[Observation]) -> Groups:
    groups: Groups = {}
    for o in observations:
        groups.setdefault(o.probe_version_id, []).append(o)
    return groups


def pair_versions(baseline: Groups, current: Groups) -> tuple[list[int], int]:
    """(probe versions on both sides, sorted; how many are on one side only)."""
    both = baseline.keys() & current.keys()
    return sorted(both), len(baseline.keys() ^ current.keys())


def canonical(v: Any) -> str:
    """One string per JSON value: 1 and 1.0 agree, objects compare by content."""
    if isinstance(v, str):
        return v
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_COLUMNS = attrgetter(
    "verdict",
    "format_kind",
    "parsed",
    "refusal",
    "finish_reason",
    "output_chars",
    "output_tokens",
    "latency_ms",
    "checks",
    "tracked",
    "output",
)
# Read apart from _COLUMNS: most probe sets have no tool_call probe, and then one C-level pass
# over tool_called is all these metrics cost.
_TOOL_CALLED = attrgetter("tool_called")
_TOOL_CALL = attrgetter("tool_name", "tool_args_valid")


class _Side:
    """One window's paired observations as flat columns, cut into per-version lists.

    attrgetter + zip(*) builds every column in C, and slicing them per version is cheap:
    several times faster than a comprehension per probe version and metric, which matters
    because evaluate() runs up to 10^6 times in calibration.
    """

    def __init__(self, groups: Groups, versions: Sequence[int]) -> None:
        ok = [[o for o in groups[pv] if o.verdict != _ERROR] for pv in versions]
        self.ok = [o for g in ok for o in g]
        self.spans = _spans(versions, [len(g) for g in ok])
        self.all_spans = _spans(versions, [len(groups[pv]) for pv in versions])
        self.errors = [o.verdict == _ERROR for pv in versions for o in groups[pv]]

    def cut(self, column: list[Any], *, every: bool = False, missing: Any = None) -> Values:
        """Per-version lists of a column over ok (or all) results, without `missing`."""
        gaps = column.count(missing)
        if gaps == len(column):  # a signal these results don't carry (verdict-only backtests)
            return {}
        out = {pv: column[a:b] for pv, a, b in (self.all_spans if every else self.spans)}
        if not gaps:
            return out
        kept = {pv: [v for v in vs if v is not missing] for pv, vs in out.items()}
        return {pv: vs for pv, vs in kept.items() if vs}


def _spans(versions: Sequence[int], sizes: list[int]) -> list[tuple[int, int, int]]:
    """(version, start, end) of each non-empty version in the flat columns."""
    ends = list(accumulate(sizes))
    return [(pv, e - n, e) for pv, n, e in zip(versions, sizes, ends, strict=True) if n]


def _columns(side: _Side, n_checks: int, fields: list[str]) -> dict[str, Values]:
    """Metric name -> per-version values on one side (the SPEC order is the caller's)."""
    cols: dict[str, Values] = {"error_rate": side.cut(side.errors, every=True)}
    if not side.ok:
        return cols
    columns = [list(c) for c in zip(*map(_COLUMNS, side.ok), strict=True)]
    verdict, kind, parsed, refusal, finish, chars, tokens, latency, checks, tracked, text = columns
    cols |= {
        "pass_rate": side.cut([v == _PASS for v in verdict]),
        "json_parse_rate": side.cut([p if k else None for p, k in zip(parsed, kind, strict=True)]),
        "format": side.cut(kind),
        "code_fence_rate": side.cut(
            [
                has_code_fence(t) if k == "text" and t is not None else None
                for k, t in zip(kind, text, strict=True)
            ]
        ),
        "refusal_rate": side.cut(refusal),
        "finish_reason": side.cut(finish),
        "length_chars": side.cut(chars),
        "length_tokens": side.cut(tokens),
        "latency": side.cut(latency),
        "text_distribution": side.cut(text),
    }
    called = list(map(_TOOL_CALLED, side.ok))
    tool_calls = side.cut(called)
    if tool_calls:
        cols["tool_call_rate"] = tool_calls
        # Over the calls made: a result without a call has no name and no arguments.
        made = [_TOOL_CALL(o) if c else (None, None) for o, c in zip(side.ok, called, strict=True)]
        names, valid = (list(c) for c in zip(*made, strict=True))
        cols["tool_name"], cols["tool_args_valid"] = side.cut(names), side.cut(valid)
    for i in range(n_checks):
        col = [c[i] if c is not None and len(c) > i else None for c in checks]
        cols[f"check:{i + 1}"] = side.cut(col)
    for name in fields:
        col = [t.get(name, _MISSING) if t is not None else _MISSING for t in tracked]
        cols[f"field:{name}"] = side.cut(col, missing=_MISSING)
    return cols


def compute_metrics(
    baseline: Sequence[Observation], current: Sequence[Observation]
) -> list[MetricData]:
    """Every metric with data, in SPEC order."""
    b, c = group_by_version(baseline), group_by_version(current)
    return build_metrics(b, c, pair_versions(b, c)[0])


class _Shape(NamedTuple):
    """What decides which metrics exist, from one side's results."""

    text: set[int]  # probe versions with a text output
    n_checks: int
    fields: set[str]


def _shape(side: _Side) -> _Shape:
    return _Shape(
        {o.probe_version_id for o in side.ok if o.format_kind == "text"},
        max((len(o.checks) for o in side.ok if o.checks), default=0),
        {k for o in side.ok if o.tracked for k in o.tracked},
    )


def build_metrics(
    baseline: Groups,
    current: Groups,
    paired: Sequence[int],
    cache: dict[Any, Any] | None = None,
) -> list[MetricData]:
    """compute_metrics() on grouped observations; `paired` from pair_versions().

    cache: a dict the caller keeps for one baseline, to reuse the baseline's columns when many
    windows are compared with it (calibration, power); its size grows only with the probe
    versions and metric shapes seen.
    """
    key = ("side", tuple(paired))
    found: tuple[_Side, _Shape, dict[Any, dict[str, Values]]] | None = (
        cache.get(key) if cache is not None else None
    )
    if found is None:
        side_b = _Side(baseline, paired)
        found = (side_b, _shape(side_b), {})
        if cache is not None:
            cache[key] = found
    side_b, shape_b, columns_b = found
    side_c = _Side(current, paired)
    shape_c = _shape(side_c)
    text = shape_b.text | shape_c.text
    n_checks = max(shape_b.n_checks, shape_c.n_checks)
    fields = sorted(shape_b.fields | shape_c.fields)
    cols_key = (n_checks, tuple(fields))
    if (cols_b := columns_b.get(cols_key)) is None:
        cols_b = columns_b[cols_key] = _columns(side_b, n_checks, fields)
    cols_c = _columns(side_c, n_checks, fields)
    tools = [cols.get("tool_call_rate", {}).keys() for cols in (cols_b, cols_c)]
    not_json = text.union(*tools)  # tool_call probe versions are no JSON probes either

    Q, OP = Family.QUALITY, Family.OPERATIONAL
    B, C, N = MetricKind.BINARY, MetricKind.CATEGORICAL, MetricKind.NUMERIC
    T = MetricKind.TEXT
    plan = [("pass_rate", B, Q)] + [(f"check:{i + 1}", B, Q) for i in range(n_checks)]
    plan += [("json_parse_rate", B, Q), ("format", C, Q), ("code_fence_rate", B, Q)]
    plan += [("refusal_rate", B, Q)]
    plan += [("finish_reason", C, Q)] + [(f"field:{name}", C, Q) for name in fields]
    plan += [("length_chars", N, Q), ("length_tokens", N, Q), ("text_distribution", T, Q)]
    plan += [("tool_call_rate", B, Q), ("tool_name", C, Q), ("tool_args_valid", B, Q)]
    plan += [("error_rate", B, OP), ("latency", N, OP)]

    out: list[MetricData] = []
    for name, kind, family in plan:
        b, c = cols_b.get(name, {}), cols_c.get(name, {})
        if not_json and name in ("json_parse_rate", "format"):
            b, c = _without(b, not_json), _without(c, not_json)
        if not b and not c:
            continue
        if name.startswith("field:"):
            b, c, kind = _field_kind(b, c)
        elif name == "latency":
            b, c = _finite(b), _finite(c)
        out.append(MetricData(name, kind, family, b, c))
    return out


def _without(values: Values, versions: set[int]) -> Values:
    return {pv: vs for pv, vs in values.items() if pv not in versions}


def _finite(values: Values) -> Values:
    """Without NaN/inf (never expected): ranks and distances need numbers."""
    if all(all(map(math.isfinite, vs)) for vs in values.values()):
        return values
    out = {pv: [v for v in vs if math.isfinite(v)] for pv, vs in values.items()}
    return {pv: vs for pv, vs in out.items() if vs}


def _field_kind(b: Values, c: Values) -> tuple[Values, Values, MetricKind]:
    values = [v for side in (b, c) for vs in side.values() for v in vs]
    # type() rather than isinstance(): bool is an int subclass but a category here.
    if {type(v) for v in values} <= {int, float} and _all_finite(values):
        return b, c, MetricKind.NUMERIC
    nb, nc = ({pv: [canonical(v) for v in vs] for pv, vs in side.items()} for side in (b, c))
    return nb, nc, MetricKind.CATEGORICAL


def _all_finite(values: list[Any]) -> bool:
    try:
        return all(map(math.isfinite, values))
    except OverflowError:  # an int beyond float range: compared as text then
        return False
