"""The refusal heuristic: catches the usual refusals, stays quiet on ordinary answers."""

from __future__ import annotations

import pytest

from monitor.validation import judge
from tests.unit.test_validation import INVOICE_SCHEMA, make_probe

REFUSALS = [
    "I'm sorry, but I can't help with that.",
    "I’m sorry, but I can’t assist with that request.",
    "I am sorry, but I cannot provide that information.",
    "I'm really sorry, but I won't be able to do that.",
    "I apologize, but I am unable to comply with this request.",
    "I'm afraid I can't do that.",
    "I cannot help with that.",
    "I can't assist you with this.",
    "Sorry — I won't fulfil this request.",
    "I must respectfully decline.",
    "As an AI language model, I do not have access to invoices.",
    "As an AI, I can't browse the web.",
    "Hmm. As an AI assistant I have no opinion.",
    "  \n\nI'M SORRY, BUT I CANNOT HELP WITH THAT.",
    '```json\n{"error": "I\'m sorry, but I can\'t help with that."}\n```',
]

NOT_REFUSALS = [
    '{"total": 1234.5, "currency": "USD"}',
    "I can't believe how cheap this invoice is: 12 USD.",
    "Sorry for the delay! The total is 1234.5 USD.",
    "I'm sorry to hear that. Here is the invoice: {}",
    "The customer wrote that they cannot help with the payment.",
    "Yes, 17077 is prime: I cannot find any divisor up to 130.",
    "As an aside, the invoice has two pages.",
    "The paper 'As an AI researcher' discusses alignment.",
    "Paris.",
    "[Yes]",
    # A refusal mentioned far into a long answer is not the answer refusing.
    "The total is 1234.5 USD. " * 40 + "I'm sorry, but I can't help with that.",
]


@pytest.mark.parametrize("text", REFUSALS)
def test_refusals_are_flagged(text: str) -> None:
    result = judge(make_probe(schema=INVOICE_SCHEMA), text)
    assert result.refusal is True
    assert result.verdict == "fail"
    assert result.reason is not None and result.reason.endswith("(looks like a refusal)")


@pytest.mark.parametrize("text", NOT_REFUSALS)
def test_ordinary_answers_are_not_flagged(text: str) -> None:
    assert judge(make_probe(schema=INVOICE_SCHEMA), text).refusal is False


def test_refusal_does_not_change_a_passing_verdict() -> None:
    probe = make_probe(response_format="text", extract=None)
    result = judge(probe, "I'm sorry, but I can't help with that.")
    assert (result.verdict, result.refusal, result.reason) == ("pass", True, None)


def test_refusal_on_text_probe_without_match() -> None:
    probe = make_probe(response_format="text", extract=r"\[(Yes|No)\]")
    result = judge(probe, "I cannot help with that.")
    assert result.refusal is True
    assert result.reason == r"extract /\[(Yes|No)\]/ did not match (looks like a refusal)"


def test_refusal_on_oversized_output_looks_at_the_head() -> None:
    result = judge(make_probe(schema=INVOICE_SCHEMA), "I cannot help with that. " * 10_000)
    assert result.refusal is True
    assert result.reason == "output too large (250000 chars > 200000) (looks like a refusal)"
