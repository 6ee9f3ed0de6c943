"""Slots and cadences: every replica must name the same slot for the same moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.config import ResolvedTarget
from monitor.daemon.schedule import cadence, slot_key
from monitor.errors import ConfigError


def target(every: str | None = "1h", cron: str | None = None, jitter: float = 0) -> ResolvedTarget:
    return ResolvedTarget(
        name="t",
        kind="openai",
        model="m",
        base_url=None,
        api_key=None,
        probe_sets=None,
        params={},
        samples=1,
        every=every,
        cron=cron,
        timeout=1,
        concurrency=1,
        retries=0,
        jitter=jitter,
    )


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_an_interval_is_a_grid_from_the_epoch() -> None:
    hourly = cadence(target("1h"))
    assert hourly.slot_start(at("2026-05-04 10:59:59")) == at("2026-05-04 10:00:00")
    assert hourly.slot_start(at("2026-05-04 11:00:00")) == at("2026-05-04 11:00:00")
    assert hourly.next_start(at("2026-05-04 11:00:00")) == at("2026-05-04 12:00:00")
    seven = cadence(target("7m"))  # not a divisor of an hour: still one grid for everyone
    start = seven.slot_start(at("2026-05-04 10:30:00"))
    assert start is not None and int(start.timestamp()) % 420 == 0
    assert at("2026-05-04 10:30:00") - start < timedelta(minutes=7)


def test_cron_reads_weekdays_as_crontab_does() -> None:
    # 2026-05-03 is a Sunday: crontab weekday 0 (APScheduler's own numbering would say Monday).
    sundays = cadence(target(None, "30 6 * * 0"))
    assert sundays.slot_start(at("2026-05-04 12:00:00")) == at("2026-05-03 06:30:00")
    assert sundays.next_start(at("2026-05-04 12:00:00")) == at("2026-05-10 06:30:00")
    assert sundays.period == timedelta(days=7)
    scheduled = sundays.scheduled_trigger()
    assert scheduled.get_next_fire_time(None, at("2026-05-04 12:00:00")) == at("2026-05-10 06:30")


def test_jitter_delays_within_the_slot_and_never_changes_it() -> None:
    c = cadence(target("1m", jitter=20))
    fire = c.scheduled_trigger().get_next_fire_time(None, at("2026-05-04 10:00:30"))
    assert at("2026-05-04 10:01:00") <= fire <= at("2026-05-04 10:01:20")
    assert c.slot_start(fire) == at("2026-05-04 10:01:00")


def test_slot_keys_are_utc_and_name_the_job() -> None:
    assert slot_key("gpt", "invoices", at("2026-05-04 10:00:00")) == (
        "gpt/invoices@2026-05-04T10:00:00Z"
    )


@pytest.mark.parametrize(
    ("every", "cron", "jitter", "key", "problem"),
    [
        (None, "61 * * * *", 0, "targets.cron", "invalid cron"),
        ("1m", None, 60, "targets.jitter", "jitter must be shorter"),
        ("500ms", None, 0, "targets.every", "at least 1s"),
    ],
)
def test_bad_cadences_are_config_errors(
    every: str | None, cron: str | None, jitter: float, key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        cadence(target(every, cron, jitter))
    assert caught.value.key == key and problem in str(caught.value)


@pytest.mark.parametrize(
    ("field", "names"),
    [
        ("*", "*"),
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("mon-fri", "mon,tue,wed,thu,fri"),
        ("5-7", "sun,fri,sat"),
        ("*/2", "sun,tue,thu,sat"),
        ("sat,0", "sun,sat"),
        ("1-7/3", "sun,mon,thu"),
    ],
)
def test_crontab_weekdays_become_names(field: str, names: str) -> None:
    from monitor.daemon.schedule import crontab_weekdays

    assert crontab_weekdays(field) == names


@pytest.mark.parametrize("field", ["8", "5-1", "*/0", "funday"])
def test_bad_weekdays_are_refused(field: str) -> None:
    with pytest.raises(ConfigError):
        cadence(target(None, f"0 0 * * {field}"))


def test_config_check_refuses_what_serve_would_refuse(tmp_path: Any) -> None:
    from tests.conftest import driftmon

    (tmp_path / "probes").mkdir()
    (tmp_path / "probes" / "p.yaml").write_text('set: s\nprobes:\n  - { id: a, prompt: "hi" }\n')
    config = tmp_path / "driftmon.toml"
    config.write_text(
        '[probes]\npaths = ["probes"]\n[defaults]\nevery = "1m"\njitter = "2m"\n'
        '[[targets]]\nname = "t"\nkind = "openai"\nmodel = "m"\n'
        '[[targets]]\nname = "u"\nkind = "openai"\nmodel = "m"\ncron = "99 * * * *"\n'
    )
    done = driftmon("--config", str(config), "config", "check")
    assert done.returncode == 2
    assert f"{config}:5: defaults.jitter: jitter must be shorter" in done.stderr
    config.write_text(config.read_text().replace('jitter = "2m"\n', ""))
    done = driftmon("--config", str(config), "config", "check")
    assert done.returncode == 2
    assert f"{config}:13: targets[1].cron: invalid cron '99 * * * *'" in done.stderr, done.stderr
