"""The steps after a run keep their layers apart: the alert manager takes verdicts and never
loads the drift engine, and the after-run pipeline, on `driftmon run`'s path, leaves the
statistics (scipy) to the child process. Imports are checked in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

import monitor.alerts.manager


def loads(module: str, other: str) -> bool:
    """Whether importing `module` in a fresh interpreter loads `other`."""
    code = f"import sys, {module}; print({other!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip() == "True"


def test_the_alert_manager_does_not_load_the_drift_engine() -> None:
    assert not loads("monitor.alerts.manager", "monitor.drift.engine")


def test_the_alert_manager_never_imports_the_drift_engine() -> None:
    # Not even inside a function or for type checking: alerts take the verdicts they are given.
    assert monitor.alerts.manager.__file__ is not None
    with open(monitor.alerts.manager.__file__, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert "monitor.drift.engine" not in imported


def test_the_pipeline_drives_the_engine() -> None:
    # The check above can fail: the module that joins the two does load the engine.
    assert loads("monitor.after_run", "monitor.drift.engine")


@pytest.mark.parametrize("heavy", ["scipy", "slack_sdk"])
def test_the_pipeline_loads_nothing_heavy(heavy: str) -> None:
    assert not loads("monitor.after_run", heavy)
