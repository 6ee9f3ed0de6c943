"""Slack: render an AlertMessage as Block Kit and as text, and deliver it.

Two transports, chosen by `[alerts.slack]`: a bot token + channel (chat.postMessage: returns the
message ts, so later messages can reply in the alert's thread or edit it) or an incoming webhook
(no ts, so no threads). Every string from an AlertMessage is untrusted and goes through
`monitor.alerts.escape`; every mrkdwn object has `verbatim: true` (Slack auto-links nothing in
it); we never write link or mention syntax; unfurling is off, so nothing is fetched or previewed.
"""

from __future__ import annotations

import http.client
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from monitor.alerts import Delivery, classify, error_code, resolve_secret, silent_logger
from monitor.alerts.escape import code, code_block, escape, plain, slack_len
from monitor.alerts.message import WORDING, AlertMessage, MetricLine
from monitor.drift.model import State
from monitor.errors import ConfigError, NotificationError, PermanentNotificationError
from monitor.retry import parse_retry_after

if TYPE_CHECKING:
    from slack_sdk import WebClient
    from slack_sdk.webhook import WebhookClient

    from monitor.config import SlackSettings

log = logging.getLogger(__name__)
Blocks = list[dict[str, Any]]
_Post = Callable[[str, Blocks | None], Delivery]  # (text, blocks) -> where it landed

# Slack's limits: https://docs.slack.dev/reference/block-kit/blocks ("up to 50 blocks in each
# message"), .../blocks/section-block (text: 3,000 characters), .../blocks/header-block (150),
# .../blocks/context-block (10 elements), .../methods/chat.postMessage ("Slack will truncate
# messages containing more than 40,000 characters"). Slack also answers msg_blocks_too_long far
# below 50 x 3,000 (slackapi/bolt-js#2509: ~13,000 characters in all), so we keep all the block
# text of a message under BLOCKS_TEXT_BUDGET, and `text` under TEXT_BUDGET. The caps below
# keep both under ~11,500 (test_huge_alerts_stay_within_slack_limits renders the worst case).
MAX_BLOCKS, MAX_SECTION_TEXT, MAX_HEADER_TEXT, MAX_CONTEXT_ELEMENTS = 50, 3000, 150, 10
MAX_MESSAGE_TEXT, BLOCKS_TEXT_BUDGET, TEXT_BUDGET = 40_000, 12_000, 12_000
MAX_METRICS, MAX_EXAMPLES = 20, 3


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _when(moment: datetime) -> str:
    utc = moment.astimezone(UTC) if moment.tzinfo else moment  # naive times are UTC by contract
    return utc.strftime("%Y-%m-%d %H:%M UTC")


def _metric_line(m: MetricLine) -> str:
    p = "p_adj n/a" if m.p_adjusted is None else f"p_adj {m.p_adjusted:.2g}"
    line = (
        f"• {code(m.metric, 56)}: {code(m.baseline_value, 56)} → {code(m.current_value, 56)} "
        f"({escape(m.effect, 56)}, {p}, n {m.baseline_n} → {m.current_n})"
    )
    return line if m.state == State.DRIFTED else f"{line} · {escape(m.state, 32)}"


def _parts(msg: AlertMessage) -> tuple[list[str], list[str], list[str], list[str]]:
    """Facts, metric lines, examples and footer, as mrkdwn: shared by both renderers, so the
    text-only fallback says what the blocks say."""
    facts = [f"*Target* {code(msg.target, 200)}"]
    if msg.probe_set is not None:
        facts.append(f"*Probe set* {code(msg.probe_set, 200)}")
    if msg.model is not None:
        facts.append(f"*Model* {code(msg.model, 200)}")
    if msg.identity_change is not None:
        facts.append(
            f"*Identity* {code(msg.identity_change[0], 200)} → {code(msg.identity_change[1], 200)}"
        )
    if msg.opened_at is not None:
        facts.append(f"*Opened* {_when(msg.opened_at)}")
    if msg.resolved_at is not None:
        facts.append(f"*Resolved* {_when(msg.resolved_at)}")
    if msg.note is not None:
        facts.append(f"*Note* {code(msg.note, 500)}")
    metrics = [_metric_line(m) for m in msg.metrics[:MAX_METRICS]]
    if len(msg.metrics) > MAX_METRICS:
        metrics.append(f"…and {len(msg.metrics) - MAX_METRICS} more metrics in the report")
    examples = []
    for ex in msg.examples[:MAX_EXAMPLES]:
        reason = "" if ex.reason is None else f" — {code(ex.reason, 300)}"
        examples.append(f"*Probe* {code(ex.probe_id, 120)}{reason}\n{code_block(ex.output, 700)}")
    footer = [] if msg.alert_id is None else [f"*Alert* #{msg.alert_id}"]
    if msg.report_path is not None:
        footer.append(f"*Report* {code(msg.report_path, 500)}")
    return facts, metrics, examples, footer


