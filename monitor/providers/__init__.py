"""Provider adapters: one module per wire format behind `monitor.providers.base.Provider`.

The names below load on first use: `monitor.config` imports `monitor.providers.params` for
its checks, and every command reads the config, so this package must not pull in httpx and
the adapters by itself being imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.providers.base import ChatRequest, Provider, ProviderResponse, RetryPolicy
    from monitor.providers.registry import PROVIDERS, make_provider

_LAZY = {
    "ChatRequest": "monitor.providers.base",
    "Provider": "monitor.providers.base",
    "ProviderResponse": "monitor.providers.base",
    "RetryPolicy": "monitor.providers.base",
    "PROVIDERS": "monitor.providers.registry",
    "make_provider": "monitor.providers.registry",
}

__all__ = [
    "PROVIDERS",
    "ChatRequest",
    "Provider",
    "ProviderResponse",
    "RetryPolicy",
    "make_provider",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
