"""What `run --dry-run` says about params: the field each becomes per kind, and the params
OpenAI's reasoning models are known to refuse."""

from __future__ import annotations

import pytest

from monitor.providers.preview import known_rejections, request_fields

PARAMS = {
    "max_tokens": 512,
    "temperature": 0.0,
    "stop": ["END"],
    "seed": 7,
    "reasoning_effort": "low",
}


def test_fields_per_kind() -> None:
    openai = request_fields("openai", PARAMS, base_url=None, token_limit_param="auto")
    assert openai == {
        "max_tokens": "max_completion_tokens",
        "temperature": "temperature",
        "stop": "stop",
        "seed": "seed",
        "reasoning_effort": "reasoning_effort",
    }
    responses = request_fields("openai-responses", PARAMS, base_url=None, token_limit_param="auto")
    assert responses == {
        "max_tokens": "max_output_tokens",
        "temperature": "temperature",
        "stop": None,
        "seed": None,
        "reasoning_effort": "reasoning.effort",
    }
    anthropic = request_fields("anthropic", PARAMS, base_url=None, token_limit_param="auto")
    assert anthropic == {
        "max_tokens": "max_tokens",
        "temperature": "temperature",
        "stop": "stop_sequences",
        "seed": None,
        "reasoning_effort": "thinking.budget_tokens",
    }


@pytest.mark.parametrize(
    ("base_url", "token_limit_param", "field"),
    [
        (None, "auto", "max_completion_tokens"),
        ("https://api.openai.com/v1", "auto", "max_completion_tokens"),
        ("https://r.openai.azure.com/openai/deployments/d", "auto", "max_completion_tokens"),
        ("http://localhost:11434/v1", "auto", "max_tokens"),
        ("https://openrouter.ai/api/v1", "auto", "max_tokens"),
        ("http://localhost:8000/v1", "max_completion_tokens", "max_completion_tokens"),
        (None, "max_tokens", "max_tokens"),
    ],
)
def test_openai_output_cap_field_follows_host_and_token_limit_param(
    base_url: str | None, token_limit_param: str, field: str
) -> None:
    fields = request_fields(
        "openai", {"max_tokens": 64}, base_url=base_url, token_limit_param=token_limit_param
    )
    assert fields == {"max_tokens": field}


def test_one_spelling_of_the_cap_is_sent_and_other_kinds_params_are_not() -> None:
    fields = request_fields(
        "openai-responses",
        {"max_tokens": 10, "max_output_tokens": 20, "top_k": 3},
        base_url=None,
        token_limit_param="auto",
    )
    assert fields == {"max_tokens": None, "max_output_tokens": "max_output_tokens", "top_k": None}


@pytest.mark.parametrize(
    ("kind", "model", "params", "refused"),
    [
        ("openai", "o3-mini", {"temperature": 0.0}, ["temperature"]),
        ("openai", "gpt-5", {"temperature": 0.2, "top_p": 0.9}, ["temperature", "top_p"]),
        ("openai-responses", "gpt-5-mini", {"presence_penalty": 0.5}, ["presence_penalty"]),
        ("openai", "openai/o4-mini", {"logprobs": True}, ["logprobs"]),
        ("openai", "o1", {"frequency_penalty": 1}, ["frequency_penalty"]),
        ("openai", "o3", {"temperature": 1}, []),  # the default value is accepted
        ("openai", "gpt-5.1", {"temperature": 0.0, "reasoning_effort": "none"}, []),
        ("openai", "gpt-5-chat-latest", {"temperature": 0.0}, []),
        ("openai", "gpt-4o", {"temperature": 0.0}, []),
        ("openai", "gpt-4o-mini", {"temperature": 0.0}, []),
        ("anthropic", "claude-opus-4-1", {"temperature": 0.0}, []),
    ],
)
def test_reasoning_models_refuse_non_default_sampling_params(
    kind: str, model: str, params: dict[str, object], refused: list[str]
) -> None:
    found = known_rejections(kind, model, params)
    assert [r.param for r in found] == refused
    for rejection in found:
        assert rejection.problem == f"model {model} accepts only the default {rejection.param}"


def test_max_tokens_forced_on_a_reasoning_model_is_flagged() -> None:
    (found,) = known_rejections("openai", "o3", {"max_tokens": 100}, token_limit_param="max_tokens")
    assert found.param == "max_tokens" and found.setting == "token_limit_param"
    assert known_rejections("openai", "o3", {"max_tokens": 100}) == []
