"""Delivering alerts with the real slack_sdk clients to a fake Slack over real loopback sockets."""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from monitor.alerts import Delivery
from monitor.alerts.message import AlertMessage, Example, MetricLine
from monitor.alerts.slack import BLOCK_ERRORS, SlackNotifier, render_blocks
from monitor.config import SecretRef, SlackSettings
from monitor.errors import (
    ConfigError,
    NotificationError,
    PermanentNotificationError,
    TransientNotificationError,
)
from tests.fakes.slack_server import FakeSlack

TOKEN = "xoxb-1111-2222-unit-test-secret"
HOOK_PATH = "/services/T0FAKE/B0FAKE/webhook-unit-test-secret"
CHANNEL = "C0ALERTS"
FIRING = AlertMessage(
    kind="firing",
    target="gpt-4o-prod",
    probe_set="invoices",
    model="gpt-4o-2024-08-06",
    metrics=[
        MetricLine("pass_rate", "0.97", "0.62", "-0.35 rate difference", 0.001, 120, 118, "drifted")
    ],
    examples=[Example("acme-invoice", "<!channel> totally fine output", "not JSON")],
    alert_id=7,
)
RESOLVED = AlertMessage(kind="resolved", target="gpt-4o-prod", probe_set="invoices", alert_id=7)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(token=TOKEN, channels={CHANNEL}, webhook_path=HOOK_PATH) as server:
        yield server


@pytest.fixture
def bot(slack: FakeSlack, monkeypatch: pytest.MonkeyPatch) -> SlackNotifier:
    monkeypatch.setenv("DRIFTMON_TEST_SLACK_TOKEN", TOKEN)
    settings = SlackSettings(
        token=SecretRef(env="DRIFTMON_TEST_SLACK_TOKEN"), channel=CHANNEL, base_url=slack.api_url
    )
    return SlackNotifier.from_settings(settings, timeout=1)


@pytest.fixture
def hook(slack: FakeSlack, monkeypatch: pytest.MonkeyPatch) -> SlackNotifier:
    monkeypatch.setenv("DRIFTMON_TEST_SLACK_HOOK", slack.webhook_url)
    settings = SlackSettings(webhook_url=SecretRef(env="DRIFTMON_TEST_SLACK_HOOK"))
    return SlackNotifier.from_settings(settings, timeout=1)


@pytest.fixture(params=["bot", "hook"])
def notifier(request: pytest.FixtureRequest) -> SlackNotifier:
    chosen: SlackNotifier = request.getfixturevalue(request.param)
    return chosen


def posts(slack: FakeSlack) -> list[dict[str, object]]:
    return [r.body for r in slack.requests if r.method in ("chat.postMessage", "webhook")]


# --- delivering --------------------------------------------------------------------------------


def test_bot_posts_blocks_and_text(bot: SlackNotifier, slack: FakeSlack) -> None:
    delivery = bot.send(FIRING)
    assert re.fullmatch(r"\d+\.\d{6}", delivery.ts or "")
    assert delivery == Delivery(ts=delivery.ts, channel=CHANNEL, text_only=False)
    [call] = slack.calls("chat.postMessage")
    text, blocks = render_blocks(FIRING)
    assert call.body == {
        "channel": CHANNEL,
        "text": text,
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
    }
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    assert "&lt;!channel&gt;" in text and "<!channel>" not in str(call.body)


def test_resolved_replies_in_the_alert_thread(bot: SlackNotifier, slack: FakeSlack) -> None:
    first = bot.send(FIRING)
    reply = bot.send(RESOLVED, thread_ts=first.ts)
    assert reply.ts != first.ts and reply.channel == CHANNEL
    assert [m["thread_ts"] for m in slack.messages(CHANNEL)] == [None, first.ts]


