"""The provider interface.

A provider turns a `ChatRequest` into a `ProviderResponse` over one pooled
`httpx.AsyncClient` (injected, owned by the caller). Subclasses implement exactly one method,
`_send`, which makes a single HTTP attempt and either returns a response or raises a
`ProviderError`. The base class owns everything else: the concurrency limit, retries with
exponential backoff and jitter on transient errors honouring `Retry-After`, the per-run retry
budget, and latency measurement. Subclasses normally build their attempt on `_post_json`, which
owns the HTTP exchange: the overall deadline, the response size limit, status classification
and the provider's error message (helpers for that live in `monitor.providers.wire`).

`complete()` never raises for provider faults: a failed call comes back as a
`ProviderResponse` whose `error_class` is set, so the runner stores it as an error result.
It does raise `asyncio.CancelledError` (cancellation is never swallowed) and genuine bugs.

Error classes (see `monitor.errors.ErrorClass`):

    httpx.TimeoutException, overall deadline     TIMEOUT      transient
    connect / read / write error, broken stream  CONNECT      transient
    HTTP 429                                     RATE_LIMIT   transient
    HTTP 5xx (incl. Anthropic's 529)             SERVER       transient
    HTTP 408                                     TIMEOUT      transient (the server timed out)
    HTTP 401, 403                                AUTH         permanent
    other HTTP 4xx, invalid URL, bad params      BAD_REQUEST  permanent
    2xx body not JSON / wrong shape / too large  PROTOCOL     permanent

Error messages are short, carry the provider's own message when it gives one, and never
contain request headers or the API key (the key is also scrubbed from anything echoed back).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from monitor.errors import (
    ErrorClass,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)
from monitor.probes.model import ResponseFormat
from monitor.providers.wire import (
    DEFAULT_MAX_RESPONSE_BYTES,
    MAX_ERROR_BODY_BYTES,
    JsonReply,
    classify_status,
    clip,
    error_detail,
    error_from_exception,
    header,
    parse_retry_after,
    provider_error,
    read_bounded,
)

# A key shorter than this is not a secret worth scrubbing (local servers accept "x"), and
# replacing a one-letter "key" everywhere would mangle every message.
MIN_REDACTED_KEY_LENGTH = 8


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[tuple[str, str], ...]  # (role, content); a "system" role may come first
    params: dict[str, Any]  # temperature, max_tokens, top_p, seed, ... passed through
    response_format: ResponseFormat
    schema: dict[str, Any] | None = None  # for json_schema requests
    schema_name: str = "output"


@dataclass
class ProviderResponse:
    text: str | None = None
    model: str | None = None  # the model name the provider says answered
    fingerprint: str | None = None  # system_fingerprint or similar, when given
    finish_reason: str | None = None  # normalised: stop, length, content_filter, tool_calls, ...
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: float = 0.0  # of the final attempt
    http_status: int | None = None
    request_id: str | None = None
    attempts: int = 1
    error_class: ErrorClass | None = None
    error_message: str | None = None
    # Other identity hints seen in the response (e.g. a served-model header).
    identity_hints: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error_class is None


@dataclass
class RetryPolicy:
    max_attempts: int = 4  # per call, first attempt included
    base_delay: float = 0.5  # seconds; doubled each retry, full jitter
    max_delay: float = 30.0
    max_retry_after: float = 120.0  # a longer Retry-After is treated as a failure
    budget: int = 200  # retries allowed per run across all calls


class Provider(ABC):
    """Base of the provider adapters; see the module docstring for the contract.

    One instance serves one run against one target: it owns that run's concurrency limit and
    retry budget. It is safe to call `complete` concurrently from many tasks on one loop.
    """

    kind: ClassVar[str]
    default_base_url: ClassVar[str]
    supports_json_schema: ClassVar[bool] = False
    # Response header carrying the provider's request id (quoted in support tickets).
    request_id_header: ClassVar[str] = "x-request-id"
    # Response headers copied into `identity_hints` when present (served model and such).
    identity_headers: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None,
        api_key: str | None,
        client: httpx.AsyncClient,
        timeout: float,
        concurrency: int,
        retry: RetryPolicy,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        if retry.max_attempts < 1:
            raise ValueError(f"retry.max_attempts must be at least 1, not {retry.max_attempts}")
        if max_response_bytes < 1:
            raise ValueError(f"max_response_bytes must be positive, not {max_response_bytes}")
        self.model = model
        # A trailing slash in the config must not produce "//chat/completions".
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self._api_key = api_key or None
        self._client = client
        self.timeout = float(timeout)
        self.concurrency = concurrency
        self.retry = retry
        self.max_response_bytes = max_response_bytes
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        # Created here, not per call: the limit is per target and run. Since Python 3.10 a
        # Semaphore binds to the running loop on first use, not at construction.
        self._semaphore = asyncio.Semaphore(concurrency)
        self._retries_left = retry.budget

    def __repr__(self) -> str:
        # Deliberately without the API key (and without headers, which would carry it).
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"

    @property
    def retries_left(self) -> int:
        """Retries still allowed by this instance's (run's) budget."""
        return self._retries_left

    @abstractmethod
    async def _send(self, request: ChatRequest) -> ProviderResponse:
        """Make one HTTP attempt. Return the parsed response or raise a `ProviderError`.

        `attempts` and `latency_ms` of the returned response are set by `complete`. Transport
        exceptions (httpx errors, `TimeoutError`) that escape are classified by the caller, but
        adapters normally go through `_post_json`, which already does that.
        """

    async def complete(self, request: ChatRequest) -> ProviderResponse:
        """Send `request`, retrying transient failures; never raises for provider faults."""
        attempt = 0
        while True:
            attempt += 1
            response: ProviderResponse | None = None
            error: ProviderError
            # The slot is held for one attempt only, never while waiting to retry: a
            # rate-limited call must not stop other calls of the run from going out.
            async with self._semaphore:
                started = time.perf_counter()
                try:
                    response = await self._send(request)
                except ProviderError as exc:
                    error = exc
                except (httpx.HTTPError, httpx.InvalidURL, TimeoutError) as exc:
                    error = error_from_exception(exc, self.timeout)
                # CancelledError is a BaseException: it passes through untouched.
                latency_ms = (time.perf_counter() - started) * 1000.0
            if response is not None:
                response.attempts = attempt
                response.latency_ms = latency_ms
                return response
            delay, why_stopped = self._retry_delay(error, attempt)
            if delay is None:
                return self._error_response(error, attempt, latency_ms, why_stopped)
            await self._sleep(delay)

    def _retry_delay(self, error: ProviderError, attempt: int) -> tuple[float | None, str | None]:
        """Seconds to wait before the next attempt, or None and (maybe) why we stop."""
        if not isinstance(error, TransientProviderError):
            return None, None
        if attempt >= self.retry.max_attempts:
            return None, None  # `attempts` in the response already says so
        hint = error.retry_after
        if hint is not None and hint > self.retry.max_retry_after:
            return None, (
                f"Retry-After {hint:g}s is over the {self.retry.max_retry_after:g}s limit"
            )
        if self._retries_left <= 0:
            return None, "retry budget of this run is spent"
        # Check and decrement happen without an await in between, so concurrent calls on the
        # loop cannot overdraw the budget.
        self._retries_left -= 1
        # Full jitter (uniform in [0, cap]) spreads the retries of many concurrent calls that
        # failed together; the exponent is bounded so huge max_attempts cannot overflow.
        cap = min(self.retry.max_delay, self.retry.base_delay * 2.0 ** min(attempt - 1, 62))
        delay = self._rng.uniform(0.0, cap)
        if hint is not None:
            delay = max(delay, hint)  # the server's wish is a minimum
        return delay, None

    def _error_response(
        self, error: ProviderError, attempts: int, latency_ms: float, note: str | None
    ) -> ProviderResponse:
        message = str(error) or error.error_class.value
        if note:
            message = f"{message} ({note})"
        return ProviderResponse(
            latency_ms=latency_ms,
            http_status=error.http_status,
            request_id=error.request_id,
            attempts=attempts,
            error_class=error.error_class,
            error_message=self._redact(message),
        )

    def _redact(self, text: str) -> str:
        key = self._api_key
        if key and len(key) >= MIN_REDACTED_KEY_LENGTH:
            text = text.replace(key, "[redacted]")
        return text

    # --- the HTTP exchange, for adapters ----------------------------------------------------

    async def _post_json(
        self, path: str, body: Mapping[str, Any], headers: Mapping[str, str]
    ) -> JsonReply:
        """POST `body` as JSON to `{base_url}/{path}`; return the decoded 2xx reply.

        Raises `ProviderError` for every failure: transport errors, the overall deadline
        (`timeout` bounds the whole exchange, not only each read), non-2xx statuses (with the
        provider's message and Retry-After), bodies over `max_response_bytes` and non-JSON
        bodies.
        """
        try:
            content = json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            raise PermanentProviderError(
                ErrorClass.BAD_REQUEST, f"request is not valid JSON: {clip(str(exc), 200)}"
            ) from exc
        url = f"{self.base_url}/{path.lstrip('/')}"
        sent_headers = {"content-type": "application/json", "accept": "application/json"}
        sent_headers.update(headers)
        try:
            # httpx's timeout applies per phase (connect, each read, ...); a server dripping
            # one byte at a time would never trip it, so the whole exchange has a deadline too.
            async with (
                asyncio.timeout(self.timeout),
                self._client.stream(
                    "POST", url, content=content, headers=sent_headers, timeout=self.timeout
                ) as resp,
            ):
                ok = 200 <= resp.status_code < 300
                limit = self.max_response_bytes if ok else MAX_ERROR_BODY_BYTES
                raw, too_large = await read_bounded(resp, limit)
        except (httpx.HTTPError, httpx.InvalidURL, TimeoutError) as exc:
            raise error_from_exception(exc, self.timeout) from exc

        status = resp.status_code
        request_id = header(resp.headers, self.request_id_header)
        if ok:
            if too_large:
                raise PermanentProviderError(
                    ErrorClass.PROTOCOL,
                    f"response body is larger than {self.max_response_bytes} bytes",
                    http_status=status,
                    request_id=request_id,
                )
            try:
                data = json.loads(raw)
            except ValueError as exc:  # includes UnicodeDecodeError
                raise PermanentProviderError(
                    ErrorClass.PROTOCOL,
                    f"HTTP {status} response is not JSON",
                    http_status=status,
                    request_id=request_id,
                ) from exc
            return JsonReply(status=status, headers=resp.headers, body=data, request_id=request_id)

        error_class = classify_status(status) or ErrorClass.PROTOCOL
        detail = error_detail(raw)
        message = f"HTTP {status}: {detail}" if detail else f"HTTP {status}"
        raise provider_error(
            error_class,
            message,
            http_status=status,
            retry_after=parse_retry_after(resp.headers) if error_class.transient else None,
            request_id=request_id,
        )

    def _identity_hints(self, headers: Mapping[str, str]) -> dict[str, str]:
        hints: dict[str, str] = {}
        for name in self.identity_headers:
            value = header(headers, name)
            if value:
                hints[name] = value
        return hints
