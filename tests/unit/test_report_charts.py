"""The SVG helpers of the report: well-formed XML for any data, including none and one point,
and every label escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from monitor.report.charts import (
    BarGroup,
    Line,
    Marker,
    Point,
    bar_chart,
    line_chart,
    nice_ceiling,
)

HOSTILE = "<script>alert(1)</script> & \"quotes\" 'too'"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on anything that is not well-formed XML
    assert root.tag == "svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return ["".join(e.itertext()) for e in root.iter() if e.tag in ("text", "title")]


def test_line_chart_draws_points_markers_and_a_legend() -> None:
    points = [Point(float(x), x / 10, f"run {x}") for x in range(10)]
    svg = line_chart(
        [Line("pass rate", points)],
        [Marker(4.5, "model changed", "identity", "a → b"), Marker(6, "firing", "firing")],
        title="sim / invoices",
    )
    root = parse(svg)
    assert len(root.findall("circle")) == 10
    assert len(root.findall("polyline")) == 1
    assert len(root.findall("g")) == 2  # one group per marker: its line, label and tooltip
    assert {"model changed", "firing", "model change", "alert firing", "run 3"} <= set(texts(root))
    assert root.get("aria-label") == "sim / invoices"


@pytest.mark.parametrize(
    "lines",
    [[], [Line("pass rate", [])], [Line("pass rate", [Point(1.0, None), Point(2.0, None)])]],
    ids=["no lines", "no points", "only gaps"],
)
def test_line_chart_without_data_says_so(lines: list[Line]) -> None:
    root = parse(line_chart(lines, [Marker(1.0, "x", "identity")], title="t", empty="nothing"))
    assert "nothing" in texts(root)
    assert root.findall("circle") == []


def test_line_chart_with_one_point_puts_it_in_the_middle() -> None:
    root = parse(line_chart([Line("pass rate", [Point(100.0, 0.5)])], title="t", width=400))
    [circle] = root.findall("circle")
    left, right = 52, 400 - 20  # the plot area
    assert float(circle.get("cx", "0")) == pytest.approx((left + right) / 2)
    assert root.findall("polyline") == []  # one point: no line to draw


def test_line_chart_breaks_the_line_at_gaps_and_clips_values() -> None:
    points = [Point(0, 0.2), Point(1, 0.4), Point(2, None), Point(3, 0.6), Point(4, 7.0)]
    root = parse(line_chart([Line("pass rate", points)], title="t"))
    assert len(root.findall("polyline")) == 2
    assert len(root.findall("circle")) == 4
    ys = [float(c.get("cy", "0")) for c in root.findall("circle")]
    assert min(ys) >= 0  # 7.0 is drawn at the top of the 0..1 range, not off the chart


def test_line_chart_escapes_every_label() -> None:
    svg = line_chart(
        [Line(HOSTILE, [Point(0, 0.5, HOSTILE), Point(1, 0.7)])],
        [Marker(0.5, HOSTILE, "opened", HOSTILE)],
        title=HOSTILE,
        x_format=lambda _: HOSTILE,
    )
    assert "<script>" not in svg
    root = parse(svg)
    assert root.get("aria-label") == HOSTILE
    assert HOSTILE in texts(root)


def test_bar_chart_groups_bars_by_category() -> None:
    groups = [BarGroup("USD", [1.0, 0.64]), BarGroup("EUR", [0.0, 0.36])]
    root = parse(bar_chart(groups, ["baseline", "current"], title="field:currency", y_max=1.0))
    assert len(root.findall("rect")) == 4
    assert {"USD", "EUR", "baseline", "current", "64%"} <= set(texts(root))


@pytest.mark.parametrize(
    ("groups", "series"),
    [
        ([], ["baseline", "current"]),
        ([BarGroup("x", [None, None])], ["baseline", "current"]),
        ([BarGroup("x", [1.0])], []),
    ],
    ids=["no groups", "no values", "no series"],
)
def test_bar_chart_without_data_says_so(groups: list[BarGroup], series: list[str]) -> None:
    root = parse(bar_chart(groups, series, title="t", empty="nothing"))
    assert "nothing" in texts(root) and len(root.findall("rect")) == 1  # the frame only


def test_bar_chart_with_a_single_bar_and_zero_values() -> None:
    root = parse(bar_chart([BarGroup("median", [None, 42.0])], ["baseline", "current"], title="t"))
    [bar] = root.findall("rect")
    assert float(bar.get("height", "0")) > 0
    zeros = parse(bar_chart([BarGroup("rate", [0.0, 0.0])], ["a", "b"], title="t"))
    assert len(zeros.findall("rect")) == 2


def test_bar_chart_escapes_every_label() -> None:
    svg = bar_chart([BarGroup(HOSTILE, [0.5, 0.25])], [HOSTILE, "current"], title=HOSTILE)
    assert "<script>" not in svg
    parse(svg)


@pytest.mark.parametrize(
    ("value", "ceiling"),
    [
        (0.0, 1.0),
        (-3.0, 1.0),
        (float("nan"), 1.0),
        (0.3, 0.4),
        (1.0, 1.0),
        (1.1, 2.0),
        (39.6, 40.0),
        (41.4, 60.0),
        (11.0, 20.0),
        (950.0, 1000.0),
    ],
)
def test_numeric_axes_end_on_a_round_number(value: float, ceiling: float) -> None:
    assert nice_ceiling(value) == pytest.approx(ceiling)
