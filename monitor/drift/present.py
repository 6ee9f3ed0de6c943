"""How verdict values and effects read to people: shared by the CLI and alert messages."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.drift.model import Verdict

_EFFECT_UNITS = {"Jensen-Shannon distance": "JS", "normalised Wasserstein": "W"}


def fmt_value(value: Any, effect_name: str | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, dict):  # a distribution: its largest shares
        top = sorted(value.items(), key=lambda kv: -kv[1] if isinstance(kv[1], int | float) else 0)
        shown = ", ".join(
            f"{k} {v:.0%}" if isinstance(v, int | float) else f"{k} {v}" for k, v in top[:3]
        )
        return shown + (", …" if len(top) > 3 else "")
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"{value:.1%}" if effect_name == "rate difference" else f"{value:.4g}"
    return str(value)


def fmt_effect(verdict: Verdict) -> str:
    if verdict.effect is None:
        return "–"
    if verdict.effect_name == "rate difference":
        return f"{verdict.effect * 100:+.1f} pts"
    unit = _EFFECT_UNITS.get(verdict.effect_name or "", verdict.effect_name or "")
    return f"{verdict.effect:.3g} {unit}".strip()


# The [drift] setting behind each "why not tested" note of monitor.drift.decide.insufficiency,
# named inside its "(need N)" so the reader knows which setting the number comes from.
_SETTING_OF_NOTE = (
    (re.compile(r"probe versions? with data on both sides \(need (\d+)\)"), "drift.min_probes"),
    (re.compile(r"has \d+ values.* \(need (\d+)\)"), "drift.min_samples"),
)


def reason(note: str) -> str:
    """A verdict's note, with the setting that decides it when there is one."""
    for pattern, setting in _SETTING_OF_NOTE:
        found = pattern.search(note)
        if found:
            end = found.end(1)
            return f"{note[:end]}, {setting}{note[end:]}"
    return note


def notes_by_reason(verdicts: Sequence[Verdict]) -> list[tuple[str, list[str]]]:
    """Each distinct verdict note, most frequent first, with the metrics it applies to."""
    grouped: dict[str, list[str]] = {}
    for verdict in verdicts:
        if verdict.note:
            grouped.setdefault(verdict.note, []).append(verdict.metric)
    return sorted(grouped.items(), key=lambda item: -len(item[1]))


def untested_reason(verdicts: Sequence[Verdict]) -> str | None:
    """Why the quality metrics were not tested: the note most of them share."""
    untested = [
        v for v in verdicts if str(v.family) == "quality" and str(v.state) == "insufficient_data"
    ]
    found = notes_by_reason(untested)
    return reason(found[0][0]) if found else None
