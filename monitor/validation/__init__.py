"""Judging model output: JSON extraction, schema validation, checks, tracked fields.

    judge(probe, text, *, tool_calls=(), provider_refusal=False) -> Judgement

The pieces, one job each:
    result.py    FormatKind, OutputLimits, Judgement: what judging produces
    jsontext.py  strict, bounded JSON decoding; CLEAN / FENCED / PROSE extraction
    schema.py    jsonschema against a local-only referencing.Registry; asserted formats
    checks.py    `expect` semantics: equals / one_of / range / regex
    fields.py    dotted paths, JSON equality, values safe to store
    refusal.py   the refusal heuristic
    compiled.py  per-probe-version compilation and its cache (`prepare`)
    judge.py     judge() itself

Model output that fails is a Judgement, never an exception; errors from the provider never
get here (the runner stores them as errors).
"""

from monitor.validation.compiled import CompiledProbe, prepare
from monitor.validation.judge import DEFAULT_LIMITS, judge
from monitor.validation.result import FormatKind, Judgement, OutputLimits

__all__ = [
    "DEFAULT_LIMITS",
    "CompiledProbe",
    "FormatKind",
    "Judgement",
    "OutputLimits",
    "judge",
    "prepare",
]
