"""`driftmon targets list` / `targets ping`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import click

from monitor.cli.context import AppContext
from monitor.cli.output import print_json, print_table, safe_text

if TYPE_CHECKING:
    from monitor.config import LoadedConfig, ResolvedTarget, SecretRef, TargetSettings
    from monitor.errors import ErrorClass

# Ping's output cap when the target's params set none: enough for "pong", little to pay for.
PING_MAX_TOKENS = 32
TABLE_COLUMNS = (
    "name",
    "kind",
    "model",
    "base url",
    "schedule",
    "samples",
    "sets",
    "api key",
    "headers",
    "query",
)


def effective_base_url(target: ResolvedTarget) -> tuple[str, bool]:
    """The URL the target's requests go to, and whether it is its kind's default."""
    from monitor.providers.registry import PROVIDERS

    if target.base_url is not None:
        return target.base_url, False
    return PROVIDERS[target.kind].default_base_url, True


@click.group("targets")
def targets_group() -> None:
    """List targets; ping them live."""


@targets_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_command(app: AppContext, as_json: bool) -> None:
    """Configured targets with their effective settings.

    `base url` is where requests go: the target's base_url, else its kind's default (marked
    "(default)"; in JSON `base_url_default` is true). Header and query values given as secrets
    show only where they come from (env:NAME).
    """
    config = app.config
    rows: list[dict[str, Any]] = []
    for t in config.settings.targets:
        eff = config.effective(t)
        base_url, is_default = effective_base_url(eff)
        rows.append(
            {
                "name": eff.name,
                "kind": eff.kind,
                "model": eff.model,
                "base_url": base_url,
                "base_url_default": is_default,
                "every": eff.every,
                "cron": eff.cron,
                "samples": eff.samples,
                "concurrency": eff.concurrency,
                "probe_sets": eff.probe_sets,
                "api_key": eff.api_key.describe() if eff.api_key else None,
                "headers": _names(eff.headers),
                "query": _names(eff.query),
            }
        )
    if as_json:
        print_json({"targets": rows})
        return
    print_table(
        "targets",
        TABLE_COLUMNS,
        [
            (
                r["name"],
                r["kind"],
                r["model"],
                f"{r['base_url']} (default)" if r["base_url_default"] else r["base_url"],
                r["every"] or f"cron {r['cron']}",
                r["samples"],
                ",".join(r["probe_sets"] or ["all"]),
                r["api_key"] or "none",
                ", ".join(r["headers"]) or "–",
                ", ".join(r["query"]) or "–",
            )
            for r in rows
        ],
    )


def _names(values: dict[str, str | SecretRef]) -> list[str]:
    """`name=env:X` for a secret, the bare name for literal text (whose value is not shown
    either: only names that say they carry a credential are forced to be references)."""
    from monitor.config import SecretRef

    return [
        f"{name}={value.describe()}" if isinstance(value, SecretRef) else name
        for name, value in values.items()
    ]


@targets_group.command("ping")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def ping_command(app: AppContext, name: str | None, as_json: bool) -> None:
    """Send one live request to each target (or NAME) with its effective params, and print
    the model identity.

    A param the provider rejects is reported with the target, where the param is set (file,
    line and key) and what to change; any other failure names the key to check (api_key for
    a refused key, base_url for a connection that failed, FILE:LINE KEY). Exits 1 when any
    target fails to answer, 2 when a target's secret cannot be read (each one that cannot is
    named, and nothing is sent then).
    """
    from monitor.providers.base import ChatRequest, RetryPolicy
    from monitor.providers.factory import build_provider
    from monitor.providers.params import TOKEN_CAP_PARAMS
    from monitor.replay import make_client

    config = app.config
    targets = [config.target(name)] if name else config.settings.targets
    from monitor.errors import ConfigError

    unreadable = [problem for t in targets for problem in config.secret_problems(t)]
    if unreadable:
        raise ConfigError.of(unreadable)

    async def ping_all() -> list[dict[str, object]]:
        async def ping(t: TargetSettings) -> dict[str, object]:
            eff = config.effective(t)
            params = dict(eff.params)
            if not any(cap in params for cap in TOKEN_CAP_PARAMS):
                params["max_tokens"] = PING_MAX_TOKENS
            async with make_client(eff) as client:
                provider = build_provider(
                    eff, client=client, concurrency=1, retry=RetryPolicy(max_attempts=1)
                )
                r = await provider.complete(
                    ChatRequest(
                        messages=(("user", "Reply with the single word: pong"),),
                        params=params,
                        response_format="text",
                    )
                )
            result: dict[str, object] = {
                "target": eff.name,
                "ok": r.ok,
                "model": r.model,
                "fingerprint": r.fingerprint,
                "latency_ms": round(r.latency_ms, 1),
                "error_class": str(r.error_class) if r.error_class else None,
                "error": r.error_message,
                "reply": r.text,
                "param": None,
                "param_location": None,
                "fix": None,
                "check": None,
            }
            if not r.ok and r.error_param:
                location, fix = rejected_param_advice(config, t, r.error_param)
                result.update(param=r.error_param, param_location=location, fix=fix)
            elif not r.ok and r.error_class is not None:
                result["check"] = keys_to_check(config, t, r.error_class, r.http_status)
            return result

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
            elif r["param"]:
                where = f" (set at {r['param_location']})" if r["param_location"] else ""
                click.echo(
                    f"{r['target']}: FAILED: the provider rejected param {r['param']}{where}: "
                    f"{safe_text(str(r['error']), 300)}\n  fix: {r['fix']}"
                )
            else:
                keys = r["check"]
                check = f"\n  check: {'; '.join(keys)}" if isinstance(keys, list) and keys else ""
                click.echo(
                    f"{r['target']}: FAILED ({r['error_class']}): "
                    f"{safe_text(str(r['error']), 200)}{check}"
                )
    if not all(r["ok"] for r in results):
        click.get_current_context().exit(1)


def keys_to_check(
    config: LoadedConfig, target: TargetSettings, error_class: ErrorClass, status: int | None
) -> list[str]:
    """The config keys a failed ping points at, each as `FILE:LINE KEY`: the credentials for
    a refused key, base_url for a connection that failed or a server that is not the API,
    model and base_url for a 404. Empty when the failure says nothing about the config."""
    from monitor.errors import ErrorClass

    if error_class is ErrorClass.AUTH:
        fields = ["api_key"] if target.api_key is not None else ["headers"]
    elif error_class in (ErrorClass.CONNECT, ErrorClass.TIMEOUT, ErrorClass.PROTOCOL):
        fields = ["base_url"]
    elif status == 404:
        fields = ["model", "base_url"]
    else:
        return []
    index = config.settings.targets.index(target)
    out = []
    for field in fields:
        where = config.describe_location(("targets", index, field))
        if getattr(target, field) is None:
            where += " (not set" + (
                f": the default {effective_base_url(config.effective(target))[0]})"
                if field == "base_url"
                else ")"
            )
        out.append(where)
    return out


def rejected_param_advice(
    config: LoadedConfig, target: TargetSettings, param: str
) -> tuple[str | None, str]:
    """Where a rejected param is set (`FILE:LINE KEY`, None when the config does not set it)
    and what to change."""
    from monitor.providers.params import TOKEN_CAP_PARAMS

    table, _, field = param.partition(".") if param.startswith("extra_body.") else ("", "", "")
    if table:
        own = target.extra_body or {}
        index = config.settings.targets.index(target)
        if field in own:
            loc: tuple[int | str, ...] = ("targets", index, "extra_body", field)
            return config.describe_location(loc), f"remove extra_body.{field} from this target"
        if field in (config.settings.defaults.extra_body or {}):
            loc = ("defaults", "extra_body", field)
            return config.describe_location(loc), (
                f"remove {field} from [defaults].extra_body and give it only to the targets "
                "that take it"
            )
        return None, f"remove extra_body.{field}"
    names = list(TOKEN_CAP_PARAMS) if param in TOKEN_CAP_PARAMS else [param]
    origin = next((o for n in names if (o := config.param_origin(target, n))), None)
    if origin is None:
        return None, (
            f"driftmon sent {param} on its own; set {param} in this target's params to a value "
            "the model accepts"
        )
    name = str(origin[-1])
    if origin[0] == "defaults":
        return config.describe_location(origin), (
            f"remove {name} from [defaults].params and set it in the params of the targets "
            f'that accept it, or add drop_params = ["{name}"] to this target'
        )
    return config.describe_location(origin), (
        f"remove params.{name} from this target, or set a value this model accepts"
    )
