"""The documentation cannot go stale: docs/cli.md is the CLI's own `--help` output, and every key
of the settings model is documented in docs/configuration.md, with its real default.

The top-level commands of SPEC.md are checked against `driftmon --help` in
tests/e2e/test_cli_basics.py."""

from __future__ import annotations

import re
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from monitor.cli.main import COMMANDS
from monitor.cli.reference import cli_reference, command_paths
from monitor.config import SecretRef, Settings
from tests.conftest import REPO

CLI_MD = REPO / "docs" / "cli.md"
CONFIGURATION_MD = REPO / "docs" / "configuration.md"

# Models that are values of one key, not tables of keys: documented in their own sections.
VALUE_MODELS: tuple[type[BaseModel], ...] = (SecretRef,)

# --- the CLI reference ------------------------------------------------------------------------


def test_cli_reference_is_current() -> None:
    assert CLI_MD.is_file(), "docs/cli.md is missing: run `make docs`"
    assert CLI_MD.read_text(encoding="utf-8") == cli_reference(), (
        "docs/cli.md is stale: run `make docs`"
    )


def test_every_command_has_a_section_in_the_cli_reference() -> None:
    text = CLI_MD.read_text(encoding="utf-8")
    headings = set(re.findall(r"^### (driftmon(?: [a-z][a-z-]*)*)$", text, re.MULTILINE))
    paths = command_paths()
    # The walk reaches every registered command and the subcommands of the groups.
    assert {p[0] for p in paths} == set(COMMANDS)
    assert {("probes", "list"), ("config", "check"), ("db", "upgrade")} <= set(paths)
    titles = ["driftmon", *(" ".join(("driftmon", *p)) for p in paths)]
    missing = [title for title in titles if title not in headings]
    assert not missing, f"commands without a section in docs/cli.md: {missing}; run `make docs`"
    extra = sorted(headings - set(titles))
    assert not extra, f"docs/cli.md documents commands that do not exist: {extra}; run `make docs`"


def test_cli_reference_is_independent_of_the_terminal_and_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    expected = cli_reference()
    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setenv("DRIFTMON_CONFIG", str(tmp_path / "elsewhere.toml"))
    monkeypatch.chdir(tmp_path)
    assert cli_reference() == expected


# --- the configuration reference --------------------------------------------------------------


@dataclass(frozen=True)
class ConfigKey:
    path: str  # dotted, tables of tables as one key each: "alerts.slack.token", "targets.name"
    model: type[BaseModel]
    name: str

    @property
    def default(self) -> Any:
        """The default as written in a config file; PydanticUndefined for a required key."""
        field = self.model.model_fields[self.name]
        if field.default_factory is not None:
            return field.default_factory()  # type: ignore[call-arg]
        return field.default


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds: `M`, `M | None`, `list[M]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def config_keys(model: type[BaseModel] = Settings, prefix: str = "") -> list[ConfigKey]:
    """Every key of the settings model, recursing into nested tables and arrays of tables."""
    keys: list[ConfigKey] = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        tables = [m for m in _models_in(field.annotation) if m not in VALUE_MODELS]
        if tables:
            for table in tables:
                keys += config_keys(table, f"{path}.")
        else:
            keys.append(ConfigKey(path, model, name))
    return keys


@dataclass(frozen=True)
class Row:
    section: str  # the `## ` heading
    tables: tuple[str, ...]  # the TOML tables it names: "[alerts] and [alerts.slack]"
    key: str  # the first column's code span
    default: str | None  # the `default` column's cell, when the table has one
    line: int


def documented_rows() -> list[Row]:
    """Rows of the Markdown tables under each `## ` heading that names TOML tables."""
    rows: list[Row] = []
    section, tables, columns = "", (), list[str]()
    for number, line in enumerate(
        CONFIGURATION_MD.read_text(encoding="utf-8").splitlines(), start=1
    ):
        if line.startswith("## "):
            section = line[3:].strip()
            tables = tuple(re.findall(r"`\[\[?([a-z_.]+)\]\]?`", section))
            columns = []
        elif not line.startswith("|"):
            columns = []
        elif not columns:
            columns = [c.strip() for c in line.strip().strip("|").split("|")]
        elif tables and (match := re.match(r"\|\s*`([a-z_.]+)`\s*\|", line)):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            default = cells[columns.index("default")] if "default" in columns else None
            rows.append(Row(section, tables, match.group(1), default, number))
    return rows


