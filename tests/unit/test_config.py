"""Config loading: typed settings, secret references, and errors naming file, key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import load_config, parse_config
from monitor.errors import ConfigError

GOOD = """
[storage]
url = "sqlite:///data/driftmon.db"

[defaults]
samples = 2
every = "15m"
params = { temperature = 0.0, max_tokens = 256 }

[[targets]]
name = "gpt-4o-prod"
kind = "openai"
model = "gpt-4o"
api_key = { env = "DRIFTMON_TEST_KEY" }

[[targets]]
name = "claude"
kind = "anthropic"
model = "claude-sonnet"
cron = "0 * * * *"
samples = 5
params = { max_tokens = 100 }
api_key = { file = "secrets/anthropic" }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "driftmon.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(write(tmp_path, text))
    return info.value


def test_good_config_resolves_defaults_and_relative_paths(tmp_path: Path) -> None:
    loaded = load_config(str(write(tmp_path, GOOD)))
    first, second = (loaded.effective(t) for t in loaded.settings.targets)
    assert (first.samples, first.every, first.cron) == (2, "15m", None)
    assert first.params == {"temperature": 0.0, "max_tokens": 256}
    assert (second.samples, second.every, second.cron) == (5, None, "0 * * * *")
    assert second.params == {"temperature": 0.0, "max_tokens": 100}  # target wins, merged
    assert second.api_key is not None
    assert second.api_key.file == str(tmp_path / "secrets/anthropic")
    assert loaded.storage_url() == f"sqlite:///{tmp_path / 'data/driftmon.db'}"
    assert loaded.probe_paths == [tmp_path / "probes"]


def test_literal_secret_is_refused_with_file_key_and_line(tmp_path: Path) -> None:
    text = GOOD.replace('api_key = { env = "DRIFTMON_TEST_KEY" }', 'api_key = "sk-live-123"')
    err = error_for(tmp_path, text)
    assert err.key == "targets[0].api_key"
    assert err.line == text.splitlines().index('api_key = "sk-live-123"') + 1
    assert "literal secret" in str(err) and str(tmp_path / "driftmon.toml") in str(err)
    assert "sk-live-123" not in str(err)


def test_slack_token_literal_refused(tmp_path: Path) -> None:
    err = error_for(tmp_path, '[alerts.slack]\ntoken = "xoxb-1"\nchannel = "C1"\n')
    assert err.key == "alerts.slack.token" and err.line == 2
    assert "xoxb-1" not in str(err)


@pytest.mark.parametrize(
    ("snippet", "key", "problem"),
    [
        ('[defaults]\nevery = "soon"\n', "defaults.every", "invalid duration"),
        ("[defaults]\nsamplez = 3\n", "defaults.samplez", "unknown key"),
        (
            '[[targets]]\nname = "Bad Name"\nkind = "openai"\nmodel = "m"\n',
            "targets[0].name",
            "must match",
        ),
        ('[[targets]]\nname = "a"\nkind = "gemini"\nmodel = "m"\n', "targets[0].kind", "openai"),
        ('[[targets]]\nname = "a"\nkind = "openai"\n', "targets[0].model", "required"),
        ('[defaults]\ncron = "* *"\n', "defaults.cron", "5 fields"),
        ("[defaults]\nsamples = 0\n", "defaults.samples", "greater than or equal to 1"),
        ('[limits]\nregex_timeout = "fast"\n', "limits.regex_timeout", "invalid duration"),
        ('[limits]\nregex_timeout = "0ms"\n', "limits.regex_timeout", "longer than 0"),
    ],
)
def test_invalid_values_name_the_key(tmp_path: Path, snippet: str, key: str, problem: str) -> None:
    err = error_for(tmp_path, snippet)
    assert err.key == key
    assert problem in err.problem
    assert err.line is not None


def test_regex_timeout_reaches_the_runner(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    from monitor.replay import runner_for

    engine = create_engine("sqlite://")
    default = load_config(str(write(tmp_path, GOOD)))
    assert default.settings.limits.regex_timeout == "100ms"
    assert runner_for(default, engine).limits.regex_timeout == 0.1
    tuned = load_config(str(write(tmp_path, GOOD + '\n[limits]\nregex_timeout = "250ms"\n')))
    assert runner_for(tuned, engine).limits.regex_timeout == 0.25


def test_duplicate_target_names(tmp_path: Path) -> None:
    text = '[[targets]]\nname = "a"\nkind = "openai"\nmodel = "m"\n' * 2
    assert "used twice" in error_for(tmp_path, text).problem


def test_toml_syntax_error_has_line(tmp_path: Path) -> None:
    err = error_for(tmp_path, "[storage]\nurl = \n")
    assert err.line == 2 and "invalid TOML" in err.problem


def test_missing_config_explains_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DRIFTMON_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="driftmon init"):
        load_config(None)


def test_env_var_and_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config").mkdir()
    write(tmp_path / "config", "[defaults]\nsamples = 7\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DRIFTMON_CONFIG", raising=False)
    assert load_config(None).settings.defaults.samples == 7
    write(tmp_path, "[defaults]\nsamples = 8\n")
    assert load_config(None).settings.defaults.samples == 8  # ./driftmon.toml first
    other = tmp_path / "elsewhere.toml"
    other.write_text("[defaults]\nsamples = 9\n")
    monkeypatch.setenv("DRIFTMON_CONFIG", str(other))
    assert load_config(None).settings.defaults.samples == 9


def test_secret_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load_config(str(write(tmp_path, GOOD)))
    first, second = (loaded.effective(t) for t in loaded.settings.targets)
    assert first.api_key is not None and second.api_key is not None
    monkeypatch.delenv("DRIFTMON_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="DRIFTMON_TEST_KEY is not set"):
        first.api_key.resolve()
    monkeypatch.setenv("DRIFTMON_TEST_KEY", "k1")
    assert first.api_key.resolve() == "k1"
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets/anthropic").write_text("k2\n")
    assert second.api_key.resolve() == "k2"
