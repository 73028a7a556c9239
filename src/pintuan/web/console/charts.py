"""Charts drawn on the server as SVG text: no chart library, no script.

Each function is pure: data in, one ``<svg>`` element out. The chart is an image to assistive
technology (``role="img"``) named by its ``<title>`` and explained by its ``<desc>``; every bar
and point carries its own ``<title>`` (its label and value), which browsers also show on
hover. Colours come from presentation attributes and CSS classes, never ``style`` attributes,
so the pages' content security policy needs no exception. Words and numbers arrive already
translated and formatted: the caller knows the viewer's language and the currency.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup

WIDTH = 640
HEIGHT = 240
_LEFT = 64  # room for the value axis labels
_RIGHT = 12
_TOP = 12
_BOTTOM = 28  # room for the day labels
_LABEL_ROOM = 64  # width one axis label needs, so that labels never overlap


@dataclass(frozen=True, slots=True)
class Point:
    """One x position: its axis label, its value (None: nothing to show) and the words for it."""

    label: str
    value: float | None
    text: str


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 4, 5 or 10 times a power of ten that is at least ``value``.

    The axis has four intervals, so from 100 up every tick of such a top is a whole number."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 4, 5, 10):
        if value <= step * power * (1 + 1e-9):
            return float(step * power)
    return float(10 * power)


def axis_ticks(top_value: float, format_value: Callable[[float], str]) -> list[float]:
    """The value axis's ticks from zero to ``top_value``: four intervals, or fewer when the
    labels would repeat (counts up to 2 drawn in quarters read "0, 0, 1, 2, 2")."""
    for intervals in (4, 2, 1):
        ticks = [top_value * step / intervals for step in range(intervals + 1)]
        labels = [format_value(value) for value in ticks]
        if len(set(labels)) == len(labels):
            return ticks
    return [0.0, top_value]


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


class _Frame:
    """Where things go: the plot area inside the margins, x slots and the value scale."""

    def __init__(self, count: int, top_value: float, width: int, height: int) -> None:
        self.count = max(count, 1)
        self.top_value = top_value
        self.left, self.right = _LEFT, width - _RIGHT
        self.top, self.bottom = _TOP, height - _BOTTOM
        self.slot = (self.right - self.left) / self.count

    def x_center(self, index: int) -> float:
        return self.left + self.slot * (index + 0.5)

    def y(self, value: float) -> float:
        share = value / self.top_value if self.top_value else 0.0
        return self.bottom - share * (self.bottom - self.top)


def _open(chart_id: str, title: str, description: str, width: int, height: int) -> list[Markup]:
    return [
        Markup(
            '<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {} {}" '
            'role="img" aria-labelledby="{}-title {}-desc" font-size="12" '
            'font-family="sans-serif">'
        ).format(width, height, chart_id, chart_id),
        Markup('<title id="{}-title">{}</title>').format(chart_id, title),
        Markup('<desc id="{}-desc">{}</desc>').format(chart_id, description),
    ]


def _axes(
    frame: _Frame, points: Sequence[Point], format_value: Callable[[float], str]
) -> list[Markup]:
    parts = [Markup('<g class="chart-axes" aria-hidden="true">')]
    for value in axis_ticks(frame.top_value, format_value):
        y = _number(frame.y(value))
        parts.append(
            Markup(
                '<line class="chart-grid" x1="{}" x2="{}" y1="{}" y2="{}" stroke="#d9dde3" '
                'stroke-width="1"/>'
            ).format(frame.left, frame.right, y, y)
        )
        parts.append(
            Markup(
                '<text class="chart-tick" x="{}" y="{}" text-anchor="end" fill="#5b6472">{}</text>'
            ).format(frame.left - 6, _number(frame.y(value) + 4), format_value(value))
        )
    room = max(1, int((frame.right - frame.left) // _LABEL_ROOM))
    every = max(1, math.ceil(len(points) / room))
    for index, point in enumerate(points):
        if index % every == 0:
            parts.append(
                Markup(
                    '<text class="chart-label" x="{}" y="{}" text-anchor="middle" '
                    'fill="#5b6472">{}</text>'
                ).format(_number(frame.x_center(index)), frame.bottom + 18, point.label)
            )
    parts.append(
        Markup(
            '<line class="chart-baseline" x1="{}" x2="{}" y1="{}" y2="{}" stroke="#8a93a0" '
            'stroke-width="1"/></g>'
        ).format(frame.left, frame.right, frame.bottom, frame.bottom)
    )
    return parts


def _point_title(point: Point) -> Markup:
    return Markup("<title>{}: {}</title>").format(point.label, point.text)


def bar_chart(
    points: Sequence[Point],
    *,
    chart_id: str,
    title: str,
    description: str,
    format_value: Callable[[float], str],
    least_top: float = 0.0,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Markup:
    """Vertical bars, one per point (a None value draws no bar), on a value axis from zero to
    a round number at least ``least_top`` (e.g. 100 minor units, so money ticks are exact)."""
    values = [p.value for p in points if p.value is not None]
    top = nice_ceiling(max([*values, least_top]))
    frame = _Frame(len(points), top, width, height)
    parts = _open(chart_id, title, description, width, height)
    parts += _axes(frame, points, format_value)
    bar_width = max(1.0, frame.slot * 0.7)
    parts.append(Markup('<g class="chart-bars">'))
    for index, point in enumerate(points):
        if point.value is None:
            continue
        y = frame.y(max(point.value, 0.0))
        parts.append(
            Markup(
                '<rect class="chart-bar" x="{}" y="{}" width="{}" height="{}" '
                'fill="#e4393c">{}</rect>'
            ).format(
                _number(frame.x_center(index) - bar_width / 2),
                _number(y),
                _number(bar_width),
                _number(frame.bottom - y),
                _point_title(point),
            )
        )
    parts.append(Markup("</g></svg>"))
    return Markup("").join(parts)


def line_chart(
    points: Sequence[Point],
    *,
    chart_id: str,
    title: str,
    description: str,
    format_value: Callable[[float], str],
    top_value: float | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Markup:
    """A line through the points with a dot on each; a None value breaks the line there.

    ``top_value`` fixes the top of the value axis (1.0 for a rate); by default it is the
    smallest round number above the largest value."""
    values = [p.value for p in points if p.value is not None]
    top = top_value if top_value is not None else nice_ceiling(max(values, default=0.0))
    frame = _Frame(len(points), top, width, height)
    parts = _open(chart_id, title, description, width, height)
    parts += _axes(frame, points, format_value)
    runs: list[list[str]] = [[]]
    for index, point in enumerate(points):
        if point.value is None:
            runs.append([])
            continue
        runs[-1].append(f"{_number(frame.x_center(index))},{_number(frame.y(point.value))}")
    parts.append(Markup('<g class="chart-lines">'))
    for run in runs:
        if len(run) > 1:
            parts.append(
                Markup(
                    '<polyline class="chart-line" points="{}" fill="none" stroke="#2f6fdf" '
                    'stroke-width="2" stroke-linejoin="round"/>'
                ).format(" ".join(run))
            )
    parts.append(Markup('</g><g class="chart-dots">'))
    for index, point in enumerate(points):
        if point.value is None:
            continue
        parts.append(
            Markup(
                '<circle class="chart-dot" cx="{}" cy="{}" r="3.5" fill="#2f6fdf">{}</circle>'
            ).format(
                _number(frame.x_center(index)), _number(frame.y(point.value)), _point_title(point)
            )
        )
    parts.append(Markup("</g></svg>"))
    return Markup("").join(parts)


def rate_chart(
    points: Sequence[Point],
    *,
    chart_id: str,
    title: str,
    description: str,
    format_rate: Callable[[float], str],
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Markup:
    """Rates between 0 and 1 as a line on a fixed axis from 0 to 1 (100%); a None rate
    (nothing to measure that day) leaves a gap rather than pretending to be zero."""
    clamped = [
        Point(p.label, None if p.value is None else min(max(p.value, 0.0), 1.0), p.text)
        for p in points
    ]
    return line_chart(
        clamped,
        chart_id=chart_id,
        title=title,
        description=description,
        format_value=format_rate,
        top_value=1.0,
        width=width,
        height=height,
    )
