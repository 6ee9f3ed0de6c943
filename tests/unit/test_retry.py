"""The retry rules (`monitor.retry`) with known values, for both callers' numbers, and
`send_now`, the outbox's rules applied to one message sent at once (`driftmon alerts test`)."""

from __future__ import annotations

import email.message
import email.utils
import random
from dataclasses import dataclass, field

import httpx
import pytest

from monitor.alerts import Delivery
from monitor.alerts.message import AlertMessage
from monitor.alerts.outbox import DELIVERY_RETRY, send_now
from monitor.errors import PermanentNotificationError, TransientNotificationError
from monitor.retry import GiveUp, HintRule, RetryPolicy, parse_retry_after

NOW = 1_700_000_000.0
PROVIDER = RetryPolicy()  # a provider call's defaults


class Fixed(random.Random):
    """A generator whose every draw is `value`."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


class NoDraws(random.Random):
    def random(self) -> float:
        raise AssertionError("the backoff was drawn although the server's hint decides")


# --- the backoff --------------------------------------------------------------------------------


def test_provider_ceiling_doubles_from_half_a_second_up_to_its_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0)
    assert [policy.ceiling(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert [PROVIDER.ceiling(n) for n in (1, 6, 7, 50)] == [0.5, 16.0, 30.0, 30.0]


def test_delivery_ceiling_doubles_from_ten_seconds_up_to_five_minutes() -> None:
    assert [DELIVERY_RETRY.ceiling(n) for n in range(1, 8)] == [10, 20, 40, 80, 160, 300, 300]
    assert DELIVERY_RETRY.ceiling(100_000) == 300.0  # no float overflow after many attempts


@pytest.mark.parametrize(
    ("draw", "provider", "delivery"),
    [(0.0, 0.0, 10.0), (0.25, 0.5, 12.5), (0.5, 1.0, 15.0), (1.0, 2.0, 20.0)],
)
def test_jitter_is_full_for_providers_and_half_for_delivery(
    draw: float, provider: float, delivery: float
) -> None:
    # After 3 attempts a provider's ceiling is 2 s (full jitter: [0, 2]); after 2 a
    # delivery's is 20 s (half: [10, 20]).
    assert PROVIDER.backoff(3, Fixed(draw)) == provider
    assert DELIVERY_RETRY.backoff(2, Fixed(draw)) == delivery


def test_full_jitter_draws_exactly_what_uniform_drew() -> None:
    # Seeded runs must wait exactly what they waited before the rules moved here.
    ours, theirs = random.Random(11), random.Random(11)
    for attempts in range(1, 9):
        cap = min(30.0, 0.5 * 2.0 ** (attempts - 1))
        assert PROVIDER.backoff(attempts, ours) == theirs.uniform(0.0, cap)


# --- the server's hint --------------------------------------------------------------------------


def test_a_provider_waits_at_least_the_hint_and_at_least_its_backoff() -> None:
    assert PROVIDER.delay(1, 7.0, Fixed(0.0)) == 7.0
    assert RetryPolicy(base_delay=2.0).delay(1, 0.1, Fixed(1.0)) == 2.0
    assert PROVIDER.delay(2, None, Fixed(0.5)) == 0.5


def test_delivery_waits_the_hint_alone_capped_at_an_hour_and_at_least_a_second() -> None:
    assert DELIVERY_RETRY.delay(1, 7.0, NoDraws()) == 7.0
    assert DELIVERY_RETRY.delay(9, 7.0, NoDraws()) == 7.0  # the backoff plays no part
    assert DELIVERY_RETRY.delay(1, 86_400.0, NoDraws()) == 3600.0
    assert DELIVERY_RETRY.delay(1, 0.0, NoDraws()) == 1.0
    assert DELIVERY_RETRY.delay(3, None, Fixed(0.0)) == 20.0


def test_a_provider_gives_up_on_its_attempts_and_on_a_hint_over_the_limit() -> None:
    policy = RetryPolicy(max_attempts=4, max_retry_after=120.0)
    assert policy.give_up(3, None) is None
    assert policy.give_up(4, None) == GiveUp(None)
    assert policy.give_up(1, 120.0) is None
    assert policy.give_up(1, 500.0) == GiveUp("Retry-After 500s is over the 120s limit")


def test_delivery_never_gives_up_on_a_transient_error() -> None:
    assert DELIVERY_RETRY.hint_rule is HintRule.CAPPED
    assert DELIVERY_RETRY.give_up(10_000, None) is None
    assert DELIVERY_RETRY.give_up(1, 86_400.0) is None


# --- reading Retry-After ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "120"}, 120.0),
        ({"Retry-After": "7"}, 7.0),  # slack_sdk hands over a plain dict in the server's case
        ({"RETRY-AFTER-MS": "250", "Retry-After": "9"}, 0.25),
        ({"retry-after": " 2.5 "}, 2.5),
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after": email.utils.formatdate(NOW + 42, usegmt=True)}, 42.0),
        ({"retry-after": "Tue, 14 Nov 2023 22:14:02"}, 42.0),  # no zone: GMT, as HTTP says
        ({"retry-after": email.utils.formatdate(NOW - 42, usegmt=True)}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after-ms": "junk", "retry-after": "3"}, 3.0),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected


def test_parse_retry_after_reads_httpx_and_email_headers() -> None:
    assert parse_retry_after(httpx.Headers({"Retry-After": "5"})) == 5.0
    message = email.message.Message()
    message["Retry-After"] = "6"
    assert parse_retry_after(message) == 6.0  # type: ignore[arg-type]  # urllib's HTTPMessage


# --- one message at once, by the outbox's rules -------------------------------------------------

TEST_MESSAGE = AlertMessage(kind="test", target="t")
LANDED = Delivery(ts="1.000001", channel="C0")


@dataclass
class Scripted:
    """A notifier failing as told, then delivering; with a clock that sleeping advances."""

    failures: list[Exception]
    now: float = 0.0
    sent_at: list[float] = field(default_factory=list)
    name: str = "scripted"
    can_thread: bool = False

    def send(self, msg: AlertMessage, *, thread_ts: str | None = None) -> Delivery:
        self.sent_at.append(self.now)
        if self.failures:
            raise self.failures.pop(0)
        return LANDED

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def clock(self) -> float:
        return self.now


def rate_limited(wait: float | None) -> TransientNotificationError:
    return TransientNotificationError(
        "Slack chat.postMessage failed: ratelimited", retry_after=wait
    )


def test_send_now_waits_out_retry_after() -> None:
    slack = Scripted([rate_limited(1.0), rate_limited(4.0)])
    told: list[float] = []
    delivery = send_now(
        slack,
        TEST_MESSAGE,
        within=30.0,
        on_retry=lambda _, delay: told.append(delay),
        sleep=slack.sleep,
        clock=slack.clock,
    )
    assert delivery == LANDED
    assert slack.sent_at == [0.0, 1.0, 5.0] and told == [1.0, 4.0]


def test_send_now_backs_off_like_the_outbox_without_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "random", lambda: 1.0)  # the outbox draws from the module
    slack = Scripted([rate_limited(None), rate_limited(None)])
    send_now(slack, TEST_MESSAGE, within=30.0, sleep=slack.sleep, clock=slack.clock)
    assert slack.sent_at == [0.0, 10.0, 30.0]  # 10 s, then 20 s


def test_send_now_gives_up_when_the_wait_would_pass_its_time() -> None:
    slack = Scripted([rate_limited(1.0), rate_limited(45.0)])
    with pytest.raises(TransientNotificationError) as caught:
        send_now(slack, TEST_MESSAGE, within=30.0, sleep=slack.sleep, clock=slack.clock)
    assert slack.sent_at == [0.0, 1.0]  # the 45 s wait was not slept
    assert "ratelimited" in str(caught.value) and "gave up after 2 attempts" in str(caught.value)
    assert caught.value.retry_after == 45.0


def test_send_now_does_not_retry_a_permanent_error() -> None:
    slack = Scripted([PermanentNotificationError("channel_not_found"), rate_limited(1.0)])
    with pytest.raises(PermanentNotificationError):
        send_now(slack, TEST_MESSAGE, within=30.0, sleep=slack.sleep, clock=slack.clock)
    assert slack.sent_at == [0.0]
