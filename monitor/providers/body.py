"""Assembling and reading back request bodies, for the adapters: a target's `extra_body`
merged into what the adapter built, and the driftmon param behind a field a provider rejects.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

from monitor.errors import ErrorClass, PermanentProviderError

# Body fields no adapter lets extra_body replace: they carry the request itself.
_ALWAYS_PROTECTED = frozenset({"model", "messages", "input", "stream", "system"})


def merge_extra_body(
    body: dict[str, Any],
    extra: Mapping[str, Any],
    owned: Iterable[tuple[str, ...]],
    origins: dict[str, str],
) -> dict[str, Any]:
    """`body` with a target's `extra_body` merged in last (objects merged key by key).

    `owned` lists the paths the adapter filled for this request (structured output, tools);
    extra_body may not replace them, nor the request itself (model, messages, ...): such a
    clash is a BAD_REQUEST, raised before anything is sent. `origins` learns the fields
    extra_body set, so a provider rejecting one of them is reported as extra_body's.
    """
    protected = [(name,) for name in _ALWAYS_PROTECTED] + list(owned)
    merged: dict[str, Any] = copy.deepcopy(body)
    clashes: list[str] = []

    def merge(target: dict[str, Any], fields: Mapping[str, Any], path: tuple[str, ...]) -> None:
        for key, value in fields.items():
            here = (*path, key)
            current = target.get(key)
            if isinstance(current, dict) and isinstance(value, Mapping):
                if here in protected:
                    clashes.append(".".join(here))
                    continue
                merge(current, value, here)
                continue
            if any(p[: len(here)] == here or here[: len(p)] == p for p in protected):
                clashes.append(".".join(here))
                continue
            target[key] = value
            origins[".".join(here)] = "extra_body." + ".".join(here)

    merge(merged, extra, ())
    if clashes:
        raise PermanentProviderError(
            ErrorClass.BAD_REQUEST,
            f"extra_body may not set {', '.join(sorted(clashes))}: driftmon sets "
            "it for this request",
        )
    return merged


# 'max_tokens' or `temperature` in a provider's message: a field name, quoted.
QUOTED_NAME = re.compile(r"['`\"]([A-Za-z_][\w.]*(?:\[\d+\][\w.]*)*)['`\"]")
_PATH_SEGMENTS = re.compile(r"\.|\[\d+\]\.?")


def origin_of(field_path: str, origins: Mapping[str, str]) -> str | None:
    """The driftmon param behind a rejected body field (`reasoning.effort`, `max_tokens`,
    `tools[0].function`), trying the whole path, then its ever shorter prefixes."""
    segments = [s for s in _PATH_SEGMENTS.split(field_path.strip()) if s]
    for end in range(len(segments), 0, -1):
        param = origins.get(".".join(segments[:end]))
        if param is not None:
            return param
    return None
