"""Charts as inline SVG, drawn on the server: the report must open with no network and no
scripts, so there is no charting library to load.

Each helper returns one `<svg>` element as a string. Every piece of text in it (titles,
labels, tooltips) is escaped here, so the caller may embed the string in HTML as it is. No
`xmlns` attribute is written: an `<svg>` inside an HTML page gets its namespace from the HTML
parser, and the report then holds no URL at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#2563eb", "#ea580c", "#059669", "#7c3aed", "#db2777", "#0891b2")
# Marker kind -> (colour, legend text).
MARKERS = {
    "identity": ("#7c3aed", "model change"),
    "opened": ("#d97706", "alert opened"),
    "firing": ("#dc2626", "alert firing"),
    "resolved": ("#16a34a", "alert resolved"),
}
AXIS, GRID, MUTED = "#64748b", "#e2e8f0", "#94a3b8"
Format = Callable[[float], str]


def percent(value: float) -> str:
    return f"{value:.0%}"


def number(value: float) -> str:
    return f"{value:.4g}"


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 4, 6, 8, 10 × 10^k at least `value`, so that quarters of it (the
    four steps of a y axis) are round numbers; 1.0 for nothing positive."""
    if not value > 0:
        return 1.0
    scale = 10.0 ** math.floor(math.log10(value))
    return next(m * scale for m in (1, 2, 4, 6, 8, 10) if m * scale >= value * (1 - 1e-12))


@dataclass(frozen=True)
class Point:
    x: float
    y: float | None  # None: nothing to plot here (e.g. a run of errors only); breaks the line
    title: str = ""  # tooltip


@dataclass(frozen=True)
class Line:
    name: str
    points: Sequence[Point]


@dataclass(frozen=True)
class Marker:
    """A vertical line at x: an event such as a model identity change or an alert."""

    x: float
    label: str
    kind: str  # a key of MARKERS
    title: str = ""


@dataclass(frozen=True)
class BarGroup:
    label: str
    values: Sequence[float | None]  # one per series; None draws no bar


@dataclass(frozen=True)
class _Frame:
    """The plot area inside the SVG and the data ranges mapped onto it."""

    left: float
    top: float
    width: float
    height: float
    x0: float
    x1: float
    y0: float
    y1: float

    def sx(self, x: float) -> float:
        if self.x1 == self.x0:
            return self.left + self.width / 2
        return self.left + (x - self.x0) / (self.x1 - self.x0) * self.width

    def sy(self, y: float) -> float:
        if self.y1 == self.y0:
            return self.top + self.height / 2
        clipped = min(max(y, self.y0), self.y1)
        return self.top + (1 - (clipped - self.y0) / (self.y1 - self.y0)) * self.height


def _f(value: float) -> str:
    return f"{value:.1f}"


def _attr(value: str) -> str:
    return escape(value, quote=True)


def _text(
    x: float, y: float, content: str, *, anchor: str = "start", size: int = 11, colour: str = AXIS
) -> str:
    return (
        f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}" font-size="{size}" '
        f'fill="{colour}">{escape(content)}</text>'
    )


def _open(width: int, height: int, title: str) -> str:
    return (
        f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{_attr(title)}" font-family="system-ui, sans-serif">'
        f"<title>{escape(title)}</title>"
    )


def _empty(width: int, height: int, title: str, message: str) -> str:
    return (
        _open(width, height, title)
        + f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="none" '
        f'stroke="{GRID}"/>'
        + _text(width / 2, height / 2, message, anchor="middle", size=13, colour=MUTED)
        + "</svg>"
    )


def _y_axis(frame: _Frame, fmt: Format, ticks: int = 4) -> list[str]:
    parts = []
    for i in range(ticks + 1):
        value = frame.y0 + (frame.y1 - frame.y0) * i / ticks
        y = frame.sy(value)
        right = frame.left + frame.width
        parts.append(
            f'<line x1="{_f(frame.left)}" y1="{_f(y)}" x2="{_f(right)}" y2="{_f(y)}" '
            f'stroke="{GRID}"/>'
        )
        parts.append(_text(frame.left - 6, y + 4, fmt(value), anchor="end"))
    return parts


def _x_ticks(frame: _Frame, xs: Sequence[float], fmt: Format, y: float) -> list[str]:
    """Up to five labels along the x axis: both ends and evenly spaced ones between."""
    if frame.x0 == frame.x1:
        return [_text(frame.sx(frame.x0), y, fmt(frame.x0), anchor="middle")]
    ticks = min(4, len(xs) - 1)
    parts = []
    for i in range(ticks + 1):
        value = frame.x0 + (frame.x1 - frame.x0) * i / ticks
        anchor = "start" if i == 0 else "end" if i == ticks else "middle"
        parts.append(_text(frame.sx(value), y, fmt(value), anchor=anchor))
    return parts


def _legend(items: Sequence[tuple[str, str, bool]], x: float, y: float) -> list[str]:
    """(label, colour, dashed) swatches in a row."""
    parts = []
    for label, colour, dashed in items:
        dash = ' stroke-dasharray="4 3"' if dashed else ""
        parts.append(
            f'<line x1="{_f(x)}" y1="{_f(y - 4)}" x2="{_f(x + 16)}" y2="{_f(y - 4)}" '
            f'stroke="{colour}" stroke-width="2.5"{dash}/>'
        )
        parts.append(_text(x + 20, y, label, colour="#334155"))
        x += 28 + 6.5 * len(label)
    return parts


