"""The one way to build a target's provider adapter from its resolved settings.

Secrets (the api key, and header or query values given as `{ env }` / `{ file }`) are read
here, at the last moment, and handed to the adapter together: it sends them and scrubs every
one of them from anything it reports. A secret that cannot be read raises `ConfigError`;
commands that send check the target's secrets first (`LoadedConfig.check_secrets`) so the
error names the file, key and line.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from monitor.config import ResolvedTarget, SecretRef
from monitor.providers.base import Provider, RetryPolicy
from monitor.providers.registry import make_provider


def build_provider(
    target: ResolvedTarget,
    *,
    client: httpx.AsyncClient,
    concurrency: int,
    retry: RetryPolicy,
) -> Provider:
    """The adapter for `target`'s kind, with its secrets resolved, on `client`."""
    secrets: list[str] = []
    api_key = target.api_key.resolve() if target.api_key is not None else None
    headers = _resolved(target.headers, secrets)
    query = _resolved(target.query, secrets)
    return make_provider(
        target.kind,
        model=target.model,
        base_url=target.base_url,
        api_key=api_key,
        client=client,
        timeout=target.timeout,
        concurrency=concurrency,
        retry=retry,
        headers=headers,
        query=query,
        extra_body=target.extra_body,
        secrets=secrets,
        token_limit_param=target.token_limit_param,
    )


def _resolved(values: Mapping[str, str | SecretRef], secrets: list[str]) -> dict[str, str]:
    """Literal values as they are, references read; each value read is added to `secrets`."""
    out: dict[str, str] = {}
    for name, value in values.items():
        if isinstance(value, SecretRef):
            value = value.resolve()
            secrets.append(value)
        out[name] = value
    return out
