"""The daemon's periodic jobs at shutdown: a job the closing loop cancels is not an error."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from monitor.daemon.service import Daemon


def cancelled_job(stopping: bool) -> None:
    daemon: Any = SimpleNamespace(_stopping=stopping, metrics=None)

    async def heartbeat() -> None:
        await asyncio.Event().wait()  # still running when the loop closes

    async def scenario() -> None:
        task = asyncio.create_task(Daemon._guarded(daemon, "heartbeat", heartbeat)())
        await asyncio.sleep(0)
        task.cancel()
        await task

    asyncio.run(scenario())


def test_a_job_cancelled_at_shutdown_ends_quietly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        cancelled_job(stopping=True)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_job_cancelled_while_running_stays_cancelled() -> None:
    with pytest.raises(asyncio.CancelledError):
        cancelled_job(stopping=False)
