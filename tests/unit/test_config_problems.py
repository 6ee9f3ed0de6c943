"""Every config problem at once, secrets and storage located at their keys, and database
errors no retry can fix told apart from those it can."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from monitor.config import load_config, parse_config
from monitor.errors import ConfigError, ConfigProblems, ProbeFileError
from monitor.store.db import hide_password, setup_error, sqlite_problem

TARGET = '[[targets]]\nname = "{name}"\nkind = "openai"\nmodel = "m"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "driftmon.toml"
    path.write_text(text, encoding="utf-8")
    return path


def line_with(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_every_field_problem_is_reported_each_with_file_line_and_key(tmp_path: Path) -> None:
    text = (
        '[defaults]\nsamples = 0\nevery = "soon"\n'
        + TARGET.format(name="a")
        + 'colour = "red"\n'
        + TARGET.format(name="B")
    )
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        parse_config(path)
    err = info.value
    assert isinstance(err, ConfigProblems)
    rendered = [e.render() for e in err.errors]
    assert rendered[0].startswith(f"{path}:{line_with(text, 'samples')}: defaults.samples: ")
    keys = [(e.key, e.line) for e in err.errors]
    assert keys == [
        ("defaults.samples", line_with(text, "samples")),
        ("defaults.every", line_with(text, "every")),
        ("targets[0].colour", line_with(text, "colour")),
        ("targets[1].name", line_with(text, 'name = "B"')),
    ]
    lines = str(err).splitlines()
    assert lines[0] == "4 problems:"
    assert lines[1:] == ["  " + r for r in rendered]
    assert "unknown key" in lines[3] and "must match" in lines[4]
    # The first problem is still where code that reads one problem looks.
    assert (err.key, err.line, err.file) == ("defaults.samples", 2, str(path))


def test_every_cross_key_problem_is_reported(tmp_path: Path) -> None:
    text = (
        TARGET.format(name="a")
        + "params = { temprature = 0.5 }\n"
        + TARGET.format(name="b")
        + 'headers = { Host = "x" }\n'
    )
    with pytest.raises(ConfigProblems) as info:
        parse_config(write(tmp_path, text))
    assert [e.key for e in info.value.errors] == [
        "targets[0].params.temprature",
        "targets[1].headers.Host",
    ]
    assert "(and 1 more problem)" not in str(info.value)


def test_one_problem_renders_as_before(tmp_path: Path) -> None:
    path = write(tmp_path, "[defaults]\nsamples = 0\n")
    with pytest.raises(ConfigError) as info:
        parse_config(path)
    assert not isinstance(info.value, ConfigProblems)
    assert str(info.value).startswith(f"{path}:2: defaults.samples: ")


def test_of_keeps_other_located_errors_whole() -> None:
    probe = ProbeFileError("bad", file="p.yaml", key="probes[0]", line=3)
    config = ConfigError("worse", file="c.toml", key="x", line=1)
    assert ConfigError.of([config]) is config
    both = ConfigError.of([config, probe])
    assert str(both).splitlines() == [
        "2 problems:",
        "  c.toml:1: x: worse",
        "  p.yaml:3: probes[0]: bad",
    ]


def test_secret_problems_name_every_unreadable_secret_with_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRIFTMON_TEST_UNSET", raising=False)
    text = (
        TARGET.format(name="a")
        + 'api_key = { env = "DRIFTMON_TEST_UNSET" }\n'
        + 'query = { sig = { file = "missing-sig" } }\n'
        + '[alerts.slack]\ntoken = { file = "slack-token" }\nchannel = "C1"\n'
    )
    config = load_config(str(write(tmp_path, text)))
    problems = config.secret_problems(config.settings.targets[0])
    assert [(p.key, p.line) for p in problems] == [
        ("targets[0].api_key", line_with(text, "api_key")),
        ("targets[0].query.sig", line_with(text, "query")),
    ]
    assert "DRIFTMON_TEST_UNSET is not set" in problems[0].problem
    assert f"cannot read secret file {tmp_path / 'missing-sig'}" in problems[1].problem
    with pytest.raises(ConfigProblems):  # every one of them, not the first
        config.check_secrets(config.settings.targets[0])
    [slack] = config.alert_secret_problems()
    assert (slack.file, slack.key, slack.line) == (
        str(tmp_path / "driftmon.toml"),
        "alerts.slack.token",
        line_with(text, "token"),
    )
    (tmp_path / "slack-token").write_text("  \n", encoding="utf-8")
    [empty] = config.alert_secret_problems()
    assert "is empty" in empty.problem
    (tmp_path / "slack-token").write_text("xoxb-1\n", encoding="utf-8")
    assert config.alert_secret_problems() == []


def test_located_adds_the_file_and_line_of_a_bare_key(tmp_path: Path) -> None:
    text = '[alerts.slack]\ntoken = { env = "T" }\n'
    config = load_config(str(write(tmp_path, text)))
    err = config.located(ConfigError("a bot token needs a channel id", key="alerts.slack.channel"))
    assert (err.file, err.line) == (str(tmp_path / "driftmon.toml"), 1)  # the table: no key
    placed = ConfigError("x", file="elsewhere", key="k")
    assert config.located(placed) is placed


def test_storage_source_names_the_line_or_the_default(tmp_path: Path) -> None:
    text = '[defaults]\nsamples = 2\n[storage]\nurl = "sqlite:///x.db"\n'
    path = write(tmp_path, text)
    assert load_config(str(path)).storage_source() == f"{path}:4: storage.url"
    path.write_text("[defaults]\nsamples = 2\n", encoding="utf-8")
    source = load_config(str(path)).storage_source()
    assert source.startswith(f"{path}: storage.url (not set: the default sqlite:///driftmon.db")


def test_sqlite_problem_finds_what_stops_sqlite_without_opening_it(tmp_path: Path) -> None:
    assert sqlite_problem(f"sqlite:///{tmp_path / 'new.db'}") is None
    assert sqlite_problem("sqlite://") is None and sqlite_problem("sqlite:///:memory:") is None
    assert sqlite_problem("postgresql://u@h/db") is None
    missing = tmp_path / "nope" / "deeper" / "d.db"
    assert sqlite_problem(f"sqlite:///{missing}") == (
        f"the folder {missing.parent} does not exist (driftmon does not create it)"
    )
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    assert sqlite_problem(f"sqlite:///{a_file / 'd.db'}") == f"{a_file} is a file, not a folder"
    assert sqlite_problem(f"sqlite:///{tmp_path}") == f"{tmp_path} is a folder, not a database file"
    db = tmp_path / "ro.db"
    sqlite3.connect(db).close()
    assert sqlite_problem(f"sqlite:///file:{db}?mode=ro&uri=true") == (
        "the URL opens it read-only (mode=ro)"
    )


def test_sqlite_problem_sees_a_read_only_file(tmp_path: Path) -> None:
    import os

    if os.geteuid() == 0:
        pytest.skip("running as root: file permissions do not stop root from writing")
    db = tmp_path / "d.db"
    sqlite3.connect(db).close()
    db.chmod(0o444)
    assert sqlite_problem(f"sqlite:///{db}") == f"the file {db} is read-only"
    db.chmod(0o644)
    tmp_path.chmod(0o555)
    try:
        assert "is not writable" in (sqlite_problem(f"sqlite:///{db}") or "")
    finally:
        tmp_path.chmod(0o755)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ('connection failed: ... failed: FATAL:  role "nosuch" does not exist', 'role "nosuch"'),
        ('connection failed: FATAL:  database "dm" does not exist', 'database "dm" does not exist'),
        ('FATAL:  password authentication failed for user "dm"', "password authentication"),
        ("connection failed: ... failed: Connection refused", None),
        ('relation "runs" does not exist', None),  # a statement's error, not the setup's
    ],
)
def test_postgres_errors_no_retry_can_fix_are_setup_errors(
    message: str, expected: str | None
) -> None:
    url = "postgresql+psycopg://dm:Pw-HIDDEN@127.0.0.1:5432/dm"
    err = setup_error(Exception(message), url, "c.toml:3: storage.url")
    if expected is None:
        assert err is None
        return
    assert err is not None and err.exit_code == 2
    text = str(err)
    assert text.startswith(f"c.toml:3: storage.url: cannot use the database {hide_password(url)}")
    assert expected in text and "Pw-HIDDEN" not in text


def test_sqlite_setup_errors_name_the_cause(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gone' / 'd.db'}"
    err = setup_error(sqlite3.OperationalError("unable to open database file"), url, "--db")
    assert err is not None
    assert str(err) == (
        f"--db: cannot use the SQLite database {url}: the folder {tmp_path / 'gone'} does not "
        "exist (driftmon does not create it) (sqlite: unable to open database file)"
    )
    assert setup_error(sqlite3.OperationalError("database is locked"), url, "--db") is None
    readonly = setup_error(
        sqlite3.OperationalError("attempt to write a readonly database"),
        f"sqlite:///{tmp_path / 'd.db'}",
        "--db",
    )
    assert readonly is not None and "readonly database" in str(readonly)
