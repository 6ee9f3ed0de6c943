"""Does the output look like a refusal? A conservative, English-only heuristic.

Refusal rate is a drift signal of its own (a model that starts declining harmless probes has
changed), so false positives matter more than misses: only first-person statements of being
unable or unwilling to help, apologies followed by one, "I must decline", and the "As an AI
(language model)" disclaimer count, and only in the first few hundred characters, where
models put them. "I can't believe ...", "they cannot help ...", or a document that merely
mentions refusing do not. The flag never changes the verdict.
"""

from __future__ import annotations

import re

_HEAD = 400  # refusals open the answer; looking further invites quoting false positives

_CANNOT = (
    r"(?:can't|cannot|can not|won't|will not|am unable to|'m unable to|am not able to"
    r"|'m not able to|am not going to|'m not going to)"
)
_REFUSAL = re.compile(
    r"\b(?:"
    # "I'm sorry, but I can't ...", "I apologize, but I cannot ..."
    rf"I(?:'m| am)? (?:(?:very|really|so|truly) )?(?:sorry|afraid|apologi[sz]e)\b[^.!?\n]{{0,40}}"
    r"\bI (?:can't|cannot|can not|won't|will not|am unable|'m unable|am not able|'m not able"
    r"|must decline)"
    # "I can't help with that", "I cannot assist with this request"
    rf"|I {_CANNOT} (?:help|assist)(?: you)? with (?:that|this|your|the|such|requests?)"
    # "I can't comply", "I won't fulfil this request"
    rf"|I {_CANNOT} (?:comply|fulfil|fulfill|provide (?:that|this|assistance|help)"
    r"|do that|do this)\b"
    r"|I must (?:respectfully |politely )?decline"
    r")"
    # The disclaimer, only at the start of the output or of a sentence.
    r"|(?:\A|[.!?]\s+)As an AI(?: language model| model| assistant)?\b",
    re.IGNORECASE,
)


def looks_like_refusal(text: str) -> bool:
    head = text[: 10 * _HEAD].lstrip()[:_HEAD].replace("\u2019", "'")  # typographic apostrophe
    return _REFUSAL.search(head) is not None
