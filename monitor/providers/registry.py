"""Provider kinds by name, as written in a target's `kind`."""

from __future__ import annotations

from typing import Any

from monitor.errors import UsageError
from monitor.providers.anthropic import AnthropicProvider
from monitor.providers.base import Provider
from monitor.providers.openai import OpenAIProvider
from monitor.providers.responses import ResponsesProvider

PROVIDERS: dict[str, type[Provider]] = {
    OpenAIProvider.kind: OpenAIProvider,
    ResponsesProvider.kind: ResponsesProvider,
    AnthropicProvider.kind: AnthropicProvider,
}


def make_provider(kind: str, **kwargs: Any) -> Provider:
    """Build the adapter for `kind` with the `Provider` constructor's keyword arguments.

    Raises `UsageError` (exit code 2) for an unknown kind, naming the known ones.
    """
    cls = PROVIDERS.get(kind)
    if cls is None:
        known = ", ".join(sorted(PROVIDERS))
        raise UsageError(f"unknown provider kind {kind!r}; known kinds: {known}")
    return cls(**kwargs)
