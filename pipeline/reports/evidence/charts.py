"""Charts of the evidence report: forest plot and funnel plot (grayscale, text kept as text).

Both take one protocol section of the report context and draw only numbers already in it;
the funnel's lines are `exact_funnel_limits` (pipeline/stats.py) around the family's p0 and
τ², the same function that gives the clinic its label (benchmarks.py), evaluated at every n
drawn and at the clinic's own n.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from markupsafe import Markup
from matplotlib import pyplot as plt
from matplotlib.patches import Polygon
from matplotlib.ticker import PercentFormatter

from pipeline.charts import MM, to_svg
from pipeline.stats import exact_funnel_limits

GRID_POINTS = 120  # sizes n at which the funnel lines are evaluated (plus the clinic's n)


def _interval_text(rate: float | None, low: float | None, high: float | None) -> str:
    if rate is None:
        return ""
    if low is None or high is None:
        return f"{100 * rate:.1f}%  (no interval)"
    return f"{100 * rate:.1f}%  ({100 * low:.1f}–{100 * high:.1f})"


def forest_rows(section: dict[str, Any], not_comparable: str | None) -> list[dict[str, Any]]:
    """Rows top to bottom: per family a heading, its studies, then its pooled p0 (diamond,
    with the prediction interval) or the studies' range where there is no single benchmark;
    the clinic last."""
    rows: list[dict[str, Any]] = []
    for family in section["families"]:
        rows.append({"label": family["label"], "kind": "heading", "rate": None, "family": None})
        first = len(rows)
        for study in family["studies"]:
            if study["rate"] is None:
                continue
            suffix = (f" · n {study['n']:,}" if study["pooled"]
                      else f" ({study['short_reason']}, not pooled)")
            rows.append({"label": study["label"] + suffix, "rate": study["rate"],
                         "low": study["ci_low"], "high": study["ci_high"],
                         "kind": "pooled" if study["pooled"] else "context"})
        if family["k"] and family["single_benchmark"]:
            label = (f"Pooled p0 (k = {family['k']}, I² = {100 * family['i2']:.0f}%)"
                     if family["k"] > 1 else "p0 (one study)")
            rows.append({"label": label, "rate": family["p0"],
                         "low": family["p0_ci_low"], "high": family["p0_ci_high"],
                         "pi_low": family["pi_low"], "pi_high": family["pi_high"],
                         "kind": "p0"})
        elif family["k"]:
            rows.append({"label": f"No single benchmark (I² = {100 * family['i2']:.0f}%): range",
                         "rate": None, "low": family["range_low"], "high": family["range_high"],
                         "kind": "range"})
        rows[first - 1]["family"] = (first, len(rows), family["p0"]
                                     if family["single_benchmark"] else None)
    response = section["rates"]["rows"][0]["evaluable"] if section["rates"] else None
    name = f"This clinic, {section['protocol_id']} ({section['instrument']})"
    if not_comparable:
        # not drawn; the reason is in the caption (a long label would squeeze the plot)
        rows.append({"label": f"{name}: not comparable", "rate": None, "kind": "clinic"})
    elif response and response["rate"] is not None:
        rows.append({"label": f"{name} · n {response['denominator']:,}",
                     "rate": response["rate"], "low": response["low"], "high": response["high"],
                     "kind": "clinic"})
    else:
        rows.append({"label": f"{name}: withheld (small cells)", "rate": None, "kind": "clinic"})
    return rows


def _diamond(ax: Any, y: float, row: dict[str, Any]) -> None:
    if row.get("pi_low") is not None:
        ax.hlines(y, row["pi_low"], row["pi_high"], color="#000", linewidth=1.0, zorder=2.5)
        for end in (row["pi_low"], row["pi_high"]):
            ax.vlines(end, y - 0.22, y + 0.22, color="#000", linewidth=1.0, zorder=2.5)
    ax.add_patch(Polygon([(row["low"], y), (row["rate"], y + 0.32), (row["high"], y),
                          (row["rate"], y - 0.32)], closed=True, facecolor="#000",
                         edgecolor="#000", linewidth=0.6, zorder=3))


def forest_plot(section: dict[str, Any], axis_label: str, not_comparable: str | None) -> Markup:
    """Published response rates with their printed intervals, each family's pooled p0 as a
    diamond (its 95% CI) on a line (its 95% prediction interval) and the clinic last."""
    rows = forest_rows(section, not_comparable)
    fig, ax = plt.subplots(figsize=(170 * MM, (16 + 4.6 * len(rows)) * MM), layout="constrained")
    y = np.arange(len(rows))[::-1].astype(float)
    for yi, row in zip(y, rows, strict=True):
        kind = row["kind"]
        if kind == "heading" and row["family"] and row["family"][2] is not None:
            first, last, p0 = row["family"]
            ax.vlines(p0, y[last - 1] - 0.4, y[first] + 0.4, color="#777", linestyle=":",
                      linewidth=0.7)
        elif kind == "p0":
            _diamond(ax, yi, row)
        elif kind == "range":
            ax.fill_betweenx([yi - 0.25, yi + 0.25], row["low"], row["high"], color="#ccc",
                             hatch="//", edgecolor="#777", linewidth=0)
        elif row["rate"] is not None:
            if row.get("low") is not None:
                ax.hlines(yi, row["low"], row["high"], color="#000" if kind == "clinic"
                          else "#444", linewidth=1.4 if kind == "clinic" else 0.9)
            style: dict[str, Any] = {
                "clinic": {"marker": "s", "markersize": 6, "color": "#000"},
                "context": {"marker": "o", "markersize": 4, "color": "#555",
                            "markerfacecolor": "#fff"},
                "pooled": {"marker": "s", "markersize": 4, "color": "#333"}}[kind]
            ax.plot(row["rate"], yi, linestyle="none", **style)
    ax.set_yticks(y, [r["label"] for r in rows])
    for tick, row in zip(ax.get_yticklabels(), rows, strict=True):
        if row["kind"] in ("clinic", "p0", "heading"):
            tick.set_fontweight("bold")
        if row["kind"] == "heading":
            tick.set_fontstyle("italic")
    right = ax.twinx()
    right.set_ylim(-0.7, len(rows) - 0.3)
    right.set_yticks(y, [_interval_text(r["rate"], r.get("low"), r.get("high"))
                         if r["kind"] not in ("heading", "range")
                         else (f"{100 * r['low']:.1f}–{100 * r['high']:.1f}%"
                               if r["kind"] == "range" else "") for r in rows])
    right.tick_params(axis="y", length=0, labelsize=6.5)
    right.grid(False)
    right.spines[["top", "right", "left"]].set_visible(False)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel(axis_label)
    ax.grid(axis="y", visible=False)
    ax.tick_params(axis="y", length=0)
    return to_svg(fig)


@functools.lru_cache(maxsize=32)
def funnel_lines(p0: float, tau2: float | None, n_max: int, clinic_n: int | None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(n, limits) with limits[:, 0:2] the 95% and [:, 2:4] the 99.8% lines at each n.

    Kept for the process (read-only arrays): the lines depend only on the arguments, and p0
    and τ² come from the published studies, so every evidence report drawn in one process
    (the same family at the same sizes) reuses them instead of computing the exact tails again.
    """
    grid = np.unique(np.concatenate([np.linspace(2, max(n_max, 3), GRID_POINTS).round(),
                                     [clinic_n] if clinic_n else []])).astype(int)
    limits = []
    funnel = None
    for n in grid:
        funnel = exact_funnel_limits(p0, int(n), tau2, near=funnel)  # near: a head start
        assert funnel is not None
        limits.append([*funnel.limits95, *funnel.limits998])
    lines = np.array(limits)
    grid.flags.writeable = lines.flags.writeable = False
    return grid, lines


