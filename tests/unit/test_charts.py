"""Server-side SVG charts: well-formed, accessible, scaled, and safe with any text."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from pintuan.web.console.charts import Point, bar_chart, line_chart, nice_ceiling, rate_chart

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output, parsed to check it


def money(value: float) -> str:
    return f"${value / 100:.0f}"


def test_a_bar_chart_is_an_image_named_by_its_title_and_description() -> None:
    svg = bar_chart(
        [Point("Nov 1", 1500, "$15.00"), Point("Nov 2", 0, "$0.00")],
        chart_id="sales",
        title="Sales per day",
        description="Sales of the last 2 days",
        format_value=money,
    )

    root = parse(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "sales-title sales-desc"
    assert root.find(f"{SVG}title").text == "Sales per day"  # type: ignore[union-attr]
    assert root.find(f"{SVG}desc").text == "Sales of the last 2 days"  # type: ignore[union-attr]
    assert "style=" not in svg  # the pages' CSP allows no inline style
    assert "<script" not in svg


def test_bars_are_scaled_to_a_round_top_and_each_names_its_value() -> None:
    svg = bar_chart(
        [Point("a", 500, "five"), Point("b", 1000, "ten"), Point("c", None, "none")],
        chart_id="c",
        title="t",
        description="d",
        format_value=lambda v: f"{v:g}",
        height=228,  # a plot area 188 high: 12 above it, 28 below
    )

    bars = parse(svg).findall(f".//{SVG}rect")
    heights = [float(b.get("height", "0")) for b in bars]
    assert len(bars) == 2  # no bar for a missing value
    assert heights == [94.0, 188.0]  # 1000 is the top of the axis
    assert [b.find(f"{SVG}title").text for b in bars] == ["a: five", "b: ten"]  # type: ignore[union-attr]
    ticks = [t.text for t in parse(svg).iter(f"{SVG}text") if t.get("class") == "chart-tick"]
    assert ticks == ["0", "250", "500", "750", "1000"]


def test_text_in_a_chart_is_escaped() -> None:
    svg = bar_chart(
        [Point("<b>", 1, "&</title><script>")],
        chart_id='x" onload="alert(1)',
        title="<script>alert(1)</script>",
        description="a & b",
        format_value=str,
    )

    root = parse(svg)  # still well-formed XML
    assert root.find(f"{SVG}title").text == "<script>alert(1)</script>"  # type: ignore[union-attr]
    assert "<script" not in svg
    assert root.get("onload") is None


def test_a_line_breaks_where_a_value_is_missing() -> None:
    svg = line_chart(
        [Point("1", 1, "1"), Point("2", 2, "2"), Point("3", None, "-"), Point("4", 3, "3")],
        chart_id="l",
        title="t",
        description="d",
        format_value=str,
    )

    root = parse(svg)
    lines = root.findall(f".//{SVG}polyline")
    assert len(lines) == 1  # 1 and 2 joined; 4 stands alone after the gap
    assert len(lines[0].get("points", "").split()) == 2
    assert len(root.findall(f".//{SVG}circle")) == 3


def test_a_rate_chart_runs_from_zero_to_one_hundred_percent() -> None:
    svg = rate_chart(
        [Point("Mon", 0.5, "50%"), Point("Tue", 1.2, "120%"), Point("Wed", None, "no teams")],
        chart_id="r",
        title="Success rate",
        description="d",
        format_rate=lambda v: f"{v:.0%}",
        height=228,
    )

    root = parse(svg)
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-tick"]
    dots = [float(c.get("cy", "0")) for c in root.findall(f".//{SVG}circle")]
    assert ticks == ["0%", "25%", "50%", "75%", "100%"]
    assert dots == [106.0, 12.0]  # half way up; a rate above 1 is drawn at the top


@pytest.mark.parametrize(("width", "most"), [(360, 4), (640, 8), (960, 13)])
def test_many_days_get_only_as_many_axis_labels_as_fit(width: int, most: int) -> None:
    points = [Point(f"d{n}", n, str(n)) for n in range(30)]

    svg = bar_chart(points, chart_id="m", title="t", description="d", format_value=str, width=width)

    labels = [t.text for t in parse(svg).iter(f"{SVG}text") if t.get("class") == "chart-label"]
    assert 2 <= len(labels) <= most
    assert labels[0] == "d0"


@pytest.mark.parametrize(
    ("value", "ceiling"),
    [(0, 1), (1, 1), (7, 10), (11, 20), (2100, 4000), (4600, 5000), (0.3, 0.4), (99999, 100000)],
)
def test_the_value_axis_tops_out_at_a_round_number(value: float, ceiling: float) -> None:
    assert nice_ceiling(value) == pytest.approx(ceiling)


def test_a_chart_of_nothing_can_keep_a_sensible_axis() -> None:
    svg = bar_chart(
        [Point("a", 0, "0"), Point("b", 0, "0")],
        chart_id="z",
        title="t",
        description="d",
        format_value=lambda v: f"{v:g}",
        least_top=100,
    )

    ticks = [t.text for t in parse(svg).iter(f"{SVG}text") if t.get("class") == "chart-tick"]
    assert ticks == ["0", "25", "50", "75", "100"]


def test_an_empty_chart_still_draws_its_frame() -> None:
    svg = bar_chart([], chart_id="e", title="Nothing yet", description="No sales", format_value=str)

    root = parse(svg)
    assert root.findall(f".//{SVG}rect") == []
    assert root.find(f"{SVG}title").text == "Nothing yet"  # type: ignore[union-attr]


@pytest.mark.parametrize("largest", [1, 2, 3, 7, 40])
def test_the_value_axis_of_small_counts_has_no_repeated_ticks(largest: int) -> None:
    svg = line_chart(
        [Point("W1", 0, "0 visits"), Point("W2", float(largest), f"{largest} visits")],
        chart_id="visits",
        title="Visits per week",
        description="Visits",
        format_value=lambda v: str(round(v)),
    )

    ticks = [t.text for t in parse(svg).iter(f"{SVG}text") if t.get("class") == "chart-tick"]
    assert len(ticks) >= 2
    assert len(set(ticks)) == len(ticks), ticks
    assert ticks[0] == "0"
