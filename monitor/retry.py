"""When to try again after a transient failure, and how long to wait first.

The one place for retry rules, shared by every caller that retries: the provider adapters
(`monitor.providers.base`), the alert outbox and `driftmon alerts test`
(`monitor.alerts.outbox`). It holds the server's wait hint (`parse_retry_after`), exponential
backoff with jitter, and how far a hint is believed (`RetryPolicy`). Each caller keeps its own
numbers as a `RetryPolicy`; the class defaults are a provider call's.

Two rules for a server's hint exist on purpose (`HintRule`): a call inside a run must not stall
the run on one long wait, while a queued alert has to go out in the end and waits as a
timestamp in the database rather than in a blocked worker.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from enum import StrEnum
from typing import Any

# 2 ** 62 seconds is already far beyond any cap; a larger exponent could overflow a float.
_MAX_EXPONENT = 62


class HintRule(StrEnum):
    """How a server's wait hint (Retry-After) combines with our own backoff."""

    # Wait the longer of the hint and the backoff; a hint over `max_retry_after` ends the
    # retries, so the failure is recorded instead of the caller stalling (provider calls).
    AT_LEAST = "at_least"
    # The hint replaces the backoff and is believed up to `max_retry_after` (alert delivery:
    # the message must get out eventually, and a wait costs no worker).
    CAPPED = "capped"


@dataclass(frozen=True)
class GiveUp:
    """No further attempt. `reason` says why when the attempt count alone does not."""

    reason: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """A caller's retry numbers. `attempts` below is always the number of attempts made so
    far, so the wait before retry n is computed with attempts = n."""

    max_attempts: int | None = 4  # first attempt included; None: no limit
    base_delay: float = 0.5  # seconds; the backoff ceiling of the first retry, doubled each retry
    max_delay: float = 30.0  # the backoff ceiling never grows past this
    # Share of the ceiling drawn at random: 1.0 is full jitter (uniform in [0, ceiling]), 0.5
    # draws from [ceiling / 2, ceiling]. Callers that failed together spread out either way.
    jitter: float = 1.0
    max_retry_after: float = 120.0  # the longest server hint believed; see `hint_rule`
    hint_rule: HintRule = HintRule.AT_LEAST
    min_delay: float = 0.0  # no wait is shorter, whatever the hint ("Retry-After: 0" included)
    budget: int | None = 200  # retries per run across all its calls (providers); None: no limit

    def ceiling(self, attempts: int) -> float:
        """The backoff's upper bound before the next retry: exponential, capped."""
        exponent = min(max(0, attempts - 1), _MAX_EXPONENT)
        return min(self.max_delay, self.base_delay * 2.0**exponent)

    def backoff(self, attempts: int, rng: random.Random | None = None) -> float:
        """Our own wait before the next retry, without any server hint."""
        draw = rng.random() if rng is not None else random.random()
        return self.ceiling(attempts) * ((1.0 - self.jitter) + self.jitter * draw)

    def give_up(self, attempts: int, hint: float | None) -> GiveUp | None:
        """A `GiveUp` when no retry should follow `attempts` attempts, else None.

        The run-wide `budget` is the caller's to count: only it knows what the run has spent.
        """
        if self.max_attempts is not None and attempts >= self.max_attempts:
            return GiveUp()  # the attempt count, reported with the failure, says it all
        if self.hint_rule is HintRule.AT_LEAST and hint is not None and hint > self.max_retry_after:
            return GiveUp(f"Retry-After {hint:g}s is over the {self.max_retry_after:g}s limit")
        return None

    def delay(self, attempts: int, hint: float | None, rng: random.Random | None = None) -> float:
        """Seconds to wait before the next attempt, given the server's `hint` (or None).

        Draws from `rng` (the `random` module when None) only when the backoff is used.
        """
        if hint is None:
            wait = self.backoff(attempts, rng)
        elif self.hint_rule is HintRule.CAPPED:
            wait = min(self.max_retry_after, hint)
        else:
            wait = max(self.backoff(attempts, rng), hint)  # the server's wish is a minimum
        return max(wait, self.min_delay)


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    """A header's value, whatever the case of its name in `headers` (a plain dict from an
    HTTP library keeps the server's spelling)."""
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return None if value is None else str(value)


def parse_retry_after(headers: Mapping[str, Any], *, now: float | None = None) -> float | None:
    """Seconds the server asks us to wait, from `retry-after-ms` or `Retry-After`, or None.

    `Retry-After` may be delta-seconds or an HTTP-date (RFC 9110); `retry-after-ms` (sent by
    OpenAI) is more precise and wins. A date in the past or a negative value means 0; an
    unparseable value means no hint. `now` (epoch seconds) is for tests.
    """
    millis = _header(headers, "retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000.0
        except ValueError:
            pass
        else:
            if not math.isnan(value):
                return max(0.0, value)
    raw = _header(headers, "retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # HTTP-dates are always GMT
            when = when.replace(tzinfo=UTC)
        value = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(value):
        return None
    return max(0.0, value)


__all__ = ["GiveUp", "HintRule", "RetryPolicy", "parse_retry_after"]
