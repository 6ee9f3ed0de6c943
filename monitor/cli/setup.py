"""`driftmon init` and `driftmon config check`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from monitor.cli.context import AppContext
from monitor.cli.output import print_json
from monitor.cli.targets import effective_base_url

if TYPE_CHECKING:
    from monitor.errors import ConfigError, LocatedError


@click.command("init")
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def init_command(directory: Path, force: bool) -> None:
    """Write a starter config (driftmon.toml) and probe set (probes/starter.yaml) in DIRECTORY."""
    from monitor.errors import UsageError

    files = {
        directory / "driftmon.toml": "driftmon.toml",
        directory / "probes" / "starter.yaml": "starter.yaml",
    }
    existing = [str(p) for p in files if p.exists()]
    if existing and not force:
        raise UsageError(f"{', '.join(existing)} already exist(s); use --force to overwrite")
    starter = resources.files("monitor.starter")
    for path, name in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(starter.joinpath(name).read_text(encoding="utf-8"), encoding="utf-8")
        click.echo(f"wrote {path}")
    click.echo(f"next: edit {directory / 'driftmon.toml'}, then `driftmon config check`")


@click.group("config")
def config_group() -> None:
    """Check and show the configuration."""


@config_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--skip-secrets",
    is_flag=True,
    help="Do not read secrets: for checking a service's config where its credentials do not "
    "exist (systemd LoadCredential= files exist only inside the service).",
)
@click.pass_obj
def check_command(app: AppContext, as_json: bool, skip_secrets: bool) -> None:
    """Load and validate the config and every probe set; print the resolved config.

    Also checks what `run` and `serve` would trip over later: every secret (targets' api_key,
    header and query values, [alerts.slack]) can be read, each target's schedule, and a SQLite
    database's folder exists and is writable (the file too, if it exists). Every problem found
    is reported, each with file, line and key; exit code 2. Offline: a PostgreSQL database is
    not connected to, and no provider or Slack is called (`targets ping`, `alerts test` do).

    Secrets are shown only as their references (env name or file path); their values are
    never printed.
    """
    from monitor.config import redacted
    from monitor.errors import ConfigError
    from monitor.store.db import hide_password

    config = app.config
    problems = check_problems(app, secrets=not skip_secrets)
    if problems:
        raise ConfigError.of(problems)
    data = redacted(config.settings)
    targets = [config.effective(t) for t in config.settings.targets]
    for target_data, eff in zip(data.get("targets", []), targets, strict=True):
        target_data["base_url"], target_data["base_url_default"] = effective_base_url(eff)
        if eff.api_key is not None:
            target_data["api_key"]["readable"] = None if skip_secrets else True  # checked above
    report: dict[str, Any] = {
        "config_file": str(config.path),
        "storage_url": hide_password(app.storage_url),
        "config": data,
        "probe_sets": [
            {
                "set": s.name,
                "file": s.file,
                "probes": len(s.probes),
                "enabled": len(s.enabled_probes()),
            }
            for s in app.probe_sets
        ],
    }
    if as_json:
        print_json(report)
        return
    click.echo(f"config: {report['config_file']}")
    click.echo(f"storage: {report['storage_url']}")
    for eff in targets:
        state = "not checked" if skip_secrets else "readable"
        key = f"{eff.api_key.describe()} ({state})" if eff.api_key is not None else "none"
        base_url, is_default = effective_base_url(eff)
        base_url += " (default)" if is_default else ""
        click.echo(
            f"target {eff.name}: {eff.kind} {eff.model} base_url={base_url} "
            f"every={eff.every or eff.cron} "
            f"samples={eff.samples} concurrency={eff.concurrency} api_key={key} "
            f"sets={','.join(eff.probe_sets) if eff.probe_sets else 'all'}"
        )
    for s in report["probe_sets"]:
        click.echo(
            f"probe set {s['set']}: {s['probes']} probes ({s['enabled']} enabled) in {s['file']}"
        )
    click.echo("ok")


def check_problems(app: AppContext, *, secrets: bool = True) -> list[LocatedError]:
    """Everything `config check` finds wrong beyond what loading the config refuses: probe
    sets, unknown probe set names, schedules, unreadable secrets (unless `secrets` is False),
    an unusable SQLite path."""
    from monitor.daemon.schedule import check_schedules
    from monitor.errors import ConfigError, ConfigProblems, LocatedError

    config = app.config
    problems: list[LocatedError] = []
    try:
        known: set[str] | None = {s.name for s in app.probe_sets}
    except LocatedError as exc:  # a broken probe file: reported with the rest
        problems.append(exc)
        known = None
    for index, target in enumerate(config.settings.targets):
        for position, name in enumerate(target.probe_sets or []):
            if known is not None and name not in known:
                problems.append(
                    config.error_at(
                        f"unknown probe set {name!r} (sets: {', '.join(sorted(known)) or 'none'})",
                        ("targets", index, "probe_sets", position),
                    )
                )
    try:
        check_schedules(config)  # what `serve` would refuse: a bad cron, jitter >= every
    except ConfigProblems as exc:
        problems += exc.errors
    except ConfigError as exc:
        problems.append(exc)
    if secrets:
        for target in config.settings.targets:
            problems += config.secret_problems(target)
        problems += config.alert_secret_problems()
    storage = storage_problem(app)
    if storage is not None:
        problems.append(storage)
    return problems


def storage_problem(app: AppContext) -> ConfigError | None:
    """Why a SQLite database could not be opened and written, located at `storage.url` (or
    `--db`); None when nothing stops it. Other databases are not connected to."""
    from monitor.errors import ConfigError
    from monitor.store.db import hide_password, sqlite_problem

    url = app.storage_url
    cause = sqlite_problem(url)
    if cause is None:
        return None
    problem = f"cannot use the SQLite database {hide_password(url)}: {cause}"
    if app.db_url:
        return ConfigError(problem, key="--db")
    config = app.config
    if "url" in config.settings.storage.model_fields_set:
        return config.error_at(problem, ("storage", "url"))
    return ConfigError(f"{problem}; set storage.url", file=str(config.path), key="storage.url")