def test_update_edits_the_message(bot: SlackNotifier, slack: FakeSlack) -> None:
    first = bot.send(FIRING)
    edited = bot.update(first, RESOLVED)
    assert edited == first
    [call] = slack.calls("chat.update")
    assert call.body["ts"] == first.ts and call.body["channel"] == CHANNEL
    [message] = slack.messages(CHANNEL)
    assert message["edited"] and message["text"] == render_blocks(RESOLVED)[0]


def test_webhook_posts_at_top_level(hook: SlackNotifier, slack: FakeSlack) -> None:
    assert not hook.can_thread
    assert hook.send(FIRING, thread_ts="1700000000.000001") == Delivery(ts=None, channel=None)
    [call] = slack.calls("webhook")
    text, blocks = render_blocks(FIRING)
    assert call.path == HOOK_PATH
    assert call.body == {
        "text": text,
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
    }
    with pytest.raises(PermanentNotificationError, match="bot token"):
        hook.update(Delivery(ts="1.2", channel=CHANNEL), RESOLVED)


def test_our_worst_case_message_passes_slack_validation(
    bot: SlackNotifier, slack: FakeSlack
) -> None:
    long = "<!channel> &amp; " * 10_000
    msg = AlertMessage(
        kind="firing",
        target=long,
        probe_set=long,
        model=long,
        identity_change=(long, long),
        report_path=long,
        alert_id=1,
        metrics=[MetricLine(long, long, long, long, 0.5, 1, 1, long)] * 100,
        examples=[Example(long, long, long)] * 10,
    )
    slack.validate = True
    assert not bot.send(msg).text_only


# --- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["bot", "hook"])
def test_rate_limit_is_transient_with_retry_after(
    transport: str, slack: FakeSlack, request: pytest.FixtureRequest
) -> None:
    notifier: SlackNotifier = request.getfixturevalue(transport)
    slack.fail_next(
        "ratelimited" if transport == "bot" else "rate_limited", status=429, retry_after=7
    )
    with pytest.raises(TransientNotificationError) as caught:
        notifier.send(FIRING)
    assert caught.value.retry_after == 7.0 and "HTTP 429" in str(caught.value)
    assert len(slack.requests) == 1  # the SDK's rate-limit retry is off: the outbox waits


def test_server_errors_are_transient(notifier: SlackNotifier, slack: FakeSlack) -> None:
    slack.fail_next(status=503, body="<html><h1>503 Service Unavailable</h1></html>")
    with pytest.raises(TransientNotificationError) as caught:
        notifier.send(FIRING)
    assert "http_503 (HTTP 503)" in str(caught.value) and "<html>" not in str(caught.value)
    assert caught.value.retry_after is None and len(slack.requests) == 1
    slack.fail_next(status=502, body="bad gateway", retry_after=30)
    with pytest.raises(TransientNotificationError) as caught:
        notifier.send(FIRING)
    assert caught.value.retry_after == 30.0


@pytest.mark.parametrize(
    "code",
    [
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
    ],
)
def test_slack_transient_codes_at_http_200(code: str, bot: SlackNotifier, slack: FakeSlack) -> None:
    slack.fail_next(code)
    with pytest.raises(TransientNotificationError, match=code):
        bot.send(FIRING)


@pytest.mark.parametrize(
    "code",
    [
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "missing_scope",
        "some_new_error",
    ],
)
def test_permanent_errors(code: str, bot: SlackNotifier, slack: FakeSlack) -> None:
    slack.fail_next(code)
    with pytest.raises(PermanentNotificationError, match=code):
        bot.send(FIRING)
    assert len(slack.requests) == 1


@pytest.mark.parametrize(
    "code",
    [
        "channel_not_found",
        "channel_is_archived",
        "invalid_token",
        "action_prohibited",
        "invalid_payload",
    ],
)
def test_webhook_permanent_errors(code: str, hook: SlackNotifier, slack: FakeSlack) -> None:
    slack.fail_next(code)  # each with its HTTP status: 404, 410, 403, 403, 400
    with pytest.raises(PermanentNotificationError, match=code):
        hook.send(FIRING)


