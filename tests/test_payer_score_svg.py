"""The payer packet's score chart, drawn as SVG without matplotlib (issue 16, item 5).

The SVG is parsed with xml.etree and read the way a reviewer reads the printed chart: the y scale
from the severity bands (a band low-high covers low-0.5..high+0.5 of the instrument's scale),
the time scale from two labelled date ticks; every score marker, line vertex and infusion
triangle must then sit where that linear map puts its (day, score). The fonts module is checked
against matplotlib's own FreeType reader, and a fresh interpreter drawing a chart (and importing
everything a payer worker imports) must never import matplotlib.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from pipeline.fonts import FONT_DIR, FONT_FILES, chart_label, font_coverage, text_width
from pipeline.reports.payer.charts import score_chart

NS = "{http://www.w3.org/2000/svg}"
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
PHQ9 = {"total_min": 0, "total_max": 27, "bands": [
    {"label": "minimal", "low": 0, "high": 4}, {"label": "mild", "low": 5, "high": 9},
    {"label": "moderate", "low": 10, "high": 14}, {"label": "moderately severe", "low": 15, "high": 19},
    {"label": "severe", "low": 20, "high": 27}]}
TOL = 0.06  # coordinates are written with two decimals; the scales are derived from such values


def score(when: dt.datetime, value: float, role: str | None = None) -> dict[str, Any]:
    return {"scored_at": when, "total_score": value, "role": role}


def course() -> tuple[list[dict[str, Any]], list[dt.date]]:
    """Three weeks of a six-infusion course: a screening score, baseline, four more, endpoint."""
    scores = [score(dt.datetime(2026, 9, 28, 9, 30), 19),
              score(dt.datetime(2026, 10, 1, 10, 0), 18, "baseline"),
              score(dt.datetime(2026, 10, 5, 15, 0), 14), score(dt.datetime(2026, 10, 8, 10), 12),
              score(dt.datetime(2026, 10, 12, 11, 45), 9), score(dt.datetime(2026, 10, 15, 9), 8),
              score(dt.datetime(2026, 10, 19, 16, 30), 6, "latest (endpoint)")]
    days = [dt.date(2026, 10, d) for d in (1, 5, 8, 12, 15, 19)]
    return scores, days


class Chart:
    """The parts of one chart SVG, with the inherited attributes of every text."""

    def __init__(self, svg: str) -> None:
        self.svg = svg
        self.root = ET.fromstring(svg)
        assert self.root.tag == f"{NS}svg"
        self.texts: list[tuple[dict[str, str], str]] = []
        self._walk(self.root, {})
        self.rects = [{k: float(v) for k, v in r.attrib.items() if k in ("x", "y", "width", "height")}
                      | {"fill": r.get("fill")} for r in self.root.iter(f"{NS}rect")]
        self.circles = [(float(c.get("cx")), float(c.get("cy"))) for c in self.root.iter(f"{NS}circle")]
        self.lines = [[tuple(map(float, p.split(","))) for p in e.get("points").split()]
                      for e in self.root.iter(f"{NS}polyline")]
        self.triangles = [[tuple(map(float, p.split(","))) for p in e.get("points").split()]
                          for e in self.root.iter(f"{NS}polygon")]
        self.left = min(r["x"] for r in self.rects)
        self.bottom = max(r["y"] + r["height"] for r in self.rects)

    def _walk(self, node: ET.Element, inherited: dict[str, str]) -> None:
        attrs = inherited | dict(node.attrib)
        if node.tag == f"{NS}text":
            self.texts.append((attrs, node.text or ""))
        for child in node:
            self._walk(child, attrs)

    def y_of(self, spec: dict[str, Any]) -> Any:
        """The score -> y map read from the first and last band's rectangle."""
        first, last = spec["bands"][0], spec["bands"][-1]
        lo_rect = next(r for r in self.rects if r["fill"] == "#fafafa")
        hi_rect = next(r for r in self.rects if r["fill"] == "#a5a5a5")
        v0, y0 = max(spec["total_min"], first["low"] - 0.5), lo_rect["y"] + lo_rect["height"]
        v1, y1 = min(spec["total_max"], last["high"] + 0.5), hi_rect["y"]
        return lambda v: y0 + (v - v0) * (y1 - y0) / (v1 - v0)

    def x_ticks(self) -> list[tuple[float, dt.date]]:
        """(x, date) of every tick label below the plot, its year carried from an earlier label."""
        ticks, year = [], None
        for attrs, text in self.texts:
            if float(attrs["y"]) <= self.bottom:
                continue
            m = re.fullmatch(r"(?:([A-Z][a-z]{2})(?: (\d{1,2}))?)?(?:,? ?(\d{4}))?", text)
            assert m and text, f"tick label {text!r} is not a date"
            year = int(m.group(3)) if m.group(3) else year
            assert year is not None, f"the first tick label {text!r} carries no year"
            month = MONTHS.index(m.group(1)) + 1 if m.group(1) else 1
            ticks.append((float(attrs["x"]), dt.date(year, month, int(m.group(2) or 1))))
        return ticks

    def x_of(self) -> Any:
        """The time -> x map read from the first and last labelled tick (midnight of its date)."""
        (xa, da), (xb, db) = self.x_ticks()[0], self.x_ticks()[-1]
        a, b = dt.datetime.combine(da, dt.time()), dt.datetime.combine(db, dt.time())
        return lambda t: xa + (t - a).total_seconds() / (b - a).total_seconds() * (xb - xa)

    def text_values(self) -> list[str]:
        return [text for _, text in self.texts]


