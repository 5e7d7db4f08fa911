"""Line charts drawn on the server: the geometry of an SVG chart (points, axis labels, grid),
which the `_chart.html` template turns into markup. No JavaScript."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 90, 40, 30, 30
GRID_LINES = 4


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str
    value: int


@dataclass(frozen=True)
class Series:
    key: str  # CSS class
    name: str
    points: list[Point]

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


@dataclass(frozen=True)
class Tick:
    position: float
    value: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    right: int  # x of the plot's right edge
    bottom: int  # y of the plot's bottom edge
    series: list[Series]
    labels: list[Point]  # along the x axis
    grid: list[Tick]  # along the y axis


def line_chart(labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[int]]]
               ) -> Chart:
    """A chart of one point per label for each series `(css key, name, values)`; the y axis
    runs from 0 to the largest value."""
    top = max([0, *(v for _, _, values in series for v in values)]) or 1
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM
    step = (right - LEFT) / max(len(labels) - 1, 1)

    def x(i: int) -> float:
        return LEFT + step * i if len(labels) > 1 else (LEFT + right) / 2

    def y(value: int) -> float:
        return bottom - (bottom - TOP) * value / top

    return Chart(
        width=WIDTH, height=HEIGHT, left=LEFT, right=right, bottom=bottom,
        series=[Series(key, name, [Point(x(i), y(v), labels[i], v) for i, v in enumerate(values)])
                for key, name, values in series],
        labels=[Point(x(i), bottom, label, 0) for i, label in enumerate(labels)],
        grid=[Tick(y(top * n // GRID_LINES), top * n // GRID_LINES)
              for n in range(GRID_LINES + 1)],
    )
