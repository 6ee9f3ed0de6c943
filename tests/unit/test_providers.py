"""The provider base class: retries, backoff, budget, classification, limits, cancellation.

The wire formats of the two adapters are in test_providers_openai.py and
test_providers_anthropic.py; real sockets in test_providers_loopback.py. Here the OpenAI
adapter stands in for "a provider" and `httpx.MockTransport` for the network. Retry timing is
asserted through an injected `sleep` that records delays instead of waiting.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from monitor.errors import ErrorClass, TransientProviderError, UsageError
from monitor.providers import PROVIDERS, ChatRequest, Provider, ProviderResponse, make_provider
from monitor.providers.anthropic import AnthropicProvider
from monitor.providers.base import RetryPolicy
from monitor.providers.openai import OpenAIProvider
from monitor.providers.responses import ResponsesProvider
from monitor.retry import parse_retry_after

API_KEY = "sk-test-SECRET-0123456789abcdef"
REQUEST = ChatRequest(messages=(("user", "Say hi"),), params={}, response_format="text")

Handler = Callable[[httpx.Request], Any]


class UpperRandom(random.Random):
    """Jitter that always draws its upper bound, so the backoff cap itself is visible."""

    def random(self) -> float:
        return 1.0


class LowerRandom(random.Random):
    """Jitter that always draws 0, so only Retry-After sets the wait."""

    def random(self) -> float:
        return 0.0


def completion(text: str = "hi") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_1",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }


def scripted(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering with `responses` in order (the last one repeats)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = responses[min(len(seen), len(responses)) - 1]
        if isinstance(item, Exception):
            raise item
        return item

    return handler, seen


class Factory:
    def __init__(self) -> None:
        self.clients: list[httpx.AsyncClient] = []
        self.delays: list[float] = []

    async def record_sleep(self, delay: float) -> None:
        self.delays.append(delay)

    def __call__(self, handler: Handler, *, kind: str = "openai", **overrides: Any) -> Provider:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        self.clients.append(client)
        kwargs: dict[str, Any] = {
            "model": "gpt-4o",
            "base_url": None,
            "api_key": API_KEY,
            "client": client,
            "timeout": 5.0,
            "concurrency": 4,
            "retry": RetryPolicy(),
            "sleep": self.record_sleep,
            "rng": random.Random(7),
        }
        kwargs.update(overrides)
        return make_provider(kind, **kwargs)


@pytest.fixture
async def make() -> AsyncIterator[Factory]:
    factory = Factory()
    yield factory
    for client in factory.clients:
        await client.aclose()


# --- success -----------------------------------------------------------------------------


async def test_success_reports_attempts_and_latency(make: Factory) -> None:
    handler, seen = scripted(httpx.Response(200, json=completion("hello")))
    response = await make(handler).complete(REQUEST)
    assert response.ok
    assert response.text == "hello"
    assert response.attempts == 1
    assert response.http_status == 200
    assert response.latency_ms > 0
    assert len(seen) == 1
    assert make.delays == []


async def test_latency_is_of_the_final_attempt(make: Factory) -> None:
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(0.2)  # a slow failing first attempt
            return httpx.Response(503)
        return httpx.Response(200, json=completion())

    response = await make(handler).complete(REQUEST)
    assert response.ok and response.attempts == 2
    assert response.latency_ms < 150


# --- retries and their timing ----------------------------------------------------------------


async def test_retry_after_seconds_is_a_minimum_wait(make: Factory) -> None:
    handler, seen = scripted(
        httpx.Response(429, headers={"retry-after": "7"}),
        httpx.Response(200, json=completion()),
    )
    response = await make(handler, rng=LowerRandom()).complete(REQUEST)
    assert response.ok and response.attempts == 2
    assert make.delays == [7.0]
    assert len(seen) == 2


async def test_retry_after_does_not_shorten_a_longer_backoff(make: Factory) -> None:
    handler, _ = scripted(
        httpx.Response(503, headers={"retry-after": "0.1"}),
        httpx.Response(200, json=completion()),
    )
    retry = RetryPolicy(base_delay=2.0)
    response = await make(handler, rng=UpperRandom(), retry=retry).complete(REQUEST)
    assert response.ok
    assert make.delays == [2.0]


async def test_retry_after_http_date(make: Factory) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    handler, _ = scripted(
        httpx.Response(503, headers={"retry-after": when}),
        httpx.Response(200, json=completion()),
    )
    response = await make(handler, rng=LowerRandom()).complete(REQUEST)
    assert response.ok
    assert len(make.delays) == 1
    assert 28.0 <= make.delays[0] <= 30.0


async def test_retry_after_ms_header(make: Factory) -> None:
    handler, _ = scripted(
        httpx.Response(429, headers={"retry-after-ms": "1500", "retry-after": "9"}),
        httpx.Response(200, json=completion()),
    )
    response = await make(handler, rng=LowerRandom()).complete(REQUEST)
    assert response.ok
    assert make.delays == [1.5]


async def test_retry_after_beyond_the_limit_is_not_waited(make: Factory) -> None:
    handler, seen = scripted(
        httpx.Response(
            429,
            headers={"retry-after": "500", "x-request-id": "req_9"},
            json={"error": {"message": "Rate limit reached", "type": "requests"}},
        )
    )
    retry = RetryPolicy(max_retry_after=120.0)
    response = await make(handler, retry=retry).complete(REQUEST)
    assert not response.ok
    assert response.error_class is ErrorClass.RATE_LIMIT
    assert response.attempts == 1
    assert response.http_status == 429
    assert response.request_id == "req_9"
    assert make.delays == []
    assert len(seen) == 1
    assert response.error_message is not None
    assert "Rate limit reached" in response.error_message
    assert "Retry-After 500s" in response.error_message


async def test_backoff_grows_exponentially_and_is_capped(make: Factory) -> None:
    handler, seen = scripted(httpx.Response(503))
    retry = RetryPolicy(max_attempts=6, base_delay=0.5, max_delay=3.0)
    response = await make(handler, retry=retry, rng=UpperRandom()).complete(REQUEST)
    assert response.error_class is ErrorClass.SERVER
    assert response.attempts == 6
    assert len(seen) == 6
    assert make.delays == [0.5, 1.0, 2.0, 3.0, 3.0]


async def test_jitter_is_full_and_bounded(make: Factory) -> None:
    handler, _ = scripted(httpx.Response(500))
    retry = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=100.0, budget=10_000)
    provider = make(handler, retry=retry, rng=random.Random(42))
    for _ in range(100):
        await provider.complete(REQUEST)
    assert len(make.delays) == 300
    by_retry = [make.delays[n::3] for n in range(3)]
    for n, delays in enumerate(by_retry):
        cap = 2.0**n
        assert all(0.0 <= d <= cap for d in delays)
        # Full jitter: the whole range is used, not just the top half.
        assert min(delays) < 0.1 * cap
        assert max(delays) > 0.9 * cap
        assert len(set(delays)) == len(delays)


async def test_retry_budget_is_shared_by_the_instance_and_stops_retries(make: Factory) -> None:
    handler, seen = scripted(httpx.Response(503))
    retry = RetryPolicy(max_attempts=3, budget=3)
    provider = make(handler, retry=retry)
    first = await provider.complete(REQUEST)
    second = await provider.complete(REQUEST)
    third = await provider.complete(REQUEST)
    assert [first.attempts, second.attempts, third.attempts] == [3, 2, 1]
    assert len(make.delays) == 3
    assert len(seen) == 6
    assert provider.retries_left == 0
    assert third.error_class is ErrorClass.SERVER
    assert third.error_message is not None and "budget" in third.error_message
    # A fresh instance (a new run) has a fresh budget.
    assert make(handler, retry=retry).retries_left == 3


async def test_budget_of_zero_means_no_retries(make: Factory) -> None:
    handler, seen = scripted(httpx.Response(429), httpx.Response(200, json=completion()))
    response = await make(handler, retry=RetryPolicy(budget=0)).complete(REQUEST)
    assert response.error_class is ErrorClass.RATE_LIMIT
    assert response.attempts == 1
    assert len(seen) == 1


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(400, json={"error": {"message": "bad"}}),
        httpx.Response(401),
        httpx.Response(403),
        httpx.Response(404),
        httpx.Response(422),
        httpx.Response(200, content=b"<html>not json</html>"),
        httpx.Response(200, json={"choices": []}),
    ],
)
async def test_permanent_errors_are_not_retried(make: Factory, answer: httpx.Response) -> None:
    handler, seen = scripted(answer, httpx.Response(200, json=completion()))
    response = await make(handler).complete(REQUEST)
    assert not response.ok
    assert response.error_class is not None and not response.error_class.transient
    assert response.attempts == 1
    assert len(seen) == 1
    assert make.delays == []


# --- classification --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (429, ErrorClass.RATE_LIMIT),
        (500, ErrorClass.SERVER),
        (502, ErrorClass.SERVER),
        (503, ErrorClass.SERVER),
        (504, ErrorClass.SERVER),
        (529, ErrorClass.SERVER),
        (401, ErrorClass.AUTH),
        (403, ErrorClass.AUTH),
        (400, ErrorClass.BAD_REQUEST),
        (404, ErrorClass.BAD_REQUEST),
        (413, ErrorClass.BAD_REQUEST),
        (422, ErrorClass.BAD_REQUEST),
        (408, ErrorClass.TIMEOUT),
        (302, ErrorClass.PROTOCOL),
    ],
)
async def test_http_status_classes(make: Factory, status: int, expected: ErrorClass) -> None:
    handler, _ = scripted(httpx.Response(status, headers={"x-request-id": "req_abc"}))
    response = await make(handler, retry=RetryPolicy(max_attempts=1)).complete(REQUEST)
    assert response.error_class is expected
    assert response.http_status == status
    assert response.request_id == "req_abc"
    assert response.error_message == f"HTTP {status}"
    assert response.text is None


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.ConnectTimeout("connect timed out"), ErrorClass.TIMEOUT),
        (httpx.ReadTimeout("read timed out"), ErrorClass.TIMEOUT),
        (httpx.WriteTimeout("write timed out"), ErrorClass.TIMEOUT),
        (httpx.PoolTimeout("pool timed out"), ErrorClass.TIMEOUT),
        (httpx.ConnectError("[Errno 111] Connection refused"), ErrorClass.CONNECT),
        (httpx.ReadError("connection reset"), ErrorClass.CONNECT),
        (httpx.WriteError("broken pipe"), ErrorClass.CONNECT),
        (httpx.RemoteProtocolError("peer closed connection"), ErrorClass.CONNECT),
        (httpx.UnsupportedProtocol("no ftp"), ErrorClass.BAD_REQUEST),
        (httpx.DecodingError("bad gzip"), ErrorClass.PROTOCOL),
    ],
)
async def test_transport_error_classes(make: Factory, exc: Exception, expected: ErrorClass) -> None:
    handler, _ = scripted(exc)
    response = await make(handler, retry=RetryPolicy(max_attempts=1)).complete(REQUEST)
    assert response.error_class is expected
    assert response.http_status is None
    assert response.error_message
    # Transient ones are retried (and then succeed), permanent ones are not.
    handler, seen = scripted(exc, httpx.Response(200, json=completion()))
    retried = await make(handler).complete(REQUEST)
    assert retried.ok is expected.transient
    assert len(seen) == (2 if expected.transient else 1)


async def test_overall_deadline_is_a_timeout(make: Factory) -> None:
    # MockTransport ignores httpx's per-phase timeouts, so this is the overall deadline.
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json=completion())

    provider = make(handler, timeout=0.05, retry=RetryPolicy(max_attempts=1))
    started = time.perf_counter()
    response = await provider.complete(REQUEST)
    assert time.perf_counter() - started < 2
    assert response.error_class is ErrorClass.TIMEOUT
    assert response.error_message is not None and "0.05s" in response.error_message


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, content=b"not json at all"),
        httpx.Response(200, content=b"\xff\xfe\x00garbage"),
        httpx.Response(200, json=["a", "list"]),
        httpx.Response(200, json={"object": "chat.completion"}),
        httpx.Response(200, json={"choices": "nope"}),
        httpx.Response(200, json={"choices": [{"index": 0}]}),
        httpx.Response(200, json={"choices": [{"message": "text"}]}),
        httpx.Response(200, json={"choices": [{"message": {"content": 42}}]}),
        httpx.Response(200, json={"choices": [None]}),
    ],
)
async def test_unusable_success_bodies_are_protocol_errors(
    make: Factory, answer: httpx.Response
) -> None:
    handler, _ = scripted(answer)
    response = await make(handler).complete(REQUEST)
    assert response.error_class is ErrorClass.PROTOCOL
    assert response.http_status == 200
    assert response.attempts == 1


async def test_provider_message_is_included_and_truncated(make: Factory) -> None:
    long = "The model produced invalid content. " + "x" * 2000
    handler, _ = scripted(
        httpx.Response(400, json={"error": {"message": long, "type": "invalid_request_error"}})
    )
    response = await make(handler).complete(REQUEST)
    message = response.error_message
    assert message is not None
    assert message.startswith("HTTP 400: invalid_request_error: The model produced invalid")
    assert len(message) <= 320
    assert "\n" not in message


async def test_plain_text_error_bodies_become_a_one_line_snippet(make: Factory) -> None:
    handler, _ = scripted(httpx.Response(502, text="<html>\n<h1>502 Bad Gateway</h1>\n</html>"))
    response = await make(handler, retry=RetryPolicy(max_attempts=1)).complete(REQUEST)
    assert response.error_message == "HTTP 502: <html> <h1>502 Bad Gateway</h1> </html>"


# --- secrets -----------------------------------------------------------------------------------


def _echoing_handler(status: int) -> Handler:
    """A server that echoes the request's headers (and so the key) in its error message."""

    def handler(request: httpx.Request) -> httpx.Response:
        echoed = "; ".join(f"{k}: {v}" for k, v in request.headers.items())
        return httpx.Response(status, json={"error": {"message": f"rejected {echoed}"}})

    return handler


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize("status", [400, 401, 403, 429, 500])
async def test_api_key_never_appears_in_errors_or_reprs(
    make: Factory, kind: str, status: int
) -> None:
    provider = make(_echoing_handler(status), kind=kind, retry=RetryPolicy(max_attempts=2))
    response = await provider.complete(REQUEST)
    assert not response.ok
    assert response.error_message is not None
    assert "rejected" in response.error_message  # the echo did come back...
    assert API_KEY not in response.error_message  # ...but without the key
    assert API_KEY not in repr(response)
    assert API_KEY not in repr(provider)
    assert API_KEY not in str(provider)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("closed"),
    ],
)
async def test_api_key_not_in_transport_error_messages(make: Factory, exc: Exception) -> None:
    handler, _ = scripted(exc)
    response = await make(handler, retry=RetryPolicy(max_attempts=1)).complete(REQUEST)
    assert response.error_message is not None
    assert API_KEY not in response.error_message
    assert "authorization" not in response.error_message.lower()


