"""What a target's params become on the wire, and rejections known before anything is sent.

For `driftmon run --dry-run`: pure functions of the resolved settings, no network. The
translation follows the table in `monitor.providers.params` (which the adapters implement);
the rejections are the documented ones of OpenAI's reasoning models, which take only the
default value of the sampling params and answer anything else with a 400.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from monitor.providers.params import (
    DROPPED_PARAMS,
    KIND_PARAMS,
    TOKEN_CAP_PARAMS,
    cap_field,
    token_cap,
)

OPENAI_KINDS = ("openai", "openai-responses")

# Renamed on the way out, per kind (other accepted params keep their name).
_RENAMED: dict[str, dict[str, str]] = {
    "openai": {},
    "openai-responses": {"reasoning_effort": "reasoning.effort", "verbosity": "text.verbosity"},
    "anthropic": {"stop": "stop_sequences", "reasoning_effort": "thinking.budget_tokens"},
}

# OpenAI's reasoning models (o1, o3, o4-mini, the gpt-5 family; "openai/o3" behind a gateway),
# but not the gpt-5 chat models, which sample like gpt-4o.
REASONING_MODEL = re.compile(r"(?:^|/)(?:o[134](?:-|$)|gpt-5(?!.*chat))", re.IGNORECASE)
# The params those models accept only at their default value.
REASONING_DEFAULTS: dict[str, Any] = {
    "temperature": 1,
    "top_p": 1,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "logprobs": False,
}


def request_fields(
    kind: str, params: Mapping[str, Any], *, base_url: str | None, token_limit_param: str
) -> dict[str, str | None]:
    """For each param, the request field it is sent as (dotted for a nested field), or None
    when this kind does not send it (another kind's param, or an output cap superseded by
    another spelling of the cap)."""
    cap_sent_as = cap_field(kind, base_url, token_limit_param)
    cap = token_cap(dict(params), cap_sent_as)
    fields: dict[str, str | None] = {}
    for name in params:
        if name in TOKEN_CAP_PARAMS:
            fields[name] = cap_sent_as if cap is not None and cap[0] == name else None
        elif name not in KIND_PARAMS[kind] or name in DROPPED_PARAMS[kind]:
            fields[name] = None
        else:
            fields[name] = _RENAMED[kind].get(name, name)
    if kind == "anthropic":
        # An explicit stop_sequences or thinking wins over what stop/reasoning_effort become.
        if "stop" in fields and "stop_sequences" in params:
            fields["stop"] = None
        if "reasoning_effort" in fields and (
            params["reasoning_effort"] == "none" or "thinking" in params
        ):
            fields["reasoning_effort"] = None
    return fields


@dataclass(frozen=True)
class KnownRejection:
    param: str  # the param refused, as written in params
    problem: str  # "model o3 accepts only the default temperature"
    # The fix, when it is not removing the param: then `setting` names the target key to change.
    fix: str | None = None
    setting: str | None = None


def known_rejections(
    kind: str, model: str, params: Mapping[str, Any], *, token_limit_param: str = "auto"
) -> list[KnownRejection]:
    """Params the provider is known to refuse for this model, found without sending."""
    if kind not in OPENAI_KINDS or not REASONING_MODEL.search(model):
        return []
    found: list[KnownRejection] = []
    # gpt-5.1 and later sample normally when reasoning is switched off.
    if params.get("reasoning_effort") != "none":
        for name, default in REASONING_DEFAULTS.items():
            if name in params and params[name] is not None and params[name] != default:
                found.append(KnownRejection(name, f"model {model} accepts only the default {name}"))
    if kind == "openai" and token_limit_param == "max_tokens":
        cap = token_cap(dict(params), "max_tokens")
        if cap is not None:
            found.append(
                KnownRejection(
                    cap[0],
                    f"model {model} refuses max_tokens (it takes max_completion_tokens)",
                    fix='set token_limit_param = "max_completion_tokens" (or "auto")',
                    setting="token_limit_param",
                )
            )
    return found