def draw(instrument: str = "PHQ-9", spec: dict[str, Any] = PHQ9, scores: list | None = None,
         days: list | None = None) -> Chart:
    if scores is None:
        scores, days = course()
    return Chart(str(score_chart(instrument, spec, scores, days or [])))


def test_markers_line_and_triangles_follow_the_scales_read_from_bands_and_ticks():
    scores, days = course()
    chart = draw(scores=scores, days=days)
    y_of, x_of = chart.y_of(PHQ9), chart.x_of()
    expected = [(x_of(s["scored_at"]), y_of(s["total_score"])) for s in scores]
    assert len(chart.circles) == len(scores) and len(chart.lines) == 1
    for (x, y), (ex, ey) in zip(chart.circles, expected, strict=True):
        assert x == pytest.approx(ex, abs=TOL) and y == pytest.approx(ey, abs=TOL)
    for (x, y), (ex, ey) in zip(chart.lines[0], expected, strict=True):
        assert x == pytest.approx(ex, abs=TOL) and y == pytest.approx(ey, abs=TOL)
    # hand-worked: score 18 on 0..27 sits 18.5/28 of the way up from the 0 band's bottom edge
    y_zero_band = chart.y_of(PHQ9)(-0.5)
    top = chart.y_of(PHQ9)(27.5)
    assert chart.circles[1][1] == pytest.approx(y_zero_band + (top - y_zero_band) * 18.5 / 28, abs=TOL)
    # one triangle per infusion day, centred on noon of that day, on the bottom axis
    assert len(chart.triangles) == len(days)
    for triangle, day in zip(chart.triangles, days, strict=True):
        centre_x = sum(x for x, _ in triangle) / 3
        assert centre_x == pytest.approx(x_of(dt.datetime.combine(day, dt.time(12))), abs=TOL)
        assert min(y for _, y in triangle) < chart.bottom < max(y for _, y in triangle)


def test_bands_labels_axes_and_notes():
    chart = draw()
    texts = chart.text_values()
    greys = [r["fill"] for r in chart.rects]
    # 5 bands spread over the 6 greys: index round(i * 5 / 4) = 0, 1, 2 (2.5 to even), 4, 5
    assert greys == ["#fafafa", "#ececec", "#dcdcdc", "#b8b8b8", "#a5a5a5"]
    for band in PHQ9["bands"]:
        assert f"{band['label']} ({band['low']}–{band['high']})" in texts
    assert "PHQ-9 total" in texts
    assert "baseline 18" in texts and "endpoint 6" in texts
    notes = {t: a for a, t in chart.texts if t.startswith(("baseline", "endpoint"))}
    assert all(a.get("font-weight") == "bold" for a in notes.values())
    for text, index in (("baseline 18", 1), ("endpoint 6", 6)):  # beside their own point
        x, y = chart.circles[index]
        assert abs(float(notes[text]["x"]) - x) <= text_width(text, 6.5, bold=True) / 2 + 8
        assert abs(float(notes[text]["y"]) - y) <= 14
    # y ticks: a few whole numbers within the scale, each at its score's height
    y_of = chart.y_of(PHQ9)
    y_ticks = [(a, t) for a, t in chart.texts if float(a["x"]) < chart.left and t.isdigit()]
    assert 3 <= len(y_ticks) <= 7
    for attrs, text in y_ticks:
        assert 0 <= int(text) <= 27
        assert float(attrs["y"]) == pytest.approx(y_of(int(text)), abs=TOL)
    # grayscale only: every colour has R = G = B
    colours = set(re.findall(r'(?:fill|stroke)="(#[0-9a-f]{6})"', chart.svg))
    assert colours and all(c[1:3] == c[3:5] == c[5:7] for c in colours)
    # 180 x 58 mm, in points
    assert chart.root.get("width") == f"{180 * 72 / 25.4:.2f}pt"
    assert chart.root.get("height") == f"{58 * 72 / 25.4:.2f}pt"
    assert all(a["font-family"] == "DejaVu Sans" for a, _ in chart.texts)


