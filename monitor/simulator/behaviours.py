"""What the simulated model says: the text of one answer, given a behaviour.

An answer is JSON when the request carries a schema (OpenAI `response_format` json_schema,
Anthropic `output_format`), when the rule has a `schema:` or `fields:`, or when the request
asks for a JSON object; otherwise it is text (`output:` or a stock sentence). Synthesised
instances are cached per (schema, rule spec, behaviour), so a request costs a dict lookup and a
`json.dumps` unless the answer needs padding.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from monitor.simulator.model import Behaviour, RuleSpec
from monitor.simulator.schemavalues import get_path, set_path
from monitor.simulator.synth import SchemaSynth

_log = logging.getLogger(__name__)
REFUSAL = "I'm sorry, but I can't help with that."
NON_JSON = "I looked into this, but I can't give a definite answer in the requested format."
TEXT_ANSWER = "This is a simulated answer."
WRONG_TEXT = "This is a different simulated answer."
_FILLER = (
    "The figures above were taken directly from the document. "
    "No further adjustments were needed for this item. "
    "All values are reported as they appear in the source. "
)
_OBJECT_SCHEMA: dict[str, Any] = {"type": "object"}
_RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["result"],
    "properties": {"result": {"type": "string"}},
}
_CACHE_LIMIT = 1024


@dataclass(frozen=True)
class Answer:
    text: str
    finish_reason: str  # OpenAI vocabulary: stop, length, content_filter; mapped for Anthropic
    refusal: bool = False


def estimate_tokens(text: str) -> int:
    """Roughly four characters a token, the usual rule of thumb for English text."""
    return math.ceil(len(text) / 4)


class Composer:
    """Builds answers; holds the caches. One per app, used only from its event loop."""

    def __init__(self) -> None:
        self._synths: dict[str, SchemaSynth] = {}
        self._instances: dict[tuple[str, int, str], Any] = {}

    def synth(self, schema: Mapping[str, Any]) -> tuple[str, SchemaSynth]:
        """The cache key and synthesiser for `schema`; raises synth.SchemaError if invalid."""
        key = json.dumps(schema, sort_keys=True, separators=(",", ":"))
        found = self._synths.get(key)
        if found is None:
            if len(self._synths) >= _CACHE_LIMIT:
                self._synths.clear()  # a client inventing schemas forever must not grow us
                self._instances.clear()
            found = self._synths[key] = SchemaSynth(schema)
        return key, found

    def compose(
        self,
        spec: RuleSpec,
        behaviour: Behaviour,
        rng: random.Random,
        *,
        schema: Mapping[str, Any] | None,
        json_requested: bool,
        cycle: int,
        max_tokens: int | None,
    ) -> Answer:
        finish = "stop"
        if behaviour == "refusal":
            return Answer(REFUSAL, spec.finish_reason or "stop", refusal=True)
        if behaviour == "empty":
            return Answer("", spec.finish_reason or "stop")
        target = int(spec.length.draw(rng)) if spec.length is not None else None
        schema = schema if schema is not None else spec.schema
        if spec.output:
            text = self._text(spec, behaviour, rng, cycle, target)
        elif schema is not None or spec.fields or json_requested:
            text = self._json(spec, behaviour, schema, target)
        else:
            text = self._text(spec, behaviour, rng, cycle, target)
        if behaviour == "truncated":
            text, finish = text[: max(1, len(text) // 2)], "length"
        if max_tokens is not None and estimate_tokens(text) > max_tokens:
            text, finish = text[: max_tokens * 4], "length"
        return Answer(text, spec.finish_reason or finish)

    def _text(
        self,
        spec: RuleSpec,
        behaviour: Behaviour,
        rng: random.Random,
        cycle: int,
        target: int | None,
    ) -> str:
        if behaviour in ("non_json", "schema_invalid"):
            return _pad(NON_JSON, target)
        if behaviour == "wrong_value":
            choices = spec.wrong_output or (WRONG_TEXT,)
        else:
            choices = spec.output or (TEXT_ANSWER,)
        index = rng.randrange(len(choices)) if spec.pick == "random" else cycle % len(choices)
        text = _pad(choices[index], target)
        return _wrap(text, behaviour)

    def _json(
        self,
        spec: RuleSpec,
        behaviour: Behaviour,
        schema: Mapping[str, Any] | None,
        target: int | None,
    ) -> str:
        if behaviour == "non_json":
            return _pad(NON_JSON, target)
        if schema is None:
            schema = _OBJECT_SCHEMA if spec.fields else _RESULT_SCHEMA
        schema_key, synth = self.synth(schema)
        kind = behaviour if behaviour in ("schema_invalid", "wrong_value") else "valid"
        # id(spec) is stable: specs live in the scenario as long as the app does.
        key = (schema_key, id(spec), kind)
        if key in self._instances:
            instance = self._instances[key]
        else:
            if kind == "schema_invalid":
                instance = synth.invalid(spec.fields)
            elif kind == "wrong_value":
                instance = synth.wrong(spec.fields, spec.wrong_fields, spec.wrong_paths)
            else:
                instance = synth.valid(spec.fields)
                if not synth.is_valid(instance):
                    # Once per schema and rule (the result is cached): a `fields:` value that
                    # breaks the schema, or a schema beyond what the synthesiser understands.
                    _log.warning("simulator: the `valid` answer does not validate: %s", instance)
            self._instances[key] = instance
        if target is not None:
            instance = _pad_instance(synth, instance, target)
        if behaviour == "fenced":
            return "```json\n" + json.dumps(instance, indent=2) + "\n```"
        return _wrap(json.dumps(instance), behaviour)


def _wrap(text: str, behaviour: Behaviour) -> str:
    if behaviour == "fenced":
        return "```\n" + text + "\n```"
    if behaviour == "prose":
        return "Here is the result: " + text + "\nLet me know if you need anything else."
    return text


def _pad(text: str, target: int | None) -> str:
    if target is None or len(text) >= target:
        return text
    filler = _FILLER * (target // len(_FILLER) + 1)
    return ((text + " " if text else "") + filler)[:target].rstrip()


def _pad_instance(synth: SchemaSynth, instance: Any, target: int) -> Any:
    missing = target - len(json.dumps(instance))
    path = synth.free_text_path(instance)
    if missing <= 0 or path is None:
        return instance  # no field can take free text without breaking the schema
    current = str(get_path(instance, path) or "")
    with_key = set_path(instance, path, current)
    missing = target - len(json.dumps(with_key))  # a newly added key takes room too
    return set_path(with_key, path, _pad(current, len(current) + missing))
