"""Choosing what to run: a target whose secret is missing is named, with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.errors import ConfigError
from monitor.probes.loader import load_probe_sets
from monitor.replay import select_jobs

CONFIG = """[probes]
paths = ["probes"]
[[targets]]
name = "first"
kind = "openai"
model = "m"
[[targets]]
name = "second"
kind = "openai"
model = "m"
api_key = { env = "DRIFTMON_TEST_UNSET_KEY" }
"""


def test_a_missing_secret_names_its_target_unless_nothing_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRIFTMON_TEST_UNSET_KEY", raising=False)
    (tmp_path / "probes").mkdir()
    (tmp_path / "probes" / "p.yaml").write_text('set: s\nprobes:\n  - { id: a, prompt: "hi" }\n')
    (tmp_path / "driftmon.toml").write_text(CONFIG)
    config = load_config(str(tmp_path / "driftmon.toml"))
    sets = load_probe_sets(config.probe_paths)
    with pytest.raises(ConfigError) as caught:
        select_jobs(config, sets)
    assert str(caught.value) == (
        f"{tmp_path / 'driftmon.toml'}:11: targets[1].api_key: "
        "environment variable DRIFTMON_TEST_UNSET_KEY is not set"
    )
    assert [j.target.name for j in select_jobs(config, sets, target="first")] == ["first"]
    assert len(select_jobs(config, sets, check_secrets=False)) == 2  # status, --dry-run
