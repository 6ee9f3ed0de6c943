"""Make untrusted text safe to show in Slack: model outputs, probe ids, field values, names.

Slack parses `&`, `<` and `>` as control characters in mrkdwn and in a message's top-level
`text`: `<!channel>`, `<@U123>`, `<#C1>` and `<https://x|y>` are mentions and links, and
`&lt;` is decoded on display. Slack's formatting guide says to replace exactly these three with
`&amp;`, `&lt;`, `&gt;` and nothing else
(https://docs.slack.dev/messaging/formatting-message-text#escaping). With every `<` and `>` of
untrusted text escaped, no mention or link can be formed from it, and because `&` is escaped
too, text such as `&lt;!channel&gt;` arrives as `&amp;lt;!channel&amp;gt;` and is displayed as
the literal `&lt;!channel&gt;`, never decoded a second time into a live `<!channel>`.

Bare `@here`, `@channel`, `@everyone` are turned into broadcasts only when Slack's automatic
parsing runs (`link_names=1` or `parse=full` on chat.postMessage, or a mrkdwn text object without
`verbatim: true`). Our renderer never asks for that and sets `verbatim: true`, but we do not
rely on it alone: a WORD JOINER (U+2060) is put after such an `@`, so the word can never match.

Beyond that: control characters become U+FFFD (newlines and tabs survive), bidirectional
overrides and isolates (which can make text display in a misleading order) and Unicode tag
characters (invisible "smuggled" text) are removed, lone surrogates become U+FFFD (Slack would
reject the JSON), runs of combining marks are capped (a "Zalgo" string cannot smear over other
lines), and backticks become U+02CB so untrusted text cannot close our code spans.

Lengths are counted in UTF-16 code units (`slack_len`), never less than Python's code points,
so a limit that holds for us holds however Slack counts. Truncation happens on the characters of
the *unescaped* text, so an entity such as `&amp;` is never cut in half, and a non-BMP
character (an emoji) is one Python character, so a surrogate pair is never split either.
"""

from __future__ import annotations

import re
from collections.abc import Callable

ELLIPSIS = "…"
WORD_JOINER = "\u2060"
BACKTICK_STANDIN = "\u02cb"  # MODIFIER LETTER GRAVE ACCENT: looks like ` but ends no code span
MAX_COMBINING_RUN = 4

_REPLACEMENT = "\ufffd"

# In plain_text objects Slack documents no entity handling, so rather than guess whether
# `&lt;` would show as `<` or as `&lt;`, we keep the three characters out entirely.
_PLAIN_TABLE = str.maketrans({"&": "\uff06", "<": "\u2039", ">": "\u203a"})


def _sanitize_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for cp in [*range(0x00, 0x20), *range(0x7F, 0xA0)]:
        table[cp] = _REPLACEMENT
    for cp in (0x0A, 0x0B, 0x0C, 0x0D, 0x85, 0x2028, 0x2029):
        table[cp] = "\n"  # every line break Slack might honour becomes a plain newline
    table[0x09] = "\t"
    # Bidirectional formatting: embeddings, overrides, isolates, marks.
    for cp in [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]:
        table[cp] = None
    for cp in range(0xE0000, 0xE0080):  # tag characters: invisible text
        table[cp] = None
    table[0xFEFF] = None  # byte order mark / zero width no-break space
    table[0xFFFE] = table[0xFFFF] = _REPLACEMENT  # noncharacters
    table[ord("`")] = BACKTICK_STANDIN
    return table


_SANITIZE_TABLE = _sanitize_table()
# A regex finds the characters to change and the table says what they become: much faster than
# str.translate, which looks every character of a long text up in the table one by one.
_SANITIZE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff"
    "\ufffe\uffff`\U000e0000-\U000e007f]"
)
# The combining blocks that "Zalgo" text is made of; other scripts' marks are left alone.
_COMBINING_RUN = re.compile(
    "([\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]"
    f"{{{MAX_COMBINING_RUN}}})"
    "[\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+"
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_BROADCAST = re.compile(r"@(?=here|channel|everyone|group)", re.IGNORECASE)
_TRAILING_JOINERS = "\u200d\u2060"


def slack_len(text: str) -> int:
    """Length in UTF-16 code units: what a JavaScript `.length` would say."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def sanitize(text: str) -> str:
    """The text with the problems above removed, but not yet escaped for mrkdwn."""
    if _SURROGATE.search(text):  # a valid pair is joined into one character, a lone one replaced
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    text = _SANITIZE.sub(
        lambda m: _SANITIZE_TABLE[ord(m.group())] or "", text.replace("\r\n", "\n")
    )
    text = _COMBINING_RUN.sub(r"\1", text)
    return _BROADCAST.sub("@" + WORD_JOINER, text)


def _head(text: str, limit: int | None) -> str:
    """`sanitize(text)`, or the same for as much of a huge text as can be shown.

    A model output may be megabytes; only its first `limit` characters can ever be shown. Cutting
    the raw text changes at most its last few sanitized characters (a split surrogate pair or
    CR LF, a combining run, an `@here`), which lie past the truncation point as long as more
    than `limit` characters survive; if fewer do (mostly removed characters), use it all.
    """
    if limit is None or len(text) <= 2 * limit + 64:
        return sanitize(text)
    head = sanitize(text[: 2 * limit + 64])
    return head if len(head) > limit + 16 and head.strip() else sanitize(text)


def escape(text: str, limit: int | None = None) -> str:
    """Sanitized and escaped for mrkdwn, at most `limit` UTF-16 units (ellipsis included)."""
    return _fit(_head(text, limit), limit, _escaped)


def code(text: str, limit: int) -> str:
    """An inline code span of untrusted text, at most `limit` units including the backticks.

    Code spans cannot cross lines, so line breaks and tabs become spaces. Empty text is shown as
    an italic _empty_ rather than as two backticks, which Slack would print literally.
    """
    body = _head(text, limit).replace("\n", " ").replace("\t", " ")
    if not body.strip():
        return "_empty_"
    return "`" + _fit(body, max(limit - 2, 1), _escaped) + "`"


def code_block(text: str, limit: int) -> str:
    """A preformatted block of untrusted text (line breaks kept), at most `limit` units."""
    body = _head(text, limit)
    if not body.strip():
        return "_empty output_"
    return "```" + _fit(body, max(limit - 6, 1), _escaped) + "```"


def plain(text: str, limit: int) -> str:
    """Untrusted text for a plain_text object (a header): one line, no `&`, `<` or `>`."""
    body = _head(text, limit).replace("\n", " ").replace("\t", " ")
    return _fit(body.translate(_PLAIN_TABLE), limit, str)


def _escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fit(text: str, limit: int | None, escaped: Callable[[str], str]) -> str:
    """`escaped(text)`, cut to at most `limit` UTF-16 units with an ellipsis when longer."""
    whole = escaped(text)
    if limit is None or slack_len(whole) <= limit:
        return whole
    if limit < 1:
        raise ValueError("limit must be at least 1")
    budget = limit - slack_len(ELLIPSIS)
    # The longest prefix of whole (unescaped) characters whose escaped form fits: entities and
    # surrogate pairs are never split. Every character costs at least one unit, so it is at most
    # `budget` characters long; cost grows with length, so a binary search finds it.
    low, high = 0, min(budget, len(text))
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if slack_len(escaped(text[:mid])) <= budget else (low, mid - 1)
    # A joiner left dangling before the ellipsis would glue it to the previous character.
    return escaped(text[:low]).rstrip(_TRAILING_JOINERS) + ELLIPSIS
