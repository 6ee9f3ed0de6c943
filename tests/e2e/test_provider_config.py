"""Provider settings through the real CLI: a base_url with a query string, a missing header
secret, a ping whose param the model rejects, and an Azure deployment target whose api-key
header and api-version query reach a loopback server while the key reaches nothing else."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import driftmon
from tests.fakes.provider_shapes import ShapesServer, openai_error, shapes_server

PROBES = 'set: s\nprobes:\n  - { id: hello, prompt: "Say hi" }\n'
AZURE_SECRET = "azure-SECRET-5c1d9e0b7a44"
REJECTION = (
    "Unsupported value: 'temperature' does not support 0.0 with this model. "
    "Only the default (1) value is supported."
)


def project(root: Path, config: str) -> Path:
    (root / "probes").mkdir(parents=True, exist_ok=True)
    (root / "probes" / "s.yaml").write_text(PROBES, encoding="utf-8")
    path = root / "driftmon.toml"
    path.write_text(
        '[storage]\nurl = "sqlite:///driftmon.db"\n[probes]\npaths = ["probes"]\n' + config,
        encoding="utf-8",
    )
    return path


def cli(
    config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return driftmon("--config", str(config), *args, env=env, timeout=60)


def line_of(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, start=1) if needle in line)


def test_base_url_with_a_query_string_is_refused_with_the_fix(tmp_path: Path) -> None:
    config = project(
        tmp_path,
        '[[targets]]\nname = "azure"\nkind = "openai"\nmodel = "gpt-4.1"\n'
        'base_url = "https://r.openai.azure.com/openai/deployments/d?api-version=2024-10-21"\n',
    )
    for args in (("config", "check"), ("run", "--dry-run"), ("targets", "ping")):
        done = cli(config, *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        assert f"{config}:{line_of(config, 'base_url')}: targets[0].base_url: " in done.stderr
        assert (
            'base_url may not carry a query string ("?api-version=2024-10-21"): '
            'use query = { "api-version" = "2024-10-21" }'
        ) in done.stderr


def test_a_missing_header_secret_is_named_before_anything_is_sent(tmp_path: Path) -> None:
    with shapes_server() as server:
        config = project(
            tmp_path,
            f'[[targets]]\nname = "local"\nkind = "openai"\nmodel = "m"\n'
            f'base_url = "{server.base_url}"\n[[targets]]\nname = "azure"\nkind = "openai"\n'
            f'model = "gpt-4.1"\nbase_url = "{server.base_url}"\n'
            'headers = { "X-Title" = "driftmon", "api-key" = { env = "DRIFTMON_E2E_UNSET" } }\n',
        )
        expected = f"{config}:{line_of(config, 'headers')}: targets[1].headers.api-key: "
        for args in (("run",), ("targets", "ping"), ("targets", "ping", "azure")):
            done = cli(config, *args)
            assert done.returncode == 2, (args, done.stdout, done.stderr)
            assert expected + "environment variable DRIFTMON_E2E_UNSET is not set" in done.stderr
        assert server.requests == []  # not even the target whose secrets are all there
        # Commands that send nothing do not need the secret.
        assert cli(config, "run", "--dry-run").returncode == 0


def rejecting_server_config(server: ShapesServer) -> str:
    return (
        "[defaults]\nparams = { max_tokens = 2048, temperature = 0.0 }\n"
        f'[[targets]]\nname = "reasoner"\nkind = "openai"\nmodel = "o3-mini"\n'
        f'base_url = "{server.base_url}"\n'
    )


def test_ping_reports_a_rejected_param_with_where_it_is_set_and_the_fix(tmp_path: Path) -> None:
    with shapes_server() as server:
        config = project(tmp_path, rejecting_server_config(server))
        body = openai_error(REJECTION, param="temperature", code="unsupported_value")
        server.reply(400, body)
        done = cli(config, "targets", "ping")
        assert done.returncode == 1, (done.stdout, done.stderr)
        sent = server.last.body
        # The target's effective params went out, not a ping of its own making.
        assert sent["temperature"] == 0.0 and sent["max_tokens"] == 2048
        where = f"{config}:{line_of(config, 'temperature')} [defaults].params.temperature"
        assert f"reasoner: FAILED: the provider rejected param temperature (set at {where})" in (
            done.stdout
        ), done.stdout
        assert REJECTION in done.stdout
        assert "fix: remove temperature from [defaults].params" in done.stdout

        server.reply(400, body)
        done = cli(config, "targets", "ping", "--json")
        assert done.returncode == 1, done.stderr
        (result,) = json.loads(done.stdout)["targets"]
        assert (result["param"], result["param_location"]) == ("temperature", where)
        assert result["error_class"] == "bad_request" and REJECTION in result["error"]

        # The dry run names the same problem without sending anything.
        before = len(server.requests)
        done = cli(config, "run", "--dry-run")
        assert done.returncode == 0, done.stderr
        assert (
            "warning: target reasoner: model o3-mini accepts only the default temperature; "
            f"remove [defaults].params.temperature and set it only on the targets that take it "
            f"({config}:{line_of(config, 'temperature')})"
        ) in done.stdout, done.stdout
        assert "reasoner params: max_tokens → max_tokens, temperature → temperature" in (
            done.stdout
        )
        data = json.loads(cli(config, "run", "--dry-run", "--json").stdout)["dry_run"][0]
        assert data["params_sent"] == {"max_tokens": "max_tokens", "temperature": "temperature"}
        assert len(data["warnings"]) == 1
        assert len(server.requests) == before


def test_azure_target_sends_key_header_and_api_version_and_the_key_goes_nowhere_else(
    tmp_path: Path,
) -> None:
    env = {"AZURE_OPENAI_API_KEY": AZURE_SECRET}
    with shapes_server() as server:
        deployment = server.base_url.removesuffix("/v1") + "/openai/deployments/my-gpt"
        config = project(
            tmp_path,
            "[defaults]\nsamples = 1\nretries = 0\n"
            '[[targets]]\nname = "azure"\nkind = "openai"\nmodel = "gpt-4.1"\n'
            f'base_url = "{deployment}"\n'
            'query = { "api-version" = "2024-10-21" }\n'
            'headers = { "api-key" = { env = "AZURE_OPENAI_API_KEY" }, "X-Title" = "driftmon" }\n',
        )
        outputs = [cli(config, "targets", "ping", env=env)]
        assert outputs[0].returncode == 0, outputs[0].stdout + outputs[0].stderr
        seen = server.last
        assert seen.path == "/openai/deployments/my-gpt/chat/completions"
        assert seen.query == {"api-version": ["2024-10-21"]}
        assert seen.headers["api-key"] == AZURE_SECRET
        assert seen.headers["x-title"] == "driftmon"
        assert "authorization" not in seen.headers
        assert seen.body["max_tokens"] == 32  # the ping's own small cap: the config sets none

        # A gateway echoing the key back in an error must not carry it into output or storage.
        server.reply(401, openai_error(f"Incorrect API key provided: {AZURE_SECRET}."))
        outputs.append(cli(config, "targets", "ping", "--json", env=env))
        assert outputs[-1].returncode == 1
        server.reply(401, openai_error(f"Incorrect API key provided: {AZURE_SECRET}."))
        outputs.append(cli(config, "run", "--json", "--samples", "1", env=env))
        outputs.append(cli(config, "run", env=env))  # a second run, answered normally
        for args in (
            ("targets", "list"),
            ("targets", "list", "--json"),
            ("config", "check"),
            ("config", "check", "--json"),
            ("status", "--json"),
            ("run", "--dry-run", "--json"),
        ):
            outputs.append(cli(config, *args, env=env))
            assert outputs[-1].returncode == 0, (args, outputs[-1].stderr)
        for done in outputs:
            assert "Traceback" not in done.stderr, done.stderr
            assert AZURE_SECRET not in done.stdout + done.stderr
            assert AZURE_SECRET[:14] not in done.stdout + done.stderr
        assert any("[redacted]" in done.stdout for done in outputs[1:3]), outputs[1].stdout
        listed = json.loads(outputs[5].stdout)["targets"][0]
        assert listed["headers"] == ["api-key=env:AZURE_OPENAI_API_KEY", "X-Title"]
        assert listed["query"] == ["api-version"]
        assert all(r.headers["api-key"] == AZURE_SECRET for r in server.requests)
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("driftmon.db*"))
    assert len(stored) > 10_000 and AZURE_SECRET.encode() not in stored
    assert b"[redacted]" in stored  # the echoed error was stored, scrubbed
