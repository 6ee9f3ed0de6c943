"""What a new user trips over, through the real CLI: `config check` finding unreadable secrets
and an unusable database folder (every problem, exit 2), database errors no retry can fix
(exit 2, naming the URL, where it was set and the cause), and failed pings and Slack tests
naming the config key to look at."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import driftmon
from tests.fakes.provider_shapes import openai_error, shapes_server
from tests.fakes.slack_server import FakeSlack

PROBES = 'set: s\nprobes:\n  - { id: hello, prompt: "Say hi" }\n'
TOKEN, CHANNEL = "xoxb-e2e-SECRET-token", "C0DRIFT"
KEY = "sk-e2e-SECRET-key-41"
ONE_TARGET = (
    '[[targets]]\nname = "t"\nkind = "openai"\nmodel = "m"\nbase_url = "http://127.0.0.1:1/v1"\n'
)


def project(root: Path, config: str, storage: str = "sqlite:///driftmon.db") -> Path:
    (root / "probes").mkdir(parents=True, exist_ok=True)
    (root / "probes" / "s.yaml").write_text(PROBES, encoding="utf-8")
    path = root / "driftmon.toml"
    path.write_text(
        f'[storage]\nurl = "{storage}"\n[probes]\npaths = ["probes"]\n' + config, encoding="utf-8"
    )
    return path


def cli(config: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    done = driftmon("--config", str(config), *args, env=env, timeout=60)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def line_of(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, start=1) if needle in line)


TARGETS = (
    '[[targets]]\nname = "openai"\nkind = "openai"\nmodel = "gpt-4o"\n'
    'api_key = { env = "DRIFTMON_E2E_UNSET_KEY" }\n'
    '[[targets]]\nname = "claude"\nkind = "anthropic"\nmodel = "claude-sonnet"\n'
    'base_url = "https://proxy.example/v1"\napi_key = { file = "secrets/claude" }\n'
    '[alerts.slack]\ntoken = { file = "slack-token" }\nchannel = "C1"\n'
)


def test_config_check_reports_every_unreadable_secret_and_the_missing_folder(
    tmp_path: Path,
) -> None:
    config = project(tmp_path, TARGETS, storage="sqlite:///data/driftmon.db")
    done = cli(config, "config", "check")
    assert done.returncode == 2, done.stdout
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0] == "driftmon: error: 4 problems:"
    assert lines[1:] == [
        f"  {config}:{line_of(config, 'DRIFTMON_E2E_UNSET_KEY')}: targets[0].api_key: "
        "environment variable DRIFTMON_E2E_UNSET_KEY is not set",
        f"  {config}:{line_of(config, 'secrets/claude')}: targets[1].api_key: "
        f"cannot read secret file {tmp_path / 'secrets/claude'}: No such file or directory",
        f"  {config}:{line_of(config, 'slack-token')}: alerts.slack.token: "
        f"cannot read secret file {tmp_path / 'slack-token'}: No such file or directory",
        f"  {config}:2: storage.url: cannot use the SQLite database "
        f"sqlite:///{tmp_path / 'data/driftmon.db'}: the folder {tmp_path / 'data'} does not "
        "exist (driftmon does not create it)",
    ]
    # Where the credentials exist only inside the service, the rest can still be checked.
    skipped = cli(config, "config", "check", "--skip-secrets")
    assert skipped.returncode == 2
    assert skipped.stderr == "driftmon: error: " + lines[4].strip() + "\n"
    # Fixed, it passes, and shows where each target's requests go.
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "claude").write_text(KEY, encoding="utf-8")
    (tmp_path / "slack-token").write_text(TOKEN, encoding="utf-8")
    (tmp_path / "data").mkdir()
    env = {"DRIFTMON_E2E_UNSET_KEY": KEY}
    done = cli(config, "config", "check", **env)
    assert done.returncode == 0, done.stderr
    assert "target openai: openai gpt-4o base_url=https://api.openai.com/v1 (default) " in (
        done.stdout
    )
    assert "target claude: anthropic claude-sonnet base_url=https://proxy.example/v1 " in (
        done.stdout
    )
    data = json.loads(cli(config, "config", "check", "--json", **env).stdout)
    assert [(t["base_url"], t["base_url_default"]) for t in data["config"]["targets"]] == [
        ("https://api.openai.com/v1", True),
        ("https://proxy.example/v1", False),
    ]
    for args in (("config", "check"), ("config", "check", "--json")):
        shown = cli(config, *args, **env)
        assert KEY not in shown.stdout + shown.stderr and TOKEN not in shown.stdout


def test_targets_list_shows_where_requests_go(tmp_path: Path) -> None:
    config = project(tmp_path, TARGETS)
    listed = json.loads(cli(config, "targets", "list", "--json").stdout)["targets"]
    assert [(t["base_url"], t["base_url_default"]) for t in listed] == [
        ("https://api.openai.com/v1", True),
        ("https://proxy.example/v1", False),
    ]
    table = cli(config, "targets", "list").stdout
    assert "https://api.openai.com/v1 (default)" in table and "https://proxy.example/v1" in table


def test_config_check_names_a_database_path_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a folder", encoding="utf-8")
    config = project(tmp_path, "", storage="sqlite:///data/driftmon.db")
    done = cli(config, "config", "check")
    assert done.returncode == 2
    assert done.stderr == (
        f"driftmon: error: {config}:2: storage.url: cannot use the SQLite database "
        f"sqlite:///{tmp_path / 'data/driftmon.db'}: {tmp_path / 'data'} is a file, not a "
        "folder\n"
    )


def test_a_missing_database_folder_is_exit_2_naming_storage_url(tmp_path: Path) -> None:
    config = project(tmp_path, ONE_TARGET, storage="sqlite:///data/driftmon.db")
    for args in (("status",), ("db", "upgrade"), ("run", "--json")):
        done = cli(config, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr == (
            f"driftmon: error: {config}:2: storage.url: cannot use the SQLite database "
            f"sqlite:///{tmp_path / 'data/driftmon.db'}: the folder {tmp_path / 'data'} does not "
            "exist (driftmon does not create it) (sqlite: unable to open database file)\n"
        ), args
    # --db names itself as the source.
    url = f"sqlite:///{tmp_path / 'elsewhere' / 'd.db'}"
    done = driftmon("--config", str(config), "--db", url, "status")
    assert done.returncode == 2
    assert done.stderr.startswith(f"driftmon: error: --db: cannot use the SQLite database {url}:")


def test_a_read_only_database_is_exit_2_at_the_first_write(tmp_path: Path) -> None:
    """Opening works, reading works: the write much later is what fails."""
    config = project(tmp_path, ONE_TARGET)
    assert cli(config, "db", "upgrade").returncode == 0
    # mode=ro stops root too, unlike file permissions.
    url = f"sqlite:///file:{tmp_path / 'driftmon.db'}?mode=ro&uri=true"
    base = ("--config", str(config), "--db", url)
    assert driftmon(*base, "status").returncode == 0
    done = driftmon(*base, "alerts", "silence", "t", "--for", "1h", "--reason", "deploy")
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"driftmon: error: --db: cannot use the SQLite database {url}: the URL opens it "
        "read-only (mode=ro) (sqlite: attempt to write a readonly database)\n"
    )


def test_a_read_only_database_file_is_named(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root: file permissions do not stop root from writing")
    config = project(tmp_path, ONE_TARGET)
    assert cli(config, "db", "upgrade").returncode == 0
    db = tmp_path / "driftmon.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")  # no -wal/-shm files left to write
    db.chmod(0o444)
    assert "the file" in cli(config, "config", "check").stderr
    done = cli(config, "alerts", "silence", "t", "--for", "1h", "--reason", "deploy")
    assert done.returncode == 2, done.stderr
    assert f"{config}:2: storage.url: cannot use the SQLite database" in done.stderr
    assert f"the file {db} is read-only" in done.stderr


@pytest.mark.parametrize(
    ("url", "code", "words"),
    [
        ("postgresql://driftmon_no_such_role:Pw-E2E@127.0.0.1:5432/test", 2, "role"),
        ("postgresql://postgres:Pw-E2E@127.0.0.1:5432/driftmon_no_such_db", 2, "database"),
        ("postgresql://postgres:Pw-E2E@127.0.0.1:1/test", 1, "Connection refused"),
    ],
    ids=["role", "database", "refused"],
)
def test_postgres_errors_no_retry_fixes_are_exit_2(
    tmp_path: Path, url: str, code: int, words: str
) -> None:
    config = project(tmp_path, ONE_TARGET, storage=url)
    done = cli(config, "status")
    assert done.returncode == code, done.stderr
    assert words in done.stderr and "Pw-E2E" not in done.stderr
    if code == 2:
        shown = url.replace("postgresql://", "postgresql+psycopg://").replace("Pw-E2E", "***")
        assert done.stderr.startswith(
            f"driftmon: error: {config}:2: storage.url: cannot use the database {shown}: "
        ), done.stderr
        assert "does not exist" in done.stderr


def test_a_failed_ping_names_the_key_to_check(tmp_path: Path) -> None:
    with shapes_server() as server:
        config = project(
            tmp_path,
            f'[[targets]]\nname = "keyed"\nkind = "openai"\nmodel = "m"\n'
            f'base_url = "{server.base_url}"\napi_key = {{ env = "DRIFTMON_E2E_KEY" }}\n'
            '[[targets]]\nname = "nowhere"\nkind = "openai"\nmodel = "m"\n'
            'base_url = "http://127.0.0.1:1/v1"\n',
        )
        server.reply(401, openai_error("Incorrect API key provided."))
        done = cli(config, "targets", "ping", "keyed", DRIFTMON_E2E_KEY=KEY)
        assert done.returncode == 1
        assert f"\n  check: {config}:{line_of(config, 'DRIFTMON_E2E_KEY')} targets[0].api_key" in (
            done.stdout
        ), done.stdout
    done = cli(config, "targets", "ping", "nowhere", "--json")
    assert done.returncode == 1
    [result] = json.loads(done.stdout)["targets"]
    assert result["check"] == [f"{config}:{line_of(config, ':1/v1')} targets[1].base_url"]


def test_ping_names_every_unreadable_secret(tmp_path: Path) -> None:
    config = project(
        tmp_path,
        TARGETS.replace('base_url = "https://proxy.example/v1"\n', ""),
    )
    done = cli(config, "targets", "ping")
    assert done.returncode == 2
    assert "targets[0].api_key" in done.stderr and "targets[1].api_key" in done.stderr


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(token=TOKEN, channels={CHANNEL}, validate=True) as fake:
        yield fake


def slack_project(root: Path, slack: FakeSlack, token_file: str = "slack-token") -> Path:
    return project(
        root,
        f'[alerts.slack]\ntoken = {{ file = "{token_file}" }}\nchannel = "{CHANNEL}"\n'
        f'base_url = "{slack.api_url}"\n',
    )


def test_alerts_test_names_the_slack_key(tmp_path: Path, slack: FakeSlack) -> None:
    config = slack_project(tmp_path, slack)
    done = cli(config, "alerts", "test")
    assert done.returncode == 2
    assert done.stderr == (
        f"driftmon: error: {config}:{line_of(config, 'slack-token')}: alerts.slack.token: "
        f"cannot read secret file {tmp_path / 'slack-token'}: No such file or directory\n"
    )
    (tmp_path / "slack-token").write_text("xoxb-wrong-token\n", encoding="utf-8")
    done = cli(config, "alerts", "test")
    assert done.returncode == 1
    assert "invalid_auth" in done.stderr
    assert done.stderr.endswith(
        f"\n  check: {config}:{line_of(config, 'slack-token')} alerts.slack.token\n"
    ), done.stderr


def test_alerts_test_names_the_file_and_line_of_a_missing_channel(
    tmp_path: Path, slack: FakeSlack
) -> None:
    config = project(tmp_path, '[alerts.slack]\ntoken = { file = "slack-token" }\n')
    (tmp_path / "slack-token").write_text(TOKEN, encoding="utf-8")
    done = cli(config, "alerts", "test")
    assert done.returncode == 2
    assert done.stderr == (
        f"driftmon: error: {config}:{line_of(config, '[alerts.slack]')}: alerts.slack.channel: "
        "a bot token needs a channel id\n"
    )


def test_config_check_lists_every_bad_schedule_and_a_bad_default_once(tmp_path: Path) -> None:
    target = 'kind = "openai"\nmodel = "m"\nbase_url = "http://127.0.0.1:1/v1"\n'
    config = project(
        tmp_path,
        '[defaults]\nevery = "1h"\njitter = "2h"\n'
        f'[[targets]]\nname = "a"\n{target}every = "1m"\njitter = "90s"\n'
        f'[[targets]]\nname = "b"\n{target}[[targets]]\nname = "c"\n{target}',
    )
    done = cli(config, "config", "check", "--skip-secrets")
    assert done.returncode == 2, done.stderr
    # a's own jitter, and the one b and c inherit, named once: two problems, not the first.
    assert "2 problems:" in done.stderr, done.stderr
    assert f"{config}:{line_of(config, '90s')}: targets[0].jitter" in done.stderr
    assert done.stderr.count(f"{config}:{line_of(config, '2h')}: defaults.jitter") == 1
