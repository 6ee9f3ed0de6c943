"""`driftmon init` and `driftmon config check`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import click

from monitor.cli.context import AppContext
from monitor.cli.output import print_json


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
@click.pass_obj
def check_command(app: AppContext, as_json: bool) -> None:
    """Load and validate the config and every probe set; print the resolved config.

    Secrets are shown only as their references (env name or file path) and whether they
    can be read; their values are never printed.
    """
    from monitor.config import redacted
    from monitor.errors import ConfigError

    config = app.config
    sets = app.probe_sets
    known = {s.name for s in sets}
    for index, target in enumerate(config.settings.targets):
        for name in target.probe_sets or []:
            if name not in known:
                raise ConfigError(
                    f"unknown probe set {name!r} (sets: {', '.join(sorted(known)) or 'none'})",
                    file=str(config.path),
                    key=f"targets[{index}].probe_sets",
                )
    from monitor.daemon.schedule import check_schedules
    from monitor.store.db import hide_password

    check_schedules(config)  # what `serve` would refuse: a bad cron, jitter >= every
    data = redacted(config.settings)
    for target_data, target in zip(data.get("targets", []), config.settings.targets, strict=True):
        if target.api_key is not None:
            target_data["api_key"]["readable"] = _readable(config.effective(target).api_key)
    report: dict[str, Any] = {
        "config_file": str(config.path),
        "storage_url": hide_password(config.storage_url(app.db_url)),
        "config": data,
        "probe_sets": [
            {
                "set": s.name,
                "file": s.file,
                "probes": len(s.probes),
                "enabled": len(s.enabled_probes()),
            }
            for s in sets
        ],
    }
    if as_json:
        print_json(report)
        return
    click.echo(f"config: {report['config_file']}")
    click.echo(f"storage: {report['storage_url']}")
    for target in config.settings.targets:
        eff = config.effective(target)
        key = "none"
        if eff.api_key is not None:
            state = "readable" if _readable(eff.api_key) else "NOT readable"
            key = f"{eff.api_key.describe()} ({state})"
        click.echo(
            f"target {eff.name}: {eff.kind} {eff.model} every={eff.every or eff.cron} "
            f"samples={eff.samples} concurrency={eff.concurrency} api_key={key} "
            f"sets={','.join(eff.probe_sets) if eff.probe_sets else 'all'}"
        )
    for s in report["probe_sets"]:
        click.echo(
            f"probe set {s['set']}: {s['probes']} probes ({s['enabled']} enabled) in {s['file']}"
        )
    click.echo("ok")


def _readable(ref: object) -> bool:
    from monitor.config import SecretRef
    from monitor.errors import ConfigError

    assert isinstance(ref, SecretRef)
    try:
        ref.resolve()
    except ConfigError:
        return False
    return True
