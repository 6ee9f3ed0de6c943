"""Provider adapters: one module per wire format behind `monitor.providers.base.Provider`."""

from monitor.providers.base import ChatRequest, Provider, ProviderResponse, RetryPolicy
from monitor.providers.registry import PROVIDERS, make_provider

__all__ = [
    "PROVIDERS",
    "ChatRequest",
    "Provider",
    "ProviderResponse",
    "RetryPolicy",
    "make_provider",
]