def test_real_auth_and_channel_checks(slack: FakeSlack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WRONG_TOKEN", "xoxb-wrong")
    wrong = SlackNotifier.from_settings(
        SlackSettings(token=SecretRef(env="WRONG_TOKEN"), channel=CHANNEL, base_url=slack.api_url)
    )
    with pytest.raises(PermanentNotificationError, match="invalid_auth"):
        wrong.send(FIRING)
    monkeypatch.setenv("RIGHT_TOKEN", TOKEN)
    elsewhere = SlackNotifier.from_settings(
        SlackSettings(token=SecretRef(env="RIGHT_TOKEN"), channel="C0NOPE", base_url=slack.api_url)
    )
    with pytest.raises(PermanentNotificationError, match=r"channel_not_found.*channel id"):
        elsewhere.send(FIRING)
    assert WebClient(token=TOKEN, base_url=slack.api_url).auth_test()["user_id"] == "U0BOT"


@pytest.mark.parametrize("code", sorted(BLOCK_ERRORS))
def test_refused_blocks_fall_back_to_text_once(
    code: str, notifier: SlackNotifier, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    slack.fail_next(code)
    delivery = notifier.send(FIRING)
    assert delivery.text_only
    first, second = posts(slack)
    assert first["blocks"] and "blocks" not in second and second["text"] == first["text"]
    assert "sending text only" in caplog.text and code in caplog.text


def test_text_fallback_failure_is_reported(bot: SlackNotifier, slack: FakeSlack) -> None:
    slack.fail_next("invalid_blocks")
    slack.fail_next("channel_not_found")
    with pytest.raises(PermanentNotificationError, match="channel_not_found"):
        bot.send(FIRING)
    slack.fail_next("invalid_blocks")
    slack.fail_next(status=503, body="down")
    with pytest.raises(TransientNotificationError):
        bot.send(FIRING)
    assert len(posts(slack)) == 4


def test_text_fallback_happens_only_once(bot: SlackNotifier, slack: FakeSlack) -> None:
    slack.fail_next("invalid_blocks", times=3)
    with pytest.raises(PermanentNotificationError, match="invalid_blocks"):
        bot.send(FIRING)
    assert len(posts(slack)) == 2


def test_no_text_fallback_for_other_errors(bot: SlackNotifier, slack: FakeSlack) -> None:
    slack.fail_next(status=500, body="oops")
    with pytest.raises(TransientNotificationError):
        bot.send(FIRING)
    assert len(posts(slack)) == 1


def test_timeout_is_transient(notifier: SlackNotifier, slack: FakeSlack) -> None:
    slack.fail_next(delay=3)  # the notifier's timeout is 1 s
    started = time.monotonic()
    with pytest.raises(TransientNotificationError, match="timeout"):
        notifier.send(FIRING)
    assert time.monotonic() - started < 2.5


def test_refused_connection_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("T", TOKEN)
    notifier = SlackNotifier.from_settings(
        SlackSettings(
            token=SecretRef(env="T"), channel=CHANNEL, base_url=f"http://127.0.0.1:{port}/api/"
        )
    )
    with pytest.raises(TransientNotificationError, match="connection_error"):
        notifier.send(FIRING)


def test_sdk_does_not_retry_dropped_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """slack_sdk retries a dropped connection once by default; ours must not (a duplicate
    alert if Slack had accepted it), so exactly one connection reaches the server."""
    accepted: list[int] = []
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def drop_everything() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(1)
            conn.recv(65536)
            conn.close()  # no answer at all: http.client.RemoteDisconnected

    thread = threading.Thread(target=drop_everything, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("T", TOKEN)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/api/"
        notifier = SlackNotifier.from_settings(
            SlackSettings(token=SecretRef(env="T"), channel=CHANNEL, base_url=url)
        )
        with pytest.raises(TransientNotificationError, match="connection_error"):
            notifier.send(FIRING)
        time.sleep(0.5)  # a retry, if any, would arrive now
    finally:
        stop.set()
        thread.join(2)
        listener.close()
    assert len(accepted) == 1


# --- secrets -----------------------------------------------------------------------------------


def _chain(exc: BaseException) -> str:
    """Everything an error tracker could see: the message, repr, traceback and any chain."""
    parts, seen = [], exc
    while seen is not None:
        parts += [str(seen), repr(seen), *traceback.format_exception(seen)]
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    return "\n".join(parts)


@pytest.mark.parametrize("transport", ["bot", "hook"])
def test_secrets_never_leak(
    transport: str,
    slack: FakeSlack,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # the SDK formats URLs into debug lines: none may get out
    notifier: SlackNotifier = request.getfixturevalue(transport)
    secret = TOKEN if transport == "bot" else slack.webhook_url
    leaked = [repr(notifier)]
    notifier.send(FIRING)
    failures = [
        {"status": 503, "body": f"<html>upstream said: {TOKEN} {HOOK_PATH}</html>"},
        {"error": "invalid_auth"},
        {"error": "invalid_blocks"},
        {"delay": 3.0},
    ]
    for failure in failures:
        slack.fail_next(**failure)  # type: ignore[arg-type]
        try:
            notifier.send(FIRING)
        except NotificationError as exc:
            assert exc.__cause__ is None and exc.__context__ is None
            leaked.append(_chain(exc))
    printed = capfd.readouterr()  # e.g. logging's last-resort handler writes to stderr
    everything = "\n".join(
        [*leaked, caplog.text, *(str(r.__dict__) for r in caplog.records), printed.out, printed.err]
    )
    assert secret not in everything and "unit-test-secret" not in everything
    assert slack.requests  # and the secret was really used
    sent_with = slack.requests[0].headers.get("authorization", "") + slack.requests[0].path
    assert "unit-test-secret" in sent_with


# --- configuration -----------------------------------------------------------------------------


def test_transport_choice_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T", TOKEN)
    monkeypatch.setenv("HOOK", "hooks.slack.com/services/not-a-url-secret")
    monkeypatch.setenv("EMPTY", "  ")
    token, hook = SecretRef(env="T"), SecretRef(env="HOOK")
    cases = [
        ("either token", SlackSettings()),
        ("either token", SlackSettings(token=token, channel=CHANNEL, webhook_url=hook)),
        ("needs a channel", SlackSettings(token=token)),
        ("is empty", SlackSettings(token=SecretRef(env="EMPTY"), channel=CHANNEL)),
        ("must start with https", SlackSettings(webhook_url=hook)),
    ]
    for expected, settings in cases:
        with pytest.raises(ConfigError, match=expected) as caught:
            SlackNotifier.from_settings(settings)
        assert "not-a-url-secret" not in str(caught.value)


def test_secret_file_is_read_relative_to_the_config(tmp_path: Path, slack: FakeSlack) -> None:
    (tmp_path / "slack-token").write_text(TOKEN + "\n")
    settings = SlackSettings(
        token=SecretRef(file="slack-token"), channel=CHANNEL, base_url=slack.api_url
    )
    assert SlackNotifier.from_settings(settings, base_dir=tmp_path).send(RESOLVED).ts


def test_fake_rejects_what_slack_rejects(slack: FakeSlack) -> None:
    """The fake's validation (used above to accept our worst case) can say no."""
    slack.validate = True
    client = WebClient(token=TOKEN, base_url=slack.api_url, retry_handlers=[])
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
    too_long = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    for blocks, error in [
        ([section] * 51, "invalid_blocks"),
        ([too_long], "invalid_blocks"),
        (
            [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3000}}] * 5,
            "msg_blocks_too_long",
        ),
    ]:
        with pytest.raises(SlackApiError) as caught:
            client.chat_postMessage(channel=CHANNEL, text="t", blocks=blocks)
        assert caught.value.response["error"] == error
