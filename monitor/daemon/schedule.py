"""When each (target, probe set) runs, and the name of each scheduled slot.

Every daemon computes the same slots from the same config: an `every` interval is a grid
anchored at the Unix epoch (so "1h" means on the hour, on every replica), a `cron` expression is
read in UTC. A slot's key names the target, the set and the slot's start; the run of a slot is
claimed by inserting that key into a unique column, so the slot runs once however many daemons
share the database, and a clock that jumps back cannot run a slot again.

Jitter only delays the start inside the slot (APScheduler adds 0..jitter seconds), so it
spreads the load without changing which slot a run belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import LoadedConfig, ResolvedTarget
from monitor.durations import parse_duration
from monitor.errors import ConfigError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Cadence:
    """How often one target runs: a trigger without jitter (for slot names) and its period."""

    trigger: BaseTrigger
    period: timedelta  # the interval; for cron, the longest gap seen in the next week
    jitter: float
    describe: str  # "every 1h" | "cron 0 * * * *"

    def slot_start(self, now: datetime) -> datetime | None:
        """The start of the slot `now` falls in: the latest fire time at or before `now`."""
        horizon = now - self.period - timedelta(seconds=1)
        fire = self.trigger.get_next_fire_time(None, horizon)
        latest = None
        while fire is not None and fire <= now:
            latest = fire
            fire = self.trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
        return latest

    def next_start(self, now: datetime) -> datetime | None:
        after = now + timedelta(microseconds=1)
        fire: datetime | None = self.trigger.get_next_fire_time(None, after)
        return fire

    def scheduled_trigger(self) -> BaseTrigger:
        """The trigger APScheduler runs: the same fire times, with the jitter."""
        if isinstance(self.trigger, IntervalTrigger):
            return IntervalTrigger(
                seconds=self.period.total_seconds(),
                start_date=EPOCH,
                timezone=UTC,
                jitter=self.jitter or None,
            )
        trigger = crontab_trigger(self.describe.removeprefix("cron "))
        trigger.jitter = self.jitter or None
        return trigger


WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab order: Sunday is 0


def _weekday_number(token: str) -> int:
    token = token.strip().lower()
    if token[:3] in WEEKDAYS and not token.isdigit():
        return WEEKDAYS.index(token[:3])
    number = int(token)  # ValueError: not a weekday
    if not 0 <= number <= 7:
        raise ValueError(f"weekday {number} is not in 0-7")
    return number % 7  # 7 is Sunday too


def crontab_weekdays(field: str) -> str:
    """A crontab day-of-week field as weekday names. APScheduler 3 counts 0 as Monday (its
    `from_crontab` says so), crontab counts 0 (and 7) as Sunday: names mean the same to both."""
    if field == "*":
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"step {step} must be at least 1")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            first_text, last_text = span.split("-", 1)
            first, last = _weekday_number(first_text), _weekday_number(last_text)
            last = 7 if last == 0 and first > 0 else last  # "1-7", "mon-sun": up to Sunday
        else:
            first = last = _weekday_number(span)
        if first > last:
            raise ValueError(f"weekday range {span!r} runs backwards")
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(WEEKDAYS[d] for d in sorted(days))


def crontab_trigger(expr: str) -> CronTrigger:
    """A crontab expression (5 fields, UTC, weekdays from Sunday = 0) as an APScheduler 3
    trigger."""
    minute, hour, day, month, day_of_week = expr.split()
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=crontab_weekdays(day_of_week),
        timezone=UTC,
    )


def cadence(target: ResolvedTarget, *, key: str = "targets") -> Cadence:
    """The cadence of a target; a bad cron expression is a ConfigError naming the key."""
    if target.cron:
        try:
            trigger = crontab_trigger(target.cron)
        except ValueError as exc:
            raise ConfigError(f"invalid cron {target.cron!r}: {exc}", key=f"{key}.cron") from None
        start = datetime.now(UTC)
        fires = [trigger.get_next_fire_time(None, start)]
        week = start + timedelta(days=7)
        while fires[-1] is not None and fires[-1] < week and len(fires) < 20_000:
            fires.append(trigger.get_next_fire_time(fires[-1], fires[-1] + timedelta(seconds=1)))
        times = [f for f in fires if f is not None]
        gaps = [b - a for a, b in pairwise(times)]
        period = max(gaps, default=timedelta(days=366))
        return Cadence(trigger, period, target.jitter, f"cron {target.cron}")
    seconds = parse_duration(target.every or "1h")
    if seconds < 1:
        raise ConfigError("every must be at least 1s", key=f"{key}.every")
    if target.jitter >= seconds:
        raise ConfigError("jitter must be shorter than the interval", key=f"{key}.jitter")
    trigger = IntervalTrigger(seconds=seconds, start_date=EPOCH, timezone=UTC)
    return Cadence(trigger, timedelta(seconds=seconds), target.jitter, f"every {target.every}")


def check_schedules(config: LoadedConfig) -> dict[str, Cadence]:
    """Every target's cadence. Invalid ones raise one ConfigError listing each, naming the
    file, the key (the target's own, or `defaults` when it inherits the value) and its line; a
    bad value in `defaults` is named once, not once per target inheriting it."""
    out: dict[str, Cadence] = {}
    problems: dict[str, ConfigError] = {}
    for index, target in enumerate(config.settings.targets):
        try:
            out[target.name] = cadence(config.effective(target))
        except ConfigError as exc:
            field = (exc.key or "every").rsplit(".", 1)[-1]
            own = getattr(target, field, None) is not None
            loc: tuple[int | str, ...] = ("targets", index, field) if own else ("defaults", field)
            located = config.error_at(exc.problem, loc)
            problems.setdefault(located.render(), located)
    if problems:
        raise ConfigError.of(list(problems.values()))
    return out


def slot_key(target: str, probe_set: str, start: datetime) -> str:
    return f"{target}/{probe_set}@{start.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
