"""`driftmon alerts`: alert states, silences, the outbox, and a test message to Slack."""

from __future__ import annotations

import getpass
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from monitor.cli.context import AppContext
from monitor.cli.output import iso, print_json, print_table, safe_text
from monitor.durations import parse_duration
from monitor.errors import UsageError
from monitor.store.states import NotificationStatus

if TYPE_CHECKING:
    from monitor.alerts.queries import ListedAlert
    from monitor.alerts.slack import SlackNotifier


def require_notifier(app: AppContext, what: str) -> SlackNotifier:
    from monitor.after_run import notifier_for

    notifier = notifier_for(app.config)
    if notifier is None:
        raise UsageError(f"no [alerts.slack] in the config: nowhere to {what}")
    return notifier


RETRY_FAILED_HINT = (
    "messages marked FAILED are not sent again on their own: fix the cause, "
    "then `driftmon alerts deliver --retry-failed`"
)


@click.group("alerts")
def alerts_group() -> None:
    """Alert states, silences, the delivery outbox, and a test message."""


def _since(text: str) -> datetime:
    from monitor.store.models import utcnow

    try:
        return utcnow() - timedelta(seconds=parse_duration(text))
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None


@alerts_group.command("list")
@click.option(
    "--since", default="7d", show_default=True, help="Also show alerts resolved within this long."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_command(app: AppContext, since: str, as_json: bool) -> None:
    """Open alerts, recently resolved ones, silences and undelivered messages.

    Messages Slack refused for good (bad token, unknown channel) are listed with the error;
    they are not retried on their own: fix the cause, then run `driftmon alerts deliver
    --retry-failed`.
    """
    from monitor.alerts.queries import alerts_overview
    from monitor.store.models import utcnow

    overview = alerts_overview(app.engine(), resolved_since=_since(since), now=utcnow())
    alerts = [_alert_json(listed) for listed in overview.alerts]
    silence_json: list[dict[str, Any]] = [
        {
            "id": si.id,
            "target": si.target,
            "metric": si.metric,
            "reason": si.reason,
            "created_by": si.created_by,
            "expires_at": iso(si.expires_at),
        }
        for si in overview.silences
    ]
    outbox_json: list[dict[str, Any]] = [
        {
            "id": n.id,
            "kind": n.kind,
            "target": n.target,
            "status": n.status,
            "attempts": n.attempts,
            "next_attempt_at": iso(n.next_attempt_at),
            "last_error": n.last_error,
        }
        for n in overview.undelivered
    ]
    if as_json:
        print_json(
            {
                "alerts": alerts,
                "silences": silence_json,
                "outbox": {
                    "pending": overview.outbox.pending,
                    "failed": overview.outbox.failed,
                    "undelivered": outbox_json,
                },
            }
        )
        return
    if not alerts:
        click.echo(f"no open alerts, none resolved in the last {since}")
    else:
        print_table(
            "Alerts",
            ["id", "target / set", "kind", "state", "metrics", "since", "note"],
            [
                [
                    a["id"],
                    safe_text(f"{a['target']} / {a['probe_set']}"),
                    "outage" if a["family"] == "operational" else "drift",
                    a["state"],
                    safe_text(", ".join(a["metrics"])),
                    (a["resolved_at"] or a["opened_at"])[:16],
                    "silenced" if a["silenced"] else "",
                ]
                for a in alerts
            ],
        )
    if silence_json:
        print_table(
            "Silences",
            ["id", "target", "metric", "until", "reason"],
            [
                [
                    si["id"],
                    safe_text(si["target"]),
                    safe_text(si["metric"] or "all"),
                    (si["expires_at"] or "")[:16],
                    safe_text(si["reason"], 60),
                ]
                for si in silence_json
            ],
        )
    if outbox_json:
        print_table(
            "Undelivered messages",
            ["id", "kind", "target", "status", "tries", "error"],
            [
                [
                    n["id"],
                    n["kind"],
                    safe_text(n["target"]),
                    "FAILED"
                    if n["status"] == NotificationStatus.FAILED
                    else f"retry at {n['next_attempt_at'][11:19]}",
                    n["attempts"],
                    safe_text(n["last_error"] or "", 80),
                ]
                for n in outbox_json
            ],
        )
    if overview.outbox.failed:
        click.echo(RETRY_FAILED_HINT)


def _alert_json(listed: ListedAlert) -> dict[str, Any]:
    alert, message = listed.alert, listed.last_message
    return {
        "id": alert.id,
        "target": listed.target,
        "probe_set": alert.probe_set,
        "family": alert.family,
        "state": alert.state,
        "metrics": alert.metrics,
        "opened_at": iso(alert.opened_at),
        "fired_at": iso(alert.fired_at),
        "resolved_at": iso(alert.resolved_at),
        "silenced": listed.silenced,
        "notified_at": iso(alert.notified_at),
        "delivery": None
        if message is None
        else {
            "kind": message.kind,
            "status": message.status,
            "attempts": message.attempts,
            "last_error": message.last_error,
        },
    }


@alerts_group.command("silence")
@click.argument("target")
@click.option(
    "--metric",
    metavar="NAME",
    help="Only this metric (e.g. pass_rate, format, error_rate); default: all.",
)
@click.option(
    "--for", "duration", required=True, metavar="DURATION", help="How long, e.g. 30m, 2h, 1d."
)
@click.option("--reason", required=True, help="Why: shown in `alerts list`.")
@click.pass_obj
def silence_command(
    app: AppContext, target: str, metric: str | None, duration: str, reason: str
) -> None:
    """Hold back notifications for TARGET (or one of its metrics) for a while.

    Alerts keep their state while silenced; one still firing when the silence ends is
    announced then.
    """
    from monitor.cli.drift import check_known
    from monitor.store.models import utcnow
    from monitor.store.writes import add_silence

    check_known(app, target, None)
    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        raise UsageError(f"--for: {exc}") from None
    if seconds <= 0:
        raise UsageError("--for must be longer than 0")
    if not reason.strip():
        raise UsageError("--reason must say why")
    now = utcnow()
    silence = add_silence(
        app.engine(),
        target=target,
        metric=metric,
        reason=reason.strip()[:500],
        created_by=_who(),
        created_at=now,
        expires_at=now + timedelta(seconds=seconds),
    )
    what = f"{target} ({metric})" if metric else f"{target} (all metrics)"
    click.echo(f"silence {silence.id}: {what} until {silence.expires_at:%Y-%m-%d %H:%M:%S} UTC")


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. a DynamicUser service
        return ""


@alerts_group.command("unsilence")
@click.argument("silence", metavar="ID|TARGET")
@click.pass_obj
def unsilence_command(app: AppContext, silence: str) -> None:
    """End a silence now, by its id, or every silence of a target."""
    from monitor.store.models import utcnow
    from monitor.store.writes import end_silences

    if silence.isdigit():
        ended = end_silences(app.engine(), utcnow(), silence_id=int(silence))
    else:
        ended = end_silences(app.engine(), utcnow(), target=silence)
    if not ended:
        raise UsageError(f"no active silence {silence!r}: see `driftmon alerts list`")
    click.echo(f"ended {ended} silence{'s' if ended != 1 else ''}")


@alerts_group.command("test")
@click.pass_obj
def test_command(app: AppContext) -> None:
    """Send a sample message to the configured Slack channel now and report the result.

    A transient failure (HTTP 429 or 5xx, a timeout, a refused connection) is retried like
    every delivery: after Slack's Retry-After, else with the outbox's backoff (10 s, then 20 s,
    with jitter). It gives up when the next try would start more than 30 s after the first.
    """
    from monitor.after_run import DELIVERY_BUDGET
    from monitor.alerts.message import AlertMessage
    from monitor.alerts.outbox import send_now
    from monitor.errors import ConfigError, NotificationError, TransientNotificationError

    def waiting(error: TransientNotificationError, delay: float) -> None:
        click.echo(f"driftmon: warning: {error}; retrying in {delay:.0f} s", err=True)

    unreadable = app.config.alert_secret_problems()
    if unreadable:
        raise ConfigError.of(unreadable)
    try:
        notifier = require_notifier(app, "send a test message")
    except ConfigError as exc:  # [alerts.slack] incomplete: name the file and line too
        raise app.config.located(exc) from None
    target = app.config.settings.targets[0].name if app.config.settings.targets else "driftmon"
    try:
        delivery = send_now(
            notifier,
            AlertMessage(kind="test", target=target),
            within=DELIVERY_BUDGET,
            on_retry=waiting,
        )
    except NotificationError as exc:
        check = _slack_key_to_check(app, str(exc))
        click.echo(
            f"driftmon: error: the test message was not delivered: {exc}"
            + (f"\n  check: {check}" if check else ""),
            err=True,
        )
        raise SystemExit(1) from None
    where = f"channel {delivery.channel}" if delivery.channel else "the webhook"
    note = " (as text only: Slack refused the blocks)" if delivery.text_only else ""
    click.echo(f"sent to {where}{note}")


# Slack's error codes by the [alerts.slack] key that fixes them; "connection" for failures
# to reach Slack at all (the key is base_url with a token, webhook_url with a webhook).
_SLACK_CODE_KEYS = {
    "token": {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "no_team",
        "team_disabled",
    },
    "channel": {"channel_not_found", "not_in_channel", "is_archived", "channel_is_archived"},
    "webhook_url": {"invalid_token", "no_service", "action_prohibited"},
    "connection": {"connection_error", "timeout", "slackrequesterror"},
}


def _slack_key_to_check(app: AppContext, error: str) -> str | None:
    """`FILE:LINE alerts.slack.KEY` for the key a failed test message points at, if any."""
    import re

    slack = app.config.settings.alerts.slack
    match = re.search(r"failed: ([a-z_]+)", error)
    if slack is None or match is None:
        return None
    field = next((k for k, codes in _SLACK_CODE_KEYS.items() if match.group(1) in codes), None)
    if field == "connection":
        field = "base_url" if slack.token is not None else "webhook_url"
    elif field == "token" and slack.token is None:
        field = "webhook_url"  # a webhook refused for the same reasons
    if field is None:
        return None
    return app.config.describe_location(("alerts", "slack", field))


@alerts_group.command("deliver")
@click.option(
    "--retry-failed",
    is_flag=True,
    help="First make the messages Slack refused for good pending again (after fixing the cause).",
)
@click.pass_obj
def deliver_command(app: AppContext, retry_failed: bool) -> None:
    """Send queued alert messages that are due now (the daemon does this on its own).

    A message Slack refused for good (bad token, unknown channel) is not sent again on its own:
    fix the cause, then run this with --retry-failed to send it in this pass.
    """
    from monitor.after_run import DELIVERY_BUDGET, deliver

    notifier = require_notifier(app, "deliver to")
    if retry_failed:
        from monitor.alerts.outbox import requeue_failed
        from monitor.store.models import utcnow

        requeued = requeue_failed(app.engine(), utcnow())
        click.echo(f"{requeued} failed message{'s' if requeued != 1 else ''} queued again")
    report = deliver(app.engine(), notifier, deadline=time.monotonic() + DELIVERY_BUDGET)
    click.echo(f"{report.sent} sent, {report.retrying} to retry, {report.failed} failed")
    for error in report.errors:
        click.echo(f"driftmon: warning: {error}", err=True)
    if report.failed:
        raise SystemExit(1)
