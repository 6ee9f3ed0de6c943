"""10,000 alerts full of hostile text: not one rendered payload may form a mention or a link, or
break Slack's limits.

"Cannot form a mention or link" is checked as: no string anywhere in the payload (text, and
every string in the blocks) contains `<` or `>` at all (Slack's mention and link syntax needs
both, and our own templates use neither), every `&` starts `&amp;`, `&lt;` or `&gt;` (so
nothing decodes into a `<` on display), and no bare `@here` / `@channel` / `@everyone` is left
for automatic parsing. Beyond that: no control, bidi-override, tag or lone-surrogate character
survives, and `slack_problems` (the fake Slack's validator) accepts every payload.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from monitor.alerts import escape as esc
from monitor.alerts.message import ALERT_KINDS, AlertMessage, Example, MetricLine
from monitor.alerts.slack import BLOCKS_TEXT_BUDGET, TEXT_BUDGET, render_blocks
from tests.fakes.slack_server import slack_problems

SEED = 20240807
MESSAGES = 10_000
FRAGMENTS = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<!here|here>",
    "<@U123>",
    "<@U024BE7LH|bob>",
    "<#C1>",
    "<#C024BE7LR|general>",
    "<!subteam^S123|@oncall>",
    "<!date^1392734382^{date}|Feb 18>",
    "<http://x|y>",
    "<https://evil.example/login|Reset your password>",
    "<mailto:a@b.c|mail>",
    "&lt;!channel&gt;",
    "&amp;lt;!here&amp;gt;",
    "&#60;!channel&#62;",
    "&lt;",
    "&gt;",
    "&amp;",
    "&",
    "&&",
    "&amp",
    "&lt",
    "<",
    ">",
    "<<!channel>>",
    "< !channel >",
    "@here",
    "@channel",
    "@everyone",
    "@Here",
    "@CHANNEL",
    "@ here",
    "＠here",
    "`",
    "```",
    "*bold*",
    "_it_",
    "~s~",
    "\u202e",
    "\u202d",
    "\u2066",
    "\u2069",
    "\u200e",
    "\u061c",
    "\u200d",
    "\u200b",
    "\u2060",
    "\ufeff",
    "\x00",
    "\x07",
    "\x1b[31m",
    "\r\n",
    "\r",
    "\n",
    "\t",
    "\x0b",
    "\x85",
    "\u2028",
    "\ud800",
    "\udfff",
    "\ud83d",
    "\ude00",
    "\ud83d\ude00",
    "😀",
    "👨\u200d👩\u200d👧",
    "🇺🇳",
    "e\u0301",
    "\u0301" * 40,
    "\u20dd" * 9,
    "\U000e0041\U000e0042\U000e007f",
    "\x7f",
    "\ufffe",
    ":skull:",
    "http://evil.example",
    "www.evil.example",
    "javascript:alert(1)",
    " ",
    "a",
    "Ω",
    "מִשְׁפָּט",
    "العربية",
    "<script>",
    "</code>",
    "|",
    ">quote",
    "\\<!channel>",
    "&<!channel>&",
]
ANY_ANGLE = re.compile(r"[<>]")
BAD_AMPERSAND = re.compile(r"&(?!amp;|lt;|gt;)")
BROADCAST = re.compile(r"@(here|channel|everyone)", re.IGNORECASE)
FORBIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff\ufffe\uffff"
    "\U000e0000-\U000e007f\ud800-\udfff]"
)


def hostile(rng: random.Random) -> str:
    if rng.random() < 0.02:  # very long: a hostile chunk repeated, up to ~100,000 characters
        chunk = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randrange(5, 40)))
        return chunk * rng.randrange(100, 1000)
    parts = []
    for _ in range(rng.randrange(0, 12)):
        if rng.random() < 0.75:
            parts.append(rng.choice(FRAGMENTS))
        else:  # any code point at all, lone surrogates included
            parts.append("".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(1, 5))))
    return "".join(parts)


ROLES = [
    "output",
    "probe_id",
    "reason",
    "metric",
    "baseline",
    "current",
    "effect",
    "state",
    "target",
    "probe_set",
    "model",
    "identity",
    "report_path",
]


def message(rng: random.Random, output: str, role: str, *, full: bool = False) -> AlertMessage:
    """An alert carrying `output` as `role`; every other field holds a hostile fragment too.
    With `full`, every list is at its longest and every field a generated hostile text."""

    def h() -> str:
        return hostile(rng) if full else rng.choice(FRAGMENTS)

    def pick(name: str) -> str:
        return output if role == name else h()

    metrics = [
        MetricLine(
            pick("metric"),
            pick("baseline"),
            pick("current"),
            pick("effect"),
            rng.choice([None, rng.random(), 1e-300, 1.0]),
            rng.randrange(10**9),
            rng.randrange(10**9),
            rng.choice(["drifted", pick("state")]),
        )
        for _ in range(30 if full else rng.randrange(1, 4))
    ]
    examples = [
        Example(pick("probe_id"), pick("output"), rng.choice([None, pick("reason")]))
        for _ in range(6 if full else rng.randrange(1, 4))
    ]
    if role == "reason":
        examples[0] = Example(h(), h(), output)
    return AlertMessage(
        kind=rng.choice(ALERT_KINDS),
        target=pick("target"),
        probe_set=pick("probe_set"),
        model=rng.choice([None, pick("model")]) if role != "model" else output,
        identity_change=(pick("identity"), h())
        if role == "identity" or rng.random() < 0.5
        else None,
        metrics=metrics,
        examples=examples,
        opened_at=datetime(2024, 1, 1, tzinfo=UTC),
        report_path=pick("report_path"),
        alert_id=rng.choice([None, rng.randrange(10**12)]),
    )


def strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from strings(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from strings(item)


def violations(payload: dict[str, Any]) -> list[str]:
    block_texts = [t for t in strings(payload["blocks"]) if t not in _NAMES]
    # Joined by newlines (allowed, and no pattern matches across one): one search per pattern.
    everything = "\n".join([payload["text"], *block_texts])
    found = []
    for name, pattern in [
        ("angle bracket", ANY_ANGLE),
        ("bare &", BAD_AMPERSAND),
        ("broadcast", BROADCAST),
        ("forbidden char", FORBIDDEN),
    ]:
        if match := pattern.search(everything):
            around = everything[max(0, match.start() - 80) : match.end() + 80]
            found.append(f"{name} {match.group()!r} in {around!r}")
    json.dumps(payload, ensure_ascii=False).encode("utf-8")  # raises on a lone surrogate
    found += [
        f"{code}: {detail}" for code, detail in slack_problems(payload["text"], payload["blocks"])
    ]
    block_text = sum(esc.slack_len(t) for t in block_texts)
    if block_text > BLOCKS_TEXT_BUDGET or esc.slack_len(payload["text"]) > TEXT_BUDGET:
        found.append(f"over budget: {block_text} in blocks, {esc.slack_len(payload['text'])} text")
    return found


_NAMES = {"header", "context", "section", "divider", "mrkdwn", "plain_text"}


def test_no_hostile_output_forms_a_mention_or_link() -> None:
    rng = random.Random(SEED)
    bad: list[tuple[int, str, list[str]]] = []
    hostile_outputs = 0
    for i in range(MESSAGES):
        output, role = hostile(rng), ROLES[i % len(ROLES)]
        hostile_outputs += "<" in output or "&" in output or "@" in output
        text, blocks = render_blocks(message(rng, output, role))
        if problems := violations({"text": text, "blocks": blocks}):
            bad.append((i, role, problems))
    assert not bad, f"{len(bad)} of {MESSAGES} payloads are unsafe; first: {bad[0]}"
    assert hostile_outputs > MESSAGES * 0.6  # the corpus really is hostile


def test_alerts_full_of_hostile_text_stay_within_limits() -> None:
    """Every list at its longest, every field a generated hostile text (some ~100,000 long)."""
    rng = random.Random(SEED + 2)
    for i in range(300):
        msg = message(rng, hostile(rng), ROLES[i % len(ROLES)], full=True)
        text, blocks = render_blocks(msg)
        assert violations({"text": text, "blocks": blocks}) == [], i


def test_escaping_a_long_text_by_its_head_changes_nothing() -> None:
    """The helpers sanitize only the head of a huge text; the result must be identical to
    sanitizing all of it (the reference below)."""
    rng = random.Random(SEED + 1)
    texts = [
        "".join(rng.choice(FRAGMENTS) for _ in range(rng.randrange(50, 3000))) for _ in range(150)
    ]
    # Mostly characters that sanitize removes: the head alone would show (almost) nothing.
    texts += [
        invisible * n + "visible <!channel> tail &"
        for n in (100, 5000, 20_000)
        for invisible in ("\U000e0041", "\u202e", "\ufeff\u2066", "\r\n")
    ]
    for text in texts:
        whole = esc.sanitize(text)
        line = whole.replace("\n", " ").replace("\t", " ")
        for limit in (1, 7, 64, 301, 3000):
            assert esc.escape(text, limit) == esc._fit(whole, limit, esc._escaped)
            inline = f"`{esc._fit(line, max(limit - 2, 1), esc._escaped)}`"
            assert esc.code(text, limit) == (inline if line.strip() else "_empty_")
            block = f"```{esc._fit(whole, max(limit - 6, 1), esc._escaped)}```"
            assert esc.code_block(text, limit) == (block if whole.strip() else "_empty output_")
            plain = line.translate(esc._PLAIN_TABLE)
            assert esc.plain(text, limit) == esc._fit(plain, limit, str)
