"""The dry run's token estimate before any results: the output cap under any of its names."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from monitor.config import ResolvedTarget
from monitor.daemon.budget import DEFAULT_OUTPUT_TOKENS, estimate
from monitor.probes.loader import load_probe_sets

PROBES = 'set: s\nprobes:\n  - { id: p, prompt: "Say hi", samples: 2 }\n'


def target(params: dict[str, object]) -> ResolvedTarget:
    return ResolvedTarget(
        name="t",
        kind="openai",
        model="m",
        base_url=None,
        api_key=None,
        probe_sets=None,
        params=params,
        samples=1,
        every=None,
        cron=None,
        timeout=10,
        concurrency=1,
        retries=0,
    )


@pytest.mark.parametrize(
    ("params", "output"),
    [
        ({}, DEFAULT_OUTPUT_TOKENS),
        ({"max_tokens": 100}, 100),
        ({"max_completion_tokens": 100}, 100),
        ({"max_output_tokens": 100}, 100),
    ],
)
def test_the_estimate_reads_every_spelling_of_the_cap(
    engine: Engine, tmp_path: Path, params: dict[str, object], output: int
) -> None:
    (tmp_path / "s.yaml").write_text(PROBES, encoding="utf-8")
    (probe_set,) = load_probe_sets([tmp_path])
    guess = estimate(engine, target(params), probe_set)
    prompt = len("Say hi") // 4 + 1
    assert guess.calls == 2
    assert guess.tokens == 2 * (prompt + output)
