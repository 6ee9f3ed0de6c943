"""What judging produces: the format kind, the limits it honours and the judgement itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal


class FormatKind(StrEnum):
    """How the output was shaped, kept as its own signal next to the verdict.

    JSON is extracted from fences and prose so such outputs can still be judged, but a model
    that starts wrapping its JSON in ```json fences is a behaviour change the drift engine must
    see even when every result still passes: it watches this field as a categorical metric.
    """

    CLEAN = "clean"  # the whole output (whitespace aside) is one JSON document
    FENCED = "fenced"  # a ```json or ``` fenced block holds the JSON
    PROSE = "prose"  # a balanced {...} / [...] inside other text holds the JSON
    NOT_JSON = "not_json"  # no JSON found, or the output was rejected before parsing
    EMPTY = "empty"  # None, "" or only whitespace (text probes too)
    TEXT = "text"  # a text probe's non-empty output: not meant to be JSON
    TOOL_CALL = "tool_call"  # a tool_call probe's answer was a call to one of its tools
    NO_TOOL_CALL = "no_tool_call"  # a tool_call probe answered without calling a tool


@dataclass(frozen=True)
class OutputLimits:
    """Bounds that keep judging hostile or runaway output fast and crash-free.

    max_chars: 200,000 characters is ~50k tokens, beyond the output cap any probe sensibly
        sets; longer output is a runaway generation (a loop), which is a failure in itself,
        and the bound keeps parsing plus schema validation in the tens of milliseconds.
    max_depth: real extraction schemas nest well under 10 levels. 64 keeps the C JSON parser
        and jsonschema's recursive descent (several Python frames per level) far below the
        interpreter's recursion limit of 1000, wherever judge() is called from.
    max_check_text: `regex` checks and `extract` see at most this many leading characters;
        20,000 characters (~5k tokens) still covers any reasonable chain-of-thought answer,
        and the bound keeps the cost of ordinary (linear or polynomial) patterns small.
    regex_timeout: seconds one `regex` check or `extract` may take on one output. Judging
        runs in the replay's event loop, so a pattern in catastrophic backtracking (such as
        `^(a|aa)+$` on "aaa...ab") would freeze the whole run; past the timeout the check is
        not met ("regex timed out after 100 ms" in the reason) and `extract` counts as not
        matched. 100 ms is thousands of times what a sane pattern needs on 20,000 characters,
        and still bounds a probe with several checks to well under a second per output.
    max_schema_errors: how many schema errors are kept verbatim; the rest are counted.
    max_tracked_chars: a tracked value (string or canonical JSON) longer than this is cut and
        suffixed with a hash of the whole, so distinct values stay distinct for the
        categorical drift tests while rows stay small.
    """

    max_chars: int = 200_000
    max_depth: int = 64
    max_check_text: int = 20_000
    regex_timeout: float = 0.1
    max_schema_errors: int = 50
    max_tracked_chars: int = 1_000


@dataclass(frozen=True)
class Judgement:
    """The verdict on one output, with every signal the drift engine tracks.

    Provider failures never reach judge(): the runner stores those as errors, so an outage can
    never look like a failed validation.

    verdict: "pass" when the output parsed (json probes) or `extract` matched (text probes),
        or the first tool call was to the expected (or any declared) tool with arguments that
        parsed (tool_call probes), validated against the schema and met every `expect`;
        otherwise "fail".
    parsed: JSON was decoded (possibly after extraction); for text probes, `extract` matched
        (or there is no `extract` and the output is not empty).
    schema_valid: None when the probe has no schema or the output did not parse.
    schema_errors: "<json path>: <message>", every error up to the limit, then "... N more".
    checks: one per `probe.expect`, in order. False when evaluated and not met, including a
        `field` that is missing from the output and a `regex` that timed out (the reason
        names it); None only when it could not be evaluated at all because the output did not
        parse / `extract` did not match or timed out (a `regex` on the raw
        text of a json probe is still evaluated then, unless the output was empty or over
        `max_chars`).
    tracked: `probe.track` path -> JSON scalar, or compact canonical JSON for objects/lists;
        paths missing from the output are absent keys.
    answer: text probes only: the extracted answer (None when `extract` did not match).
    refusal: the provider said the model declined (judge(provider_refusal=True)), in any
        language: then the verdict is "fail" and the reason starts "refused by the provider";
        or the text starts like a refusal, a conservative, English-only heuristic that never
        changes the verdict (see monitor.validation.refusal).
    reason: a short human reason for a fail, None for a pass.
    tool_called / tool_name / tool_args_valid: tool_call probes only, None elsewhere. Whether
        the answer called a tool; the first call's tool name (cut to 64 characters); whether
        its arguments parsed and validated against that tool's parameters (False for a tool
        the probe does not declare; None when nothing was called). For a call, `parsed`,
        `schema_valid`, `schema_errors`, `checks` and `tracked` are about its arguments.

    Every string here is safe to store and show as is: lone surrogates and NUL characters
    from the output are replaced by U+FFFD.
    """

    verdict: Literal["pass", "fail"]
    format_kind: FormatKind
    parsed: bool
    schema_valid: bool | None
    schema_errors: list[str] = field(default_factory=list)
    checks: list[bool | None] = field(default_factory=list)
    tracked: dict[str, Any] = field(default_factory=dict)
    answer: str | None = None
    refusal: bool = False
    reason: str | None = None
    # tool_call probes only (None elsewhere): whether the model called a tool, which one,
    # and whether the arguments parsed and validated against that tool's parameter schema.
    tool_called: bool | None = None
    tool_name: str | None = None
    tool_args_valid: bool | None = None

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"
