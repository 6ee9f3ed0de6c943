"""The project `driftmon init` writes, pointed at a server that enforces the rules OpenAI's
reasoning models apply (no `max_tokens`, only the default temperature), runs without a single
error; the configuration driftmon's starter used to write fails every request there, and
`targets ping` says which param to remove and where it is set."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.conftest import driftmon


def _rejection(body: dict[str, Any]) -> dict[str, Any] | None:
    """The 400 body a reasoning model answers `body` with, or None when it takes it."""
    if "max_tokens" in body:
        return {
            "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            "type": "invalid_request_error",
            "param": "max_tokens",
            "code": "unsupported_parameter",
        }
    if body.get("temperature", 1) != 1:
        return {
            "message": f"Unsupported value: 'temperature' does not support "
            f"{body['temperature']} with this model. Only the default (1) value is supported.",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "unsupported_value",
        }
    return None


class _ReasoningModel(BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.server.bodies.append(body)  # type: ignore[attr-defined]
        error = _rejection(body)
        if error is not None:
            self._send(400, {"error": error})
            return
        self._send(
            200,
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": "o3-mini-2025-01-31",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": _answer(body)},
                    }
                ],
                "usage": {
                    "prompt_tokens": 20,
                    "completion_tokens": 90,
                    "total_tokens": 110,
                    "completion_tokens_details": {"reasoning_tokens": 64},
                },
            },
        )

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _answer(body: dict[str, Any]) -> str:
    """Some answer of the asked shape; what it says does not matter here."""
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        return "{}"
    return "pong"


@contextmanager
def reasoning_model() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ReasoningModel)
    server.bodies = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1", server.bodies  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def _init(root: Path, base_url: str) -> Path:
    done = driftmon("init", str(root))
    assert done.returncode == 0, done.stderr
    config = root / "driftmon.toml"
    text = config.read_text(encoding="utf-8")
    # What the starter's comment tells a user of a reasoning model to do: another model, no
    # temperature. The loopback host is not OpenAI's, so the output cap's field is named.
    text = text.replace('model = "gpt-4o"', 'model = "o3-mini"')
    text = text.replace(
        "params = { temperature = 0.0 }",
        f'params = {{ reasoning_effort = "low" }}\nbase_url = "{base_url}"\n'
        'token_limit_param = "max_completion_tokens"',
    )
    config.write_text(text, encoding="utf-8")
    return config


def test_the_starter_project_runs_cleanly_on_a_reasoning_model(tmp_path: Path) -> None:
    with reasoning_model() as (base_url, bodies):
        config = _init(tmp_path, base_url)
        env = {"OPENAI_API_KEY": "sk-test-0123456789"}
        done = driftmon("--config", str(config), "run", "--json", env=env)
        assert done.returncode == 0, done.stderr
        (run,) = json.loads(done.stdout)["runs"]
        assert run["status"] == "complete"
        assert run["results"] > 0
        assert run["errors"] == 0, run["error_classes"]
        assert bodies and all(_rejection(body) is None for body in bodies)
        assert all(body["max_completion_tokens"] == 2048 for body in bodies)
        assert all(body["reasoning_effort"] == "low" for body in bodies)


def test_the_old_starter_params_are_refused_and_ping_names_the_fix(tmp_path: Path) -> None:
    with reasoning_model() as (base_url, bodies):
        config = _init(tmp_path, base_url)
        text = config.read_text(encoding="utf-8")
        # The defaults `driftmon init` wrote before: a temperature every target inherits.
        text = text.replace(
            "params = { max_tokens = 2048 }", "params = { temperature = 0.0, max_tokens = 512 }"
        )
        config.write_text(text, encoding="utf-8")
        line = next(
            number
            for number, content in enumerate(text.splitlines(), start=1)
            if content.startswith("params = { temperature")
        )
        env = {"OPENAI_API_KEY": "sk-test-0123456789"}

        done = driftmon("--config", str(config), "targets", "ping", env=env)
        assert done.returncode == 1
        assert "rejected param temperature" in done.stdout
        assert re.search(rf"driftmon\.toml:{line} \[defaults\]\.params\.temperature", done.stdout)
        assert "fix:" in done.stdout

        done = driftmon("--config", str(config), "run", "--json", env=env)
        (run,) = json.loads(done.stdout)["runs"]
        assert run["results"] > 0 and run["errors"] == run["results"]
        assert run["error_classes"] == {"bad_request": run["results"]}

        # A probe set's own temperature wins over the target's params; drop_params removes it.
        text = text.replace(
            "params = { temperature = 0.0, max_tokens = 512 }", "params = { max_tokens = 512 }"
        )
        text = text.replace(
            'token_limit_param = "max_completion_tokens"',
            'token_limit_param = "max_completion_tokens"\ndrop_params = ["temperature"]',
        )
        config.write_text(text, encoding="utf-8")
        probes = tmp_path / "probes" / "starter.yaml"
        probes.write_text(
            probes.read_text(encoding="utf-8").replace(
                "  samples: 3\n", "  samples: 3\n  params: { temperature: 0 }\n"
            ),
            encoding="utf-8",
        )
        before = len(bodies)
        done = driftmon("--config", str(config), "run", "--json", env=env)
        assert done.returncode == 0, done.stderr
        (run,) = json.loads(done.stdout)["runs"]
        assert run["results"] > 0 and run["errors"] == 0, run["error_classes"]
        assert all("temperature" not in body for body in bodies[before:])
