"""Chart basics of the monthly and evidence reports: matplotlib -> inline SVG with text kept as
text (the payer packet's chart is plain SVG: pipeline/reports/payer/charts.py).

Why matplotlib's SVG backend: axes, ticks and legends come right without hand-written layout;
with `svg.fonttype = none` every label stays real, selectable PDF text (pdftotext reads it),
set in the same bundled DejaVu Sans as the report. Styles are chosen to survive grayscale
printing: black/grey lines told apart by dash pattern and marker, never by colour alone.
"""

from __future__ import annotations

import io
import re
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; we only save SVG

from markupsafe import Markup  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from matplotlib.ticker import FixedFormatter, FuncFormatter  # noqa: E402

from pipeline.fonts import MAX_LABEL_CHARS, chart_label  # noqa: E402  (label rules: fonts.py)

__all__ = ["FILLS", "HATCHES", "MAX_LABEL_CHARS", "MM", "SERIES_STYLES", "chart_label", "figure",
           "to_svg"]

MM = 1 / 25.4  # inches per millimetre

# Distinguishable in grayscale: (colour, line style, marker)
SERIES_STYLES = [
    ("#000000", "-", "o"),
    ("#555555", "--", "s"),
    ("#888888", ":", "^"),
    ("#222222", "-.", "D"),
    ("#777777", (0, (5, 1, 1, 1)), "v"),
]
FILLS = ["#333333", "#999999", "#cccccc", "#666666", "#e5e5e5"]
HATCHES = ["", "//", "..", "xx", "\\\\"]

from cycler import cycler  # noqa: E402

plt.rcParams.update({
    "axes.prop_cycle": cycler(color=[c for c, _, _ in SERIES_STYLES],
                              linestyle=[ls for _, ls, _ in SERIES_STYLES],
                              marker=[m for _, _, m in SERIES_STYLES]),
    "svg.fonttype": "none",
    # Labels carry export text (protocol ids, sites): a `$` pair in one must print as typed,
    # never be parsed as mathtext (an unbalanced `$x^{$` would fail the whole report).
    "text.parse_math": False,
    "text.usetex": False,
    "svg.hashsalt": "ketamine-outcomes",  # stable element ids: same data, same bytes
    "font.family": "DejaVu Sans",
    "font.size": 7.5,
    "axes.titlesize": 8.5,
    "axes.labelsize": 7.5,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
})


def figure(width_mm: float = 170, height_mm: float = 65) -> tuple[Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=(width_mm * MM, height_mm * MM), layout="constrained")
    return fig, ax


def _shorten_func(func: Any) -> Any:
    def shortened(x: Any, pos: Any = None) -> str:
        return chart_label(func(x, pos))
    return shortened


def sanitise_text(fig: Figure) -> None:
    """Pass every text of the figure through chart_label: titles, annotations, legends, and the
    tick labels (formatters re-create those at draw time, so the formatters are wrapped)."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for formatter in (axis.get_major_formatter(), axis.get_minor_formatter()):
                if isinstance(formatter, FixedFormatter):
                    formatter.seq = [chart_label(s) for s in formatter.seq]
                elif isinstance(formatter, FuncFormatter) and not getattr(
                        formatter.func, "chart_label", False):
                    formatter.func = _shorten_func(formatter.func)
                    formatter.func.chart_label = True  # type: ignore[attr-defined]
    for text in fig.findobj(Text):
        label = text.get_text()
        if label:
            text.set_text(chart_label(label))


def to_svg(fig: Figure) -> Markup:
    """The figure as an inline <svg> element (our own markup, safe to embed: matplotlib escapes
    <, > and & in text; chart_label bounds what export text can do to the layout)."""
    sanitise_text(fig)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]  # drop the XML declaration and DOCTYPE for inlining
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    return Markup(svg)
