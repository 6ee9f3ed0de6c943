"""Alerting: what an alert says (`message`), how untrusted text is made safe (`escape`), and how
it reaches people (`slack`). The alert lifecycle and the delivery outbox build on these.

This module holds what every notifier shares: the `Notifier` contract, the `Delivery` result,
and the helpers that turn an HTTP answer into a transient or permanent error. It imports
nothing heavy, so the CLI can import `monitor.alerts` at start; `slack_sdk` is imported only
when a Slack notifier is built.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from monitor.errors import (
    ConfigError,
    NotificationError,
    PermanentNotificationError,
    TransientNotificationError,
)

if TYPE_CHECKING:
    from monitor.alerts.message import AlertMessage
    from monitor.config import SecretRef

__all__ = [
    "Delivery",
    "Notifier",
    "classify",
    "error_code",
    "resolve_secret",
    "silent_logger",
]
_CODE = re.compile(r"[a-z0-9_]{1,64}")


@dataclass(frozen=True)
class Delivery:
    """Where a message landed, so later messages can reply in its thread or edit it.

    `ts` and `channel` are None when the transport cannot say (an incoming webhook answers
    only "ok"). `text_only` is True when the rich layout was refused and the plain-text version
    was delivered instead: the alert got through, but the renderer needs a look.
    """

    ts: str | None
    channel: str | None
    text_only: bool = False


class Notifier(Protocol):
    """Delivers one AlertMessage to people: `monitor.alerts.slack.SlackNotifier` is the one
    there is. The outbox (`monitor.alerts.outbox.deliver_due`) calls it for each due row, and
    `send_now` for `driftmon alerts test`.

    `send(msg, *, thread_ts=None) -> Delivery` is called with a message rebuilt from the
    outbox's JSON (its sequences may be lists; every string in it is untrusted and must be
    escaped for the medium) and, for replies (`resolved`, `outage_resolved`, `spread`), the
    `Delivery.ts` of the alert's first delivered message; the outbox passes None when
    `can_thread` is False, and a notifier that cannot thread posts at top level anyway. It
    returns where the message landed (`Delivery`), once the service has acknowledged it.

    What must hold:
    - one attempt, no waiting and no retries inside: the outbox owns retries, their backoff
      (`monitor.retry`, the server's Retry-After included) and the record of every attempt.
      One fallback within the call is allowed (Slack resends as text only, at once, when it
      refuses the blocks; `Delivery.text_only` says so);
    - it returns or raises well within the outbox's lease (`outbox.LEASE`, two minutes; Slack:
      a 10 s client timeout), else another pass may send the row again;
    - it is called from worker threads (the daemon delivers in `asyncio.to_thread`, and the
      periodic pass and the pass after a run may overlap), so it keeps no per-call state;
    - exception messages, logs and reprs never contain a secret (token or webhook URL).

    Raises `TransientNotificationError` when retrying may help (HTTP 429 and 5xx, timeouts,
    refused connections; `retry_after` is the server's hint in seconds, or None): the outbox
    records the attempt and schedules the row again, `send_now` retries while its time
    allows. Raises `PermanentNotificationError` when it cannot (bad credentials, unknown
    channel, ...): the outbox marks the row failed for good and logs it; `send_now` raises it.
    Nothing else is meant to escape. A ValueError or TypeError is taken as an unreadable
    message and fails the row for good; anything else propagates out of `deliver_due`,
    records nothing, and leaves the row to be sent again once its lease expires.
    """

    name: str  # what the notifier is, e.g. "slack"

    @property
    def can_thread(self) -> bool: ...

    def send(self, msg: AlertMessage, *, thread_ts: str | None = None) -> Delivery: ...


def classify(
    what: str, *, status: int | None, transient: bool, retry_after: float | None = None
) -> NotificationError:
    """The error for a failed delivery. HTTP 429 and 5xx are always transient, whatever the
    body says; `transient` covers what only the notifier knows (its service's error codes,
    timeouts and refused connections, where there is no status)."""
    if status == 429 or (status is not None and status >= 500) or transient:
        return TransientNotificationError(what, retry_after=retry_after)
    return PermanentNotificationError(what)


def silent_logger(name: str) -> logging.Logger:
    """A logger that drops everything, for a third-party client holding a secret.

    slack_sdk formats debug lines with the webhook URL (and request bodies) in them whenever
    its logger's own level is unset, whatever the effective level; and what it logs at error
    level repeats the failure we raise anyway. A standalone, disabled logger (not registered,
    so no configuration can switch it back on) keeps all of that out of our logs.
    """
    quiet = logging.Logger(name, level=logging.CRITICAL)
    quiet.disabled = True
    return quiet


def error_code(body: Any, status: int) -> str:
    """A service's short error code from a JSON body (`{"error": "..."}`) or a text body, else
    `http_<status>`. Anything else (an HTML error page, a proxy's message that might echo the
    request, secrets included) is never copied into our errors."""
    raw = body.get("error") if isinstance(body, Mapping) else body
    text = raw.strip() if isinstance(raw, str) else ""
    return text if _CODE.fullmatch(text) else f"http_{status}"


def resolve_secret(ref: SecretRef, key: str, base_dir: Path | None) -> str:
    """A secret's value; a relative `file` is read from `base_dir` (the config file's folder)."""
    from monitor.config import SecretRef  # pydantic: only when a notifier is built

    if ref.file is not None and base_dir is not None and not Path(ref.file).is_absolute():
        ref = SecretRef(file=str(base_dir / ref.file))
    value = ref.resolve().strip()
    if not value:
        raise ConfigError(f"the secret ({ref.describe()}) is empty", key=key)
    return value
