"""Replay service: which (target, probe set) pairs to run, and running them.

Shared by `driftmon run` and the daemon, so both select and run work the same way.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.request import getproxies

import httpx
from sqlalchemy import Engine

from monitor.config import LoadedConfig, ResolvedTarget
from monitor.durations import parse_duration
from monitor.errors import ConfigError, UsageError
from monitor.probes.model import ProbeSet
from monitor.providers.transport import pooled_transport
from monitor.runner import Runner, RunOutcome
from monitor.validation import OutputLimits


@dataclass(frozen=True)
class Job:
    target: ResolvedTarget
    probe_set: ProbeSet


def select_jobs(
    config: LoadedConfig,
    sets: list[ProbeSet],
    *,
    target: str | None = None,
    probe_set: str | None = None,
    check_secrets: bool = True,
) -> list[Job]:
    """The (target, probe set) pairs to run. With `check_secrets`, a target with a secret
    (api_key, a header or query value) that cannot be read is a ConfigError naming its file,
    key and line, before anything is sent (commands that send nothing pass False)."""
    by_name = {s.name: s for s in sets}
    if probe_set is not None and probe_set not in by_name:
        raise UsageError(f"no probe set named {probe_set!r} (sets: {', '.join(sorted(by_name))})")
    targets = [config.target(target)] if target else config.settings.targets
    if not targets:
        raise ConfigError("no targets configured", file=str(config.path), key="targets")
    jobs: list[Job] = []
    indexes = {t.name: i for i, t in enumerate(config.settings.targets)}
    for t in targets:
        index = indexes[t.name]
        if check_secrets:
            config.check_secrets(t)
        names = t.probe_sets or sorted(by_name)
        for name in names:
            if name not in by_name:
                raise ConfigError(
                    f"unknown probe set {name!r}",
                    file=str(config.path),
                    key=f"targets[{index}].probe_sets",
                )
            if probe_set is None or name == probe_set:
                jobs.append(Job(config.effective(t), by_name[name]))
    if not jobs:
        raise UsageError("nothing to run: no target uses the selected probe set")
    return jobs


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context for every client: each holds the CA bundle (about 1 MB), and a daemon
    with many targets would otherwise load it once per target."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def make_client(target: ResolvedTarget) -> httpx.AsyncClient:
    """One pooled client per target, sized to its concurrency, on driftmon's transport (see
    monitor/providers/transport.py) unless the environment names a proxy."""
    limits = httpx.Limits(
        max_connections=target.concurrency, max_keepalive_connections=target.concurrency
    )
    timeout = httpx.Timeout(target.timeout)
    if _environment_proxies():
        # httpx applies HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY only to a client on
        # its own transport.
        return httpx.AsyncClient(verify=tls_context(), limits=limits, timeout=timeout)
    return httpx.AsyncClient(transport=pooled_transport(tls_context(), limits), timeout=timeout)


def _environment_proxies() -> bool:
    proxies = getproxies()
    return any(proxies.get(scheme) for scheme in ("http", "https", "all"))


def runner_for(config: LoadedConfig, engine: Engine) -> Runner:
    limits = config.settings.limits
    return Runner(
        engine,
        limits=OutputLimits(
            max_chars=limits.max_output_chars,
            max_depth=limits.max_json_depth,
            regex_timeout=parse_duration(limits.regex_timeout),
        ),
        max_stored_chars=limits.max_stored_chars,
    )


async def run_jobs(
    runner: Runner,
    jobs: list[Job],
    *,
    samples: int | None = None,
    progress: Callable[[Job, int, int], None] | None = None,
) -> list[RunOutcome]:
    """Targets run in parallel (each has its own client and limit); sets in turn per target."""

    async def for_target(target_jobs: list[Job]) -> list[RunOutcome]:
        outcomes = []
        async with make_client(target_jobs[0].target) as client:
            for job in target_jobs:

                def report(done: int, total: int, job: Job = job) -> None:
                    if progress:
                        progress(job, done, total)

                outcomes.append(
                    await runner.run(
                        job.target, job.probe_set, client=client, samples=samples, progress=report
                    )
                )
        return outcomes

    grouped: dict[str, list[Job]] = {}
    for job in jobs:
        grouped.setdefault(job.target.name, []).append(job)
    results = await asyncio.gather(*(for_target(g) for g in grouped.values()))
    return [outcome for group in results for outcome in group]
