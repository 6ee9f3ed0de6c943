"""Which request params driftmon accepts for each target kind, and how each kind sends them.

Params are written once, in driftmon's own vocabulary, and translated by each adapter to its
provider's field. A name that no kind knows is a typo: config and probe loading refuse it,
naming the file, key and line. A param that only other kinds use is dropped by the adapter, so
one `[defaults].params` table can serve targets of every kind. Fields a particular server needs
beyond these go into a target's `extra_body`, which is merged last and sent unchecked.

Translation (driftmon param → field sent; "—" means dropped):

    param                   openai                   openai-responses        anthropic
    temperature, top_p      same name                same name               same name
    max_tokens,             max_completion_tokens    max_output_tokens       max_tokens
    max_completion_tokens,  or max_tokens (see                               (default 1024,
    max_output_tokens       token_limit_param)                               + thinking budget)
    stop                    stop                     —                       stop_sequences
    seed                    seed                     —                       —
    reasoning_effort        reasoning_effort         reasoning.effort        thinking (below)
    verbosity               verbosity                text.verbosity          —
    top_k, stop_sequences,  —                        —                       same name
      thinking
    reasoning, truncation,  —                        same name               —
      max_tool_calls
    frequency_penalty,      same name                —                       —
      presence_penalty,
      logit_bias, logprobs,
      n, response_format
    top_logprobs            same name                same name               —
    store                   same name                same name (false when   —
                                                     not set)
    service_tier, metadata  same name                same name               same name
    user, prompt_cache_key, same name                same name               —
      safety_identifier
    parallel_tool_calls     same name (only with     same name (only with    —
                            tools)                   tools)

- The output cap has three names so a config may use whichever it knows; when several are
  given, the one named like the field sent wins, then max_completion_tokens, max_output_tokens,
  max_tokens in that order.
- openai `token_limit_param`: "max_completion_tokens" or "max_tokens" picks the field;
  "auto" (the default) sends max_completion_tokens to OpenAI's and Azure OpenAI's hosts
  (api.openai.com, *.openai.azure.com, *.cognitiveservices.azure.com, *.services.ai.azure.com),
  whose reasoning models refuse max_tokens, and max_tokens everywhere else (llama.cpp, Ollama,
  vLLM and most gateways read only max_tokens).
- openai-responses: the Responses API has no stop sequences and no seed, so `stop` and `seed`
  are dropped. `store` is sent as false unless params set it: a monitor must not fill the
  account's stored responses. An explicit `reasoning` object is kept and `reasoning_effort`
  sets its `effort`.
- anthropic `reasoning_effort` becomes extended thinking, `thinking: {type: "enabled",
  budget_tokens: B}` with B from `THINKING_BUDGETS` (minimal/low 1024, medium 4096, high 16384,
  xhigh 32768; "none" sends no thinking). Thinking tokens count toward max_tokens, so
  max_tokens is raised by B and the answer keeps the cap the params gave it. An explicit
  `thinking` param is sent as written instead (and max_tokens is not raised).
  `stop` (a string or a list) becomes `stop_sequences` unless those are given too.
  Anthropic's published request definition no longer lists temperature/top_p/top_k (Opus 4.7
  and later refuse them); older models accept them, so they are sent when a config sets them,
  and a model's refusal is reported as a rejected param.
- Structured output and tools are not params: they come from the probe (see
  `monitor.providers.base.OUTPUT_MODES`). On openai, a json_schema probe's response_format
  replaces one given in params; extra_body may not replace the fields they fill.

This module imports nothing heavy: config and probe loading use it.
"""

from __future__ import annotations

import difflib
from urllib.parse import urlsplit

KINDS = ("openai", "openai-responses", "anthropic")

# Understood by every kind (each adapter translates or drops them as documented).
COMMON_PARAMS = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",  # the output cap; translated per kind
        "max_completion_tokens",  # alias of max_tokens (OpenAI's current name)
        "max_output_tokens",  # alias of max_tokens (the Responses API's name)
        "stop",
        "seed",
        "reasoning_effort",
    }
)