@pytest.mark.parametrize(("first", "last", "kind"), [
    (dt.datetime(2026, 10, 1, 9), dt.datetime(2026, 10, 3, 17), "days"),
    (dt.datetime(2026, 9, 28, 9), dt.datetime(2026, 10, 30, 17), "weeks"),
    (dt.datetime(2026, 5, 20, 9), dt.datetime(2026, 10, 30, 17), "months"),
    (dt.datetime(2025, 11, 20, 9), dt.datetime(2026, 3, 2, 17), "months across a new year"),
    (dt.datetime(2019, 3, 1, 9), dt.datetime(2026, 10, 30, 17), "years"),
])
def test_three_to_six_readable_date_ticks_within_the_span(first, last, kind):
    scores = [score(first, 20, "baseline"), score(first + (last - first) / 2, 15),
              score(last, 10, "latest (endpoint)")]
    chart = draw(scores=scores)
    ticks = chart.x_ticks()
    assert 3 <= len(ticks) <= 6, kind
    slack = max((last - first) * 0.1, dt.timedelta(days=2))
    assert all(first - slack <= dt.datetime.combine(d, dt.time()) <= last + slack for _, d in ticks)
    assert [d for _, d in ticks] == sorted({d for _, d in ticks})
    xs = [x for x, _ in ticks]
    assert all(chart.left <= x <= float(chart.root.get("viewBox").split()[2]) for x in xs)
    labels = [t for a, t in chart.texts if float(a["y"]) > chart.bottom]
    for (xa, a), (xb, b) in itertools.pairwise(zip(xs, labels, strict=True)):  # no two touch
        assert xb - xa > (text_width(a, 7) + text_width(b, 7)) / 2
    assert all(len(t) <= 12 for t in labels)  # "Sep 28, 2026" at most
    if kind == "months across a new year":
        assert "Jan 2026" in labels


def test_export_text_is_escaped_and_kept_as_typed():
    hostile = "<script>alert(1)</script> & $x^{$"
    spec = {**PHQ9, "bands": [{"label": "a & b <i>", "low": 0, "high": 13},
                              {"label": hostile, "low": 14, "high": 27}]}
    chart = draw(instrument="TW4 $x^{$ <b>", spec=spec)
    assert "<script>" not in chart.svg and "<i>" not in chart.svg and "<b>" not in chart.svg
    assert "&lt;script&gt;" in chart.svg and "a &amp; b &lt;i&gt;" in chart.svg
    texts = chart.text_values()
    assert "a & b <i> (0–13)" in texts
    assert "TW4 $x^{$ <b> total" in texts  # dollars print as typed: no mathtext here
    assert chart_label(f"{hostile} (14–27)") in texts


def test_long_or_odd_export_text_is_bounded_like_every_chart_label():
    rlo, bell, emoji = "\u202e", "\x07", "\U0001F489"
    spec = {**PHQ9, "bands": [{"label": f"{rlo}x{bell}{emoji}" + "y" * 300, "low": 0, "high": 27}]}
    chart = draw(instrument="Q" * 200, spec=spec)
    assert rlo not in chart.svg and bell not in chart.svg and emoji not in chart.svg
    band = next(t for t in chart.text_values() if t.startswith("x"))
    assert band.startswith("x\ufffd[U+1F489]y") and band.endswith("y (0–27)") and "…" in band
    axis = next(t for t in chart.text_values() if t.endswith(" total"))
    assert axis.startswith("QQQ") and "…" in axis and len(axis) < 60
    # each fits where it is printed: the band label in the right 40 % of the plot, the rotated
    # axis label along the plot's height
    assert text_width(band, 6.2) <= 0.4 * chart.rects[0]["width"]
    assert text_width(axis, 7.5) <= chart.bottom