def _funnel_panel(ax: Any, family: dict[str, Any], response: dict[str, Any] | None,
                  not_comparable: str | None) -> None:
    pooled = [s for s in family["studies"] if s["pooled"] and s["rate"] is not None]
    clinic_n = response["denominator"] if response else None
    n_max = int(max([s["n"] for s in pooled] + ([clinic_n] if clinic_n else [])) * 1.1)
    title = family["label"]
    if family["single_benchmark"]:
        p0 = family["p0"]
        grid, limits = funnel_lines(p0, family["tau2"], n_max, clinic_n)
        for cols, style, label in (((0, 1), "--", "95% limits"), ((2, 3), ":", "99.8% limits")):
            for i, col in enumerate(cols):
                ax.plot(grid, limits[:, col], linestyle=style, color="#444", linewidth=0.9,
                        marker="none", label=label if i == 0 else None)
        ax.axhline(p0, color="#000", linewidth=0.8, label="p0 (pooled rate)")
        widened = f", widened for τ² {family['tau2']:.3f}" if family["tau2"] else ""
        title += f"\np0 = {100 * p0:.1f}%, k = {family['k']}{widened}"
    else:
        title += f"\nno single benchmark (I² {100 * family['i2']:.0f}%): no limits"
    ax.plot([s["n"] for s in pooled], [s["rate"] for s in pooled], marker="o",
            linestyle="none", color="#555", markerfacecolor="#fff", markersize=4,
            label="pooled studies")
    for s in pooled:
        ax.annotate(f"[{s['ref']}]", (s["n"], s["rate"]), xytext=(3, 2),
                    textcoords="offset points", fontsize=6, color="#444")
    if not_comparable:
        title += f"\nclinic not drawn ({not_comparable})"
    elif response is not None and clinic_n:
        ax.plot([clinic_n], [response["rate"]], marker="s", linestyle="none", color="#000",
                markersize=6, label="this clinic")
        # in the title, not next to the square: there it would cover studies or limit lines
        text = family["position_text"] if family["position"] else "not placed"
        title += f"\nclinic (n = {clinic_n:,}): {text}"
    ax.set_ylim(0, 1)
    ax.set_xlim(0, n_max)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("n (evaluable courses or participants)")
    ax.set_title(title, fontsize=7)


def funnel_plot(section: dict[str, Any], not_comparable: str | None) -> Markup | None:
    """One panel per family with pooled studies: exact 95% / 99.8% limits around p0 against n
    (none without a single benchmark), the pooled studies and the clinic at their n."""
    families = [f for f in section["families"] if f["k"]]
    if not families:
        return None
    response = section["rates"]["rows"][0]["evaluable"] if section["rates"] else None
    if response is not None and response["rate"] is None:
        response = None
    fig, axes = plt.subplots(1, len(families), figsize=(170 * MM, 72 * MM),
                             layout="constrained", squeeze=False, sharey=True)
    for ax, family in zip(axes[0], families, strict=True):
        _funnel_panel(ax, family, response, not_comparable)
    axes[0][0].set_ylabel("Response rate")
    handles, labels = [], []
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    fig.legend(handles, labels, loc="outside lower center", ncol=5, fontsize=6.5, frameon=False)
    return to_svg(fig)
