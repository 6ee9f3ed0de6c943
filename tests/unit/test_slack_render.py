"""Rendering alerts for Slack: layout, escaping, truncation, limits, and the documented example."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from monitor.alerts.escape import (
    BACKTICK_STANDIN,
    ELLIPSIS,
    WORD_JOINER,
    code,
    code_block,
    escape,
    plain,
    sanitize,
    slack_len,
)
from monitor.alerts.message import ALERT_KINDS, AlertMessage, Example, MetricLine
from monitor.alerts.slack import (
    BLOCKS_TEXT_BUDGET,
    MAX_BLOCKS,
    MAX_EXAMPLES,
    MAX_METRICS,
    MAX_SECTION_TEXT,
    TEXT_BUDGET,
    render_blocks,
    render_text,
)
from tests.fakes.slack_server import slack_problems

DOCS = Path(__file__).resolve().parents[2] / "docs" / "alerting.md"

# The example shown in docs/alerting.md; test_docs_example_is_what_we_render keeps them equal.
EXAMPLE = AlertMessage(
    kind="firing",
    target="gpt-4o-prod",
    probe_set="invoices",
    model="gpt-4o-2024-08-06",
    identity_change=("gpt-4o-2024-05-13", "gpt-4o-2024-08-06"),
    metrics=[
        MetricLine(
            "pass_rate", "0.97", "0.62", "-0.35 rate difference", 0.0012, 120, 118, "drifted"
        ),
        MetricLine(
            "field:currency",
            "USD 100%",
            "USD 64%, EUR 36%",
            "0.31 Jensen-Shannon distance",
            3.1e-05,
            120,
            118,
            "drifted",
        ),
    ],
    examples=[
        Example(
            "acme-invoice", '{"total": 1234.5, "currency": "EUR"}', "currency: 'EUR' not in ['USD']"
        ),
        Example("globex-invoice", 'Sure! <!channel> here is the JSON: {"total": 99}', "not JSON"),
    ],
    opened_at=datetime(2024, 8, 7, 9, 0, tzinfo=UTC),
    report_path="reports/gpt-4o-prod/2024-08-07.html",
    alert_id=42,
)


def texts(blocks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every text object in the blocks."""
    for block in blocks:
        yield from block.get("elements", [])
        if "text" in block:
            yield block["text"]


# --- the layout -------------------------------------------------------------------------------


def test_firing_message_layout() -> None:
    text, blocks = render_blocks(EXAMPLE)
    assert [b["type"] for b in blocks] == [
        "header",
        "context",
        "section",
        "section",
        "divider",
        "section",
        "section",
        "context",
    ]
    assert blocks[0]["text"] == {
        "type": "plain_text",
        "text": "🔴 Drift detected: gpt-4o-prod / invoices",
        "emoji": True,
    }
    facts = [e["text"] for e in blocks[1]["elements"]]
    assert facts == [
        "*Target* `gpt-4o-prod`",
        "*Probe set* `invoices`",
        "*Model* `gpt-4o-2024-08-06`",
        "*Identity* `gpt-4o-2024-05-13` → `gpt-4o-2024-08-06`",
        "*Opened* 2024-08-07 09:00 UTC",
    ]
    assert blocks[3]["text"]["text"].splitlines() == [
        "*Metrics*",
        "• `pass_rate`: `0.97` → `0.62` (-0.35 rate difference, p_adj 0.0012, n 120 → 118)",
        "• `field:currency`: `USD 100%` → `USD 64%, EUR 36%` "
        "(0.31 Jensen-Shannon distance, p_adj 3.1e-05, n 120 → 118)",
    ]
    assert blocks[6]["text"]["text"] == (
        "*Probe* `globex-invoice` — `not JSON`\n"
        '```Sure! &lt;!channel&gt; here is the JSON: {"total": 99}```'
    )
    assert [e["text"] for e in blocks[7]["elements"]] == [
        "*Alert* #42",
        "*Report* `reports/gpt-4o-prod/2024-08-07.html`",
    ]
    assert text == render_text(EXAMPLE)


