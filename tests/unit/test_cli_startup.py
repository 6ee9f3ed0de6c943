"""The collector around a command's start-up: off while loading, on again after, with what
was loaded frozen, also when loading fails."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from monitor.cli.startup import kept_for_the_command


@pytest.fixture(autouse=True)
def restore_collector() -> Iterator[None]:
    yield
    gc.unfreeze()  # this is the test process: give its objects back to the collector
    gc.enable()


def test_loaded_objects_are_frozen_and_the_collector_runs_again() -> None:
    gc.unfreeze()
    with kept_for_the_command():
        assert not gc.isenabled()
        loaded = [[] for _ in range(10)]
    assert gc.isenabled() and gc.get_freeze_count() >= len(loaded)


def test_the_collector_is_back_on_when_loading_fails() -> None:
    with pytest.raises(RuntimeError), kept_for_the_command():
        raise RuntimeError("bad config")
    assert gc.isenabled()
