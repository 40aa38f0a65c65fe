"""Small charts drawn on the server as inline SVG: no JavaScript, no CDN, and they print.

The admin pages are read on slow connections and printed for community scorecard meetings,
so a chart is a few hundred bytes of SVG inside the page. Every data point carries its value
(`data-value` and a `<title>` tooltip) so the figures can be read and tested without pixels.
A label can be marked partial (a month only partly in the period): its bar is paler and
its point hollow, with `data-partial="true"`; the page says why beside the chart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 250
LEFT, RIGHT, TOP, BOTTOM = 44, 14, 36, 40  # plot margins, in SVG units
LEGEND = 22  # extra height under the plot for the legend


@dataclass(frozen=True)
class Series:
    """One line: a value (or None, a gap) for each label on the x axis."""

    label: str
    values: Sequence[float | None]
    color: str


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _x_positions(count: int) -> list[float]:
    """The centre of each label's band: lines and bars share the same x for a month."""
    step = (WIDTH - LEFT - RIGHT) / max(count, 1)
    return [LEFT + step * (i + 0.5) for i in range(count)]


def _y(value: float, low: float, high: float) -> float:
    span = (high - low) or 1
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - (value - low) / span)


def _frame(labels: Sequence[str], ticks: Sequence[float], low: float, high: float,
           fmt: Callable[[float], str], title: str, height: int) -> list[str]:
    """The opening tag, the title, horizontal grid lines with their values and the x labels."""
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text class="chart-title" x="{LEFT - 36}" y="18" font-size="15" font-weight="bold" '
        f'fill="#101828">{escape(title)}</text>',
    ]
    for tick in ticks:
        y = _y(tick, low, high)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                     'stroke="#d0d5dd" stroke-width="1"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12" '
                     f'fill="#475467">{escape(fmt(tick))}</text>')
    every = max(1, -(-len(labels) // 12))  # at most 12 labels, so they never overlap
    for i, (x, label) in enumerate(zip(_x_positions(len(labels)), labels, strict=True)):
        if i % every == 0:  # a label may have two lines: month, then year
            lines = "".join(f'<tspan x="{x:.1f}" dy="{0 if n == 0 else 14}">{escape(text)}</tspan>'
                            for n, text in enumerate(label.split("\n")))
            parts.append(f'<text y="{HEIGHT - BOTTOM + 17}" text-anchor="middle" font-size="12" '
                         f'fill="#344054">{lines}</text>')
    return parts


def _partial(partial: Sequence[bool], count: int) -> list[bool]:
    """Which labels are partial (none when not said)."""
    return list(partial) if partial else [False] * count


def line_chart(labels: Sequence[str], series: Sequence[Series], *, low: float, high: float,
               ticks: Sequence[float], title: str,
               fmt: Callable[[float], str] = _num, partial: Sequence[bool] = ()) -> Markup:
    """Lines over months; a None value breaks the line (a month without answers)."""
    height = HEIGHT + (LEGEND if len(series) > 1 else 0)
    parts = _frame(labels, ticks, low, high, fmt, title, height)
    xs = _x_positions(len(labels))
    marked = _partial(partial, len(labels))
    for one in series:
        points = [(x, _y(v, low, high), v, label, part)
                  for x, v, label, part in zip(xs, one.values, labels, marked, strict=True)
                  if v is not None]
        runs: list[list[str]] = [[]]
        for x, v in zip(xs, one.values, strict=True):
            if v is None:
                runs.append([])
            else:
                runs[-1].append(f"{x:.1f},{_y(v, low, high):.1f}")
        for run in runs:
            if len(run) > 1:
                parts.append(f'<polyline points="{" ".join(run)}" fill="none" '
                             f'stroke="{one.color}" stroke-width="2.5" stroke-linejoin="round"/>')
        for x, y, value, label, part in points:
            look = (f'class="point partial" fill="#ffffff" stroke="{one.color}" '
                    'stroke-width="2" data-partial="true"' if part
                    else f'class="point" fill="{one.color}"')
            parts.append(
                f'<circle {look} cx="{x:.1f}" cy="{y:.1f}" r="4" '
                f'data-series="{escape(one.label)}" data-label="{escape(label)}" '
                f'data-value="{value}"><title>{escape(one.label)}, '
                f'{escape(label.replace(chr(10), " "))}: '
                f"{escape(fmt(value))}</title></circle>")
    if len(series) > 1:
        x = LEFT
        for one in series:
            y = HEIGHT + 6
            parts.append(f'<rect x="{x}" y="{y - 9}" width="14" height="4" fill="{one.color}"/>')
            parts.append(f'<text x="{x + 20}" y="{y - 3}" font-size="13" fill="#101828">'
                         f"{escape(one.label)}</text>")
            x += 28 + 9 * len(one.label)
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(labels: Sequence[str], values: Sequence[int], *, title: str,
              color: str = "#5b8def", partial: Sequence[bool] = ()) -> Markup:
    """Bars with their value written on top: counts such as responses per month."""
    high = _nice_top(max(values, default=0))
    steps = 4 if f"{high:g}".startswith("2") else 5  # 20 in 5s, 50 in 10s, 100 in 20s
    ticks = [high * i / steps for i in range(steps + 1)]
    parts = _frame(labels, ticks, 0, high, lambda v: f"{v:,.0f}", title, HEIGHT)
    xs = _x_positions(len(labels))
    band = (WIDTH - LEFT - RIGHT) / max(len(labels), 1)
    width = min(44.0, band * 0.7)
    for x, value, label, part in zip(xs, values, labels, _partial(partial, len(labels)),
                                     strict=True):
        y = _y(value, 0, high)
        look = 'class="bar partial" fill-opacity="0.4" data-partial="true"' if part \
            else 'class="bar"'
        parts.append(
            f'<rect {look} x="{x - width / 2:.1f}" y="{y:.1f}" width="{width:.1f}" '
            f'height="{HEIGHT - BOTTOM - y:.1f}" fill="{color}" data-label="{escape(label)}" '
            f'data-value="{value}"><title>{escape(label.replace(chr(10), " "))}: {value:,}'
            "</title></rect>")
        if len(labels) <= 18:
            parts.append(f'<text x="{x:.1f}" y="{y - 4:.1f}" text-anchor="middle" '
                         f'font-size="11" fill="#101828">{value:,}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _nice_top(value: float) -> float:
    """A round axis maximum above `value` (10, 20, 50, 100, 200, ...), so ticks read well."""
    top = 10.0
    while top < value:
        for factor in (2, 2.5, 2):  # 10 -> 20 -> 50 -> 100
            top *= factor
            if top >= value:
                break
    return top
