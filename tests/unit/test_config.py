"""Config loading: typed settings, secret references, and errors naming file, key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import SecretRef, load_config, parse_config
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


# --- provider settings: headers, query, extra_body, strict, token_limit_param ----------------

TARGET = '[[targets]]\nname = "t"\nkind = "openai"\nmodel = "m"\n'
KEYED = TARGET + 'api_key = { env = "K" }\n'
ANTHROPIC_KEYED = (
    '[[targets]]\nname = "t"\nkind = "anthropic"\nmodel = "m"\napi_key = { env = "K" }\n'
)


def line_with(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


@pytest.mark.parametrize(
    ("text", "key", "needle", "problem"),
    [
        (
            TARGET + 'headers = { "bad name" = "x" }\n',
            'targets[0].headers."bad name"',
            "headers",
            "not a valid HTTP field name",
        ),
        (
            TARGET + 'headers = { "X-A" = "x", "x:b" = "y" }\n',
            'targets[0].headers."x:b"',
            "headers",
            "not a valid HTTP field name",
        ),
        (
            TARGET + 'headers = { X-Note = "a\\r\\nX-Evil: 1" }\n',
            "targets[0].headers.X-Note",
            "headers",
            "line breaks",
        ),
        (
            TARGET + 'headers = { Content-Type = "text/plain" }\n',
            "targets[0].headers.Content-Type",
            "headers",
            "set by driftmon",
        ),
        (
            TARGET + '[targets.headers]\nHost = "evil"\n',
            "targets[0].headers.Host",
            "Host =",
            "set by driftmon",
        ),
        (
            KEYED + 'headers = { Authorization = { env = "OTHER" } }\n',
            "targets[0].headers.Authorization",
            "headers",
            "api_key",
        ),
        (
            ANTHROPIC_KEYED + 'headers = { "X-Api-Key" = { env = "OTHER" } }\n',
            "targets[0].headers.X-Api-Key",
            "headers",
            "api_key",
        ),
        (
            TARGET + 'headers = { X-A = "1", x-a = "2" }\n',
            "targets[0].headers.x-a",
            "headers",
            "given twice",
        ),
        (
            TARGET + 'headers = { "api-key" = "sk-LITERAL-123" }\n',
            "targets[0].headers.api-key",
            "headers",
            "literal value is not allowed",
        ),
        (
            TARGET + "headers = { X-Count = 3 }\n",
            "targets[0].headers.X-Count",
            "headers",
            "text or a secret reference",
        ),
        (
            TARGET + 'query = { key = "AIzaLITERAL" }\n',
            "targets[0].query.key",
            "query",
            "literal value is not allowed",
        ),
        (
            TARGET + 'base_url = "https://h.example/v1#frag"\n',
            "targets[0].base_url",
            "base_url",
            "fragment",
        ),
        (
            TARGET + 'base_url = "localhost:8000/v1"\n',
            "targets[0].base_url",
            "base_url",
            "absolute http:// or https:// URL",
        ),
        (
            TARGET + 'base_url = "ftp://h.example/v1"\n',
            "targets[0].base_url",
            "base_url",
            "absolute http:// or https:// URL",
        ),
        (
            TARGET + 'base_url = "https://user:pw@h.example/v1"\n',
            "targets[0].base_url",
            "base_url",
            "may not carry credentials",
        ),
        (
            TARGET + "params = { temprature = 0 }\n",
            "targets[0].params.temprature",
            "params",
            "did you mean 'temperature'",
        ),
        (
            TARGET + 'drop_params = ["temperature", "top-p"]\n',
            "targets[0].drop_params[1]",
            "drop_params",
            "did you mean 'top_p'",
        ),
        (
            TARGET + "params = { top_k = 5 }\n",
            "targets[0].params.top_k",
            "params",
            "not used by kind 'openai'",
        ),
        (
            "[defaults]\nsamples = 1\n[defaults.params]\nmax_tokens = 10\nmax_tokenz = 5\n",
            "defaults.params.max_tokenz",
            "max_tokenz",
            "for any target kind",
        ),
        (
            '[defaults]\nparams = { reasoning_effort = "maximal" }\n',
            "defaults.params.reasoning_effort",
            "params",
            "must be one of none, minimal",
        ),
        (
            TARGET + "params = { max_tokens = 0 }\n",
            "targets[0].params.max_tokens",
            "params",
            "at least 1",
        ),
        (
            TARGET + 'params = { max_tokens = "512" }\n',
            "targets[0].params.max_tokens",
            "params",
            "at least 1",
        ),
        (
            ANTHROPIC_KEYED + 'token_limit_param = "max_tokens"\n',
            "targets[0].token_limit_param",
            "token_limit_param",
            'kind "openai" only',
        ),
        (
            TARGET + 'token_limit_param = "max_output_tokens"\n',
            "targets[0].token_limit_param",
            "token_limit_param",
            "Input should be",
        ),
        (TARGET + 'strict = "maybe"\n', "targets[0].strict", "strict", "boolean"),
    ],
)
def test_provider_settings_are_checked_with_file_key_and_line(
    tmp_path: Path, text: str, key: str, needle: str, problem: str
) -> None:
    if text.startswith("[[targets]]"):
        # After two other targets, so the line must be found in the right one.
        text = GOOD + "\n" + text
        key = key.replace("targets[0]", "targets[2]")
        start = text.rindex("[[targets]]")
        expected = line_with(text[start:], needle) + text[:start].count("\n")
    else:
        expected = line_with(text, needle)
    err = error_for(tmp_path, text)
    assert err.key == key
    assert problem in err.problem, err.problem
    assert err.line == expected, (err.line, expected, text)
    assert err.file == str(tmp_path / "driftmon.toml")
    assert "LITERAL" not in str(err)


def test_base_url_with_a_query_string_says_what_to_write_instead(tmp_path: Path) -> None:
    url = "https://r.openai.azure.com/openai/deployments/d?api-version=2024-10-21"
    text = (
        GOOD + f'\n[[targets]]\nname = "azure"\nkind = "openai"\nmodel = "m"\nbase_url = "{url}"\n'
    )
    err = error_for(tmp_path, text)
    assert err.key == "targets[2].base_url"
    assert err.line == line_with(text, "base_url")
    assert err.problem.startswith(
        'base_url may not carry a query string ("?api-version=2024-10-21"): '
        'use query = { "api-version" = "2024-10-21" }'
    ), err.problem


def test_a_credential_in_a_base_url_query_is_not_echoed(tmp_path: Path) -> None:
    text = TARGET + 'base_url = "https://g.example/v1beta?key=AIzaSECRETVALUE&alt=sse"\n'
    err = error_for(tmp_path, text)
    assert "AIzaSECRETVALUE" not in str(err)
    assert 'query = { key = { env = "NAME" }, alt = "sse" }' in err.problem


def test_header_keys_with_dashes_are_located_in_sub_tables_and_dotted_keys(tmp_path: Path) -> None:
    sub_table = TARGET + '[targets.headers]\nX-Title = "driftmon"\n"Content-Length" = "1"\n'
    err = error_for(tmp_path, GOOD + sub_table)
    assert err.key == "targets[2].headers.Content-Length"
    assert err.line == line_with(GOOD + sub_table, '"Content-Length"')
    dotted = TARGET + 'headers.X-Title = "driftmon"\nheaders.connection = "close"\n'
    err = error_for(tmp_path, GOOD + dotted)
    assert err.key == "targets[2].headers.connection"
    assert err.line == line_with(GOOD + dotted, "headers.connection")


def test_provider_settings_reach_the_resolved_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = GOOD.replace(
        "params = { temperature = 0.0, max_tokens = 256 }",
        "params = { temperature = 0.0, max_tokens = 256 }\nextra_body = { a = 1, b = 2 }",
    ) + (
        '\n[[targets]]\nname = "azure"\nkind = "openai"\nmodel = "gpt-4.1"\n'
        'base_url = "https://r.openai.azure.com/openai/deployments/d"\n'
        'query = { "api-version" = "2024-10-21" }\n'
        'headers = { "api-key" = { file = "secrets/azure" }, "X-Title" = "driftmon" }\n'
        "extra_body = { b = 3 }\nstrict = false\n"
        'token_limit_param = "max_tokens"\nparams = { max_completion_tokens = 64 }\n'
    )
    loaded = load_config(str(write(tmp_path, text)))
    first, _, azure = (loaded.effective(t) for t in loaded.settings.targets)
    assert (first.headers, first.query, first.strict, first.token_limit_param) == (
        {},
        {},
        None,
        "auto",
    )
    assert first.extra_body == {"a": 1, "b": 2}
    assert azure.extra_body == {"a": 1, "b": 3}  # target over defaults, key by key
    assert azure.strict is False and azure.token_limit_param == "max_tokens"
    assert azure.query == {"api-version": "2024-10-21"}
    secret = azure.headers["api-key"]
    assert isinstance(secret, SecretRef) and secret.file == str(tmp_path / "secrets/azure")
    assert azure.headers["X-Title"] == "driftmon"
    # The target's output cap replaces the defaults' whatever spelling each uses.
    assert azure.params == {"temperature": 0.0, "max_completion_tokens": 64}
    assert [where for where, _ in azure.secret_refs()] == [("headers", "api-key")]


def test_a_missing_header_or_query_secret_names_its_key_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = GOOD + (
        '\n[[targets]]\nname = "azure"\nkind = "openai"\nmodel = "m"\n'
        'query = { "api-version" = "2024-10-21", sig = { file = "secrets/sig" } }\n'
        "[targets.headers]\n"
        '"api-key" = { env = "DRIFTMON_TEST_AZURE_KEY" }\n'
    )
    loaded = load_config(str(write(tmp_path, text)))
    monkeypatch.setenv("DRIFTMON_TEST_KEY", "k")
    azure = loaded.settings.targets[2]
    monkeypatch.delenv("DRIFTMON_TEST_AZURE_KEY", raising=False)
    with pytest.raises(ConfigError) as info:
        loaded.check_secrets(azure)
    err = info.value
    assert (err.key, err.line) == ("targets[2].headers.api-key", line_with(text, '"api-key"'))
    assert "DRIFTMON_TEST_AZURE_KEY is not set" in err.problem
    assert err.file == str(tmp_path / "driftmon.toml")
    monkeypatch.setenv("DRIFTMON_TEST_AZURE_KEY", "azure-VALUE-1")
    with pytest.raises(ConfigError) as info:
        loaded.check_secrets(azure)
    assert (info.value.key, info.value.line) == ("targets[2].query.sig", line_with(text, "sig ="))
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "sig").write_text("sig-VALUE\n")
    loaded.check_secrets(azure)  # all there now
    with pytest.raises(ConfigError) as info:
        loaded.check_secrets(loaded.settings.targets[1])  # api_key's file is still missing
    assert info.value.key == "targets[1].api_key"


def test_param_locations_for_messages(tmp_path: Path) -> None:
    loaded = load_config(str(write(tmp_path, GOOD)))
    first, second = loaded.settings.targets
    origin = loaded.param_origin(first, "temperature")
    assert origin == ("defaults", "params", "temperature")
    line = line_with(GOOD, "params = { temperature")
    assert loaded.describe_location(origin) == (
        f"{tmp_path / 'driftmon.toml'}:{line} [defaults].params.temperature"
    )
    origin = loaded.param_origin(second, "max_tokens")
    assert origin == ("targets", 1, "params", "max_tokens")
    assert loaded.describe_location(origin).endswith(
        f":{line_with(GOOD, 'params = { max_tokens = 100 }')} targets[1].params.max_tokens"
    )
    assert loaded.param_origin(second, "seed") is None


def test_the_starter_works_on_any_current_model_and_its_examples_are_valid(tmp_path: Path) -> None:
    from importlib import resources

    text = resources.files("monitor.starter").joinpath("driftmon.toml").read_text("utf-8")
    starter = load_config(str(write(tmp_path, text)))
    # Reasoning models refuse a non-default temperature: it is not in every target's params.
    assert starter.settings.defaults.params == {"max_tokens": 2048}
    (target,) = starter.settings.targets
    assert starter.effective(target).params == {"max_tokens": 2048, "temperature": 0.0}
    # The commented targets, uncommented, are a valid config too.
    keys = (
        "[[targets]]",
        "name ",
        "kind ",
        "model ",
        "api_key ",
        "params ",
        "base_url ",
        "query ",
        "headers ",
    )
    uncommented = "\n".join(
        line[2:] if line.startswith("# ") and line[2:].startswith(keys) else line
        for line in text.splitlines()
    )
    examples = load_config(str(write(tmp_path, uncommented)))
    kinds = [t.kind for t in examples.settings.targets]
    assert kinds == ["openai", "openai-responses", "openai", "anthropic"]
    azure = examples.effective(examples.settings.targets[2])
    assert azure.query == {"api-version": "2024-10-21"}
    assert azure.headers == {"api-key": SecretRef(env="AZURE_OPENAI_API_KEY")}
