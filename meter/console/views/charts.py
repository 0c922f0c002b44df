"""Charts drawn on the server as SVG: no chart library, no script, nothing for the CSP to allow.

Two kinds are enough for the dashboard: stacked bars (views by outcome, per day) and lines
(registrations, activations, …, per day). Every bar and point carries a <title> with its day, series
and value (shown on hover, read by screen readers), and the SVG scales to its container (viewBox).
Each chart is drawn twice, wide and narrow (`NARROW`: a phone's width, its text as large as on a
desktop), and the stylesheet shows the one that fits: a chart scaled down to a phone had letters too
small to read, and one that scrolled sideways hid its value axis. The value axis takes the room its
longest number needs, and the first and last days' labels stay inside the drawing. Colours are
chosen to stay apart for common colour blindness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, NARROW, HEIGHT = 720, 340, 240
FONT = 13
DIGIT = 0.62 * FONT  # the width of a digit, near enough for the system fonts
RIGHT, TOP, BOTTOM = 8, 12, 30
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    values: list[int]
    colour: str = ""


def scale(value: float) -> tuple[int, int]:
    """(top, step) of the value axis: whole-number ticks of 1, 2 or 5 times 10^k, at most 5 of them."""
    if value <= 0:
        return 1, 1
    raw = value / 4
    power = 10 ** max(math.floor(math.log10(raw)), 0) if raw >= 1 else 1
    step = next((m * power for m in (1, 2, 5, 10) if m * power >= raw), 10 * power)
    step = max(int(step), 1)
    return int(math.ceil(value / step) * step), step


def _coloured(series: list[Series]) -> list[Series]:
    return [Series(s.key, s.label, s.values, s.colour or PALETTE[i % len(PALETTE)]) for i, s in enumerate(series)]


@dataclass(frozen=True)
class _Plot:
    """The drawing's room: `left` is the value axis' width, as its longest number needs."""

    width: int
    left: float
    days: int

    @property
    def slot(self) -> float:
        return (self.width - self.left - RIGHT) / max(self.days, 1)


def _plot(width: int, top: int, days: int) -> _Plot:
    return _Plot(width, len(str(top)) * DIGIT + 14, days)


def _frame(plot: _Plot, days: list[str], top: int, step: int, title: str) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    kind = "wide" if plot.width > NARROW else "narrow"
    parts = [
        f'<svg class="chart {kind}" viewBox="0 0 {plot.width} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for value in range(0, top + 1, step):
        y = TOP + plot_h - plot_h * value / top
        parts.append(
            f'<line x1="{plot.left:.1f}" y1="{y:.1f}" x2="{plot.width - RIGHT}" y2="{y:.1f}" stroke="#e0e0e0"/>'
        )
        parts.append(
            f'<text x="{plot.left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end" font-size="{FONT}" fill="#5f6368">{value}</text>'
        )
    labels = 7 if kind == "wide" else 4
    every = max(1, math.ceil(len(days) / labels))
    half = 2.5 * DIGIT  # half of "dd/mm"
    for i, day in enumerate(days):
        if i % every == 0:
            x = min(max(plot.left + plot.slot * (i + 0.5), half), plot.width - half)
            text = f"{day[8:10]}/{day[5:7]}" if len(day) == 10 else escape(day)
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - 10}" text-anchor="middle" font-size="{FONT}" fill="#5f6368">{text}</text>'
            )
    return parts


def stacked_bars(days: list[str], series: list[Series], title: str, width: int = WIDTH) -> Markup:
    series = _coloured(series)
    totals = [sum(s.values[i] for s in series) for i in range(len(days))]
    top, step = scale(max(totals, default=0))
    plot_h = HEIGHT - TOP - BOTTOM
    plot = _plot(width, top, len(days))
    slot = plot.slot
    bar = max(slot * 0.72, 1)
    parts = _frame(plot, days, top, step, title)
    for i, day in enumerate(days):
        base = 0
        x = plot.left + slot * i + (slot - bar) / 2
        for s in series:
            value = s.values[i]
            if not value:
                continue
            h = plot_h * value / top
            y = TOP + plot_h - plot_h * (base + value) / top
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{s.colour}" '
                f'data-day="{escape(day)}" data-series="{escape(s.key)}" data-value="{value}">'
                f"<title>{escape(day)} · {escape(s.label)}: {value}</title></rect>"
            )
            base += value
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - built above from numbers and escaped text


def lines(days: list[str], series: list[Series], title: str, width: int = WIDTH) -> Markup:
    series = _coloured(series)
    top, step = scale(max((v for s in series for v in s.values), default=0))
    plot_h = HEIGHT - TOP - BOTTOM
    plot = _plot(width, top, len(days))
    slot = plot.slot
    parts = _frame(plot, days, top, step, title)
    for s in series:
        points = [(plot.left + slot * (i + 0.5), TOP + plot_h - plot_h * v / top) for i, v in enumerate(s.values)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{s.colour}" stroke-width="2"/>')
        for (x, y), day, value in zip(points, days, s.values, strict=True):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{3 if value else 1.5}" fill="{s.colour}" '
                f'data-day="{escape(day)}" data-series="{escape(s.key)}" data-value="{value}">'
                f"<title>{escape(day)} · {escape(s.label)}: {value}</title></circle>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - built above from numbers and escaped text


def legend(series: list[Series]) -> list[tuple[str, str]]:
    """(label, colour) in the order drawn, for the HTML legend under a chart."""
    return [(s.label, s.colour) for s in _coloured(series)]
