"""Everything judging needs from a probe, compiled once per probe version and cached."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import regex

from monitor.errors import ProbeFileError
from monitor.probes.model import Probe
from monitor.validation.checks import (
    CompiledCheck,
    InvalidCheck,
    Pattern,
    compile_check,
    compile_regex,
)
from monitor.validation.fields import FieldPath, parse_path
from monitor.validation.schema import InvalidSchema, SchemaValidator, compile_validator

# Probe versions are few (one per edit of a probe); the bound only protects a long-running
# daemon whose probe files are edited over months. Dropping the oldest entry is enough.
_CACHE_SIZE = 4096
_CACHE: dict[str, CompiledProbe] = {}


@dataclass(frozen=True, slots=True)
class CompiledProbe:
    source: Probe
    text: bool
    validator: SchemaValidator | None
    checks: tuple[CompiledCheck, ...]
    track: tuple[tuple[str, FieldPath], ...]
    # Compiled like the checks' regexes (the `regex` package, VERSION0) so that judging can
    # bound it with the same timeout; see monitor.validation.checks.
    extract: Pattern | None
    # tool_call probes: a validator for each tool's arguments, by tool name, and the call
    # the probe expects (None: any of its tools).
    tool_call: bool = False
    tool_validators: Mapping[str, SchemaValidator] = dataclasses.field(default_factory=dict)
    expect_tool: str | None = None


def prepare(probe: Probe) -> CompiledProbe:
    """The compiled form of `probe`, from the cache when its version was seen before.

    Raises ProbeFileError when the schema or a regex is invalid: the loader rejects those,
    so this means a bug upstream, and the runner should record it rather than judge. Call it
    at load time to surface such problems early.

    The cache key is `probe.version`, the content hash of everything that shapes judging.
    An entry is only reused for a different Probe object after comparing the judging fields,
    so two probes that share a version string by mistake (hand-built in tests, say) can never
    be judged with each other's schema.
    """
    entry = _CACHE.get(probe.version)
    if entry is not None:
        if entry.source is probe:
            return entry
        if _same_judging(entry.source, probe):
            entry = dataclasses.replace(entry, source=probe)  # next time: identity fast path
            _CACHE[probe.version] = entry
            return entry
    entry = _compile(probe)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[probe.version] = entry
    return entry


def _same_judging(a: Probe, b: Probe) -> bool:
    return (
        a.response_format == b.response_format
        and a.expect == b.expect
        and a.track == b.track
        and a.extract == b.extract
        and a.schema == b.schema
        and a.schema_resources == b.schema_resources
        and a.tools == b.tools
        and a.expect_tool == b.expect_tool
    )


def _compile(probe: Probe) -> CompiledProbe:
    text = probe.response_format == "text"
    try:
        validator = (
            compile_validator(probe.schema, probe.schema_resources)
            if probe.schema is not None and not text
            else None
        )
        checks = tuple(
            compile_check(check, position, text_probe=text)
            for position, check in enumerate(probe.expect, start=1)
        )
        extract = compile_regex(probe.extract) if probe.extract is not None and text else None
        tool_validators = {
            tool.name: _tool_validator(probe, tool.name, tool.parameters) for tool in probe.tools
        }
    except InvalidSchema as exc:
        raise _located(probe, "schema", f"invalid JSON Schema: {exc}") from None
    except InvalidCheck as exc:
        raise _located(probe, "expect", str(exc)) from None
    except regex.error as exc:
        raise _located(probe, "extract", f"invalid regex: {exc}") from None
    track = tuple((name, parse_path(name)) for name in probe.track) if not text else ()
    return CompiledProbe(
        probe,
        text,
        validator,
        checks,
        track,
        extract,
        tool_call=probe.response_format == "tool_call",
        tool_validators=tool_validators,
        expect_tool=probe.expect_tool,
    )


def _tool_validator(probe: Probe, name: str, parameters: dict[str, Any]) -> SchemaValidator:
    # Tool parameters are stored bundled (self-contained), so they need no other resources.
    try:
        return compile_validator(parameters, {})
    except InvalidSchema as exc:
        raise _located(probe, f"tools.{name}.parameters", f"invalid JSON Schema: {exc}") from None


def _located(probe: Probe, key: str, problem: str) -> ProbeFileError:
    return ProbeFileError(
        problem, file=probe.source_file, key=f"probes.{probe.id}.{key}", line=probe.line
    )