def line_chart(
    lines: Sequence[Line],
    markers: Sequence[Marker] = (),
    *,
    title: str,
    y_range: tuple[float, float] = (0.0, 1.0),
    y_format: Format = percent,
    x_format: Format = number,
    width: int = 760,
    height: int = 260,
    empty: str = "no data yet",
) -> str:
    """Lines with a dot per point and labelled vertical markers; x is any number (e.g. a Unix
    time, labelled by `x_format`). A single point sits in the middle."""
    xs = [p.x for line in lines for p in line.points if p.y is not None]
    if not xs:
        return _empty(width, height, title, empty)
    xs += [m.x for m in markers]
    # Room on top for three rows of marker labels, below for tick labels and the legend; a
    # little room left and right so the first and last dots do not sit on the frame.
    top = 54 if markers else 14
    pad = (max(xs) - min(xs)) * 0.02
    frame = _Frame(52, top, width - 72, height - top - 52, min(xs) - pad, max(xs) + pad, *y_range)
    parts = [_open(width, height, title), *_y_axis(frame, y_format)]
    bottom = frame.top + frame.height
    parts += _x_ticks(frame, sorted(set(xs)), x_format, bottom + 16)
    for index, marker in enumerate(markers):
        x, colour = frame.sx(marker.x), MARKERS.get(marker.kind, (AXIS, ""))[0]
        row_y = 14 + 13 * (index % 3)
        anchor = "end" if x > frame.left + frame.width * 0.66 else "start"
        offset = -3 if anchor == "end" else 3
        parts.append(
            f"<g><title>{escape(marker.title or marker.label)}</title>"
            f'<line x1="{_f(x)}" y1="{_f(row_y + 2)}" x2="{_f(x)}" y2="{_f(bottom)}" '
            f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="4 3"/>'
            + _text(x + offset, row_y, marker.label, anchor=anchor, size=10, colour=colour)
            + "</g>"
        )
    for index, line in enumerate(lines):
        colour = PALETTE[index % len(PALETTE)]
        segments: list[list[str]] = [[]]
        for p in line.points:
            if p.y is None:
                segments.append([])
            else:
                segments[-1].append(f"{_f(frame.sx(p.x))},{_f(frame.sy(p.y))}")
        for segment in segments:
            if len(segment) > 1:
                parts.append(
                    f'<polyline points="{" ".join(segment)}" fill="none" stroke="{colour}" '
                    f'stroke-width="2"/>'
                )
        for p in line.points:
            if p.y is not None:
                parts.append(
                    f'<circle cx="{_f(frame.sx(p.x))}" cy="{_f(frame.sy(p.y))}" r="3.5" '
                    f'fill="#fff" stroke="{colour}" stroke-width="2">'
                    f"<title>{escape(p.title or y_format(p.y))}</title></circle>"
                )
    legend = [(line.name, PALETTE[i % len(PALETTE)], False) for i, line in enumerate(lines)]
    kinds = dict.fromkeys(m.kind for m in markers)
    for kind in kinds:
        colour, text = MARKERS.get(kind, (AXIS, kind))
        legend.append((text, colour, True))
    parts += _legend(legend, frame.left, height - 8)
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    groups: Sequence[BarGroup],
    series: Sequence[str],
    *,
    title: str,
    y_max: float | None = None,
    y_format: Format = percent,
    width: int = 360,
    height: int = 220,
    empty: str = "no data",
) -> str:
    """Grouped bars: one group per category, one bar per series (e.g. baseline, current),
    each labelled with its value."""
    values = [v for g in groups for v in g.values if v is not None]
    if not values or not series:
        return _empty(width, height, title, empty)
    top = y_max if y_max is not None else nice_ceiling(max(values) * 1.1)
    frame = _Frame(48, 18, width - 60, height - 18 - 58, 0, 1, 0, top)
    parts = [_open(width, height, title), *_y_axis(frame, y_format)]
    slot = frame.width / len(groups)
    bar = min(36.0, slot * 0.8 / len(series))
    bottom = frame.top + frame.height
    for g_index, group in enumerate(groups):
        centre = frame.left + slot * (g_index + 0.5)
        start = centre - bar * len(series) / 2
        for s_index, value in enumerate(group.values[: len(series)]):
            if value is None:
                continue
            x, y = start + bar * s_index, frame.sy(value)
            colour = PALETTE[s_index % len(PALETTE)]
            tip = f"{series[s_index]}: {group.label} {y_format(value)}"
            parts.append(
                f'<rect x="{_f(x + 1)}" y="{_f(y)}" width="{_f(bar - 2)}" '
                f'height="{_f(max(bottom - y, 0.5))}" fill="{colour}">'
                f"<title>{escape(tip)}</title></rect>"
            )
            if bar >= 22:
                parts.append(_text(x + bar / 2, y - 3, y_format(value), anchor="middle", size=9))
        label = group.label if len(group.label) <= 18 else group.label[:17] + "…"
        parts.append(_text(centre, bottom + 15, label, anchor="middle", colour="#334155"))
    legend = [(name, PALETTE[i % len(PALETTE)], False) for i, name in enumerate(series)]
    parts += _legend(legend, frame.left, height - 8)
    parts.append("</svg>")
    return "".join(parts)
