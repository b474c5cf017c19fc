"""Score-over-time chart for one instrument of one course, written as SVG by hand.

Bands go from near-white (least severe) to mid-grey (most severe), each labelled on the right,
so they read in a black-and-white fax; the scores are a black line with round markers on top,
baseline and endpoint labelled beside their points (chart_notes.py), infusion days marked as
triangles along the bottom axis. Grayscale only, 180 × 58 mm, every text a real `<text>` in
DejaVu Sans (the report stylesheet maps that family to the bundled file), so pdftotext reads it.

No matplotlib: payer workers never import it (README "Charts"). The same input gives the same
bytes: coordinates are printed with two decimals, labels use fixed English month names. Export
text (instrument names, band labels) goes through fonts.chart_label and is XML-escaped; the rest
is our own.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from markupsafe import Markup, escape

from pipeline.fonts import MAX_LABEL_CHARS, chart_label, text_width
from pipeline.reports.payer.chart_notes import place
from pipeline.reports.payer.date_ticks import date_ticks, day_number

BAND_GREYS = ["#fafafa", "#ececec", "#dcdcdc", "#cbcbcb", "#b8b8b8", "#a5a5a5"]
PT_PER_MM = 72 / 25.4
WIDTH, HEIGHT = 180 * PT_PER_MM, 58 * PT_PER_MM  # the SVG's user unit is the point
FONT = "DejaVu Sans"
TICK_SIZE, AXIS_LABEL_SIZE, BAND_SIZE, NOTE_SIZE = 7.0, 7.5, 6.2, 6.5  # font sizes, pt
TICK = 3.5  # tick length, pt
TOP, RIGHT, BOTTOM = 3.0, WIDTH - 3.0, HEIGHT - 16.0  # plot area edges (left depends on labels)
MARKER_R, TRIANGLE = 2.4, 2.75  # score dot radius, half the infusion triangle's side, pt
HEADROOM = 11.0  # pt above the scale's maximum: room for "baseline N" over a top score
LABEL_ROOM = 0.4  # band labels take at most this share of the plot width


def _greys(n: int) -> list[str]:
    if n <= 1:
        return BAND_GREYS[:n]
    return [BAND_GREYS[round(i * (len(BAND_GREYS) - 1) / (n - 1))] for i in range(n)]


def _n(value: float) -> str:
    """A coordinate as written: two decimals, no "-0.00"."""
    text = f"{value:.2f}"
    return "0.00" if text == "-0.00" else text


def _text(x: float, y: float, text: str, **attrs: str) -> str:
    extra = "".join(f' {key.replace("_", "-")}="{value}"' for key, value in attrs.items())
    return f'<text x="{_n(x)}" y="{_n(y)}"{extra}>{escape(text)}</text>'


def _fit(text: str, size: float, room: float) -> str:
    """Export text as one chart line (fonts.chart_label: the middle elided) at most `room` wide."""
    limit = MAX_LABEL_CHARS
    label = chart_label(text.replace("\n", " "), limit)
    while limit > 12 and text_width(label, size) > room:
        limit -= 2
        label = chart_label(text.replace("\n", " "), limit)
    return label


def _y_ticks(low: float, high: float) -> list[float]:
    """At most six whole-number ticks on a 1-2-5 step inside [low, high]."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            ticks = [k * step * factor for k in range(-int(-low // (step * factor)),
                                                       int(high // (step * factor)) + 1)]
            if len(ticks) <= 6:
                return [float(t) for t in ticks]
        step *= 10


def _spread(centres: list[float], gap: float, top: float, bottom: float) -> list[float]:
    """Label centres (sorted top to bottom) moved apart to at least `gap`, kept in [top, bottom]."""
    out = list(centres)
    for i in range(len(out) - 2, -1, -1):  # from the bottom up
        out[i] = min(out[i], out[i + 1] - gap)
    if out:
        out[0] = max(out[0], top)
    for i in range(1, len(out)):
        out[i] = max(out[i], out[i - 1] + gap)
    return [min(y, bottom) for y in out]


def score_chart(instrument: str, spec: dict[str, Any], scores: list[dict[str, Any]],
                infusion_days: list[dt.date]) -> Markup:
    """SVG of one instrument's scores (dicts with scored_at, total_score, role)."""
    low, high = float(spec["total_min"]), float(spec["total_max"])
    if high <= low:
        high = low + 1
    points = sorted((s for s in scores if s["total_score"] is not None),
                    key=lambda s: day_number(s["scored_at"]))
    days = [day_number(dt.datetime.combine(d, dt.time(12))) for d in infusion_days]
    times = [day_number(s["scored_at"]) for s in points]

    y_ticks = _y_ticks(low, high)
    tick_width = max((text_width(f"{t:g}", TICK_SIZE) for t in y_ticks), default=TICK_SIZE)
    left = 4.0 + AXIS_LABEL_SIZE + 3.0 + tick_width + 2.0 + TICK  # y label, tick labels, ticks

    def y_of(value: float) -> float:
        return BOTTOM - (value - low) / (high - low) * (BOTTOM - TOP - HEADROOM)

    # severity bands across the plot, labels right-aligned at its right edge
    parts: list[str] = []
    bands = spec["bands"]
    labels: list[tuple[float, str]] = []
    for band, grey in zip(bands, _greys(len(bands)), strict=True):
        # whole-number scales: a band 5-9 covers 4.5..9.5 so adjacent bands meet
        b_low, b_high = max(low, band["low"] - 0.5), min(high, band["high"] + 0.5)
        if b_high <= b_low:
            continue
        parts.append(f'<rect x="{_n(left)}" y="{_n(y_of(b_high))}" width="{_n(RIGHT - left)}" '
                     f'height="{_n(y_of(b_low) - y_of(b_high))}" fill="{grey}"/>')
        text = _fit(f"{band['label']} ({band['low']:g}–{band['high']:g})", BAND_SIZE,
                    (RIGHT - left) * LABEL_ROOM - 6.0)
        labels.append(((y_of(b_low) + y_of(b_high)) / 2, text))
    label_room = min(max((text_width(t, BAND_SIZE) for _, t in labels), default=0.0) + 6.0,
                     (RIGHT - left) * LABEL_ROOM)
    data_right = RIGHT - max(label_room, 6.0)  # the scores never run under a band label
    labels.sort()
    centres = _spread([y for y, _ in labels], BAND_SIZE + 0.8, TOP + BAND_SIZE / 2,
                      BOTTOM - BAND_SIZE / 2)
    parts.append(f'<g font-size="{BAND_SIZE:g}" fill="#222222" text-anchor="end" '
                 'dominant-baseline="central">')
    parts += [_text(RIGHT - 2.0, y, text) for y, (_, text) in zip(centres, labels, strict=True)]
    parts.append("</g>")

    # time axis: data span padded by 4 % (at least a day) on each side, then 3-6 date ticks
    span = times + days
    first, last = (min(span), max(span)) if span else (0.0, 0.0)
    pad = max((last - first) * 0.04, 1.0)
    x_ticks, start, end = date_ticks(first - pad, last + pad) if span else ([], 0.0, 1.0)

    def x_of(day: float) -> float:
        return left + (day - start) / (end - start) * (data_right - left)

    parts += _axes(left, y_ticks, y_of, [(x_of(t), label) for t, label in x_ticks], instrument)

    # scores: black line with round markers; infusion days: triangles on the bottom axis
    xy = [(x_of(t), y_of(float(s["total_score"]))) for t, s in zip(times, points, strict=True)]
    if len(xy) > 1:
        parts.append('<polyline fill="none" stroke="#000000" stroke-width="1.3" '
                     'stroke-linejoin="round" stroke-linecap="round" '
                     f'points="{" ".join(f"{_n(x)},{_n(y)}" for x, y in xy)}"/>')
    parts += [f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{MARKER_R:g}" fill="#000000"/>' for x, y in xy]
    parts += [f'<polygon points="{_n(x)},{_n(BOTTOM - TRIANGLE)} {_n(x - TRIANGLE)},'
              f'{_n(BOTTOM + TRIANGLE)} {_n(x + TRIANGLE)},{_n(BOTTOM + TRIANGLE)}" fill="#000000"/>'
              for x in (x_of(d) for d in days)]
    parts += _notes(points, xy, left, data_right)
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" version="1.1" '
        f'width="{_n(WIDTH)}pt" height="{_n(HEIGHT)}pt" viewBox="0 0 {_n(WIDTH)} {_n(HEIGHT)}">'
        f'<g font-family="{FONT}">' + "".join(parts) + "</g></svg>")


def _axes(left: float, y_ticks: list[float], y_of: Any, x_ticks: list[tuple[float, str]],
          instrument: str) -> list[str]:
    """Left and bottom axis lines, their ticks and tick labels, and the y-axis label."""
    path = f"M{_n(left)} {_n(TOP)}V{_n(BOTTOM)}H{_n(RIGHT)}"
    path += "".join(f"M{_n(left)} {_n(y_of(t))}h{-TICK:g}" for t in y_ticks)
    path += "".join(f"M{_n(x)} {_n(BOTTOM)}v{TICK:g}" for x, _ in x_ticks)
    parts = [f'<path d="{path}" fill="none" stroke="#000000" stroke-width="0.8"/>',
             f'<g font-size="{TICK_SIZE:g}" fill="#000000" text-anchor="end" '
             'dominant-baseline="central">']
    parts += [_text(left - TICK - 2.0, y_of(t), f"{t:g}") for t in y_ticks]
    parts.append(f'</g><g font-size="{TICK_SIZE:g}" fill="#000000" text-anchor="middle" '
                 'dominant-baseline="hanging">')
    parts += [_text(x, BOTTOM + TICK + 1.5, label) for x, label in x_ticks]
    parts.append("</g>")
    centre = (TOP + BOTTOM) / 2
    x = 4.0 + AXIS_LABEL_SIZE * 0.8  # the rotated label's baseline
    label = _fit(f"{instrument} total", AXIS_LABEL_SIZE, BOTTOM - TOP)
    parts.append(_text(x, centre, label, font_size=f"{AXIS_LABEL_SIZE:g}", fill="#000000",
                       text_anchor="middle", transform=f"rotate(-90 {_n(x)} {_n(centre)})"))
    return parts


def _notes(points: list[dict[str, Any]], xy: list[tuple[float, float]], left: float,
           data_right: float) -> list[str]:
    """"baseline N" / "endpoint N" in bold beside their points (chart_notes.place: above unless
    that would cross the line, a marker or the other label), inside the plot area."""
    notes = []
    for s, point in zip(points, xy, strict=True):
        role = {"baseline": "baseline", "latest (endpoint)": "endpoint"}.get(s["role"])
        if role:
            text = f"{role} {float(s['total_score']):g}"
            notes.append((text, point, text_width(text, NOTE_SIZE, bold=True) / 2 + 0.5))
    half_h = NOTE_SIZE * 0.4
    centres = place([(point, half_w, half_h) for _, point, half_w in notes], xy, MARKER_R,
                    (left + 1.0, TOP, data_right, BOTTOM - 2 * TRIANGLE))
    # the text's baseline sits below the box centre by about half the height of its capitals
    return [f'<g font-size="{NOTE_SIZE:g}" font-weight="bold" fill="#000000" '
            'text-anchor="middle">',
            *(_text(x, y + NOTE_SIZE * 0.36, text) for (x, y), (text, _, _) in zip(
                centres, notes, strict=True)), "</g>"]
