"""How the report treats untrusted text and its `--since` option, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.cli.report import parse_since
from monitor.errors import UsageError
from monitor.report.data import EXAMPLE_CHARS, clean_text, truncate

NOW = datetime(2024, 8, 7, 9, 0, tzinfo=UTC)


def test_clean_text_replaces_controls_and_drops_invisible_characters() -> None:
    text = "a\x00b\x1b[31mc\u202eevil\u2066d\U000e0041\ud800e\nf\tg"
    assert clean_text(text) == "a\ufffdb\ufffd[31mcevild\ufffde\nf\tg"
    clean_text(text).encode("utf-8")  # writable: no lone surrogate left


def test_truncate_cuts_between_characters_never_inside_one() -> None:
    assert truncate("short") == ("short", False)
    emoji = "😀" * (EXAMPLE_CHARS + 10)
    cut, was_cut = truncate(emoji)
    assert was_cut and cut == "😀" * EXAMPLE_CHARS
    # An accent (a combining mark) stays with its letter: the cut steps back before both.
    accented = "a" * (EXAMPLE_CHARS - 1) + "e\u0301" + "tail"
    assert truncate(accented) == ("a" * (EXAMPLE_CHARS - 1), True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", NOW - timedelta(days=30)),
        ("12h", NOW - timedelta(hours=12)),
        ("2024-08-01", datetime(2024, 8, 1, tzinfo=UTC)),
        ("2024-08-01T12:00:00+02:00", datetime(2024, 8, 1, 10, 0, tzinfo=UTC)),
    ],
)
def test_since_takes_a_duration_or_a_date(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["soon", "", "0s", "-1d", "2024-13-01"])
def test_a_bad_since_names_the_option(text: str) -> None:
    with pytest.raises(UsageError, match="--since"):
        parse_since(text, NOW)
