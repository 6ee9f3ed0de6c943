"""One run: send every enabled probe of a set to a target, judge, and store as results arrive.

Requests fan out under the provider's concurrency limit; a single writer task commits results in
small batches (so a crash loses at most the requests in flight and one unflushed batch, never a
committed row). Each sample is keyed by (run, probe version, sample index), so a run that was
killed is resumed by the next `driftmon run` of the same plan: only the missing samples are
sent, and nothing is ever stored twice.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Engine

from monitor.config import ResolvedTarget
from monitor.probes.bundle import request_schema
from monitor.probes.model import Probe, ProbeSet
from monitor.probes.strict import probe_strict, tool_strict
from monitor.providers.base import ChatRequest, ProviderResponse, RetryPolicy, ToolCall, ToolSpec
from monitor.providers.factory import build_provider
from monitor.store.models import utcnow
from monitor.store.runs import ClosedRun, close_run, open_run
from monitor.store.states import ResultVerdict, RunStatus, RunTrigger
from monitor.store.writes import (
    done_samples,
    ensure_identity,
    ensure_probe_versions,
    ensure_target,
    insert_results,
)
from monitor.validation import OutputLimits, judge

BATCH_SIZE = 100
BATCH_SECONDS = 0.25
ProgressCallback = Callable[[int, int], None]


@dataclass
class RunOutcome:
    id: int
    target: str
    probe_set: str
    status: RunStatus
    results: int
    passed: int
    failed: int
    errors: int
    resumed: bool
    model: str | None
    fingerprint: str | None
    error_classes: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        run_id: int,
        target: str,
        probe_set: str,
        status: RunStatus,
        resumed: bool,
        closed: ClosedRun,
    ) -> RunOutcome:
        return cls(
            id=run_id,
            target=target,
            probe_set=probe_set,
            status=status,
            results=closed.results,
            passed=closed.passed,
            failed=closed.failed,
            errors=closed.errors,
            resumed=resumed,
            model=closed.model,
            fingerprint=closed.fingerprint,
            error_classes=closed.error_classes,
        )

    @property
    def pass_rate(self) -> float | None:
        judged = self.passed + self.failed
        return self.passed / judged if judged else None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "target": self.target,
            "probe_set": self.probe_set,
            "status": self.status,
            "results": self.results,
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
            "pass_rate": self.pass_rate,
            "resumed": self.resumed,
            "error_classes": self.error_classes,
            "identity": {"model": self.model, "fingerprint": self.fingerprint},
        }


def probe_definition(probe: Probe) -> dict[str, Any]:
    """What the version hash covers, stored so an old version stays readable."""
    definition: dict[str, Any] = {
        "messages": [[m.role, m.content] for m in probe.messages],
        "response_format": probe.response_format,
        "schema": probe.schema,
        "expect": [c.describe() for c in probe.expect],
        "track": list(probe.track),
        "extract": probe.extract,
        "params": probe.params,
    }
    # Only where used, so the stored definition of every other probe keeps its old shape.
    if probe.tools:
        definition["tools"] = [
            {"name": t.name, "description": t.description, "parameters": t.parameters}
            for t in probe.tools
        ]
        definition["tool_choice"] = probe.tool_choice
        definition["expect_tool"] = probe.expect_tool
    if probe.strict is not None:
        definition["strict"] = probe.strict
    return definition


def build_request(target: ResolvedTarget, probe: Probe) -> ChatRequest:
    """Probe params win over the target's: the probe author chose them for this prompt, except
    that a target's `drop_params` removes a param its model refuses whoever set it.

    Constrained decoding follows the probe (its `strict`, else whether its schema is
    strict-compatible; see monitor.probes.strict) unless the target's `strict` overrides it.
    """

    def strict(probe_choice: bool) -> bool:
        return target.strict if target.strict is not None else probe_choice

    tools = tuple(
        ToolSpec(
            name=tool.name,
            parameters=tool.parameters,
            description=tool.description,
            strict=strict(tool_strict(probe, tool)),
        )
        for tool in probe.tools
    )
    native_schema = probe.response_format in ("json_schema", "tool_call")
    return ChatRequest(
        messages=tuple((m.role, m.content) for m in probe.messages),
        params={
            name: value
            for name, value in {**target.params, **probe.params}.items()
            if name not in target.drop_params
        },
        response_format=probe.response_format,
        schema=request_schema(probe),
        schema_name=probe.id.replace(".", "_").replace("-", "_")[:64],
        strict=strict(probe_strict(probe)) if native_schema else False,
        tools=tools,
        tool_choice=probe.tool_choice if tools else "auto",
    )


def rendered_output(text: str, tool_calls: tuple[ToolCall, ...]) -> str:
    """What the model did, as stored and shown: its text, then each call as
    `name(arguments)` on a line of its own (a forced call usually comes with no text)."""
    calls = [f"{call.name}({call.arguments})" for call in tool_calls]
    return "\n".join([text, *calls] if text else calls)


class Runner:
    def __init__(
        self,
        engine: Engine,
        *,
        limits: OutputLimits | None = None,
        retry: RetryPolicy | None = None,
        max_stored_chars: int = 20_000,
    ) -> None:
        self.engine = engine
        self.limits = limits or OutputLimits()
        self.retry = retry or RetryPolicy()
        self.max_stored_chars = max_stored_chars

    async def run(
        self,
        target: ResolvedTarget,
        probe_set: ProbeSet,
        *,
        client: httpx.AsyncClient,
        samples: int | None = None,
        trigger: RunTrigger = RunTrigger.MANUAL,
        slot: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> RunOutcome:
        probes = probe_set.enabled_probes()
        target_id = await asyncio.to_thread(
            ensure_target,
            self.engine,
            name=target.name,
            kind=target.kind,
            model=target.model,
            base_url=target.base_url,
        )
        version_ids = await asyncio.to_thread(
            ensure_probe_versions,
            self.engine,
            [(p.set_name, p.id, p.version, probe_definition(p)) for p in probes],
        )
        plan = [
            (p, version_ids[(p.set_name, p.id, p.version)], samples or p.samples or target.samples)
            for p in probes
        ]
        plan_hash = hashlib.sha256(
            json.dumps(sorted((pv, n) for _p, pv, n in plan)).encode()
        ).hexdigest()[:16]
        planned = sum(n for _p, _pv, n in plan)
        run_id, resumed = await asyncio.to_thread(
            functools.partial(
                open_run,
                self.engine,
                target_id=target_id,
                probe_set=probe_set.name,
                plan_hash=plan_hash,
                planned=planned,
                trigger=trigger,
                slot=slot,
                samples=max((n for _p, _pv, n in plan), default=0),
            )
        )
        done = await asyncio.to_thread(done_samples, self.engine, run_id) if resumed else set()
        work = [(p, pv, k) for p, pv, n in plan for k in range(n) if (pv, k) not in done]

        provider = build_provider(
            target,
            client=client,
            concurrency=target.concurrency,
            retry=RetryPolicy(**{**vars(self.retry), "max_attempts": target.retries + 1}),
        )
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        identities: dict[tuple[str, str], int] = {}
        counter = [len(done)]

        # Built once per probe, not per sample: the request schema is bundled from files.
        requests = {pv: build_request(target, p) for p, pv, _n in plan}

        async def one(probe: Probe, pv_id: int, sample: int) -> None:
            response = await provider.complete(requests[pv_id])
            row = await self._row(response, probe, run_id, target_id, pv_id, sample, identities)
            await queue.put(row)

        async def send_all() -> None:
            # The provider's semaphore bounds requests in flight; this bounds task objects.
            limit = asyncio.Semaphore(max(target.concurrency * 4, 16))

            async def guarded(item: tuple[Probe, int, int]) -> None:
                async with limit:
                    await one(*item)

            async with asyncio.TaskGroup() as group:
                for item in work:
                    group.create_task(guarded(item))

        writer = asyncio.create_task(self._write(queue, run_id, counter, planned, progress))
        status = RunStatus.COMPLETE
        try:
            await send_all()
        except BaseException:
            status = RunStatus.INTERRUPTED
            raise
        finally:
            await queue.put(None)
            await asyncio.shield(writer)
            closed = await asyncio.to_thread(close_run, self.engine, run_id, status)
        return RunOutcome.of(run_id, target.name, probe_set.name, status, resumed, closed)

    async def _row(
        self,
        response: ProviderResponse,
        probe: Probe,
        run_id: int,
        target_id: int,
        pv_id: int,
        sample: int,
        identities: dict[tuple[str, str], int],
    ) -> dict[str, Any]:
        now = utcnow()
        row: dict[str, Any] = {
            "run_id": run_id,
            "target_id": target_id,
            "probe_version_id": pv_id,
            "sample_index": sample,
            "created_at": now,
            "http_status": response.http_status,
            "request_id": response.request_id,
            "attempts": response.attempts,
            "latency_ms": response.latency_ms,
            "input_tokens": response.input_tokens,
            "output_tokens": response.output_tokens,
            "reasoning_tokens": response.reasoning_tokens,
            "cached_tokens": response.cached_tokens,
            # Recorded on error rows too: a mechanism the provider rejects shows up there.
            "output_mode": response.output_mode,
            "finish_reason": response.finish_reason,
        }
        if response.model is not None or response.fingerprint is not None:
            key = (response.model or "", response.fingerprint or "")
            if key not in identities:
                identities[key] = await asyncio.to_thread(
                    ensure_identity, self.engine, target_id, key[0], key[1], now
                )
            row["identity_id"] = identities[key]
        if not response.ok:
            row.update(
                verdict=ResultVerdict.ERROR,
                error_class=str(response.error_class),
                error_message=(response.error_message or "")[:500],
                reason=f"provider error: {response.error_class}",
            )
            return row
        text = response.text or ""
        verdict = judge(
            probe,
            text,
            limits=self.limits,
            tool_calls=[(c.name, c.arguments) for c in response.tool_calls],
            provider_refusal=response.refused,
        )
        output = rendered_output(text, response.tool_calls)
        row.update(
            verdict=verdict.verdict,
            reason=verdict.reason,
            format_kind=str(verdict.format_kind),
            parsed=verdict.parsed,
            schema_valid=verdict.schema_valid,
            schema_errors=verdict.schema_errors or None,
            checks=verdict.checks or None,
            tracked=verdict.tracked or None,
            answer=verdict.answer[:500] if verdict.answer is not None else None,
            # The provider's own refusal counts whatever the judge made of the text.
            refusal=verdict.refusal or response.refused,
            tool_called=verdict.tool_called,
            tool_name=verdict.tool_name,
            tool_args_valid=verdict.tool_args_valid,
            output_chars=len(output),
            output=output[: self.max_stored_chars],
        )
        return row

    async def _write(
        self,
        queue: asyncio.Queue[dict[str, Any] | None],
        run_id: int,
        counter: list[int],
        planned: int,
        progress: ProgressCallback | None,
    ) -> None:
        batch: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        finished = False
        while not finished:
            # One timer per batch, not one per result (asyncio.wait_for per get made a task
            # and a timer for every result: measurable at a thousand results a second). A
            # get cancelled by the timeout loses nothing: the item stays in the queue.
            try:
                async with asyncio.timeout_at(loop.time() + BATCH_SECONDS):
                    while len(batch) < BATCH_SIZE:
                        item = await queue.get()
                        if item is None:
                            finished = True
                            break
                        batch.append(item)
            except TimeoutError:
                pass
            if batch:
                await asyncio.to_thread(insert_results, self.engine, run_id, batch)
                counter[0] += len(batch)
                if progress:
                    progress(counter[0], planned)
                batch = []
