"""Charts of the monthly report, drawn from the context's plain data (never from raw frames).

Each function returns inline SVG (pipeline.charts.to_svg) or None when there is nothing to
draw; the template then prints a sentence instead of an empty chart. Grayscale only: series
differ by dash pattern, marker and hatch (pipeline.charts styles).
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from matplotlib import pyplot as plt
from matplotlib.ticker import MaxNLocator, PercentFormatter

from pipeline.casemix_stats import funnel_grid, oe_funnel_limits
from pipeline.charts import FILLS, HATCHES, MM, SERIES_STYLES, figure, to_svg
from pipeline.formatting import is_withheld
from pipeline.months import parse_month


def _month_tick(month: str) -> str:
    return parse_month(month).first.strftime("%b %y")


def p_chart_svg(chart: dict[str, Any]) -> Markup | None:
    """Monthly response rate with centre line p-bar and per-month 3-sigma limits."""
    points = chart["points"]
    if chart["centre"] is None or not any(p["proportion"] is not None for p in points):
        return None
    fig, ax = figure(170, 62)
    x = list(range(len(points)))
    upper = [p["upper"] for p in points]
    lower = [p["lower"] for p in points]
    # limits as steps centred on each month (they change with each month's n)
    ax.step(x, [u if u is not None else float("nan") for u in upper], where="mid",
            color="#555555", linestyle="--", linewidth=0.9, marker="", label="3-sigma limits")
    ax.step(x, [v if v is not None else float("nan") for v in lower], where="mid",
            color="#555555", linestyle="--", linewidth=0.9, marker="")
    ax.axhline(chart["centre"], color="#000000", linestyle="-", linewidth=0.8, marker="",
               label=f"centre line {100 * chart['centre']:.1f}%")
    ys = [p["proportion"] if p["proportion"] is not None else float("nan") for p in points]
    ax.plot(x, ys, color="#000000", linestyle=":", linewidth=0.8, marker="o", markersize=3.5,
            label="monthly response rate")
    outside = [(i, p) for i, p in enumerate(points) if p["signal"]]
    if outside:
        ax.scatter([i for i, _ in outside], [p["proportion"] for _, p in outside], s=60,
                   facecolors="none", edgecolors="#000000", linewidths=1.2, marker="D",
                   zorder=5, label="outside limits (special cause)")
    for i, p in enumerate(points):
        if p["proportion"] is None and p["evaluable"] not in (0, None):
            ax.annotate("w/h" if p["withheld"] else "", (i, chart["centre"]),
                        textcoords="offset points", xytext=(0, 0), ha="center", fontsize=6,
                        color="#555555")
    ax.set_xticks(x, [_month_tick(p["month"]) for p in points], rotation=0)
    if len(points) > 14:
        for label in ax.get_xticklabels()[1::2]:
            label.set_visible(False)
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylabel(f"responders ({chart['instrument']})")
    ax.legend(loc="upper left", ncols=4, frameon=False, fontsize=6.5,
              bbox_to_anchor=(0, 1.12))
    return to_svg(fig)


def attrition_svg(rows: list[dict[str, Any]]) -> Markup | None:
    """Share of starting courses reaching each infusion number, one line per protocol."""
    drawn = [r for r in rows if r["reached"] and any(c["share"] is not None for c in r["reached"])]
    if not drawn:
        return None
    fig, ax = figure(170, 58)
    for i, row in enumerate(drawn):
        colour, style, marker = SERIES_STYLES[i % len(SERIES_STYLES)]
        pts = [(c["infusion_number"], c["share"]) for c in row["reached"] if c["share"] is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=colour, linestyle=style,
                marker=marker, label=row["protocol_id"])
    ax.set_ylim(0, 1.03)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("infusion number")
    ax.set_ylabel("courses reaching it")
    ax.legend(loc="lower left", frameon=False)
    return to_svg(fig)


def cumulative_response_svg(curves: list[dict[str, Any]], instrument: str | None) -> Markup | None:
    """Kaplan–Meier cumulative response by infusion number, one step line per protocol.
    Curves withheld by small-cell suppression are not drawn at all (the template names them)."""
    curves = [c for c in curves if not c.get("withheld")]
    if not curves:
        return None
    fig, ax = figure(170, 58)
    for i, curve in enumerate(curves):
        colour, style, marker = SERIES_STYLES[i % len(SERIES_STYLES)]
        xs = [0] + [s["infusion_number"] for s in curve["steps"]]
        ys = [0.0] + [s["cumulative_response"] for s in curve["steps"]]
        ax.step(xs, ys, where="post", color=colour, linestyle=style, marker="")
        ax.plot(xs[1:], ys[1:], color=colour, linestyle="none", marker=marker,
                label=f"{curve['protocol_id']} (n = {curve['courses']})")
    ax.axhline(0.5, color="#999999", linewidth=0.6, linestyle="-", marker="")
    ax.set_ylim(0, 1.03)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("infusions received")
    ax.set_ylabel(f"responded ({instrument})")
    ax.legend(loc="upper left", frameon=False)
    return to_svg(fig)


def severity_svg(severity: dict[str, Any] | None) -> Markup | None:
    """PHQ-9 severity bands at baseline and at endpoint (paired, evaluable courses)."""
    if severity is None or severity["empty"]:
        return None
    bands = severity["bands"]
    fig, ax = figure(170, 55)
    width = 0.38
    x = list(range(len(bands)))
    for offset, key, label, fill, hatch in ((-width / 2, "baseline", "baseline", FILLS[0],
                                             HATCHES[0]),
                                            (width / 2, "endpoint", "endpoint", FILLS[2],
                                             HATCHES[1])):
        # a suppressed band is drawn at zero height and labelled "<11"/"*", never at its count
        heights = [0 if is_withheld(b[key]) else b[key] for b in bands]
        xs = [i + offset for i in x]
        ax.bar(xs, heights, width, color=fill, hatch=hatch, edgecolor="#000000", linewidth=0.6,
               label=label)
        for xi, b, h in zip(xs, bands, heights, strict=True):
            ax.annotate(str(b[key]), (xi, h), textcoords="offset points", xytext=(0, 1.5),
                        ha="center", va="bottom", fontsize=6.5)
    ax.set_xticks(x, [f"{b['label']}\n{b['range']}" for b in bands])
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("courses")
    ax.margins(y=0.15)
    ax.legend(loc="upper right", frameon=False)
    ax.grid(axis="x", visible=False)
    return to_svg(fig)


def _funnel_panel(ax: plt.Axes, rows: list[dict[str, Any]], title: str) -> None:
    """O/E against E for one kind of unit, with the 95% and 99.8% limits around 1. Each point
    carries the unit's row number in the report's table (names would overlap)."""
    drawn = [(i, r) for i, r in enumerate(rows, start=1)
             if isinstance(r["expected"], float) and r["oe"] is not None]
    top = max((r["expected"] for _, r in drawn), default=1.0) * 1.12
    grid = funnel_grid(top)
    limits = oe_funnel_limits(grid)
    for level, style in (("95", "--"), ("99_8", ":")):
        label = f"{level.replace('_', '.')}% limits"
        ax.plot(grid, limits[f"high_{level}"], color="#555555", linestyle=style, linewidth=0.9,
                marker="", label=label)
        ax.plot(grid, limits[f"low_{level}"], color="#555555", linestyle=style, linewidth=0.9,
                marker="")
    ax.axhline(1.0, color="#000000", linewidth=0.7, marker="")
    for number, r in drawn:
        flagged = r["position"] != "within"
        ax.plot([r["expected"]], [r["oe"]], linestyle="none", marker="D" if flagged else "o",
                markersize=4.5 if flagged else 3.5, color="#000000",
                markerfacecolor="#000000" if flagged else "white")
        ax.annotate(str(number), (r["expected"], r["oe"]), textcoords="offset points",
                    xytext=(3, 3), fontsize=6.5, color="#000000")
    ax.set_xlim(0, top)
    highest = max([2.0, *(r["oe"] * 1.15 for _, r in drawn)])
    ax.set_ylim(0, min(highest, 4.0))
    ax.set_xlabel("expected responders E")
    ax.set_ylabel("observed / expected")
    ax.set_title(f"{title}: {len(drawn)} of {len(rows)} plotted (others withheld)"
                 if len(drawn) < len(rows) else title)


def funnel_svg(case_mix: dict[str, Any]) -> Markup | None:
    """Funnel plot of O/E against E: sites left, providers right. Units whose figures are
    withheld (small-cell suppression) are not drawn; the panel title counts them."""
    if case_mix["model"] is None:
        return None
    if not any(r["oe"] is not None for plural in ("sites", "providers")
               for r in case_mix[plural]):
        return None
    fig, axes = plt.subplots(1, 2, figsize=(170 * MM, 72 * MM), layout="constrained")
    _funnel_panel(axes[0], case_mix["sites"], "Sites")
    _funnel_panel(axes[1], case_mix["providers"], "Providers")
    axes[0].legend(loc="upper right", frameon=False, fontsize=6)
    return to_svg(fig)


def chart_svgs(context: dict[str, Any]) -> dict[str, Markup | None]:
    return {
        "p_chart": p_chart_svg(context["control_chart"]),
        "attrition": attrition_svg(context["attrition"]["rolling"]),
        "cumulative_response": cumulative_response_svg(context["cumulative_response"],
                                                        context["headline_instrument"]),
        "severity": severity_svg(context["severity"]),
        "funnel": funnel_svg(context["case_mix"]),
    }
