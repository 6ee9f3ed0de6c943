"""Typed settings, loaded from a TOML file.

The file is found by `--config PATH`, else `$DRIFTMON_CONFIG`, else `./driftmon.toml`, else
`config/driftmon.toml`. Relative paths inside it are relative to the file's folder. Every
problem becomes a `ConfigError` naming the file, the key path and (where it can be found) the
line. Secrets are only ever references (`{ env = "NAME" }` / `{ file = "PATH" }`): a literal
secret is refused, and resolved values live only in memory.
"""

from __future__ import annotations

import contextlib
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from monitor.drift.settings import DriftConfig
from monitor.durations import parse_duration
from monitor.errors import ConfigError

CONFIG_ENV = "DRIFTMON_CONFIG"
SEARCH_PATHS = (Path("driftmon.toml"), Path("config/driftmon.toml"))
NAME_PATTERN = re.compile(r"^[a-z0-9._-]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Strict):
    """Where a secret lives. The value itself is never stored in settings."""

    env: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError('give exactly one of { env = "NAME" } or { file = "PATH" }')
        return self

    def describe(self) -> str:
        return f"env:{self.env}" if self.env is not None else f"file:{self.file}"

    def resolve(self) -> str:
        """The secret's value; raises ConfigError when it is not there."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise ConfigError(f"environment variable {self.env} is not set", key="secret")
            return value
        assert self.file is not None
        try:
            return Path(self.file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read secret file {self.file}: {exc.strerror}") from None


def _secret(value: Any) -> Any:
    if isinstance(value, str):
        raise ValueError(
            'a literal secret is not allowed here; use { env = "NAME" } or { file = "PATH" }'
        )
    return value


def _duration(value: Any) -> Any:
    if value is not None:
        parse_duration(str(value))
    return value


class StorageSettings(_Strict):
    url: str = "sqlite:///driftmon.db"
    retention: str | None = None  # e.g. "180d": results older than this are pruned

    _check_retention = field_validator("retention")(_duration)


class ProbeSettings(_Strict):
    paths: list[str] = Field(default_factory=lambda: ["probes"])


class ScheduleFields(_Strict):
    samples: int | None = Field(default=None, ge=1, le=1000)
    every: str | None = None
    cron: str | None = None
    timeout: str | None = None
    concurrency: int | None = Field(default=None, ge=1, le=512)
    retries: int | None = Field(default=None, ge=0, le=10)
    params: dict[str, Any] | None = None
    jitter: str | None = None  # scheduled runs start up to this much after their slot
    daily_calls: int | None = Field(default=None, ge=1)  # budget per target per UTC day
    daily_tokens: int | None = Field(default=None, ge=1)

    _check_durations = field_validator("every", "timeout", "jitter")(_duration)

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str | None) -> str | None:
        if value is not None and len(value.split()) != 5:
            raise ValueError(f"cron {value!r} must have 5 fields: minute hour day month weekday")
        return value


class DefaultSettings(ScheduleFields):
    samples: int | None = Field(default=3, ge=1, le=1000)
    every: str | None = "1h"
    timeout: str | None = "60s"
    concurrency: int | None = Field(default=8, ge=1, le=512)
    retries: int | None = Field(default=3, ge=0, le=10)


class TargetSettings(ScheduleFields):
    name: str
    kind: Literal["openai", "anthropic"]
    model: str
    base_url: str | None = None
    api_key: SecretRef | None = None
    probe_sets: list[str] | None = None  # None: every set

    _check_secret = field_validator("api_key", mode="before")(_secret)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(f"target name {value!r} must match [a-z0-9._-]+")
        return value


class LimitSettings(_Strict):
    """Bounds on model output before it is parsed (hostile or runaway output)."""

    max_output_chars: int = Field(default=200_000, ge=1)
    max_json_depth: int = Field(default=64, ge=1)
    max_stored_chars: int = Field(default=20_000, ge=0)  # output text kept per result
    # Per `regex` check or `extract` on one output: judging runs in the replay's event loop,
    # so a pattern in catastrophic backtracking must not be able to stall the run.
    regex_timeout: str = "100ms"

    @field_validator("regex_timeout")
    @classmethod
    def _check_regex_timeout(cls, value: str) -> str:
        if parse_duration(value) <= 0:
            raise ValueError(f"regex_timeout {value!r} must be longer than 0, e.g. 100ms")
        return value


class SlackSettings(_Strict):
    token: SecretRef | None = None
    channel: str | None = None
    webhook_url: SecretRef | None = None
    base_url: str = "https://slack.com/api/"

    _check_secrets = field_validator("token", "webhook_url", mode="before")(_secret)


class AlertSettings(_Strict):
    repeat_interval: str = "12h"
    # A complete run with at least this share of provider errors opens the outage alert,
    # which holds back drift notifications for its target while it fires.
    outage_error_rate: float = Field(default=0.5, gt=0, le=1)
    identity_notice: bool = False  # an informational message when the model identity changes
    slack: SlackSettings | None = None

    _check_repeat = field_validator("repeat_interval")(_duration)


class ServerSettings(_Strict):
    listen: str = "127.0.0.1:9464"
    drain: str = "30s"  # on SIGTERM: how long in-flight requests may take to finish

    _check_drain = field_validator("drain")(_duration)

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"listen {value!r} must be HOST:PORT, e.g. 127.0.0.1:9464")
        return value


class Settings(_Strict):
    storage: StorageSettings = Field(default_factory=StorageSettings)
    probes: ProbeSettings = Field(default_factory=ProbeSettings)
    defaults: DefaultSettings = Field(default_factory=DefaultSettings)
    targets: list[TargetSettings] = Field(default_factory=list)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    # The drift package owns its knobs; validated here so a bad [drift] key fails at load time
    # with file, key and line like any other (settings.py imports pydantic only, not scipy).
    drift: DriftConfig = Field(default_factory=DriftConfig)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)

    @model_validator(mode="after")
    def _unique_targets(self) -> Settings:
        seen: set[str] = set()
        for target in self.targets:
            if target.name in seen:
                raise ValueError(f"target name {target.name!r} is used twice")
            seen.add(target.name)
        return self


class LoadedConfig:
    """Settings plus where they came from, with relative paths resolved."""

    def __init__(self, settings: Settings, path: Path | None) -> None:
        self.settings = settings
        self.path = path
        self.base_dir = path.parent if path else Path.cwd()

    def error_at(self, problem: str, loc: tuple[int | str, ...]) -> ConfigError:
        """A ConfigError for a key found wrong after loading: the file, the key and its line."""
        text = ""
        if self.path is not None:
            with contextlib.suppress(OSError):
                text = self.path.read_text(encoding="utf-8")
        file = str(self.path) if self.path else None
        return ConfigError(problem, file=file, key=_key_path(loc), line=_line_of(text, loc))

    def resolve_path(self, value: str) -> Path:
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else (self.base_dir / candidate)

    @property
    def probe_paths(self) -> list[Path]:
        return [self.resolve_path(p) for p in self.settings.probes.paths]

    def storage_url(self, override: str | None = None) -> str:
        if override:
            return override  # from the command line: relative to the current folder
        url = self.settings.storage.url
        # sqlite:///relative.db in the file is relative to the config file's folder.
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            url = prefix + str(self.resolve_path(url[len(prefix) :]))
        return url

    def target(self, name: str) -> TargetSettings:
        for target in self.settings.targets:
            if target.name == name:
                return target
        known = ", ".join(t.name for t in self.settings.targets) or "none"
        raise ConfigError(f"no target named {name!r} (targets: {known})", file=str(self.path))

    def effective(self, target: TargetSettings) -> ResolvedTarget:
        d = self.settings.defaults
        params = dict(d.params or {})
        params.update(target.params or {})
        api_key = target.api_key
        if api_key is not None and api_key.file is not None:
            api_key = SecretRef(file=str(self.resolve_path(api_key.file)))
        return ResolvedTarget(
            name=target.name,
            kind=target.kind,
            model=target.model,
            base_url=target.base_url,
            api_key=api_key,
            probe_sets=target.probe_sets,
            params=params,
            samples=target.samples or d.samples or 3,
            every=None if target.cron else (target.every or d.every),
            cron=target.cron or (None if target.every else d.cron),
            timeout=parse_duration(target.timeout or d.timeout or "60s"),
            concurrency=target.concurrency or d.concurrency or 8,
            retries=target.retries
            if target.retries is not None
            else (d.retries if d.retries is not None else 3),
            jitter=parse_duration(target.jitter or d.jitter or "0s"),
            daily_calls=target.daily_calls or d.daily_calls,
            daily_tokens=target.daily_tokens or d.daily_tokens,
        )


class ResolvedTarget(_Strict):
    """A target with the defaults applied."""

    name: str
    kind: Literal["openai", "anthropic"]
    model: str
    base_url: str | None
    api_key: SecretRef | None
    probe_sets: list[str] | None
    params: dict[str, Any]
    samples: int
    every: str | None
    cron: str | None
    timeout: float
    concurrency: int
    retries: int
    jitter: float = 0.0
    daily_calls: int | None = None
    daily_tokens: int | None = None


def find_config(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    for candidate in SEARCH_PATHS:
        if candidate.is_file():
            return candidate.resolve()
    return None


def load_config(explicit: str | None = None, *, required: bool = True) -> LoadedConfig:
    """Find and load the config; with required=False a missing file gives the defaults."""
    path = find_config(explicit)
    if path is None:
        if required:
            raise ConfigError(
                "no config file found (looked for --config, $DRIFTMON_CONFIG, ./driftmon.toml, "
                "config/driftmon.toml); `driftmon init` writes a starter one"
            )
        return LoadedConfig(Settings(), None)
    return LoadedConfig(parse_config(path), path.resolve())


def parse_config(path: Path) -> Settings:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file: {exc}", file=str(path)) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"at line (\d+)", str(exc))
        raise ConfigError(
            f"invalid TOML: {exc}", file=str(path), line=int(match.group(1)) if match else None
        ) from None
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = _key_path(first["loc"])
        problem = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            problem = "unknown key"
        more = len(exc.errors()) - 1
        if more:
            problem += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise ConfigError(
            problem, file=str(path), key=key, line=_line_of(text, first["loc"])
        ) from None


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(text: str, loc: tuple[int | str, ...]) -> int | None:
    """Best-effort line of a key: find its table header, then the key within the table.
    A key that is missing points at its table's header."""
    lines = text.splitlines()
    start, table_line = 0, None
    names = [str(p) for p in loc if not isinstance(p, int)]
    if len(names) > 1 and not any(isinstance(p, int) for p in loc):
        own_header = re.compile(rf"^\s*\[+\s*{re.escape('.'.join(names))}\s*\]+")
        for i, ln in enumerate(lines):
            if own_header.match(ln):
                return i + 1
    if loc and loc[0] == "targets" and len(loc) > 1 and isinstance(loc[1], int):
        headers = [i for i, ln in enumerate(lines) if ln.strip().startswith("[[targets]]")]
        if loc[1] < len(headers):
            start = table_line = headers[loc[1]]
        names = names[1:]
    elif len(names) > 1:
        header = f"[{'.'.join(names[:-1])}]"
        for i, ln in enumerate(lines):
            if ln.strip().startswith(header):
                start = table_line = i
                names = names[-1:]
                break
    if names:
        key = re.compile(rf"^\s*{re.escape(names[-1])}\s*=")
        table = re.compile(rf"^\s*\[+\s*{re.escape(names[-1])}\s*\]+")
        for i in range(start, len(lines)):
            if key.match(lines[i]) or table.match(lines[i]):
                return i + 1
            if i > start and table_line is not None and lines[i].lstrip().startswith("["):
                break  # left the table without finding the key
    return table_line + 1 if table_line is not None else None


def redacted(settings: Settings) -> dict[str, Any]:
    """The settings as plain data for `config check`.

    Settings hold only secret references (an env name or a file path), never a secret value;
    the one place a secret can hide in plain settings is a database URL's password.
    """
    from sqlalchemy.engine import make_url

    data = settings.model_dump(mode="json", exclude_none=True)
    try:
        data["storage"]["url"] = make_url(settings.storage.url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can parse: show nothing rather than leak
        data["storage"]["url"] = "<unparseable URL hidden>"
    return data
