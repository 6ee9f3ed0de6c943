"""`driftmon probes ...`: list, show, validate, and edit probe set files in place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from monitor.cli.context import AppContext
from monitor.cli.output import fmt_rate, print_json, print_table, safe_text


@click.group("probes")
def probes_group() -> None:
    """List, show, validate and edit probes."""


@probes_group.command("list")
@click.option("--set", "set_name", metavar="SET", help="Only this probe set.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_command(app: AppContext, set_name: str | None, as_json: bool) -> None:
    """Probes with their set, version hash, enabled flag and last pass rate."""
    from monitor.store.queries import last_pass_rates

    sets = [s for s in app.probe_sets if set_name is None or s.name == set_name]
    if set_name and not sets:
        raise click.UsageError(f"no probe set named {set_name!r}")
    rates = last_pass_rates(app.engine(), set_name)
    rows: list[dict[str, Any]] = []
    for s in sets:
        for p in s.probes:
            rate = rates.get((s.name, p.id, p.version))
            rows.append(
                {
                    "id": p.id,
                    "set": s.name,
                    "version": p.version,
                    "enabled": p.enabled,
                    "response_format": p.response_format,
                    "last_pass_rate": rate.rate if rate else None,
                    "file": p.source_file,
                }
            )
    if as_json:
        print_json({"probes": rows})
        return
    print_table(
        None,
        ["set", "id", "version", "enabled", "format", "last pass rate"],
        [
            (
                r["set"],
                r["id"],
                r["version"],
                "yes" if r["enabled"] else "no",
                r["response_format"],
                fmt_rate(r["last_pass_rate"]),
            )
            for r in rows
        ],
    )


@probes_group.command("show")
@click.argument("probe_id")
@click.option("--set", "set_name", metavar="SET", help="The set, when the id is in several.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def show_command(app: AppContext, probe_id: str, set_name: str | None, as_json: bool) -> None:
    """One probe: its definition, versions seen, and recent results."""
    from monitor.runner import probe_definition
    from monitor.store.queries import probe_versions, recent_results

    probe_id, set_name = split_probe_ref(probe_id, set_name)
    matches = [
        p
        for s in app.probe_sets
        for p in s.probes
        if p.id == probe_id and (set_name is None or s.name == set_name)
    ]
    if not matches:
        raise click.UsageError(f"no probe with id {probe_id!r}")
    if len(matches) > 1:
        raise click.UsageError(
            f"{probe_id!r} is in several sets ({', '.join(p.set_name for p in matches)}): use --set"
        )
    probe = matches[0]
    engine = app.engine()
    versions = probe_versions(engine, probe.set_name, probe.id)
    recent = recent_results(engine, probe.set_name, probe.id)
    data: dict[str, Any] = {
        "id": probe.id,
        "set": probe.set_name,
        "version": probe.version,
        "enabled": probe.enabled,
        "file": probe.source_file,
        "line": probe.line,
        "samples": probe.samples,
        "definition": probe_definition(probe),
        "versions": [
            {
                "version": v.version,
                "first_seen": v.first_seen,
                "results": v.results,
                "pass_rate": v.passed / v.judged if v.judged else None,
                "current": v.version == probe.version,
            }
            for v in versions
        ],
        "recent": [
            {
                "at": r.created_at,
                "target": r.target,
                "run": r.run_id,
                "sample": r.sample_index,
                "verdict": r.verdict,
                "reason": r.reason,
                "format": r.format_kind,
                "error_class": r.error_class,
                "output": r.output,
                "output_mode": r.output_mode,
                "tool_name": r.tool_name,
                "reasoning_tokens": r.reasoning_tokens,
                "cached_tokens": r.cached_tokens,
            }
            for r in recent
        ],
    }
    if as_json:
        print_json(data)
        return
    click.echo(
        f"{probe.set_name}/{probe.id}  version {probe.version}  "
        f"{'enabled' if probe.enabled else 'DISABLED'}  ({probe.source_file}"
        f"{f':{probe.line}' if probe.line else ''})"
    )
    click.echo(
        f"format: {probe.response_format}; checks: "
        f"{'; '.join(c.describe() for c in probe.expect) or 'none'}; "
        f"tracked: {', '.join(probe.track) or 'none'}"
    )
    for m in probe.messages:
        click.echo(f"  {m.role}: {safe_text(m.content, 300)}")
    print_table(
        "versions",
        ["version", "first seen", "results", "pass rate"],
        [
            (
                v["version"] + (" (current)" if v["current"] else ""),
                str(v["first_seen"])[:19],
                v["results"],
                fmt_rate(v["pass_rate"]),
            )
            for v in data["versions"]
        ],
    )
    print_table(
        "recent results",
        ["at", "target", "run", "verdict", "why", "output"],
        [
            (
                str(r.created_at)[:19],
                r.target,
                r.run_id,
                r.verdict,
                r.reason or r.error_class or "",
                safe_text(r.output, 80),
            )
            for r in recent
        ],
    )


@probes_group.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.pass_obj
def validate_command(app: AppContext, paths: tuple[Path, ...]) -> None:
    """Validate probe files (default: the configured probe paths); no database is touched.

    Every file is checked and each problem printed with its file, key and line; exits 2 when
    any file is invalid.
    """
    from monitor.config import load_config
    from monitor.errors import ProbeFileError
    from monitor.probes.loader import find_probe_files, load_probe_file, load_probe_sets

    # Paths inside a configured probes folder resolve schemas against that folder, as a run
    # would; a config is optional here (validating files needs no database and no targets).
    configured = [p.resolve() for p in load_config(app.config_path, required=False).probe_paths]
    roots = list(paths) or configured

    def probes_root(path: Path) -> Path:
        resolved = path.resolve()
        for folder in configured:
            if folder.is_dir() and resolved.is_relative_to(folder):
                return folder
        return resolved if resolved.is_dir() else resolved.parent

    files: list[tuple[Path, Path]] = []
    for root in roots:
        if root.is_dir():
            files += [(f, probes_root(root)) for f in find_probe_files(root)]
        else:
            files.append((root, probes_root(root)))
    problems = 0
    probes = 0
    for file, root in files:
        try:
            probes += len(load_probe_file(file, probes_root=root).probes)
        except ProbeFileError as exc:
            problems += 1
            click.echo(f"error: {exc}", err=True)
    if problems == 0 and len(files) > 1:
        try:  # cross-file rules (a set name used by two files) need the whole tree at once
            load_probe_sets(roots)
        except ProbeFileError as exc:
            problems += 1
            click.echo(f"error: {exc}", err=True)
    click.echo(f"{len(files)} file(s), {probes} probe(s), {problems} problem(s)")
    if problems:
        click.get_current_context().exit(2)


def split_probe_ref(probe_id: str, set_name: str | None) -> tuple[str, str | None]:
    """`SET/ID` names the set inline; `--set` must agree when both are given."""
    if "/" in probe_id:
        inline_set, _, bare_id = probe_id.partition("/")
        if set_name is not None and set_name != inline_set:
            raise click.UsageError(
                f"{probe_id!r} names set {inline_set!r} but --set is {set_name!r}"
            )
        return bare_id, inline_set
    return probe_id, set_name


def _probe_file(app: AppContext, probe_id: str, set_name: str | None) -> tuple[Path, Path]:
    """The file holding the probe, and the probes root its schema paths resolve against."""
    from monitor.probes.editing import find_probe_file

    probe_id, set_name = split_probe_ref(probe_id, set_name)
    path = find_probe_file(app.probe_sets, probe_id, set_name)
    for probe_set in app.probe_sets:
        if Path(probe_set.file) == path and probe_set.root:
            return path, Path(probe_set.root)
    return path, path.parent


@probes_group.command("enable")
@click.argument("probe_id")
@click.option("--set", "set_name", metavar="SET")
@click.pass_obj
def enable_command(app: AppContext, probe_id: str, set_name: str | None) -> None:
    """Enable a probe (edits its file in place, keeping comments)."""
    from monitor.probes.editing import set_enabled

    path, root = _probe_file(app, probe_id, set_name)
    probe_id, _ = split_probe_ref(probe_id, set_name)
    set_enabled(path, probe_id, True, probes_root=root)
    click.echo(f"enabled {probe_id} in {path}")


@probes_group.command("disable")
@click.argument("probe_id")
@click.option("--set", "set_name", metavar="SET")
@click.pass_obj
def disable_command(app: AppContext, probe_id: str, set_name: str | None) -> None:
    """Disable a probe (edits its file in place, keeping comments)."""
    from monitor.probes.editing import set_enabled

    path, root = _probe_file(app, probe_id, set_name)
    probe_id, _ = split_probe_ref(probe_id, set_name)
    set_enabled(path, probe_id, False, probes_root=root)
    click.echo(f"disabled {probe_id} in {path}")


@probes_group.command("remove")
@click.argument("probe_id")
@click.option("--set", "set_name", metavar="SET")
@click.pass_obj
def remove_command(app: AppContext, probe_id: str, set_name: str | None) -> None:
    """Remove a probe from its file. Stored results of its versions are kept."""
    from monitor.probes.editing import remove_probe

    path, root = _probe_file(app, probe_id, set_name)
    probe_id, _ = split_probe_ref(probe_id, set_name)
    remove_probe(path, probe_id, probes_root=root)
    click.echo(f"removed {probe_id} from {path}")


@probes_group.command("add")
@click.option(
    "--set",
    "set_name",
    required=True,
    metavar="SET",
    help="Probe set to add to (its file is created if new).",
)
@click.option("--id", "probe_id", metavar="ID", help="Probe id ([a-z0-9._-]+).")
@click.option("--prompt", help="The prompt.")
@click.option("--format", "response_format", type=click.Choice(["json_schema", "json", "text"]))
@click.option(
    "--schema",
    "schema_json",
    metavar="JSON",
    help='Inline JSON Schema (Draft 2020-12), e.g. \'{"type": "object"}\'; written into the '
    "probe as its `schema` mapping. Not with --schema-file.",
)
@click.option("--schema-file", metavar="PATH", help="Schema file, relative to the set's folder.")
@click.option("--extract", metavar="REGEX", help="Answer regex for text probes.")
@click.option(
    "--expect",
    "expects",
    multiple=True,
    metavar="JSON",
    help='A check as JSON, e.g. \'{"field": "total", "equals": 12}\'; repeatable.',
)
@click.option(
    "--track", "tracks", multiple=True, metavar="FIELD", help="Tracked field; repeatable."
)
@click.option(
    "--from",
    "from_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A YAML file holding one probe mapping (instead of the options above).",
)
@click.pass_obj
def add_command(
    app: AppContext,
    set_name: str,
    probe_id: str | None,
    prompt: str | None,
    response_format: str | None,
    schema_json: str | None,
    schema_file: str | None,
    extract: str | None,
    expects: tuple[str, ...],
    tracks: tuple[str, ...],
    from_file: Path | None,
) -> None:
    """Add a probe to a set, validating the result before the file is written.

    Exits 2, leaving the file untouched, when an option or the resulting probe is invalid
    (e.g. --schema that is not JSON or not a valid Draft 2020-12 schema).
    """
    import json

    from monitor.probes.editing import add_probe

    if from_file is not None:
        from ruamel.yaml import YAML

        loaded = YAML(typ="safe").load(from_file.read_text(encoding="utf-8"))
        if not isinstance(loaded, dict):
            raise click.UsageError(f"{from_file}: expected one probe as a YAML mapping")
        probe: dict[str, Any] = dict(loaded)
    else:
        if not probe_id or not prompt:
            raise click.UsageError("give --id and --prompt, or --from FILE")
        probe = {"id": probe_id, "prompt": prompt}
        if response_format:
            probe["response_format"] = response_format
        if schema_json is not None and schema_file:
            raise click.UsageError("give --schema or --schema-file, not both")
        if schema_json is not None:
            probe["schema"] = _inline_schema(schema_json)
        if schema_file:
            probe["schema_file"] = schema_file
        if extract:
            probe["extract"] = extract
        try:
            checks = [json.loads(e) for e in expects]
        except json.JSONDecodeError as exc:
            raise click.UsageError(f"--expect is not JSON: {exc}") from None
        if checks:
            probe["expect"] = checks
        if tracks:
            probe["track"] = list(tracks)
    existing = {s.name: s for s in app.probe_sets}
    if set_name in existing:
        path = Path(existing[set_name].file)
        root = Path(existing[set_name].root or path.parent)
    else:
        root = app.config.probe_paths[0]
        path = root / f"{set_name}.yaml"
    add_probe(path, probe, probes_root=root)
    click.echo(f"added {probe.get('id')} to {path}")


def _inline_schema(text: str) -> dict[str, Any]:
    """The --schema option: a JSON object that is a valid Draft 2020-12 schema."""
    import json

    from jsonschema.exceptions import SchemaError

    from monitor.schema_check import check_schema

    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"--schema is not JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise click.UsageError("--schema must be a JSON object (a JSON Schema)")
    try:
        check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        raise click.UsageError(
            f"--schema is not a valid JSON Schema (Draft 2020-12): {exc.message}"
            + (f" (at {where})" if where else "")
        ) from None
    return schema
