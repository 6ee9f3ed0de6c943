"""`driftmon targets list` / `targets ping`."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from monitor.cli.context import AppContext
from monitor.cli.output import print_json, print_table, safe_text


@click.group("targets")
def targets_group() -> None:
    """List targets; ping them live."""


@targets_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_command(app: AppContext, as_json: bool) -> None:
    """Configured targets with their effective settings."""
    config = app.config
    rows: list[dict[str, Any]] = []
    for t in config.settings.targets:
        eff = config.effective(t)
        rows.append(
            {
                "name": eff.name,
                "kind": eff.kind,
                "model": eff.model,
                "base_url": eff.base_url,
                "every": eff.every,
                "cron": eff.cron,
                "samples": eff.samples,
                "concurrency": eff.concurrency,
                "probe_sets": eff.probe_sets,
                "api_key": eff.api_key.describe() if eff.api_key else None,
            }
        )
    if as_json:
        print_json({"targets": rows})
        return
    print_table(
        "targets",
        ["name", "kind", "model", "schedule", "samples", "sets", "api key"],
        [
            (
                r["name"],
                r["kind"],
                r["model"],
                r["every"] or f"cron {r['cron']}",
                r["samples"],
                ",".join(r["probe_sets"] or ["all"]),
                r["api_key"] or "none",
            )
            for r in rows
        ],
    )


@targets_group.command("ping")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def ping_command(app: AppContext, name: str | None, as_json: bool) -> None:
    """Send one live request to each target (or NAME) and print the model identity.

    Exits 1 when any target fails to answer.
    """
    from monitor.config import TargetSettings
    from monitor.providers.base import ChatRequest, RetryPolicy
    from monitor.providers.registry import make_provider
    from monitor.replay import make_client

    config = app.config
    targets = [config.target(name)] if name else config.settings.targets

    async def ping_all() -> list[dict[str, object]]:
        async def ping(t: TargetSettings) -> dict[str, object]:
            eff = config.effective(t)
            async with make_client(eff) as client:
                provider = make_provider(
                    eff.kind,
                    model=eff.model,
                    base_url=eff.base_url,
                    api_key=eff.api_key.resolve() if eff.api_key else None,
                    client=client,
                    timeout=eff.timeout,
                    concurrency=1,
                    retry=RetryPolicy(max_attempts=1),
                )
                r = await provider.complete(
                    ChatRequest(
                        messages=(("user", "Reply with the single word: pong"),),
                        params={"max_tokens": 16, "temperature": 0},
                        response_format="text",
                    )
                )
            return {
                "target": eff.name,
                "ok": r.ok,
                "model": r.model,
                "fingerprint": r.fingerprint,
                "latency_ms": round(r.latency_ms, 1),
                "error_class": str(r.error_class) if r.error_class else None,
                "error": r.error_message,
                "reply": r.text,
            }

        return list(await asyncio.gather(*(ping(t) for t in targets)))

    results = asyncio.run(ping_all())
    if as_json:
        print_json({"targets": results})
    else:
        for r in results:
            if r["ok"]:
                click.echo(
                    f"{r['target']}: ok in {r['latency_ms']} ms — model {r['model']}"
                    f"{' fingerprint ' + str(r['fingerprint']) if r['fingerprint'] else ''}"
                    f" — reply {safe_text(str(r['reply']), 60)!r}"
                )
            else:
                click.echo(
                    f"{r['target']}: FAILED ({r['error_class']}): {safe_text(str(r['error']), 200)}"
                )
    if not all(r["ok"] for r in results):
        click.get_current_context().exit(1)
