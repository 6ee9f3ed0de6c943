"""`driftmon run` must not load scipy in its own process: the statistics child does (about a
second of import), while the run's requests are in flight. These modules are on that path."""

from __future__ import annotations

import subprocess
import sys

import pytest

ON_THE_RUN_PATH = [
    "monitor.cli.main",
    "monitor.drift.engine",
    "monitor.drift.stored",
    "monitor.daemon.stats_worker",
    "monitor.runner",
]


@pytest.mark.parametrize("module", ON_THE_RUN_PATH)
def test_module_does_not_import_scipy(module: str) -> None:
    code = f"import sys, {module}; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", f"{module} imports scipy"


def test_the_check_can_fail() -> None:
    code = "import sys, monitor.drift.runs; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
