"""The CLI's basics end to end: help, version, `init`, `config check`, `--db`, `db upgrade` /
`db current`, and what `--help` costs at import time. The real CLI runs in a subprocess."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import pytest

import monitor
from monitor.store.migrate import head_revision
from tests.conftest import REPO, driftmon

# The command table of SPEC.md.
SPEC_COMMANDS = {
    "init",
    "config",
    "db",
    "probes",
    "targets",
    "run",
    "serve",
    "status",
    "drift",
    "baseline",
    "alerts",
    "report",
    "power",
    "backtest",
    "simulate",
    "demo",
}
# The commands this stage of the project ships, and their subcommands.
SHIPPED: dict[str, set[str]] = {
    "init": set(),
    "config": {"check"},
    "db": {"upgrade", "current"},
    "probes": {"list", "show", "validate", "add", "enable", "disable", "remove"},
    "targets": {"list", "ping"},
    "run": set(),
    "drift": set(),
    "baseline": {"show", "accept"},
    "power": set(),
    "backtest": set(),
    "alerts": {"list", "silence", "unsilence", "test", "deliver"},
    "serve": set(),
    "status": set(),
    "report": set(),
    "simulate": set(),
    "demo": set(),
}
# Heavy or optional modules that `--help` must never import.
NOT_AT_HELP = ("scipy", "slack_sdk", "sqlalchemy", "monitor.report", "jsonschema", "jinja2")
SECRET_VALUE = "sk-live-DISTINCTIVE-8d41c0ffee"
T = TypeVar("T")


def parallel(calls: list[Callable[[], T]]) -> list[T]:
    """Independent CLI runs at once (each is mostly interpreter start-up)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda call: call(), calls))


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, (
        f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def usage_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (
        f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr


def starter(name: str) -> str:
    return resources.files("monitor.starter").joinpath(name).read_text(encoding="utf-8")


def init_project(root: Path) -> Path:
    ok(driftmon("init", str(root)))
    return root / "driftmon.toml"


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def help_commands(text: str) -> set[str]:
    """Command names of a click help page's `Commands:` section."""
    section = text.split("Commands:", 1)[1]
    return {m.group(1) for m in re.finditer(r"^  ([a-z][a-z-]*)\b", section, re.MULTILINE)}


def imported_modules(*args: str, cwd: Path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "monitor", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    modules.discard("imported package")  # the header line
    assert {"click", "monitor.cli.main"} <= modules, "could not parse -X importtime output"
    return modules


# --- help and version -------------------------------------------------------------------------


def test_help_lists_every_shipped_command_and_each_one_has_help(tmp_path: Path) -> None:
    top = help_commands(ok(driftmon("--help", cwd=tmp_path)).stdout)
    assert set(SHIPPED) <= top, f"missing from --help: {set(SHIPPED) - top}"
    commands = sorted(top)
    pages = parallel([partial(driftmon, command, "--help", cwd=tmp_path) for command in commands])
    broken = {
        command: f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"
        for command, done in zip(commands, pages, strict=True)
        if done.returncode != 0 or "Traceback" in done.stderr
    }
    assert broken == {}, f"`driftmon COMMAND --help` fails for {broken}"
    for command, done in zip(commands, pages, strict=True):
        assert done.stdout.startswith(f"Usage: driftmon {command} "), done.stdout
        subcommands = SHIPPED.get(command, set())
        if subcommands:
            assert help_commands(done.stdout) >= subcommands, (command, done.stdout)


def test_help_lists_every_spec_command(tmp_path: Path) -> None:
    top = help_commands(ok(driftmon("--help", cwd=tmp_path)).stdout)
    assert top == SPEC_COMMANDS, f"missing: {sorted(SPEC_COMMANDS - top)}"


def test_version_matches_the_distribution(tmp_path: Path) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    version = project["version"]
    assert monitor.__version__ == version
    done = ok(driftmon("--version", cwd=tmp_path))
    assert done.stdout == f"driftmon, version {version}\n"


def test_help_imports_nothing_heavy(tmp_path: Path) -> None:
    commands = [("--help",), ("probes", "--help"), ("run", "--help")]
    loaded = parallel([partial(imported_modules, *c, cwd=tmp_path) for c in commands])
    heavy = sorted(m for m in loaded[0] if _is_under(m, NOT_AT_HELP))
    assert heavy == [], f"`driftmon --help` imports {heavy}"
    for command, modules in zip(commands[1:], loaded[1:], strict=True):
        heavy = sorted(m for m in modules if _is_under(m, ("scipy", "slack_sdk")))
        assert heavy == [], f"`driftmon {' '.join(command)}` imports {heavy}"


def _is_under(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


# --- init -------------------------------------------------------------------------------------


def test_init_writes_a_valid_starter_and_refuses_to_overwrite(tmp_path: Path) -> None:
    project = tmp_path / "new" / "project"
    done = ok(driftmon("init", str(project), cwd=tmp_path))
    config, probe_set = project / "driftmon.toml", project / "probes" / "starter.yaml"
    assert config.read_text(encoding="utf-8") == starter("driftmon.toml")
    assert probe_set.read_text(encoding="utf-8") == starter("starter.yaml")
    assert str(config) in done.stdout and str(probe_set) in done.stdout
    # What init writes is valid as it stands.
    for done in parallel(
        [
            partial(driftmon, *args, cwd=project, env={"OPENAI_API_KEY": SECRET_VALUE})
            for args in (["config", "check"], ["probes", "validate"])
        ]
    ):
        ok(done)

    config.write_text("# mine\n", encoding="utf-8")
    stderr = usage_error(driftmon("init", str(project), cwd=tmp_path))
    assert "--force" in stderr and "driftmon.toml" in stderr and "starter.yaml" in stderr
    assert config.read_text(encoding="utf-8") == "# mine\n"

    # One existing file is enough to refuse, and then nothing at all is written.
    probe_set.unlink()
    usage_error(driftmon("init", cwd=project))  # DIR defaults to the current folder
    assert config.read_text(encoding="utf-8") == "# mine\n"
    assert not probe_set.exists()

    ok(driftmon("init", "--force", cwd=project))
    assert config.read_text(encoding="utf-8") == starter("driftmon.toml")
    assert probe_set.read_text(encoding="utf-8") == starter("starter.yaml")


# --- config check -----------------------------------------------------------------------------


def test_config_check_prints_the_resolved_config(tmp_path: Path) -> None:
    project = tmp_path / "project"
    config = init_project(project)
    # From another folder: relative paths in the file are relative to the file's folder.
    done = ok(
        driftmon(
            "--config",
            str(config),
            "config",
            "check",
            cwd=tmp_path,
            env={"OPENAI_API_KEY": SECRET_VALUE},
        )
    )
    lines = done.stdout.splitlines()
    assert lines[0] == f"config: {config}"
    assert lines[1] == f"storage: sqlite:///{project / 'driftmon.db'}"
    target = next(line for line in lines if line.startswith("target gpt-4o-prod:"))
    assert "openai gpt-4o" in target and "every=1h" in target and "samples=3" in target
    assert "api_key=env:OPENAI_API_KEY (readable)" in target
    assert f"probe set starter: 2 probes (2 enabled) in {project / 'probes' / 'starter.yaml'}" in (
        lines
    )
    assert lines[-1] == "ok"
    assert SECRET_VALUE not in done.stdout + done.stderr


def test_config_check_json_never_contains_secret_values(tmp_path: Path) -> None:
    config = init_project(tmp_path)
    secret_file = tmp_path / "anthropic.key"
    file_secret = "sk-ant-FILE-SECRET-0b5e9d7a"
    secret_file.write_text(file_secret + "\n", encoding="utf-8")
    with config.open("a", encoding="utf-8") as handle:
        handle.write(
            '\n[[targets]]\nname = "claude"\nkind = "anthropic"\nmodel = "claude-sonnet"\n'
            'api_key = { file = "anthropic.key" }\n'
        )
    env = {"OPENAI_API_KEY": SECRET_VALUE}
    done = ok(driftmon("config", "check", "--json", cwd=tmp_path, env=env))
    for secret in (SECRET_VALUE, file_secret):
        assert secret not in done.stdout + done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    keys = [t["api_key"] for t in data["config"]["targets"]]
    assert keys == [
        {"env": "OPENAI_API_KEY", "readable": True},
        {"file": "anthropic.key", "readable": True},
    ]
    text = ok(driftmon("config", "check", cwd=tmp_path, env=env))
    for secret in (SECRET_VALUE, file_secret):
        assert secret not in text.stdout + text.stderr


def test_config_check_json_hides_the_database_password(tmp_path: Path) -> None:
    config = init_project(tmp_path)
    url = "postgresql+psycopg://driftmon:Pw-DISTINCTIVE-4417@127.0.0.1:5432/driftmon"
    text = config.read_text(encoding="utf-8").replace('"sqlite:///driftmon.db"', f'"{url}"')
    config.write_text(text, encoding="utf-8")
    for args in (["config", "check", "--json"], ["config", "check"]):
        done = ok(driftmon(*args, cwd=tmp_path, env={"OPENAI_API_KEY": SECRET_VALUE}))
        assert "Pw-DISTINCTIVE-4417" not in done.stdout + done.stderr, (args, done.stdout)


@pytest.mark.parametrize(
    ("original", "replacement", "key", "commands"),
    [
        (
            'api_key = { env = "OPENAI_API_KEY" }',
            f'api_key = "{SECRET_VALUE}"   # pasted by mistake',
            "targets[0].api_key",
            [["config", "check"], ["config", "check", "--json"], ["probes", "list"]],
        ),
        (
            '[alerts]\nrepeat_interval = "12h"',
            f'[alerts]\nrepeat_interval = "12h"\n\n[alerts.slack]\ntoken = "{SECRET_VALUE}"\n'
            'channel = "C0123456789"',
            "alerts.slack.token",
            [["config", "check", "--json"]],
        ),
    ],
    ids=["api_key", "slack_token"],
)
def test_literal_secret_is_refused_without_echoing_it(
    tmp_path: Path, original: str, replacement: str, key: str, commands: list[list[str]]
) -> None:
    config = init_project(tmp_path)
    text = config.read_text(encoding="utf-8")
    assert original in text
    config.write_text(text.replace(original, replacement), encoding="utf-8")
    line = line_of(config, SECRET_VALUE)
    for done in parallel([partial(driftmon, *args, cwd=tmp_path) for args in commands]):
        stderr = usage_error(done)
        assert f"{config}:{line}: {key}: " in stderr, stderr
        assert "literal secret" in stderr
        assert SECRET_VALUE not in done.stdout + stderr
        assert SECRET_VALUE[:12] not in done.stdout + stderr


@pytest.mark.parametrize(
    ("original", "replacement", "key", "needle"),
    [
        ("concurrency = 8", "concurrency = 8\nconcurency = 3", "defaults.concurency", "concurency"),
        ('model = "gpt-4o"', 'model = "gpt-4o"\nmodle = "x"', "targets[0].modle", "modle"),
        ("[server]", "[servers]", "servers", "[servers]"),
    ],
    ids=["defaults", "target", "table"],
)
def test_unknown_config_key_is_refused_naming_key_and_line(
    tmp_path: Path, original: str, replacement: str, key: str, needle: str
) -> None:
    config = init_project(tmp_path)
    text = config.read_text(encoding="utf-8")
    assert text.count(original) == 1
    config.write_text(text.replace(original, replacement), encoding="utf-8")
    stderr = usage_error(driftmon("config", "check", cwd=tmp_path))
    assert f"{config}:{line_of(config, needle)}: {key}: unknown key" in stderr, stderr


def test_unknown_subtable_is_reported_at_its_own_line(tmp_path: Path) -> None:
    # A typo in a sub-table name ([alerts.slak]) must point at that header, not at [alerts].
    config = init_project(tmp_path)
    with config.open("a", encoding="utf-8") as handle:
        handle.write('\n[alerts.slak]\nchannel = "C0123456789"\n')
    stderr = usage_error(driftmon("config", "check", cwd=tmp_path))
    assert f"{config}:{line_of(config, '[alerts.slak]')}: alerts.slak: unknown key" in stderr, (
        stderr
    )


def test_missing_config_is_a_usage_error_pointing_at_init(tmp_path: Path) -> None:
    commands = [["config", "check"], ["probes", "list"], ["run"]]
    *runs, explicit, from_env = parallel(
        [
            *(partial(driftmon, *args, cwd=tmp_path) for args in commands),
            partial(driftmon, "--config", "nowhere.toml", "config", "check", cwd=tmp_path),
            partial(
                driftmon, "config", "check", cwd=tmp_path, env={"DRIFTMON_CONFIG": "fromenv.toml"}
            ),
        ]
    )
    for args, done in zip(commands, runs, strict=True):
        stderr = usage_error(done)
        assert "no config file found" in stderr and "driftmon init" in stderr, (args, stderr)
    assert "nowhere.toml" in usage_error(explicit)
    assert "fromenv.toml" in usage_error(from_env)


def test_missing_config_message_names_no_placeholder_file(tmp_path: Path) -> None:
    # An error that is not in any file must not claim to be in "<input>".
    stderr = usage_error(driftmon("config", "check", cwd=tmp_path))
    assert stderr.startswith("driftmon: error: no config file found"), stderr


def test_config_search_order(tmp_path: Path) -> None:
    init_project(tmp_path / "config")
    init_project(tmp_path / "b")
    via_env = str(tmp_path / "b" / "driftmon.toml")
    explicit = str(tmp_path / "config" / "driftmon.toml")

    def used(*args: str, **env: str) -> str:
        env = {"OPENAI_API_KEY": SECRET_VALUE, **env}
        done = ok(driftmon(*args, "config", "check", cwd=tmp_path, env=env))
        return done.stdout.splitlines()[0].removeprefix("config: ")

    assert parallel([partial(used), partial(used, DRIFTMON_CONFIG=via_env)]) == [
        explicit,  # config/driftmon.toml, the last resort
        via_env,
    ]
    init_project(tmp_path)
    assert parallel(
        [
            partial(used),
            partial(used, DRIFTMON_CONFIG=via_env),
            partial(used, "--config", explicit, DRIFTMON_CONFIG=via_env),
        ]
    ) == [
        str(tmp_path / "driftmon.toml"),  # ./driftmon.toml before config/driftmon.toml
        via_env,  # the variable before both
        explicit,  # --config before everything
    ]


# --- --db, db upgrade, db current -------------------------------------------------------------


def test_db_upgrade_then_current_and_db_override(tmp_path: Path) -> None:
    init_project(tmp_path)
    head = head_revision()
    other = tmp_path / "elsewhere" / "other.db"
    other.parent.mkdir()
    url = f"sqlite:///{other}"

    check_done, before_done = parallel(
        [
            partial(driftmon, "--db", url, *args, cwd=tmp_path, env={"OPENAI_API_KEY": "k"})
            for args in (["config", "check"], ["db", "current"])
        ]
    )
    assert f"storage: {url}" in ok(check_done).stdout.splitlines()
    before = ok(before_done).stdout
    assert "current: none" in before and f"head:    {head}" in before
    assert "needs `driftmon db upgrade`" in before

    done = ok(driftmon("--db", url, "db", "upgrade", cwd=tmp_path))
    assert done.stdout.strip() == f"database upgraded: empty -> {head}"
    again = ok(driftmon("--db", url, "db", "upgrade", cwd=tmp_path))
    assert again.stdout.strip() == f"database already at {head}"
    current = ok(driftmon("--db", url, "db", "current", cwd=tmp_path)).stdout
    assert current.splitlines() == [f"current: {head}", f"head:    {head}", "up to date"]

    # The configured database was never touched: --db replaced it everywhere.
    assert not (tmp_path / "driftmon.db").exists()


def test_db_upgrade_with_db_url_needs_no_config(tmp_path: Path) -> None:
    # `--db URL` says everything `db upgrade` needs: it works in a folder without a config.
    url = f"sqlite:///{tmp_path / 'x.db'}"
    done = ok(driftmon("--db", url, "db", "upgrade", cwd=tmp_path))
    assert done.stdout.strip() == f"database upgraded: empty -> {head_revision()}"
    assert ok(driftmon("--db", url, "db", "current", cwd=tmp_path)).stdout.endswith("up to date\n")


def test_db_url_with_percent_escapes_works(tmp_path: Path) -> None:
    # Percent-escapes are how URLs carry special characters (a password with '@' is p%40ss);
    # here a SQLite file named "a%b.db".
    init_project(tmp_path)
    url = f"sqlite:///{tmp_path / 'a%25b.db'}"
    done = ok(driftmon("--db", url, "db", "upgrade", cwd=tmp_path))
    assert done.stdout.strip() == f"database upgraded: empty -> {head_revision()}"
    assert (tmp_path / "a%b.db").exists()


def test_unreachable_database_is_a_clean_runtime_error(tmp_path: Path) -> None:
    init_project(tmp_path)
    url = "postgresql+psycopg://driftmon:Pw-DISTINCTIVE-4417@127.0.0.1:1/driftmon"
    done = driftmon("--db", url, "db", "current", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr[-1500:]
    assert done.stderr.startswith("driftmon: error:"), done.stderr[-1500:]
    assert "Pw-DISTINCTIVE-4417" not in done.stdout + done.stderr
