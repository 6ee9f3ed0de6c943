"""The HTTP side shared by the adapters: status and exception classification, the provider's
error message, bounded body reading and small JSON accessors.

Kept apart from `base` so the interface module stays short; nothing here knows about
retries or concurrency (Retry-After is read by `monitor.retry`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from monitor.errors import (
    ErrorClass,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)

DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
# Error bodies only feed a short message, so far less of them is read.
MAX_ERROR_BODY_BYTES = 64 * 1024
MAX_DETAIL_CHARS = 300
MAX_HINT_CHARS = 200


@dataclass(frozen=True)
class JsonReply:
    """A successful (2xx) HTTP exchange whose body parsed as JSON."""

    status: int
    headers: httpx.Headers
    body: Any
    request_id: str | None


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clip(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """One line, no control characters, at most `limit` characters: safe to store and show."""
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def provider_error(
    error_class: ErrorClass,
    message: str,
    *,
    http_status: int | None = None,
    retry_after: float | None = None,
    request_id: str | None = None,
    error_param: str | None = None,
) -> ProviderError:
    """The transient or permanent error for `error_class`, so the class alone decides retries."""
    cls = TransientProviderError if error_class.transient else PermanentProviderError
    return cls(
        error_class,
        message,
        http_status=http_status,
        retry_after=retry_after,
        request_id=request_id,
        error_param=error_param,
    )


def protocol_error(message: str, *, reply: JsonReply | None = None) -> PermanentProviderError:
    """A 2xx answer we cannot use: not JSON, the wrong shape, too large."""
    return PermanentProviderError(
        ErrorClass.PROTOCOL,
        message,
        http_status=reply.status if reply else None,
        request_id=reply.request_id if reply else None,
    )


def classify_status(status: int) -> ErrorClass | None:
    """The error class of an HTTP status; None for success (2xx)."""
    if 200 <= status < 300:
        return None
    if status == 429:
        return ErrorClass.RATE_LIMIT
    if status >= 500:  # includes Anthropic's 529 "overloaded"
        return ErrorClass.SERVER
    if status in (401, 403):
        return ErrorClass.AUTH
    if status == 408:
        # Request Timeout: the server gave up waiting, retrying is what it asks for (the
        # OpenAI and Anthropic SDKs retry it too).
        return ErrorClass.TIMEOUT
    if 400 <= status < 500:
        return ErrorClass.BAD_REQUEST
    # 1xx/3xx as a final answer: redirects are not followed on purpose (a POST must not be
    # silently re-sent elsewhere), so this is a misconfigured base_url or a broken proxy.
    return ErrorClass.PROTOCOL


def describe_error_body(data: Any) -> str | None:
    """The provider's own error message from a decoded error body, if it has one.

    Handles OpenAI (`{"error": {"message", "type", "code"}}`), Anthropic
    (`{"type": "error", "error": {"type", "message"}}`) and the shapes common among
    OpenAI-compatible servers (`{"error": "..."}`, `{"message": ...}`, `{"detail": ...}`).
    """
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict):
        message = error.get("message")
        kind = error.get("type")
        if isinstance(message, str) and message:
            return f"{kind}: {message}" if isinstance(kind, str) and kind else message
        if isinstance(kind, str) and kind:
            return kind
    if isinstance(error, str) and error:
        return error
    for key in ("message", "detail"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def error_detail(raw: bytes) -> str | None:
    text = raw.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        # Proxies and OpenAI-compatible servers often answer with plain text or HTML; a
        # short snippet still beats no hint at all.
        return clip(text) or None
    detail = describe_error_body(data)
    return clip(detail) if detail else None


def _describe_exception(exc: BaseException) -> str:
    text = clip(str(exc), 200)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def error_from_exception(exc: Exception, timeout: float) -> ProviderError:
    """Map a transport-level failure (no HTTP status) to a `ProviderError`."""
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return TransientProviderError(
            ErrorClass.TIMEOUT, f"no response within {timeout:g}s ({type(exc).__name__})"
        )
    # NetworkError covers connect/read/write/close errors; a RemoteProtocolError is the peer
    # dropping the connection mid-response; a ProxyError is the proxy failing us.
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError | httpx.ProxyError):
        return TransientProviderError(
            ErrorClass.CONNECT, f"connection failed: {_describe_exception(exc)}"
        )
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return PermanentProviderError(
            ErrorClass.BAD_REQUEST, f"invalid base_url: {_describe_exception(exc)}"
        )
    # DecodingError, TooManyRedirects, LocalProtocolError: retrying cannot help.
    return PermanentProviderError(
        ErrorClass.PROTOCOL, f"HTTP protocol error: {_describe_exception(exc)}"
    )


def as_int(value: Any) -> int | None:
    """A token count from JSON: an int (not a bool), or an integral float; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def nested_int(data: dict[str, Any], table: str, name: str) -> int | None:
    """A count one level down (`usage.completion_tokens_details.reasoning_tokens`)."""
    nested = data.get(table)
    return as_int(nested.get(name)) if isinstance(nested, dict) else None


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    return clip(value, MAX_HINT_CHARS) if value else None


async def read_bounded(resp: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """Read at most `limit` bytes of the (decoded) body; say whether there was more.

    A declared Content-Length over the limit is refused without reading anything. Otherwise
    the body is read chunk by chunk and abandoned as soon as it passes the limit, so a huge or
    endless body costs at most one chunk over the limit in memory.
    """
    declared = resp.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return b"", True
    buffer = bytearray()
    async for chunk in resp.aiter_bytes():
        buffer += chunk
        if len(buffer) > limit:
            return bytes(buffer[:limit]), True
    return bytes(buffer), False