def test_every_mrkdwn_object_is_verbatim() -> None:
    # verbatim: Slack must not auto-link URLs, channel names or mentions in our text.
    for kind in ALERT_KINDS:
        _, blocks = render_blocks(AlertMessage(kind=kind, target="t", examples=EXAMPLE.examples))
        for obj in texts(blocks):
            assert obj["type"] == "plain_text" or obj == {**obj, "verbatim": True}


@pytest.mark.parametrize("kind", ALERT_KINDS)
def test_each_kind_renders_within_limits(kind: str) -> None:
    msg = AlertMessage(kind=kind, target="gpt-4o-prod", metrics=EXAMPLE.metrics)  # type: ignore[arg-type]
    text, blocks = render_blocks(msg)
    assert slack_problems(text, blocks) == []
    assert blocks[0]["type"] == "header" and "gpt-4o-prod" in blocks[0]["text"]["text"]


def test_kinds_have_distinct_headlines() -> None:
    heads = {
        render_blocks(AlertMessage(kind=k, target="t"))[1][0]["text"]["text"] for k in ALERT_KINDS
    }
    assert len(heads) == len(ALERT_KINDS)


def test_times_are_shown_in_utc() -> None:
    cest = timezone(timedelta(hours=2))
    msg = AlertMessage(
        kind="resolved",
        target="t",
        opened_at=datetime(2024, 8, 7, 11, 0, tzinfo=cest),
        resolved_at=datetime(2024, 8, 8, 6, 30),
    )
    facts = [e["text"] for e in render_blocks(msg)[1][1]["elements"]]
    assert facts[-2:] == ["*Opened* 2024-08-07 09:00 UTC", "*Resolved* 2024-08-08 06:30 UTC"]


def test_metric_state_and_missing_p_value_are_shown() -> None:
    line = MetricLine(
        "latency",
        "800 ms",
        "2100 ms",
        "+1.6 normalised Wasserstein",
        None,
        40,
        3,
        "insufficient_data",
    )
    text = render_text(AlertMessage(kind="outage", target="t", metrics=[line]))
    assert "(+1.6 normalised Wasserstein, p_adj n/a, n 40 → 3) · insufficient_data" in text


def test_render_text_says_what_the_blocks_say() -> None:
    text, blocks = render_blocks(EXAMPLE)
    for obj in texts(blocks[1:]):
        for line in obj["text"].splitlines():
            assert line in text
    assert "<" not in text and "&lt;!channel&gt;" in text


def test_huge_alerts_stay_within_slack_limits() -> None:
    long = "x" * 100_000
    # Every field at its longest: the worst case the budgets in slack.py are computed for.
    metrics = [MetricLine(f"field:{long}", long, long, long, 1.2345e-05, 10**9, 10**9, long)] * 500
    examples = [Example(long, long, long)] * 10
    now = datetime.now(UTC)
    msg = AlertMessage(
        kind="firing",
        target=long,
        probe_set=long,
        model=long,
        identity_change=(long, long),
        metrics=metrics,
        examples=examples,
        opened_at=now,
        resolved_at=now,
        report_path=long,
        alert_id=10**12,
    )
    text, blocks = render_blocks(msg)
    assert slack_problems(text, blocks) == []
    assert len(blocks) <= MAX_BLOCKS and slack_len(text) <= TEXT_BUDGET
    assert sum(slack_len(o["text"]) for o in texts(blocks)) <= BLOCKS_TEXT_BUDGET
    assert all(slack_len(o["text"]) <= MAX_SECTION_TEXT for o in texts(blocks))
    assert f"…and {500 - MAX_METRICS} more metrics in the report" in text
    assert text.count("*Probe*") == MAX_EXAMPLES
    metric_sections = [b for b in blocks if "• `field:" in b.get("text", {}).get("text", "")]
    assert len(metric_sections) >= 2  # 20 long lines do not fit in one 3,000-character section


def test_message_contract_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown alert kind"):
        AlertMessage(kind="fired", target="t")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pair"):
        AlertMessage(kind="identity_notice", target="t", identity_change=("a",))  # type: ignore[arg-type]


# --- escaping ---------------------------------------------------------------------------------


def test_the_three_control_characters_are_escaped() -> None:
    assert escape("a & b < c > d") == "a &amp; b &lt; c &gt; d"
    assert escape("<!channel> <@U123> <#C1|x> <https://x|y>") == (
        "&lt;!channel&gt; &lt;@U123&gt; &lt;#C1|x&gt; &lt;https://x|y&gt;"
    )


