"""Score-over-time chart for one instrument of one course, severity bands shaded in grayscale.

Bands go from near-white (least severe) to mid-grey (most severe), each labelled on the right,
so they read in a black-and-white fax; the scores are a black line with markers on top.
Infusion days are marked as ticks along the bottom; baseline and endpoint are labelled.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from markupsafe import Markup

from pipeline.charts import figure, to_svg

BAND_GREYS = ["#fafafa", "#ececec", "#dcdcdc", "#cbcbcb", "#b8b8b8", "#a5a5a5"]


def _greys(n: int) -> list[str]:
    if n <= 1:
        return BAND_GREYS[:1]
    return [BAND_GREYS[round(i * (len(BAND_GREYS) - 1) / (n - 1))] for i in range(n)]


def score_chart(instrument: str, spec: dict[str, Any], scores: list[dict[str, Any]],
                infusion_days: list[dt.date]) -> Markup:
    """SVG of one instrument's scores (dicts with scored_at, total_score, role)."""
    import matplotlib.dates as mdates

    fig, ax = figure(width_mm=180, height_mm=58)
    low, high = float(spec["total_min"]), float(spec["total_max"])
    points = sorted(scores, key=lambda s: s["scored_at"])
    times = [s["scored_at"] for s in points]
    values = [s["total_score"] for s in points]
    days = [dt.datetime.combine(d, dt.time(12)) for d in infusion_days]
    span = times + days
    start, end = min(span), max(span)
    pad = max((end - start) * 0.04, dt.timedelta(days=1))
    start, end = start - pad, end + pad * 4  # room on the right for band labels

    bands = spec["bands"]
    for band, grey in zip(bands, _greys(len(bands)), strict=True):
        # whole-number scales: a band 5-9 covers 4.5..9.5 so adjacent bands meet
        ax.axhspan(max(low, band["low"] - 0.5), min(high, band["high"] + 0.5), color=grey,
                   linewidth=0, zorder=0)
        ax.text(1.0, (max(low, band["low"] - 0.5) + min(high, band["high"] + 0.5)) / 2,
                f" {band['label']} ({band['low']:g}–{band['high']:g})", transform=ax.get_yaxis_transform(),
                va="center", ha="right", fontsize=6.2, color="#222222", zorder=1)
    ax.plot(times, values, color="#000000", linestyle="-", marker="o", markersize=3.8,
            linewidth=1.3, zorder=3)
    for s in points:
        label = {"baseline": "baseline", "latest (endpoint)": "endpoint"}.get(s["role"])
        if label:
            ax.annotate(f"{label} {s['total_score']:g}", (s["scored_at"], s["total_score"]),
                        textcoords="offset points", xytext=(0, 6), ha="center", fontsize=6.5,
                        fontweight="bold", zorder=4)
    if days:
        ax.plot(days, [low] * len(days), linestyle="none", marker="^", markersize=4.5,  # type: ignore[arg-type]
                color="#000000", clip_on=False, zorder=4)
    ax.set_xlim(start, end)
    ax.set_ylim(low, high + (high - low) * 0.08)
    ax.set_ylabel(f"{instrument} total")
    ax.grid(False)
    # few ticks, concise labels: crowded ISO dates overlapped on short courses
    locator = mdates.AutoDateLocator(minticks=3, maxticks=6)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    return to_svg(fig)