KIND_PARAMS: dict[str, frozenset[str]] = {
    "openai": COMMON_PARAMS
    | {
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "n",
        "response_format",
        "service_tier",
        "user",
        "metadata",
        "store",
        "parallel_tool_calls",
        "verbosity",
        "prompt_cache_key",
        "safety_identifier",
    },
    "openai-responses": COMMON_PARAMS
    | {
        "reasoning",
        "verbosity",
        "service_tier",
        "user",
        "metadata",
        "store",
        "parallel_tool_calls",
        "truncation",
        "top_logprobs",
        "prompt_cache_key",
        "safety_identifier",
        "max_tool_calls",
    },
    "anthropic": COMMON_PARAMS
    | {
        "top_k",
        "stop_sequences",
        "metadata",
        "thinking",
        "service_tier",
    },
}

ALL_PARAMS: frozenset[str] = frozenset().union(*KIND_PARAMS.values())

# Common params a kind's API has no field for: accepted (a shared table must load) and dropped.
DROPPED_PARAMS: dict[str, frozenset[str]] = {
    "openai": frozenset(),
    "openai-responses": frozenset({"stop", "seed"}),
    "anthropic": frozenset({"seed"}),
}

# The output cap's names, in the order that decides between several given at once.
TOKEN_CAP_PARAMS = ("max_completion_tokens", "max_output_tokens", "max_tokens")

# Values of a target's token_limit_param (openai kind).
TOKEN_LIMIT_PARAMS = ("auto", "max_completion_tokens", "max_tokens")

# Hosts whose chat completions want max_completion_tokens (reasoning models refuse max_tokens).
OPENAI_HOSTS = ("api.openai.com",)
OPENAI_HOST_SUFFIXES = (
    ".openai.azure.com",
    ".cognitiveservices.azure.com",
    ".services.ai.azure.com",
)

REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")

# reasoning_effort → Anthropic extended-thinking budget (tokens); "none" means no thinking.
THINKING_BUDGETS: dict[str, int] = {
    "minimal": 1024,  # Anthropic's minimum budget
    "low": 1024,
    "medium": 4096,
    "high": 16384,
    "xhigh": 32768,
}


def token_cap(params: dict[str, object], sent_as: str) -> tuple[str, object] | None:
    """(the param name used, its value) for the output cap, or None when params set none."""
    given = [name for name in TOKEN_CAP_PARAMS if params.get(name) is not None]
    if not given:
        return None
    name = sent_as if sent_as in given else given[0]
    return name, params[name]


def cap_field(kind: str, base_url: str | None, token_limit_param: str) -> str:
    """The request field a kind sends the output cap in (see the table above); `base_url`
    None is the kind's default, OpenAI's own API."""
    if kind == "openai-responses":
        return "max_output_tokens"
    if kind == "anthropic":
        return "max_tokens"
    try:
        host = (urlsplit(base_url).hostname or "") if base_url else OPENAI_HOSTS[0]
    except ValueError:
        host = ""  # the request itself will report the bad URL
    if uses_max_completion_tokens(token_limit_param, host):
        return "max_completion_tokens"
    return "max_tokens"


def uses_max_completion_tokens(token_limit_param: str, host: str) -> bool:
    """Whether an openai target sends its cap as max_completion_tokens (see the table above)."""
    if token_limit_param != "auto":
        return token_limit_param == "max_completion_tokens"
    host = host.lower().rstrip(".")
    return host in OPENAI_HOSTS or host.endswith(OPENAI_HOST_SUFFIXES)


def unknown_param_problem(name: str, kind: str | None) -> str | None:
    """Why `name` is not accepted (for `kind`, or for any kind when None); None if it is."""
    known = KIND_PARAMS[kind] if kind is not None else ALL_PARAMS
    if name in known:
        return None
    where = f"for kind {kind!r}" if kind is not None else "for any target kind"
    hint = difflib.get_close_matches(name, sorted(known), n=1)
    suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
    if kind is not None and name in ALL_PARAMS:
        others = ", ".join(k for k in KINDS if name in KIND_PARAMS[k])
        return f"param {name!r} is not used by kind {kind!r} (only by {others})"
    return (
        f"unknown param {name!r} {where}{suggestion}; "
        "a field only your server knows goes under the target's extra_body"
    )
