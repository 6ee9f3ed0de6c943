"""The provider interface.

A provider turns a `ChatRequest` into a `ProviderResponse` over one pooled
`httpx.AsyncClient` (injected, owned by the caller). Subclasses implement exactly one method,
`_send`, which makes a single HTTP attempt and either returns a response or raises a
`ProviderError`. The base class owns everything else: the concurrency limit, retries on
transient errors (the rules, backoff with jitter and `Retry-After`, are `monitor.retry`'s), the
per-run retry budget, and latency measurement. Subclasses normally build their attempt on
`_post_json`, which owns the HTTP exchange: the overall deadline, the response size limit,
status classification and the provider's error message (helpers for that live in
`monitor.providers.wire`).

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
contain request headers, the API key or the target's other secrets (their values are also
scrubbed from anything echoed back). When a 4xx names the request field it rejected, the
error carries `error_param`: the driftmon param that produced that field for this request
(see `monitor.providers.params` for the translation), so `targets ping` can say which param of
which target to change.

Per target, the constructor also takes extra `headers` (sent after the adapter's own, so they
may replace an auth header, but never content-type or accept), `query` parameters appended to
every request URL (Azure's `api-version`), an `extra_body` merged last into every JSON body
(it may not replace what the adapter owns: a clash is a BAD_REQUEST before anything is sent),
and `token_limit_param` (which field carries the output cap on the openai kind).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping
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
from monitor.providers.body import QUOTED_NAME, merge_extra_body, origin_of
from monitor.providers.params import (
    ALL_PARAMS,
    DROPPED_PARAMS,
    KIND_PARAMS,
    TOKEN_LIMIT_PARAMS,
)
from monitor.providers.wire import (
    DEFAULT_MAX_RESPONSE_BYTES,
    MAX_ERROR_BODY_BYTES,
    JsonReply,
    classify_status,
    clip,
    error_detail,
    error_from_exception,
    header,
    provider_error,
    read_bounded,
)

# Re-exported: a provider is built with one, and callers know it from here.
from monitor.retry import RetryPolicy as RetryPolicy
from monitor.retry import parse_retry_after

# A key shorter than this is not a secret worth scrubbing (local servers accept "x"), and
# replacing a one-letter "key" everywhere would mangle every message.
MIN_REDACTED_KEY_LENGTH = 8

# Headers the base class sets for the JSON exchange; a target's own headers may not replace
# them (the body is JSON and the answer is parsed as JSON whatever a gateway would like).
_FIXED_HEADERS = frozenset({"content-type", "accept"})


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may call: `parameters` is the JSON Schema of its arguments."""

    name: str
    parameters: dict[str, Any]
    description: str = ""
    strict: bool = False  # constrained decoding of the arguments, where the provider has it


@dataclass(frozen=True)
class ToolCall:
    """A call the model made: `arguments` is the JSON text of the arguments as produced (an
    object the provider already decoded, such as Anthropic's `input`, is re-serialised)."""

    name: str
    arguments: str


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[tuple[str, str], ...]  # (role, content); a "system" role may come first
    params: dict[str, Any]  # driftmon params (see monitor.providers.params), translated per kind
    response_format: ResponseFormat
    schema: dict[str, Any] | None = None  # for json_schema requests
    schema_name: str = "output"
    # json_schema requests: constrained decoding (OpenAI strict, Anthropic output_config).
    strict: bool = False
    tools: tuple[ToolSpec, ...] = ()
    # "auto", "required", "none", or the name of the one tool the model must call.
    tool_choice: str = "auto"


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
    # The provider itself declined (OpenAI `message.refusal`, Anthropic stop_reason
    # "refusal", a Responses refusal part), whatever the language of the text.
    refused: bool = False
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning_tokens: int | None = None  # hidden reasoning, part of output_tokens
    cached_tokens: int | None = None  # prompt tokens served from the provider's cache
    # How structured output was asked for; see OUTPUT_MODES.
    output_mode: str | None = None
    # On an error: the request param the provider named as the problem, in driftmon's
    # vocabulary (the name written in the config or probe), when it named one.
    error_param: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_class is None


