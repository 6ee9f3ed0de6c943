"""Config checks that need more than one key, or a location inside a table: params per
kind, headers and query parameters, base_url. `monitor.config` runs them after the field
validators, and reports each with the file, key path and line."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from monitor.providers.params import REASONING_EFFORTS, TOKEN_CAP_PARAMS, unknown_param_problem

if TYPE_CHECKING:
    from monitor.config import Settings, TargetSettings

# RFC 9110 section 5.6.2: a field name is a token.
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Set by driftmon on every request: a second value would corrupt the request.
RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "transfer-encoding", "connection", "accept"}
)
# The header each kind carries api_key in.
AUTH_HEADER = {
    "openai": "authorization",
    "openai-responses": "authorization",
    "anthropic": "x-api-key",
}
# A header or query parameter whose name says it carries a credential takes only a secret
# reference, like api_key: its value must not sit in the file, `config check` or `targets list`.
_CREDENTIAL_WORDS = ("auth", "key", "token", "secret", "password", "cookie", "signature")


def is_credential_name(name: str) -> bool:
    lowered = name.lower()
    return lowered == "sig" or any(word in lowered for word in _CREDENTIAL_WORDS)


def base_url_problem(url: str) -> str | None:
    """Why `url` cannot be a target's base_url; None when it can."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        return f"base_url is not a valid URL: {exc}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return (
            "base_url must be an absolute http:// or https:// URL, e.g. https://api.openai.com/v1"
        )
    if parts.username is not None or parts.password is not None:
        return (
            "base_url may not carry credentials; use api_key or a header with "
            '{ env = "NAME" } / { file = "PATH" }'
        )
    if parts.query:
        return (
            f"base_url may not carry a query string ({_shown_query(parts.query)}): "
            f"use {_query_table(parts.query)} in the target, and base_url without it"
        )
    if parts.fragment:
        return f"base_url may not carry a fragment (#{parts.fragment}); remove it"
    return None


def _shown_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    shown = [f"{k}=…" if is_credential_name(k) else f"{k}={v}" for k, v in pairs]
    return '"?' + "&".join(shown) + '"'


def _query_table(query: str) -> str:
    """The `query = { ... }` line that replaces a query string, credentials as references."""
    items = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        shown = '{ env = "NAME" }' if is_credential_name(name) else toml_string(value)
        items.append(f"{_toml_key(name)} = {shown}")
    return "query = { " + ", ".join(items) + " }"


def toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_key(name: str) -> str:
    # Bare keys may hold dashes, but quoting them reads as the header or parameter name it is.
    return name if re.fullmatch(r"[A-Za-z0-9_]+", name) else toml_string(name)


def settings_problems(settings: Settings) -> Iterator[tuple[str, tuple[int | str, ...]]]:
    """Problems the field validators cannot see, each with the key path it belongs to."""
    yield from _params_problems(settings.defaults.params or {}, None, ("defaults", "params"))
    for index, target in enumerate(settings.targets):
        where: tuple[int | str, ...] = ("targets", index)
        yield from _params_problems(target.params or {}, target.kind, (*where, "params"))
        yield from _header_problems(target, where)
        for name, value in (target.query or {}).items():
            if not name:
                yield "a query parameter needs a name", (*where, "query")
            elif isinstance(value, str) and is_credential_name(name):
                yield _LITERAL_CREDENTIAL, (*where, "query", name)
        for position, name in enumerate(target.drop_params):
            problem = unknown_param_problem(name, None)
            if problem is not None:
                yield problem, (*where, "drop_params", position)
        if target.token_limit_param is not None and target.kind != "openai":
            yield (
                f'token_limit_param applies to kind "openai" only, not {target.kind!r}',
                (*where, "token_limit_param"),
            )


_LITERAL_CREDENTIAL = (
    'this name carries a credential: a literal value is not allowed here; use { env = "NAME" } '
    'or { file = "PATH" }'
)


def _params_problems(
    params: Mapping[str, Any], kind: str | None, where: tuple[int | str, ...]
) -> Iterator[tuple[str, tuple[int | str, ...]]]:
    for name, value in params.items():
        problem = unknown_param_problem(name, kind) or _param_value_problem(name, value)
        if problem is not None:
            yield problem, (*where, name)


def _param_value_problem(name: str, value: Any) -> str | None:
    if name == "reasoning_effort" and value not in REASONING_EFFORTS:
        return f"reasoning_effort {value!r} must be one of {', '.join(REASONING_EFFORTS)}"
    is_count = isinstance(value, int) and not isinstance(value, bool)
    if name in TOKEN_CAP_PARAMS and not (is_count and value >= 1):
        return f"{name} must be a whole number of tokens, at least 1"
    return None


def _header_problems(
    target: TargetSettings, where: tuple[int | str, ...]
) -> Iterator[tuple[str, tuple[int | str, ...]]]:
    seen: set[str] = set()
    for name, value in (target.headers or {}).items():
        loc = (*where, "headers", name)
        lowered = name.lower()
        if not HEADER_NAME.match(name):
            yield (
                f"header name {name!r} is not a valid HTTP field name (letters, digits and "
                "!#$%&'*+-.^_`|~ only, no spaces)",
                loc,
            )
        elif lowered in RESERVED_HEADERS:
            yield f"header {name!r} is set by driftmon itself and cannot be overridden", loc
        elif lowered == AUTH_HEADER[target.kind] and target.api_key is not None:
            yield (
                f"header {name!r} would replace the one api_key sends; give one of them "
                "(drop api_key to send your own header)",
                loc,
            )
        elif lowered in seen:
            yield f"header {name!r} is given twice (header names ignore case)", loc
        elif isinstance(value, str) and is_credential_name(name):
            yield _LITERAL_CREDENTIAL, loc
        elif isinstance(value, str) and any(c in value for c in "\r\n\0"):
            yield f"the value of header {name!r} may not contain line breaks or NUL", loc
        seen.add(lowered)
