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
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.config_checks import base_url_problem, settings_problems
from monitor.config_keys import key_path, line_of
from monitor.drift.settings import DriftConfig
from monitor.durations import parse_duration
from monitor.errors import ConfigError, LocatedError
from monitor.providers.params import TOKEN_CAP_PARAMS

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


def _text_or_secret(value: Any) -> Any:
    """A header or query value: literal text, or a secret reference resolved when sending."""
    if isinstance(value, str | SecretRef):
        return value
    if isinstance(value, dict):
        return SecretRef.model_validate(value)
    raise ValueError('must be text or a secret reference { env = "NAME" } / { file = "PATH" }')


TextOrSecret = Annotated[str | SecretRef, BeforeValidator(_text_or_secret)]


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
    extra_body: dict[str, Any] | None = None  # merged into each request body, unchecked
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
    kind: Literal["openai", "openai-responses", "anthropic"]
    model: str
    base_url: str | None = None
    api_key: SecretRef | None = None
    probe_sets: list[str] | None = None  # None: every set
    headers: dict[str, TextOrSecret] | None = None
    query: dict[str, TextOrSecret] | None = None
    strict: bool | None = None
    token_limit_param: Literal["auto", "max_completion_tokens", "max_tokens"] | None = None
    # Params this target's model refuses, removed from every request whoever set them
    # (the defaults, a probe set): a reasoning model given a probe's temperature, say.
    drop_params: list[str] = Field(default_factory=list)

    _check_secret = field_validator("api_key", mode="before")(_secret)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value is not None:
            problem = base_url_problem(value)
            if problem:
                raise ValueError(problem)
        return value

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
        return ConfigError(problem, file=file, key=key_path(loc), line=line_of(text, loc))

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
        return ResolvedTarget(
            name=target.name,
            kind=target.kind,
            model=target.model,
            base_url=target.base_url,
            api_key=self._located(target.api_key),
            probe_sets=target.probe_sets,
            params={
                name: value
                for name, value in merge_params(d.params or {}, target.params or {}).items()
                if name not in target.drop_params
            },
            headers={k: self._located(v) for k, v in (target.headers or {}).items()},
            query={k: self._located(v) for k, v in (target.query or {}).items()},
            extra_body={**(d.extra_body or {}), **(target.extra_body or {})},
            strict=target.strict,
            token_limit_param=target.token_limit_param or "auto",
            drop_params=list(target.drop_params),
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

    def _located(self, value: Any) -> Any:
        """A file secret's path made relative to the config file's folder; other values as is."""
        if isinstance(value, SecretRef) and value.file is not None:
            return SecretRef(file=str(self.resolve_path(value.file)))
        return value

    def check_secrets(self, target: TargetSettings) -> None:
        """Raise a ConfigError naming file, key and line for each of the target's secrets
        (api_key, header and query values) that cannot be read. Values are read and dropped."""
        problems = self.secret_problems(target)
        if problems:
            raise ConfigError.of(problems)

    def secret_problems(self, target: TargetSettings) -> list[ConfigError]:
        """A located ConfigError for each of the target's secrets that cannot be read."""
        index = self.settings.targets.index(target)
        return [
            problem
            for where, ref in self.effective(target).secret_refs()
            if (problem := self._unreadable(ref, ("targets", index, *where))) is not None
        ]

    def alert_secret_problems(self) -> list[ConfigError]:
        """A located ConfigError for each `[alerts.slack]` secret that cannot be read or is
        empty."""
        slack = self.settings.alerts.slack
        if slack is None:
            return []
        refs = {"token": slack.token, "webhook_url": slack.webhook_url}
        return [
            problem
            for name, ref in refs.items()
            if ref is not None
            and (problem := self._unreadable(ref, ("alerts", "slack", name), empty=True))
        ]

    def _unreadable(
        self, ref: SecretRef, loc: tuple[int | str, ...], *, empty: bool = False
    ) -> ConfigError | None:
        try:
            value = self._located(ref).resolve()
        except ConfigError as exc:
            return self.error_at(exc.problem, loc)
        if empty and not value.strip():
            return self.error_at(f"the secret ({ref.describe()}) is empty", loc)
        return None

    def located(self, error: ConfigError) -> ConfigError:
        """`error` with this config's file and the line of its key, when it names a key but
        no file (errors raised by code that sees settings but not where they came from)."""
        if error.file is not None or not error.key:
            return error
        loc = tuple(
            int(part) if part.isdigit() else part for part in re.findall(r"[^.\[\]]+", error.key)
        )
        return self.error_at(error.problem, loc)

    def storage_source(self) -> str:
        """Where the storage URL comes from, for messages about the database:
        `FILE:LINE: storage.url`, or the file and `storage.url (not set: ...)` for the default."""
        if "url" in self.settings.storage.model_fields_set:
            return self.error_at("", ("storage", "url")).render().removesuffix(": ")
        default = StorageSettings().url
        where = f"{self.path}: " if self.path else ""
        return f"{where}storage.url (not set: the default {default}, next to the config file)"

    def param_origin(self, target: TargetSettings, name: str) -> tuple[int | str, ...] | None:
        """Where the effective value of param `name` of `target` is set: the target's own
        params, else [defaults].params; None when neither sets it."""
        if name in (target.params or {}):
            return ("targets", self.settings.targets.index(target), "params", name)
        if name in (self.settings.defaults.params or {}):
            return ("defaults", "params", name)
        return None

    def describe_location(self, loc: tuple[int | str, ...]) -> str:
        """`FILE:LINE KEY` for messages that point at a key, e.g.
        `driftmon.toml:12 [defaults].params.temperature`."""
        err = self.error_at("", loc)
        where = err.file or "<no config file>"
        if err.line is not None:
            where += f":{err.line}"
        key = key_path(loc)
        if loc and loc[0] == "defaults":
            key = "[defaults]" + key.removeprefix("defaults")
        return f"{where} {key}"


def merge_params(defaults: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """Target params over [defaults].params, key by key; the output cap counts as one key."""
    merged = dict(defaults)
    if any(name in own for name in TOKEN_CAP_PARAMS):
        for name in TOKEN_CAP_PARAMS:
            merged.pop(name, None)
    merged.update(own)
    return merged


class ResolvedTarget(_Strict):
    """A target with the defaults applied."""

    name: str
    kind: Literal["openai", "openai-responses", "anthropic"]
    model: str
    base_url: str | None
    api_key: SecretRef | None
    probe_sets: list[str] | None
    params: dict[str, Any]
    # Sent with every request; a value is literal text or a secret reference.
    headers: dict[str, str | SecretRef] = Field(default_factory=dict)
    query: dict[str, str | SecretRef] = Field(default_factory=dict)
    extra_body: dict[str, Any] = Field(default_factory=dict)  # sent unchecked
    strict: bool | None = None  # overrides the probes' structured-output choice
    # OpenAI chat: the field the output cap goes in; "auto" picks by host (see params docs).
    token_limit_param: Literal["auto", "max_completion_tokens", "max_tokens"] = "auto"
    drop_params: list[str] = Field(default_factory=list)
    samples: int
    every: str | None
    cron: str | None
    timeout: float
    concurrency: int
    retries: int
    jitter: float = 0.0
    daily_calls: int | None = None
    daily_tokens: int | None = None

    def secret_refs(self) -> list[tuple[tuple[str, ...], SecretRef]]:
        """Every secret reference the target sends, with its key path inside the target."""
        refs: list[tuple[tuple[str, ...], SecretRef]] = []
        if self.api_key is not None:
            refs.append((("api_key",), self.api_key))
        for table in ("headers", "query"):
            values: dict[str, str | SecretRef] = getattr(self, table)
            refs += [((table, k), v) for k, v in values.items() if isinstance(v, SecretRef)]
        return refs


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
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError.of(_validation_errors(exc, path, text)) from None
    problems = [
        ConfigError(problem, file=str(path), key=key_path(loc), line=line_of(text, loc))
        for problem, loc in settings_problems(settings)
    ]
    if problems:
        raise ConfigError.of(problems)
    return settings


def _validation_errors(exc: ValidationError, path: Path, text: str) -> list[LocatedError]:
    """Every key pydantic refused, once each (a union can fail one key several ways)."""
    errors: list[LocatedError] = []
    seen: set[tuple[int | str, ...]] = set()
    for error in exc.errors():
        loc = tuple(error["loc"])
        if loc in seen:
            continue
        seen.add(loc)
        problem = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            problem = "unknown key"
        errors.append(
            ConfigError(problem, file=str(path), key=key_path(loc), line=line_of(text, loc))
        )
    return errors


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
