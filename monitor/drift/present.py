"""How verdict values and effects read to people: shared by the CLI and alert messages."""

from __future__ import annotations

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