def render_text(msg: AlertMessage) -> str:
    """The whole message as mrkdwn text: the notification fallback and the text-only retry."""
    return _text(msg, *_parts(msg))


def _text(
    msg: AlertMessage, facts: list[str], metrics: list[str], examples: list[str], footer: list[str]
) -> str:
    emoji, title, intro = WORDING[msg.kind]
    lines = [f"{emoji} *{title}*", intro, " · ".join(facts)]
    lines += ["*Metrics*", *metrics] if metrics else []
    return "\n".join([*lines, *examples, *([" · ".join(footer)] if footer else [])])


def render_blocks(msg: AlertMessage) -> tuple[str, Blocks]:
    """(text, blocks) for chat.postMessage or a webhook, within the limits above."""
    emoji, title, intro = WORDING[msg.kind]
    prefix = f"{emoji} {title}: "
    subject = msg.target if msg.probe_set is None else f"{msg.target} / {msg.probe_set}"
    header = prefix + plain(subject, MAX_HEADER_TEXT - slack_len(prefix))
    facts, metrics, examples, footer = _parts(msg)
    blocks: Blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        {"type": "context", "elements": [_mrkdwn(f) for f in facts]},
        {"type": "section", "text": _mrkdwn(intro)},
    ]
    chunk = "*Metrics*"
    for line in metrics:  # more sections when the lines do not fit in one
        if slack_len(chunk) + 1 + slack_len(line) > MAX_SECTION_TEXT:
            blocks.append({"type": "section", "text": _mrkdwn(chunk)})
            chunk = line
        else:
            chunk += "\n" + line
    if metrics:
        blocks.append({"type": "section", "text": _mrkdwn(chunk)})
    if examples:
        blocks.append({"type": "divider"})
    blocks += [{"type": "section", "text": _mrkdwn(example)} for example in examples]
    if footer:
        blocks.append({"type": "context", "elements": [_mrkdwn(f) for f in footer]})
    return _text(msg, facts, metrics, examples, footer), blocks


# Slack refused the layout (our bug, not the alert's): one immediate retry as text only.
BLOCK_ERRORS = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_blocks_too_long"})
TRANSIENT_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "rollup_error",
        "timeout",
        "connection_error",
    }
)
# Listed for the reader: any error Slack names that is not transient is permanent, since Slack
# reports passing trouble with one of the codes above or with HTTP 429 / 5xx.
PERMANENT_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_text",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "missing_scope",
        "invalid_token",
        "no_service",
        "no_team",
        "team_disabled",
        "action_prohibited",
        "channel_is_archived",
        "invalid_payload",
        "msg_too_long",
    }
)
_HINTS = {
    "not_in_channel": "invite the bot to the channel, or give it chat:write.public",
    "channel_not_found": "alerts.slack.channel must be a channel id such as C0123456789",
    "missing_scope": "the bot token needs the chat:write scope",
}


class _Failure(Exception):
    """One failed Slack call, before classification; never leaves this module."""

    def __init__(self, method: str, code: str, status: int | None, wait: float | None) -> None:
        super().__init__(code)
        self.method, self.code, self.status, self.wait = method, code, status, wait

    def error(self) -> NotificationError:
        what = f"Slack {self.method} failed: {self.code}"
        what += "" if self.status is None else f" (HTTP {self.status})"
        what += f"; {_HINTS[self.code]}" if self.code in _HINTS else ""
        return classify(
            what, status=self.status, transient=self.code in TRANSIENT_ERRORS, retry_after=self.wait
        )


def _call(method: str, fn: Callable[[], Any]) -> Any:
    """Run one SDK call; every way it can fail becomes a _Failure with no secret in it."""
    from slack_sdk.errors import SlackApiError, SlackClientError

    try:
        return fn()
    except SlackApiError as exc:  # an answer that is not ok: HTTP error or {"ok": false}
        resp, status = exc.response, int(exc.response.status_code)
        raise _Failure(
            method, error_code(resp.data, status), status, parse_retry_after(resp.headers)
        ) from None
    except SlackClientError as exc:  # refused before sending (bad URL or proxy): our setup
        raise _Failure(method, type(exc).__name__.lower(), None, None) from None
    except (OSError, http.client.HTTPException) as exc:  # timeouts, refused or reset connections
        timed_out = isinstance(getattr(exc, "reason", exc), TimeoutError)
        raise _Failure(method, "timeout" if timed_out else "connection_error", None, None) from None