# How a request asked for its structure, recorded with every result so a change of mechanism
# (a driftmon upgrade, a target override) is visible next to the behaviour it changes.
# None: a text or plain-JSON request (nothing structural asked for).
OUTPUT_MODES = {
    "strict_schema": "constrained decoding to the schema (OpenAI and Responses strict: true, "
    "Anthropic output_config.format)",
    "schema": "the schema sent natively but not enforced (OpenAI and Responses strict: false)",
    "prompt_schema": "the schema written into the prompt as an instruction (Anthropic, not strict)",
    "tools": "the probe's tools sent as function definitions (takes precedence over a schema)",
}


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
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        secrets: Iterable[str] = (),
        token_limit_param: str = "auto",
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        # A run's calls need both limits (None means "no limit" to other callers of the policy).
        if retry.max_attempts is None or retry.max_attempts < 1:
            raise ValueError(f"retry.max_attempts must be at least 1, not {retry.max_attempts}")
        if retry.budget is None:
            raise ValueError("retry.budget must be a number of retries, not None")
        if max_response_bytes < 1:
            raise ValueError(f"max_response_bytes must be positive, not {max_response_bytes}")
        if token_limit_param not in TOKEN_LIMIT_PARAMS:
            known = ", ".join(TOKEN_LIMIT_PARAMS)
            raise ValueError(f"token_limit_param must be one of {known}, not {token_limit_param!r}")
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
        # Lower-cased so a target's "Authorization" replaces the adapter's "authorization".
        self._extra_headers = {
            name.lower(): value
            for name, value in (headers or {}).items()
            if name.lower() not in _FIXED_HEADERS
        }
        self._query = dict(query or {})
        self._extra_body = dict(extra_body or {})
        self.token_limit_param = token_limit_param
        self._secrets = tuple(
            sorted(
                {s for s in (api_key, *secrets) if s and len(s) >= MIN_REDACTED_KEY_LENGTH},
                key=len,
                reverse=True,  # a secret containing another is replaced whole
            )
        )

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
                response.output_mode = self.output_mode(request)
                return response
            delay, why_stopped = self._retry_delay(error, attempt)
            if delay is None:
                failed = self._error_response(error, attempt, latency_ms, why_stopped)
                failed.output_mode = self.output_mode(request)
                return failed
            await self._sleep(delay)

    def output_mode(self, request: ChatRequest) -> str | None:
        """How this adapter asks for `request`'s structure (a key of `OUTPUT_MODES`), or None
        for text and plain-JSON requests."""
        if request.tools:
            return "tools"
        if request.response_format == "json_schema":
            return "strict_schema" if request.strict else "schema"
        return None

    def _retry_delay(self, error: ProviderError, attempt: int) -> tuple[float | None, str | None]:
        """Seconds to wait before the next attempt, or None and (maybe) why we stop."""
        if not isinstance(error, TransientProviderError):
            return None, None
        stop = self.retry.give_up(attempt, error.retry_after)
        if stop is not None:
            return None, stop.reason
        if self._retries_left <= 0:
            return None, "retry budget of this run is spent"
        # Check and decrement happen without an await in between, so concurrent calls on the
        # loop cannot overdraw the budget.
        self._retries_left -= 1
        return self.retry.delay(attempt, error.retry_after, self._rng), None

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
            error_param=error.error_param,
        )

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text

    # --- the request body, for adapters -----------------------------------------------------

    def _own_params(self, request: ChatRequest, reserved: Iterable[str]) -> dict[str, Any]:
        """The request's params this kind uses; the others belong to other kinds and are dropped.

        A param naming a field the adapter fills (`reserved`), or a name no kind knows, is a
        BAD_REQUEST: config and probe loading refuse both, so only code can get here with one.
        """
        clash = set(reserved).intersection(request.params)
        if clash:
            raise PermanentProviderError(
                ErrorClass.BAD_REQUEST,
                f"params may not set {', '.join(sorted(clash))}: the adapter sets them",
            )
        unknown = set(request.params) - ALL_PARAMS
        if unknown:
            raise PermanentProviderError(
                ErrorClass.BAD_REQUEST, f"unknown params: {', '.join(sorted(unknown))}"
            )
        mine = KIND_PARAMS[self.kind] - DROPPED_PARAMS[self.kind]
        return {name: value for name, value in request.params.items() if name in mine}

    @staticmethod
    def _checked_tool_choice(request: ChatRequest) -> str:
        """The request's tool_choice, refused when it names a tool the request does not send."""
        choice = request.tool_choice
        if choice not in ("auto", "required", "none") and choice not in {
            tool.name for tool in request.tools
        }:
            raise PermanentProviderError(
                ErrorClass.BAD_REQUEST, f"tool_choice {choice!r} names no tool of the request"
            )
        return choice

    def _with_extra_body(
        self,
        body: dict[str, Any],
        owned: Iterable[tuple[str, ...]],
        origins: dict[str, str],
    ) -> dict[str, Any]:
        """`body` with the target's `extra_body` merged in last; see `merge_extra_body`."""
        if not self._extra_body:
            return body
        return merge_extra_body(body, self._extra_body, owned, origins)

    def _rejected_fields(self, data: Any) -> list[str]:
        """Request fields an error body names as the problem, most specific first.

        OpenAI's shape: `error.param`, then names quoted in the message ("Unsupported
        parameter: 'max_tokens' ..."). Adapters with another shape override this.
        """
        if not isinstance(data, dict) or not isinstance(data.get("error"), dict):
            return []
        error = data["error"]
        fields: list[str] = []
        if isinstance(error.get("param"), str) and error["param"]:
            fields.append(error["param"])
        message = error.get("message")
        if isinstance(message, str):
            fields.extend(QUOTED_NAME.findall(message))
        return fields

    # --- the HTTP exchange, for adapters ----------------------------------------------------

    async def _post_json(
        self,
        path: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        origins: Mapping[str, str] | None = None,
    ) -> JsonReply:
        """POST `body` as JSON to `{base_url}/{path}`; return the decoded 2xx reply.

        Raises `ProviderError` for every failure: transport errors, the overall deadline
        (`timeout` bounds the whole exchange, not only each read), non-2xx statuses (with the
        provider's message and Retry-After), bodies over `max_response_bytes` and non-JSON
        bodies. `origins` maps body fields to the driftmon params that produced them, to name
        the param a 4xx rejects.
        """
        try:
            content = json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            raise PermanentProviderError(
                ErrorClass.BAD_REQUEST, f"request is not valid JSON: {clip(str(exc), 200)}"
            ) from exc
        url = f"{self.base_url}/{path.lstrip('/')}"
        sent_headers = {"content-type": "application/json", "accept": "application/json"}
        sent_headers.update((name.lower(), value) for name, value in headers.items())
        sent_headers.update(self._extra_headers)
        try:
            # httpx's timeout applies per phase (connect, each read, ...); a server dripping
            # one byte at a time would never trip it, so the whole exchange has a deadline too.
            async with (
                asyncio.timeout(self.timeout),
                self._client.stream(
                    "POST",
                    url,
                    params=self._query,
                    content=content,
                    headers=sent_headers,
                    timeout=self.timeout,
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
        param = None
        if 400 <= status < 500 and origins:
            param, native = self._rejected_param(raw, origins)
            if param is not None:
                sent_as = f" (sent as {native!r})" if native != param else ""
                message = f"HTTP {status}: the provider rejected param {param!r}{sent_as}: " + (
                    detail or "no detail"
                )
        raise provider_error(
            error_class,
            message,
            http_status=status,
            retry_after=parse_retry_after(resp.headers) if error_class.transient else None,
            request_id=request_id,
            error_param=param,
        )

    def _rejected_param(
        self, raw: bytes, origins: Mapping[str, str]
    ) -> tuple[str | None, str | None]:
        """(driftmon param, field as sent) for the field an error body names, if we sent it."""
        try:
            data = json.loads(raw)
        except ValueError:
            return None, None
        for field_path in self._rejected_fields(data):
            param = origin_of(field_path, origins)
            if param is not None:
                return param, field_path
        return None, None

    def _identity_hints(self, headers: Mapping[str, str]) -> dict[str, str]:
        hints: dict[str, str] = {}
        for name in self.identity_headers:
            value = header(headers, name)
            if value:
                hints[name] = value
        return hints