@pytest.mark.parametrize("case", ["one score", "one day", "all equal", "no bands", "at the top"])
def test_small_and_flat_inputs_draw_inside_the_plot(case):
    spec, at = PHQ9, dt.datetime(2026, 10, 1, 10)
    days: list[dt.date] = []
    if case == "one score":
        scores = [score(at, 27, "baseline")]
    elif case == "one day":
        scores = [score(at, 20, "baseline"), score(at.replace(hour=15), 12, "latest (endpoint)")]
        days = [at.date()]
    elif case == "all equal":
        scores = [score(at + dt.timedelta(days=i), 9, ["baseline", None, "latest (endpoint)"][i])
                  for i in range(3)]
        days = [at.date()]
    elif case == "no bands":
        spec = {**PHQ9, "bands": []}
        scores = [score(at, 3), score(at + dt.timedelta(days=30), 5)]
    else:
        scores = [score(at, 27, "baseline"), score(at + dt.timedelta(days=1), 27, "latest (endpoint)")]
    svg = str(score_chart("PHQ-9", spec, scores, days))
    root = ET.fromstring(svg)
    width, height = (float(v) for v in root.get("viewBox").split()[2:])
    circles = [(float(c.get("cx")), float(c.get("cy"))) for c in root.iter(f"{NS}circle")]
    assert len(circles) == len(scores)
    assert all(0 < x < width and 0 < y < height for x, y in circles)
    texts = [(float(t.get("x")), float(t.get("y")), t.text) for t in root.iter(f"{NS}text")]
    ticks = [t for t in texts if re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}(, \d{4})?", t[2])]
    assert 3 <= len(ticks) <= 6
    notes = [t for t in texts if t[2].startswith(("baseline", "endpoint"))]
    assert len(notes) == sum(s["role"] is not None for s in scores)
    assert all(0 < y < height and 0 < x < width for x, y, _ in notes)
    if len(notes) == 2:  # the two labels never share a spot
        (xa, ya, a), (xb, yb, b) = notes
        assert abs(ya - yb) > 6.5 or abs(xa - xb) > (text_width(a, 6.5) + text_width(b, 6.5)) / 2


def test_same_input_same_bytes():
    scores, days = course()
    assert str(score_chart("PHQ-9", PHQ9, scores, days)) == str(score_chart("PHQ-9", PHQ9, scores, days))


def test_fonts_module_matches_matplotlib_freetype():
    """The coverage and widths read with fontTools agree with matplotlib's FreeType reader (the
    reference: it is what the charts used before)."""
    import matplotlib
    from matplotlib.ft2font import FT2Font, LoadFlags

    assert FONT_DIR == Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    reference = set()
    for name in FONT_FILES:
        reference |= set(FT2Font(str(FONT_DIR / name)).get_charmap())
    assert font_coverage() == reference
    for name, bold in ((FONT_FILES[0], False), (FONT_FILES[1], True)):
        font = FT2Font(str(FONT_DIR / name))
        font.set_size(10, 72)  # 10 pt at 72 dpi: one pixel per point
        font.set_text("0123456789", 0.0, flags=LoadFlags.NO_HINTING)
        assert text_width("0123456789", 10, bold) == pytest.approx(font.get_width_height()[0] / 64, rel=0.01)


def test_payer_workers_never_import_matplotlib():
    code = (
        "import sys, datetime as dt\n"
        "import pipeline.render, pipeline.reports.payer.batch as batch\n"
        "from pipeline.reports.payer.charts import score_chart\n"
        "spec = {'total_min': 0, 'total_max': 27, 'bands': [{'label': 'mild', 'low': 0, 'high': 27}]}\n"
        "svg = score_chart('PHQ-9', spec, [{'scored_at': dt.datetime(2026, 10, 1), 'total_score': 9,"
        " 'role': 'baseline'}], [dt.date(2026, 10, 1)])\n"
        "assert 'baseline 9' in svg\n"
        "print('matplotlib' in sys.modules, any(m.startswith('matplotlib') for m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
