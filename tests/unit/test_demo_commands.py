"""The demo's "Try next" commands name the driftmon that ran it, as it can be run from here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from monitor import demo


def _script(folder: Path) -> Path:
    folder.mkdir(parents=True)
    script = folder / "driftmon"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    return script


def test_a_driftmon_on_path_that_is_this_one_prints_plainly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _script(tmp_path / "bin")
    monkeypatch.setattr(sys, "argv", [str(script), "demo"])
    monkeypatch.setenv("PATH", str(script.parent))
    assert demo.driftmon_command() == "driftmon"


def test_a_venv_not_on_path_prints_the_path_relative_to_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _script(tmp_path / ".venv" / "bin")
    other = _script(tmp_path / "elsewhere")  # another installation on PATH
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [".venv/bin/driftmon", "demo"])
    monkeypatch.setenv("PATH", str(other.parent))
    assert demo.driftmon_command() == ".venv/bin/driftmon"
    commands = demo.try_next(tmp_path / "demo out" / "driftmon.toml", tmp_path / "r.html")
    assert commands[0] == ".venv/bin/driftmon --config 'demo out/driftmon.toml' drift"
    assert script.is_file()


def test_python_dash_m_uses_the_script_beside_the_interpreter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _script(tmp_path / "venv" / "bin")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["/src/monitor/__main__.py", "demo"])
    monkeypatch.setattr(sys, "executable", str(script.parent / "python"))
    monkeypatch.setenv("PATH", "")
    assert demo.driftmon_command() == "venv/bin/driftmon"
    (script).unlink()
    assert demo.driftmon_command() == "venv/bin/python -m monitor"
