"""Scenario files: parse, check and resolve them into a `monitor.simulator.model.Scenario`.

The format is documented in docs/simulator.md. Every problem is reported as a
`ConfigError` naming the file, the key path (e.g. `phases.june.rules.invoice.mix`) and,
when the YAML tells us, the line.

Overrides are layered shallowly, later wins, one key at a time:
scenario `defaults` < the rule itself < the phase's `defaults` < the phase's `rules.<name>`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from monitor.errors import ConfigError
from monitor.simulator.fileformat import DistIn, FaultIn, PhaseIn, ScenarioIn, SpecIn
from monitor.simulator.model import (
    DEFAULT_RULE,
    Dist,
    FaultSpec,
    Phase,
    Rule,
    RuleSpec,
    Scenario,
)
from monitor.simulator.yamlpos import line_of, plain, render_loc


def load_scenario(path: str | Path) -> Scenario:
    """Read, check and resolve the scenario file at `path`; raises ConfigError."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read scenario file: {exc.strerror or exc}", file=file) from exc
    try:
        tree = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ConfigError(
            f"invalid YAML: {exc.problem or exc}",
            file=file,
            line=mark.line + 1 if mark is not None else None,
        ) from exc
    return parse_scenario(tree if tree is not None else {}, file=file)


def parse_scenario(data: Any, *, file: str = "<scenario>") -> Scenario:
    """Check and resolve a scenario given as data (a dict, or a ruamel tree for line numbers)."""
    if not isinstance(data, Mapping):
        raise ConfigError("a scenario must be a mapping (key: value) at the top level", file=file)
    try:
        raw = ScenarioIn.model_validate(plain(data))
    except ValidationError as exc:
        # With unions pydantic reports one error per member; the deepest is the one that
        # names what the user got wrong (`length.mean`), not "should be an integer".
        err = max(exc.errors(), key=lambda e: len(e["loc"]))
        loc = tuple(err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        raise ConfigError(
            message,
            file=file,
            key=render_loc(data, loc, missing=err["type"] == "missing"),
            line=line_of(data, loc),
        ) from exc
    return _Resolver(raw, data, file).scenario()


def default_scenario() -> Scenario:
    """The built-in scenario: every request answered `valid`, the requested model echoed."""
    return parse_scenario({"name": "built-in default"}, file="<built-in>")


class _Resolver:
    def __init__(self, raw: ScenarioIn, tree: Any, file: str) -> None:
        self.raw, self.tree, self.file = raw, tree, file

    def fail(self, problem: str, *loc: str | int) -> ConfigError:
        return ConfigError(
            problem, file=self.file, key=render_loc(self.tree, loc), line=line_of(self.tree, loc)
        )

    def regex(self, pattern: str | None, *loc: str | int) -> re.Pattern[str] | None:
        if pattern is None:
            return None
        try:
            return re.compile(pattern)
        except re.error as exc:
            raise self.fail(f"invalid regular expression: {exc}", *loc) from exc

    def scenario(self) -> Scenario:
        raw = self.raw
        rules: list[Rule] = []
        for i, r in enumerate(raw.rules):
            name = r.name or f"rule{i + 1}"
            if name == DEFAULT_RULE or name in {x.name for x in rules}:
                raise self.fail(f"rule name {name!r} is reserved or used twice", "rules", i)
            pattern = self.regex(r.match, "rules", i, "match")
            model_pattern = self.regex(r.match_model, "rules", i, "match_model")
            rules.append(Rule(name, pattern, model_pattern, r.api))
        rules.append(Rule(DEFAULT_RULE))
        layers: dict[str, SpecIn] = {
            rule.name: r for rule, r in zip(rules, raw.rules, strict=False)
        }
        layers[DEFAULT_RULE] = raw.default or SpecIn()

        phases_in = raw.phases or {"default": PhaseIn()}
        names = list(phases_in)
        phases, specs = [], {}
        for idx, (pname, p) in enumerate(phases_in.items()):
            loc: tuple[str, ...] = ("phases", pname)
            nxt = p.next
            if p.after_requests is not None and nxt is None:
                if idx + 1 == len(names):
                    raise self.fail("the last phase needs `next:` to use after_requests", *loc)
                nxt = names[idx + 1]
            if nxt is not None and nxt not in phases_in:
                raise self.fail(f"unknown phase {nxt!r}; phases: {', '.join(names)}", *loc, "next")
            phases.append(
                Phase(
                    pname,
                    model=p.model if p.model is not None else raw.model,
                    fingerprint=p.fingerprint if p.fingerprint is not None else raw.fingerprint,
                    after_requests=p.after_requests,
                    next=nxt,
                )
            )
            for rname in p.rules:
                if rname not in layers:
                    known = ", ".join(layers)
                    raise self.fail(f"no rule named {rname!r}; rules: {known}", *loc, "rules")
            for i, rule in enumerate(rules):
                stack = [raw.defaults, layers[rule.name], p.defaults, p.rules.get(rule.name)]
                where: tuple[str | int, ...] = (
                    (*loc, "rules", rule.name)
                    if rule.name in p.rules
                    else ("default",)
                    if rule.name == DEFAULT_RULE
                    else ("rules", i)
                )
                specs[(pname, rule.name)] = self.spec(stack, where)
        start = raw.start_phase or names[0]
        if start not in phases_in:
            raise self.fail(f"unknown phase {start!r}; phases: {', '.join(names)}", "start_phase")
        return Scenario(raw.name, raw.seed, tuple(rules), tuple(phases), start, specs, self.file)

    def spec(self, stack: list[SpecIn | None], where: tuple[str | int, ...]) -> RuleSpec:
        merged: dict[str, Any] = {}
        for layer in stack:
            if layer is not None:
                merged.update({k: getattr(layer, k) for k in layer.model_fields_set})
        wrong = merged.get("wrong_fields") or {}
        spec = RuleSpec(
            behaviour=merged.get("behaviour") or "valid",
            mix=tuple((merged.get("mix") or {}).items()),
            output=_texts(merged.get("output")),
            wrong_output=_texts(merged.get("wrong_output")),
            pick=merged.get("pick") or "cycle",
            fields=merged.get("fields") or {},
            wrong_fields=wrong if isinstance(wrong, dict) else {},
            wrong_paths=tuple(wrong) if isinstance(wrong, list) else (),
            schema=merged.get("schema_"),
            length=_dist(merged.get("length")),
            latency_ms=_dist(merged.get("latency_ms")),
            finish_reason=merged.get("finish_reason"),
            faults=tuple(_fault(f) for f in merged.get("faults") or ()),
        )
        uses_wrong = spec.behaviour == "wrong_value" or any(b == "wrong_value" for b, _ in spec.mix)
        if spec.output and uses_wrong and not spec.wrong_output:
            raise self.fail(
                "behaviour wrong_value on a rule with `output:` needs `wrong_output:`", *where
            )
        return spec


def _texts(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _dist(value: float | DistIn | None) -> Dist | None:
    if value is None:
        return None
    if isinstance(value, DistIn):
        return Dist(value.mean, value.sd)
    return Dist(float(value))


def _fault(f: FaultIn) -> FaultSpec:
    status = f.status or (429 if f.kind == "rate_limit" else 500)
    retry_after = f.retry_after
    if f.kind == "rate_limit" and retry_after is None:
        retry_after = 1.0  # real providers always say when to come back after a 429
    return FaultSpec(
        kind=f.kind,
        rate=f.rate,
        first_n=f.first_n,
        status=status,
        retry_after=retry_after,
        variant=f.variant,
        hang_seconds=f.hang_seconds,
    )
