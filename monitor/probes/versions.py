"""Probe versions: a content hash of everything that shapes the request or the judging.

Results are compared only within one probe version, so an edited probe starts a new series
instead of looking like drift. The hash covers: set name, probe id, messages, response format,
the schema and every schema file it references, expect checks (in order: `check:<n>` metrics
are positional), tracked fields (as a set), extract and params; and, only where they are used
(so the versions of probes without them stay as they were), the tools with their effective
strict, tool_choice, expect_tool, and strict when a json_schema probe is sent strict. It
ignores what changes neither
the request nor the verdict: enabled, samples, descriptions, comments, YAML formatting, key
order, and where the probes folder sits on disk.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from monitor.probes.strict import probe_strict, tool_strict

if TYPE_CHECKING:
    from monitor.probes.model import Check, Message, Probe, Tool

# Bump only if the canonical form below changes; that re-versions every probe once.
HASH_FORMAT = 1


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no whitespace, UTF-8 kept, NaN refused."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def probe_version(
    *,
    set_name: str,
    probe_id: str,
    messages: Iterable[Message],
    response_format: str,
    schema: Mapping[str, Any] | None,
    schema_resources: Mapping[str, Mapping[str, Any]],
    expect: Iterable[Check],
    track: Iterable[str],
    extract: str | None,
    params: Mapping[str, Any],
    strict: bool = False,
    tools: Iterable[tuple[Tool, bool]] = (),
    tool_choice: str = "required",
    expect_tool: str | None = None,
) -> str:
    """The first 16 hex digits of the SHA-256 of the canonical JSON of the probe's content.

    `strict`: whether a json_schema probe's schema is sent for constrained decoding; `tools`:
    each tool with whether its arguments are.
    """
    content = {
        "format": HASH_FORMAT,
        "set": set_name,
        "id": probe_id,
        "messages": [[m.role, m.content] for m in messages],
        "response_format": response_format,
        "schema": _without_id(schema),
        "resources": {uri: _without_id(doc) for uri, doc in schema_resources.items()},
        "expect": [_check(c) for c in expect],
        "track": sorted(track),
        "extract": extract,
        "params": dict(params),
    }
    # Added only when in use, so that a probe using none of them keeps its version.
    if strict:
        content["strict"] = True
    offered = [
        {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
            "strict": tool_is_strict,
        }
        for tool, tool_is_strict in tools
    ]
    if offered:
        content["tools"] = offered
        content["tool_choice"] = tool_choice
        content["expect_tool"] = expect_tool
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()[:16]


def version_of(probe: Probe) -> str:
    """Recompute a loaded probe's version (equal to `probe.version` unless it was altered)."""
    return probe_version(
        set_name=probe.set_name,
        probe_id=probe.id,
        messages=probe.messages,
        response_format=probe.response_format,
        schema=probe.schema,
        schema_resources=probe.schema_resources,
        expect=probe.expect,
        track=probe.track,
        extract=probe.extract,
        params=probe.params,
        strict=probe.response_format == "json_schema" and probe_strict(probe),
        tools=[(tool, tool_strict(probe, tool)) for tool in probe.tools],
        tool_choice=probe.tool_choice,
        expect_tool=probe.expect_tool,
    )


def _without_id(schema: Mapping[str, Any] | None) -> dict[str, Any] | None:
    # The root "$id" is the schema's place in the probes folder, set by the loader: the inline
    # schema's URI names the probe file, so keeping it would re-version probes on a file move.
    if schema is None:
        return None
    return {k: v for k, v in schema.items() if k != "$id"}


def _check(check: Check) -> dict[str, Any]:
    out: dict[str, Any] = {"field": check.field}
    if check.has_equals:
        out["equals"] = check.equals
    if check.one_of is not None:
        out["one_of"] = list(check.one_of)
    if check.range is not None:
        out["range"] = [float(check.range[0]), float(check.range[1])]
    if check.regex is not None:
        out["regex"] = check.regex
    return out
