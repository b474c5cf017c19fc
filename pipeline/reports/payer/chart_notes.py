"""Where the score chart's "baseline N" / "endpoint N" labels go: beside their point, on the first
of eight spots around it (above first) that crosses no part of the score line, no marker and no
other label; when every spot touches something, the one that touches least.
"""

from __future__ import annotations

from collections.abc import Sequence

Box = tuple[float, float, float, float]  # x0, y0, x1, y1
Point = tuple[float, float]

# box centre offsets as multiples of (gap + half width, gap + half height); above first
SPOTS = [(0.0, -1.0), (1.0, -1.0), (-1.0, -1.0), (1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (1.0, 1.0),
         (-1.0, 1.0)]


def _crosses(box: Box, a: Point, b: Point) -> bool:
    """Whether the segment a-b passes through the box (Liang-Barsky clipping)."""
    x0, y0, x1, y1 = box
    t0, t1 = 0.0, 1.0
    dx, dy = b[0] - a[0], b[1] - a[1]
    for p, q in ((-dx, a[0] - x0), (dx, x1 - a[0]), (-dy, a[1] - y0), (dy, y1 - a[1])):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return False
    return True


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place(notes: Sequence[tuple[Point, float, float]], line: Sequence[Point], marker_r: float,
          area: Box) -> list[Point]:
    """Box centres for labels given as ((x, y) of the point, half width, half height), in order;
    each box stays inside `area` and avoids the line, its markers (radius marker_r) and the
    boxes placed before it."""
    segments = list(zip(line, line[1:], strict=False))
    placed: list[Box] = []
    centres = []
    for (px, py), half_w, half_h in notes:
        gap = marker_r + 1.2
        best: tuple[int, Point, Box] | None = None
        for sx, sy in SPOTS:
            cx = min(max(px + sx * (gap + half_w), area[0] + half_w), area[2] - half_w)
            cy = min(max(py + sy * (gap + half_h), area[1] + half_h), area[3] - half_h)
            box = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
            grown = (box[0] - marker_r, box[1] - marker_r, box[2] + marker_r, box[3] + marker_r)
            cost = (sum(_crosses(box, a, b) for a, b in segments)
                    + 2 * sum(grown[0] <= x <= grown[2] and grown[1] <= y <= grown[3] for x, y in line)
                    + 3 * sum(_overlap(box, other) for other in placed))
            if best is None or cost < best[0]:
                best = (cost, (cx, cy), box)
            if cost == 0:
                break
        assert best is not None
        placed.append(best[2])
        centres.append(best[1])
    return centres