class SlackNotifier:
    """Delivers AlertMessages to Slack; `monitor.alerts.Notifier` states the contract.

    slack_sdk's own retry handlers are disabled (`retry_handlers=[]`) because the outbox owns
    retries (by the rules of `monitor.retry`): each attempt is recorded, waits honour
    Retry-After across restarts instead of blocking a worker in a hidden sleep, and the SDK's
    connection-error retry could post an alert twice when Slack accepted it but the answer was
    lost.
    """

    name = "slack"

    def __init__(self, client: WebClient | WebhookClient, channel: str | None) -> None:
        self._client, self._channel = client, channel  # channel None: the webhook transport

    @classmethod
    def from_settings(
        cls, settings: SlackSettings, *, base_dir: Path | None = None, timeout: int = 10
    ) -> SlackNotifier:
        """Build from `[alerts.slack]`; relative secret files are read from `base_dir`."""
        if (settings.token is None) == (settings.webhook_url is None):
            raise ConfigError("give either token + channel or webhook_url", key="alerts.slack")
        quiet = silent_logger(f"{__name__}.sdk")
        if settings.token is not None:
            if not settings.channel:
                raise ConfigError("a bot token needs a channel id", key="alerts.slack.channel")
            from slack_sdk import WebClient

            token = resolve_secret(settings.token, "alerts.slack.token", base_dir)
            client = WebClient(
                token=token,
                base_url=settings.base_url,
                timeout=timeout,
                retry_handlers=[],
                logger=quiet,
            )
            return cls(client, settings.channel)
        assert settings.webhook_url is not None
        from slack_sdk.webhook import WebhookClient

        url = resolve_secret(settings.webhook_url, "alerts.slack.webhook_url", base_dir)
        if not url.startswith(("https://", "http://")):  # never echo the value: it is the secret
            raise ConfigError("the webhook URL must start with https://", key="alerts.slack")
        return cls(WebhookClient(url=url, timeout=timeout, retry_handlers=[], logger=quiet), None)

    @property
    def can_thread(self) -> bool:
        return self._channel is not None

    def __repr__(self) -> str:
        how = f"bot token, channel={self._channel!r}" if self._channel else "incoming webhook"
        return f"SlackNotifier({how})"

    def send(self, msg: AlertMessage, *, thread_ts: str | None = None) -> Delivery:
        """Post `msg`; with a bot token and `thread_ts`, as a reply in that thread."""
        if self._channel is None:
            return self._deliver(msg, self._hook)
        channel = self._channel
        return self._deliver(
            msg,
            lambda text, blocks: self._web(
                "chat.postMessage",
                lambda c: c.chat_postMessage(
                    channel=channel,
                    text=text,
                    blocks=blocks,
                    thread_ts=thread_ts,
                    unfurl_links=False,
                    unfurl_media=False,
                ),
            ),
        )

    def update(self, delivery: Delivery, msg: AlertMessage) -> Delivery:
        """Replace an earlier message (bot token only), e.g. mark the firing one resolved."""
        ts, channel = delivery.ts, delivery.channel
        if ts is None or channel is None or self._channel is None:
            raise PermanentNotificationError("only messages posted with a bot token can be edited")
        return self._deliver(
            msg,
            lambda text, blocks: self._web(
                "chat.update",
                lambda c: c.chat_update(channel=channel, ts=ts, text=text, blocks=blocks),
            ),
        )

    def _deliver(self, msg: AlertMessage, post: _Post) -> Delivery:
        text, blocks = render_blocks(msg)
        outcome = _attempt(post, text, blocks)
        if isinstance(outcome, _Failure) and outcome.code in BLOCK_ERRORS:
            # Once, at once, without blocks: a layout problem must not cost the alert.
            log.warning(
                "Slack refused the blocks of a %s alert (%s); sending text only",
                msg.kind,
                outcome.code,
            )
            outcome = _attempt(post, text, None)
            outcome = replace(outcome, text_only=True) if isinstance(outcome, Delivery) else outcome
        if isinstance(outcome, _Failure):
            # Raised outside any `except`: no chained SDK exception (which may quote a server's
            # answer) travels with it into logs or error trackers.
            raise outcome.error()
        return outcome

    def _web(self, method: str, fn: Callable[[WebClient], Any]) -> Delivery:
        data = _call(method, lambda: fn(cast("WebClient", self._client))).data
        ts, channel = data.get("ts"), data.get("channel")  # an ok answer without them: it landed
        return Delivery(ts=None if ts is None else str(ts), channel=channel and str(channel))

    def _hook(self, text: str, blocks: Blocks | None) -> Delivery:
        # No thread_ts: a webhook answers "ok" and no ts, so there is never a thread to reply in.
        hook = cast("WebhookClient", self._client)
        resp = _call(
            "webhook",
            lambda: hook.send(text=text, blocks=blocks, unfurl_links=False, unfurl_media=False),
        )
        if resp.status_code != 200:
            raise _Failure(
                "webhook",
                error_code(resp.body, resp.status_code),
                resp.status_code,
                parse_retry_after(resp.headers),
            )
        return Delivery(ts=None, channel=None)


def _attempt(post: _Post, text: str, blocks: Blocks | None) -> Delivery | _Failure:
    try:
        return post(text, blocks)
    except _Failure as failure:
        return failure
