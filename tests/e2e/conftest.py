"""A project on disk (config + probes + scenario) served by the real simulator on loopback."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from monitor.simulator.server import SimulatorServer
from tests.conftest import driftmon

SECRET = "sk-test-SECRET-7f3a9c1e5b"


@dataclass
class Project:
    root: Path
    sim: SimulatorServer
    db_url: str

    @property
    def env(self) -> dict[str, str]:
        return {"SIM_KEY": SECRET}

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return driftmon(
            "--config",
            str(self.root / "driftmon.toml"),
            "--db",
            self.db_url,
            *args,
            env=self.env,
            timeout=timeout,
        )

    def run_json(self, *args: str) -> dict[str, Any]:
        done = self.cli("run", "--json", *args)
        assert done.returncode == 0, done.stderr
        data: dict[str, Any] = json.loads(done.stdout)
        return data


def write_project(
    root: Path, *, probes: str, scenario: str, base_url: str = "", extra_config: str = ""
) -> None:
    (root / "probes").mkdir(parents=True, exist_ok=True)
    (root / "probes" / "e2e.yaml").write_text(probes, encoding="utf-8")
    (root / "scenario.yaml").write_text(scenario, encoding="utf-8")
    (root / "driftmon.toml").write_text(
        f"""[storage]
url = "sqlite:///driftmon.db"
[probes]
paths = ["probes"]
[defaults]
samples = 1
concurrency = 4
{extra_config}
[[targets]]
name = "sim"
kind = "openai"
model = "gpt-4o"
base_url = "{base_url}"
api_key = {{ env = "SIM_KEY" }}
""",
        encoding="utf-8",
    )


@pytest.fixture
def make_project(tmp_path: Path) -> Iterator[Any]:
    servers: list[SimulatorServer] = []

    def factory(
        probes: str,
        scenario: str,
        *,
        db_url: str | None = None,
        extra_config: str = 'timeout = "2s"',
    ) -> Project:
        write_project(tmp_path, probes=probes, scenario=scenario)
        sim = SimulatorServer(tmp_path / "scenario.yaml").start()
        servers.append(sim)
        write_project(
            tmp_path,
            probes=probes,
            scenario=scenario,
            base_url=sim.url + "/v1",
            extra_config=extra_config,
        )
        return Project(tmp_path, sim, db_url or f"sqlite:///{tmp_path / 'driftmon.db'}")

    yield factory
    for sim in servers:
        sim.stop()