# --- concurrency and cancellation ----------------------------------------------------------------


async def test_concurrency_limit_is_enforced(make: Factory) -> None:
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json=completion())

    provider = make(handler, concurrency=3)
    responses = await asyncio.gather(*(provider.complete(REQUEST) for _ in range(15)))
    assert all(r.ok for r in responses)
    assert peak == 3


async def test_no_slot_is_held_while_waiting_to_retry(make: Factory) -> None:
    release = asyncio.Event()
    sleeping = asyncio.Event()

    async def blocking_sleep(delay: float) -> None:
        sleeping.set()
        await release.wait()

    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503) if calls == 1 else httpx.Response(200, json=completion())

    provider = make(handler, concurrency=1, sleep=blocking_sleep)
    first = asyncio.create_task(provider.complete(REQUEST))
    await asyncio.wait_for(sleeping.wait(), 1)
    # The only slot must be free while `first` waits to retry.
    second = await asyncio.wait_for(provider.complete(REQUEST), 1)
    assert second.ok and second.attempts == 1
    release.set()
    assert (await asyncio.wait_for(first, 1)).attempts == 2


async def test_cancellation_during_a_request_propagates(make: Factory) -> None:
    entered = asyncio.Event()
    hang = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/chat/completions") and not entered.is_set():
            entered.set()
            await hang.wait()
        return httpx.Response(200, json=completion())

    provider = make(handler, concurrency=1)
    task = asyncio.create_task(provider.complete(REQUEST))
    await asyncio.wait_for(entered.wait(), 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The slot was given back: the next call goes through.
    response = await asyncio.wait_for(provider.complete(REQUEST), 1)
    assert response.ok


async def test_cancellation_during_retry_sleep_propagates(make: Factory) -> None:
    sleeping = asyncio.Event()

    async def endless_sleep(delay: float) -> None:
        sleeping.set()
        await asyncio.Event().wait()

    handler, seen = scripted(httpx.Response(503))
    provider = make(handler, sleep=endless_sleep)
    task = asyncio.create_task(provider.complete(REQUEST))
    await asyncio.wait_for(sleeping.wait(), 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(seen) == 1


# --- response size -------------------------------------------------------------------------------


async def test_oversized_streamed_body_is_refused_without_reading_it_all(make: Factory) -> None:
    produced = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal produced
        while produced < 2000:  # bounded, so a broken limit fails the test instead of hanging
            produced += 1
            yield b"x" * 1024

    handler, _ = scripted(httpx.Response(200, content=endless()))
    response = await make(handler, max_response_bytes=10_000).complete(REQUEST)
    assert response.error_class is ErrorClass.PROTOCOL
    assert response.error_message is not None and "10000 bytes" in response.error_message
    assert produced <= 11


async def test_declared_oversized_body_is_refused_before_reading(make: Factory) -> None:
    produced = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal produced
        produced += 1
        yield b"{}"

    handler, _ = scripted(
        httpx.Response(200, headers={"content-length": "999999999"}, content=body())
    )
    response = await make(handler, max_response_bytes=1000).complete(REQUEST)
    assert response.error_class is ErrorClass.PROTOCOL
    assert produced == 0


async def test_body_at_the_limit_is_accepted(make: Factory) -> None:
    raw = json.dumps(completion()).encode()
    handler, _ = scripted(httpx.Response(200, content=raw))
    assert (await make(handler, max_response_bytes=len(raw)).complete(REQUEST)).ok
    refused = await make(handler, max_response_bytes=len(raw) - 1).complete(REQUEST)
    assert refused.error_class is ErrorClass.PROTOCOL


# --- construction and registry -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "base_url", "expected"),
    [
        ("openai", None, "https://api.openai.com/v1/chat/completions"),
        ("openai", "http://llm.local:8000/v1/", "http://llm.local:8000/v1/chat/completions"),
        ("openai", "http://llm.local:8000/v1", "http://llm.local:8000/v1/chat/completions"),
        ("anthropic", None, "https://api.anthropic.com/v1/messages"),
        (
            "anthropic",
            "https://gw.example/anthropic/v1//",
            "https://gw.example/anthropic/v1/messages",
        ),
    ],
)
async def test_base_url_default_and_trailing_slash(
    make: Factory, kind: str, base_url: str | None, expected: str
) -> None:
    handler, seen = scripted(httpx.Response(500))
    await make(handler, kind=kind, base_url=base_url, retry=RetryPolicy(max_attempts=1)).complete(
        REQUEST
    )
    assert str(seen[0].url) == expected


def test_registry_and_capabilities() -> None:
    assert dict(PROVIDERS) == {
        "openai": OpenAIProvider,
        "openai-responses": ResponsesProvider,
        "anthropic": AnthropicProvider,
    }
    assert OpenAIProvider.kind == "openai" and OpenAIProvider.supports_json_schema is True
    assert ResponsesProvider.kind == "openai-responses"
    # Native structured output everywhere now: Anthropic's output_config for strict requests.
    assert AnthropicProvider.kind == "anthropic" and AnthropicProvider.supports_json_schema is True
    assert OpenAIProvider.default_base_url == "https://api.openai.com/v1"
    assert AnthropicProvider.default_base_url == "https://api.anthropic.com/v1"


def test_unknown_kind_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"unknown provider kind 'gemini'.*anthropic, openai"):
        make_provider("gemini", model="x")


