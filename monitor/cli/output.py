"""Printing: JSON for scripts, rich tables for people, and untrusted text made safe.

Model outputs and probe text are untrusted: control characters (terminal escape sequences
included) are replaced before anything reaches a terminal.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def safe_text(text: str | None, limit: int = 200) -> str:
    if text is None:
        return ""
    cleaned = _CONTROL.sub("\N{REPLACEMENT CHARACTER}", text).replace("\n", " ⏎ ")
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def iso(moment: datetime | None) -> str | None:
    """A time for JSON output: ISO 8601, or None."""
    return None if moment is None else moment.isoformat()


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        table.add_column(column)
    for row in rows:
        # Text(), not str: model output like "[link=...]" must print literally, never as markup.
        table.add_row(*(Text("" if v is None else safe_text(str(v), 300)) for v in row))
    # Piped output is read by scripts and greps: no terminal width to respect, so no cutting.
    width = None if sys.stdout.isatty() else 10_000
    Console(width=width, highlight=False).print(table)


def fmt_rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"
