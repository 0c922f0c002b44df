"""The dashboard's charts keep their axes: the value axis has the room of its longest number, the
first and last days' labels stay inside the drawing, wide (a desktop) and narrow (a phone)."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from meter.console.views.charts import DIGIT, NARROW, WIDTH, Series, lines, stacked_bars

TEXT = re.compile(r'<text x="([\d.]+)" y="[\d.]+" text-anchor="(end|middle)"[^>]*>([^<]+)</text>')


def _days(n: int) -> list[str]:
    return [(date(2026, 1, 1) + timedelta(days=i)).isoformat() for i in range(n)]


@pytest.mark.parametrize("draw", [stacked_bars, lines])
@pytest.mark.parametrize("width", [WIDTH, NARROW])
@pytest.mark.parametrize(("days", "peak"), [(1, 3), (30, 87), (30, 123456), (366, 4200)])
def test_every_label_is_inside_the_drawing(draw, width, days, peak):
    values = [peak * ((i * 7) % 11) // 10 for i in range(days)]
    svg = str(draw(_days(days), [Series("a", "A", values)], "t", width=width))
    assert f'viewBox="0 0 {width} ' in svg
    labels = TEXT.findall(svg)
    assert labels
    for x, anchor, text in labels:
        half = len(text) * DIGIT / 2
        left, right = (float(x) - 2 * half, float(x)) if anchor == "end" else (float(x) - half, float(x) + half)
        assert left >= 0 and right <= width, (text, left, right)
    assert any(anchor == "end" and text == "0" for _x, anchor, text in labels)  # the value axis is drawn