def test_entities_in_the_input_are_not_decoded_twice() -> None:
    assert escape("&lt;!channel&gt;") == "&amp;lt;!channel&amp;gt;"
    assert escape("&amp;") == "&amp;amp;"


def test_broadcast_words_cannot_become_mentions() -> None:
    out = escape("@here @Channel @EVERYONE @group @hello")
    assert (
        out == f"@{WORD_JOINER}here @{WORD_JOINER}Channel @{WORD_JOINER}EVERYONE "
        f"@{WORD_JOINER}group @hello"
    )
    # A bidi control removed between @ and the word must not re-form it.
    assert escape("@\u202ehere") == f"@{WORD_JOINER}here"


def test_truncation_never_splits_an_entity() -> None:
    for limit in range(1, 40):
        out = escape("&<>" * 20, limit)
        assert slack_len(out) <= limit
        body = out.removesuffix(ELLIPSIS)
        assert re.fullmatch(r"(&amp;|&lt;|&gt;)*", body), (limit, out)


def test_truncation_never_splits_a_surrogate_pair() -> None:
    for limit in range(1, 20):
        out = escape("😀" * 20, limit)
        assert slack_len(out) <= limit
        out.encode("utf-8")  # a half pair would raise UnicodeEncodeError
        assert set(out) <= {"😀", ELLIPSIS}


def test_no_truncation_when_it_fits() -> None:
    assert escape("a&b", 7) == "a&amp;b"
    assert escape("a&bc", 7) == "a&amp;…"


def test_sanitize_handles_hostile_unicode() -> None:
    assert sanitize("a\x00b\x1b[31mc\x7fd") == "a\ufffdb\ufffd[31mc\ufffdd"
    assert sanitize("1\r\n2\r3\u20284\x855\t6") == "1\n2\n3\n4\n5\t6"
    assert sanitize("\u202egnp.exe\u2066x\u2069") == "gnp.exex"
    assert sanitize("see\U000e0041\U000e0042 this\ufeff") == "see this"
    assert sanitize("lone \ud800 and \udfff") == "lone \ufffd and \ufffd"
    assert sanitize("pair \ud83d\ude00") == "pair 😀"  # a valid pair arriving as two halves
    assert sanitize("e" + "\u0301" * 50) == "e" + "\u0301" * 4
    assert sanitize("👨\u200d👩\u200d👧") == "👨\u200d👩\u200d👧"  # joiners in emoji survive
    assert sanitize("a`b```c") == f"a{BACKTICK_STANDIN}b{BACKTICK_STANDIN * 3}c"


def test_code_spans_cannot_be_broken_out_of() -> None:
    assert code("x` *bold* `y", 100) == f"`x{BACKTICK_STANDIN} *bold* {BACKTICK_STANDIN}y`"
    assert code("two\nlines", 100) == "`two lines`"
    assert code("  \n", 100) == "_empty_"
    assert code("a" * 50, 10) == "`aaaaaaa…`"
    assert (
        code_block("```\nrm -rf /\n```", 100) == f"```{BACKTICK_STANDIN * 3}\nrm -rf /\n"
        f"{BACKTICK_STANDIN * 3}```"
    )
    assert code_block("", 100) == "_empty output_"


def test_plain_text_keeps_the_three_characters_out() -> None:
    assert plain("a <b> & c\nd", 100) == "a ‹b› ＆ c d"
    assert slack_len(plain("x" * 500, 150)) == 150


def test_slack_len_counts_utf16_units() -> None:
    assert slack_len("abc") == 3 and slack_len("😀") == 2 and slack_len("é") == 1


# --- the documented example --------------------------------------------------------------------


def test_docs_example_is_what_we_render() -> None:
    """docs/alerting.md shows the Block Kit JSON of EXAMPLE: it must be what the code sends."""
    found = re.search(r"```json\n(\{\n  \"text\".*?\n\})\n```", DOCS.read_text(), re.DOTALL)
    assert found, "docs/alerting.md has no rendered example"
    text, blocks = render_blocks(EXAMPLE)
    assert json.loads(found.group(1)) == {"text": text, "blocks": blocks}
