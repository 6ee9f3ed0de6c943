"""The probe-set model: what a probe asks and how its answer is judged.

These are plain frozen dataclasses built by `monitor.probes.loader`; everything downstream
(runner, validation, store) reads them and never re-parses YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ResponseFormat = Literal["json_schema", "json", "text", "tool_call"]


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class Check:
    """One `expect` entry. Exactly one of equals / one_of / range / regex is set.

    `field` is a dotted path into the parsed JSON (json probes) and must be None for a check
    on the raw text (`regex` without field) or on a text probe's extracted answer.
    """

    index: int
    field: str | None = None
    equals: Any = None
    has_equals: bool = False  # equals: null is a real expectation, so presence is explicit
    one_of: tuple[Any, ...] | None = None
    range: tuple[float, float] | None = None
    regex: str | None = None

    def describe(self) -> str:
        subject = self.field if self.field is not None else "answer"
        if self.has_equals:
            return f"{subject} == {self.equals!r}"
        if self.one_of is not None:
            return f"{subject} in {list(self.one_of)!r}"
        if self.range is not None:
            return f"{subject} in [{self.range[0]}, {self.range[1]}]"
        target = self.field if self.field is not None else "raw text"
        return f"{target} ~ /{self.regex}/"


@dataclass(frozen=True)
class Tool:
    """A function a `tool_call` probe offers the model; `parameters` is a JSON Schema."""

    name: str
    parameters: dict[str, Any]
    description: str = ""


@dataclass(frozen=True)
class Probe:
    """One probe, fully resolved: defaults applied, schema loaded, version hashed."""

    id: str
    set_name: str
    messages: tuple[Message, ...]
    response_format: ResponseFormat
    schema: dict[str, Any] | None  # the resolved root schema (may contain local $refs)
    expect: tuple[Check, ...]
    track: tuple[str, ...]
    extract: str | None
    samples: int | None  # None: the target's / config default
    params: dict[str, Any]
    enabled: bool
    version: str  # content hash of everything that shapes the request and the judging
    source_file: str
    line: int | None = None
    # Local schemas reachable through $ref, keyed by their URI; see monitor.probes.schemas.
    schema_resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    description: str = ""  # free text for people; not part of the version
    # tool_call probes: the tools offered, which call is forced, and the call expected.
    tools: tuple[Tool, ...] = ()
    tool_choice: str = "required"  # "auto", "required", "none" or a tool's name
    expect_tool: str | None = None
    # Constrained decoding of the schema (and tool arguments): None = auto, i.e. on when the
    # schema is strict-compatible (monitor.probes.strict); True/False as the probe says.
    strict: bool | None = None

    @property
    def key(self) -> str:
        return f"{self.set_name}/{self.id}"


@dataclass(frozen=True)
class ProbeSet:
    name: str
    description: str
    file: str
    probes: tuple[Probe, ...]
    # The probes folder the file was found under: schema_file and $ref may not leave it.
    root: str | None = None

    def enabled_probes(self) -> tuple[Probe, ...]:
        return tuple(p for p in self.probes if p.enabled)
