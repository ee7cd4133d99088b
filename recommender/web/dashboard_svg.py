"""Small charts as inline SVG, drawn on the server for the operator's page
(:mod:`recommender.web.routes_dashboard`): lines over time and bars.

Nothing is loaded from anywhere: each chart is one ``<svg>`` element. Every
text (labels, titles, series names) is escaped (``markupsafe``, which Jinja2
brings), so the data may be anything. Each point and bar carries its figures
as ``data-*`` attributes and a ``<title>`` (the browser's tooltip), so that
what a chart shows can be read back and checked.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape

#: Series colours (colour-blind safe: Okabe and Ito), reused in turn.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#F0E442",
    "#000000",
)
WIDTH = 760
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 14, 44
#: X axis labels shown at most.
MAX_X_LABELS = 8


@dataclass(frozen=True)
class Point:
    """One point of a line: ``x`` an index into the chart's x labels."""

    x: int
    y: float
    title: str
    data: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Bar:
    """One bar: its label (left of it), value, tooltip and figures."""

    label: str
    value: float
    title: str
    colour: str = PALETTE[0]
    data: Mapping[str, str] = field(default_factory=dict)


def percent(value: float) -> str:
    return f"{value:.1%}" if value < 0.1 else f"{value:.0%}"


def plain(value: float) -> str:
    return f"{value:g}" if abs(value) >= 1 or value == 0 else f"{value:.3g}"


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at or above ``value``."""
    if not value > 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value * (1 - 1e-12):
            return step * power
    return 10 * power  # pragma: no cover - the loop ends at 10


def _attributes(data: Mapping[str, str]) -> str:
    return "".join(f' data-{escape(key)}="{escape(value)}"' for key, value in data.items())


def _number(value: float) -> str:
    return f"{value:.1f}"


def line_chart(
    series: Mapping[str, Sequence[Point]],
    x_labels: Sequence[str],
    *,
    chart_id: str,
    label: str,
    y_format: str = "percent",
    y_min: float = 0.0,
    y_max: float | None = None,
    references: Sequence[tuple[str, float]] = (),
    height: int = 260,
) -> Markup:
    """Lines of ``series`` (name -> points) over ``x_labels``, with a legend;
    ``references``: horizontal dashed lines (name, value). A point missing
    from a series breaks its line there. ``label``: the chart's accessible
    name. ``y_format``: ``percent`` or ``plain``."""
    fmt = percent if y_format == "percent" else plain
    values = [p.y for points in series.values() for p in points] + [v for _, v in references]
    top = y_max if y_max is not None else nice_ceiling(max(values, default=0.0) * 1.05)
    if y_max is None and y_format == "percent" and max(values, default=0.0) <= 1.0:
        top = min(top, 1.0)  # a rate: never above 100%
    if top <= y_min:
        top = y_min + 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM
    n = max(len(x_labels), 1)

    def x_of(index: int) -> float:
        return LEFT + (plot_w / 2 if n == 1 else plot_w * index / (n - 1))

    def y_of(value: float) -> float:
        share = (min(max(value, y_min), top) - y_min) / (top - y_min)
        return TOP + plot_h * (1 - share)

    parts = [_frame(chart_id, label, height, "line")]
    parts += _y_axis([y_min + (top - y_min) * i / 4 for i in range(5)], y_of, fmt)
    every = max(1, math.ceil(n / MAX_X_LABELS))
    for index, text in enumerate(x_labels):
        if index % every == 0 or index == n - 1:
            anchor = "middle" if n == 1 else {0: "start", n - 1: "end"}.get(index, "middle")
            parts.append(
                f'<text class="tick" x="{_number(x_of(index))}" y="{height - BOTTOM + 16}" '
                f'text-anchor="{anchor}">{escape(text)}</text>'
            )
    legend: list[tuple[str, str, bool]] = []
    for at, (name, value) in enumerate(references):
        colour = "#666666" if at == 0 else PALETTE[(at + 3) % len(PALETTE)]
        y = _number(y_of(value))
        parts.append(
            f'<line class="reference" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}" '
            f'stroke="{colour}" stroke-dasharray="6 4" data-series="{escape(name)}" '
            f'data-value="{value:.6g}"><title>{escape(name)}: {escape(fmt(value))}</title></line>'
        )
        legend.append((name, colour, True))
    for at, (name, points) in enumerate(series.items()):
        colour = PALETTE[at % len(PALETTE)]
        ordered = sorted(points, key=lambda p: p.x)
        path, previous = [], None
        for point in ordered:
            step = "L" if previous is not None and point.x == previous + 1 else "M"
            path.append(f"{step}{_number(x_of(point.x))},{_number(y_of(point.y))}")
            previous = point.x
        if path:
            parts.append(
                f'<path class="series" d="{" ".join(path)}" fill="none" stroke="{colour}" '
                f'stroke-width="2" data-series="{escape(name)}"/>'
            )
        for point in ordered:
            parts.append(
                f'<circle class="point" cx="{_number(x_of(point.x))}" '
                f'cy="{_number(y_of(point.y))}" r="3.5" fill="{colour}" '
                f'data-series="{escape(name)}" data-x="{escape(x_labels[point.x])}" '
                f'data-value="{point.y:.6g}"{_attributes(point.data)}>'
                f"<title>{escape(point.title)}</title></circle>"
            )
        legend.append((name, colour, False))
    parts.append("</svg>")
    return Markup("".join(parts)) + _legend(legend)


def bar_chart(
    bars: Sequence[Bar],
    *,
    chart_id: str,
    label: str,
    value_format: str = "plain",
    max_value: float | None = None,
    label_width: int = 300,
) -> Markup:
    """Horizontal bars, one per row, labelled on the left and valued on the
    right (the value in ``value_format``: ``percent`` or ``plain``)."""
    fmt = percent if value_format == "percent" else plain
    row, gap = 20, 6
    height = TOP + len(bars) * (row + gap) + 8
    top = max_value if max_value is not None else max((b.value for b in bars), default=0.0)
    top = top if top > 0 else 1.0
    left, right = label_width, 70
    plot_w = WIDTH - left - right
    parts = [_frame(chart_id, label, height, "bar")]
    for index, bar in enumerate(bars):
        y = TOP + index * (row + gap)
        width = plot_w * max(bar.value, 0.0) / top
        parts.append(
            f'<text class="bar-label" x="{left - 8}" y="{y + row * 0.7:.1f}" text-anchor="end">'
            f"{escape(_clip(bar.label, label_width // 7))}</text>"
            f'<rect class="bar" x="{left}" y="{y}" width="{_number(width)}" height="{row}" '
            f'fill="{escape(bar.colour)}" data-label="{escape(bar.label)}" '
            f'data-value="{bar.value:.6g}"{_attributes(bar.data)}>'
            f"<title>{escape(bar.title)}</title></rect>"
            f'<text class="bar-value" x="{left + width + 6:.1f}" y="{y + row * 0.7:.1f}">'
            f"{escape(fmt(bar.value))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def column_chart(
    bars: Sequence[Bar],
    *,
    chart_id: str,
    label: str,
    value_format: str = "plain",
    height: int = 220,
) -> Markup:
    """Vertical bars in order (e.g. runs oldest to newest), each labelled
    below when there is room."""
    fmt = percent if value_format == "percent" else plain
    top = nice_ceiling(max((b.value for b in bars), default=0.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM
    slot = plot_w / max(len(bars), 1)

    def y_of(value: float) -> float:
        return TOP + plot_h * (1 - min(max(value, 0.0), top) / top)

    parts = [_frame(chart_id, label, height, "column")]
    parts += _y_axis([top * i / 4 for i in range(5)], y_of, fmt)
    every = max(1, math.ceil(len(bars) / MAX_X_LABELS))
    for index, bar in enumerate(bars):
        x = LEFT + slot * index + slot * 0.15
        # A bar of 0 (a failed run's time) still shows its colour, 2 px high.
        y = min(y_of(bar.value), TOP + plot_h - 2)
        parts.append(
            f'<rect class="bar" x="{_number(x)}" y="{_number(y)}" width="{_number(slot * 0.7)}" '
            f'height="{_number(TOP + plot_h - y)}" fill="{escape(bar.colour)}" '
            f'data-label="{escape(bar.label)}" data-value="{bar.value:.6g}"'
            f"{_attributes(bar.data)}><title>{escape(bar.title)}</title></rect>"
        )
        if index % every == 0 or index == len(bars) - 1:
            parts.append(
                f'<text class="tick" x="{_number(x + slot * 0.35)}" y="{height - BOTTOM + 16}" '
                f'text-anchor="middle">{escape(_clip(bar.label, 16))}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def legend(entries: Sequence[tuple[str, str]]) -> Markup:
    """A legend of (name, colour) swatches."""
    return _legend([(name, colour, False) for name, colour in entries])


def _frame(chart_id: str, label: str, height: int, kind: str) -> str:
    return (
        f'<svg class="chart chart-{kind}" id="{escape(chart_id)}" role="img" '
        f'aria-label="{escape(label)}" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>'
    )


def _y_axis(
    ticks: Sequence[float], y_of: Callable[[float], float], fmt: Callable[[float], str]
) -> list[str]:
    parts = []
    for value in ticks:
        y = _number(y_of(value))
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(fmt(value))}</text>'
        )
    return parts


def _legend(entries: Sequence[tuple[str, str, bool]]) -> Markup:
    if not entries:
        return Markup("")
    items = "".join(
        f'<li><span class="swatch{" dashed" if dashed else ""}" '
        f'style="border-color: {escape(colour)}"></span>{escape(name)}</li>'
        for name, colour, dashed in entries
    )
    return Markup(f'<ul class="legend">{items}</ul>')


def _clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[: max(length - 1, 1)] + "…"