def resolve(row: Row, paths: set[str]) -> list[str]:
    """The config keys a row documents: `key` relative to each table its section names (a row
    under "[defaults] and [[targets]]" documents both), or the full `table.key` path."""
    found: list[str] = []
    for table in row.tables:
        for candidate in (f"{table}.{row.key}", row.key):
            if candidate.startswith(f"{table}.") and candidate in paths and candidate not in found:
                found.append(candidate)
    return found


def test_the_settings_walk_sees_every_table() -> None:
    paths = {k.path for k in config_keys()}
    for expected in (
        "storage.url",
        "probes.paths",
        "defaults.every",
        "targets.name",
        "targets.api_key",
        "limits.max_json_depth",
        "drift.alpha",
        "alerts.repeat_interval",
        "alerts.slack.token",
        "server.listen",
    ):
        assert expected in paths
    assert not any(p.startswith("targets.api_key.") for p in paths)  # a secret is one value


def test_every_config_key_is_documented() -> None:
    paths = {k.path for k in config_keys()}
    documented = {path for row in documented_rows() for path in resolve(row, paths)}
    missing = sorted(paths - documented)
    assert not missing, (
        f"config keys missing from docs/configuration.md: {missing}. Add each as a table row "
        "(`key` or `table.key`) under the section of its table, with default and meaning."
    )


def test_every_documented_config_key_exists() -> None:
    paths = {k.path for k in config_keys()}
    unknown = [
        f"line {r.line}: `{r.key}` ({r.section})"
        for r in documented_rows()
        if not resolve(r, paths)
    ]
    assert not unknown, f"docs/configuration.md documents keys the settings do not have: {unknown}"


def _parse_default(cell: str) -> Any:
    """A `default` cell as a value: a TOML literal in backticks, `none`, or (for a required key)
    anything else."""
    if cell == "none":
        return None
    match = re.fullmatch(r"`(.+)`", cell)
    if match is None:
        return PydanticUndefined
    return tomllib.loads(f"value = {match.group(1)}")["value"]


def test_documented_defaults_match_the_settings() -> None:
    keys = {k.path: k for k in config_keys()}
    wrong = []
    for row in documented_rows():
        paths = resolve(row, set(keys))
        if row.default is None or not paths:
            continue
        path = paths[0]  # the first table the section names: [defaults] before [[targets]]
        documented, actual = _parse_default(row.default), keys[path].default
        if documented != actual or type(documented) is not type(actual):
            wrong.append(f"`{path}`: documented {row.default}, actual {actual!r}")
    assert not wrong, f"defaults in docs/configuration.md differ from the settings: {wrong}"


# --- the configuration reference's examples ---------------------------------------------------


def toml_blocks(path: Path) -> list[tuple[int, str]]:
    """Each ```toml fenced block of a Markdown file, with the line its text starts on."""
    blocks: list[tuple[int, str]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    start: int | None = None
    for number, line in enumerate(lines, start=1):
        if start is None and line.strip() == "```toml":
            start = number + 1
        elif start is not None and line.strip() == "```":
            blocks.append((start, "\n".join(lines[start - 1 : number - 1]) + "\n"))
            start = None
    return blocks


def test_every_toml_block_of_the_configuration_reference_is_a_valid_config(
    tmp_path: Path,
) -> None:
    from monitor.config import parse_config
    from monitor.errors import ConfigError

    blocks = toml_blocks(CONFIGURATION_MD)
    assert len(blocks) >= 12, "the provider recipes are fenced as ```toml"
    broken = []
    for line, text in blocks:
        path = tmp_path / f"block-{line}.toml"
        path.write_text(text, encoding="utf-8")
        try:
            parse_config(path)
        except ConfigError as exc:
            broken.append(f"block at line {line}: {exc.problem} ({exc.key}, line {exc.line})")
    assert not broken, f"docs/configuration.md has TOML blocks that are not valid: {broken}"


def test_every_provider_has_a_recipe() -> None:
    text = CONFIGURATION_MD.read_text(encoding="utf-8")
    section = text.split("\n## Providers\n", 1)[1].split("\n## ", 1)[0]
    for needle in (
        'kind = "openai"',
        'kind = "openai-responses"',
        'kind = "anthropic"',
        "openai.azure.com/openai/deployments/",
        "openai.azure.com/openai/v1",
        '"api-version"',
        '"api-key"',
        "https://generativelanguage.googleapis.com/v1beta/openai",
        "http://localhost:11434/v1",
        "### vLLM",
        "https://openrouter.ai/api/v1",
        '"HTTP-Referer"',
        '"X-Title"',
        "### LiteLLM proxy",
    ):
        assert needle in section, needle