@pytest.mark.parametrize(
    "override", [{"concurrency": 0}, {"timeout": 0}, {"retry": RetryPolicy(max_attempts=0)}]
)
async def test_constructor_rejects_nonsense(make: Factory, override: dict[str, Any]) -> None:
    handler, _ = scripted(httpx.Response(200, json=completion()))
    with pytest.raises(ValueError):
        make(handler, **override)


class RawProvider(Provider):
    """A minimal adapter whose `_send` lets raw failures escape, to test the base alone."""

    kind = "raw"
    default_base_url = "http://unused"

    def __init__(self, outcomes: list[Any], sleep: Callable[[float], Awaitable[None]]) -> None:
        super().__init__(
            model="m",
            base_url=None,
            api_key=None,
            client=httpx.AsyncClient(),
            timeout=1.0,
            concurrency=1,
            retry=RetryPolicy(max_attempts=3, budget=10),
            sleep=sleep,
        )
        self.outcomes = outcomes

    async def _send(self, request: ChatRequest) -> ProviderResponse:
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        assert isinstance(outcome, ProviderResponse)
        return outcome


async def test_base_retries_what_send_raises_and_maps_escaped_transport_errors() -> None:
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)

    provider = RawProvider(
        [
            TransientProviderError(ErrorClass.SERVER, "overloaded", retry_after=3.0),
            httpx.ConnectError("refused"),
            ProviderResponse(text="fine"),
        ],
        sleep,
    )
    response = await provider.complete(REQUEST)
    assert response.text == "fine" and response.attempts == 3
    assert len(delays) == 2 and delays[0] >= 3.0

    provider = RawProvider([TimeoutError(), TimeoutError(), TimeoutError()], sleep)
    response = await provider.complete(REQUEST)
    assert response.error_class is ErrorClass.TIMEOUT and response.attempts == 3


async def test_bugs_in_send_are_not_swallowed() -> None:
    async def sleep(delay: float) -> None:
        pass

    provider = RawProvider([ZeroDivisionError("bug")], sleep)
    with pytest.raises(ZeroDivisionError):
        await provider.complete(REQUEST)


# --- Retry-After parsing -------------------------------------------------------------------------

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "120"}, 120.0),
        ({"retry-after": " 2.5 "}, 2.5),
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after": email.utils.formatdate(NOW + 42, usegmt=True)}, 42.0),
        ({"retry-after": email.utils.formatdate(NOW - 42, usegmt=True)}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "junk", "retry-after": "3"}, 3.0),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected
