"""Charts of the evidence report: forest plot and funnel plot (grayscale, text kept as text).

Both take one protocol section of the report context and draw only numbers already in it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from markupsafe import Markup
from matplotlib import pyplot as plt
from matplotlib.ticker import PercentFormatter

from pipeline.charts import MM, to_svg
from pipeline.stats import Z95, Z998


def forest_rows(section: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows top to bottom: per family its studies then its pooled p0; the clinic last."""
    rows: list[dict[str, Any]] = []
    for family in section["families"]:
        for study in family["studies"]:
            if study["response_rate"] is None:
                continue
            suffix = "" if study["pooled"] else " (not pooled)"
            rows.append({"label": f"{study['label']} · n {study['n']:,}{suffix}",
                         "rate": study["response_rate"], "low": study["response_low"],
                         "high": study["response_high"],
                         "kind": "pooled" if study["pooled"] else "context"})
        if family["p0"] is not None:
            rows.append({"label": f"Pooled p0: {family['label']}", "rate": family["p0"],
                         "low": None, "high": None, "kind": "p0"})
    response = section["rates"]["rows"][0]["evaluable"] if section["rates"] else None
    if response and response["rate"] is not None:
        rows.append({"label": f"This clinic, {section['protocol_id']} ({section['instrument']}) "
                              f"· n {response['denominator']:,}",
                     "rate": response["rate"], "low": response["low"], "high": response["high"],
                     "kind": "clinic"})
    else:
        rows.append({"label": f"This clinic, {section['protocol_id']}: withheld (small cells)",
                     "rate": None, "low": None, "high": None, "kind": "clinic"})
    return rows


def forest_plot(section: dict[str, Any], axis_label: str) -> Markup:
    """Published response rates with their intervals, the pooled p0 and the clinic last;
    `axis_label` names the rate (the configured response definition)."""
    rows = forest_rows(section)
    height = 14 + 5.2 * len(rows)
    fig, ax = plt.subplots(figsize=(170 * MM, height * MM), layout="constrained")
    y = np.arange(len(rows))[::-1]
    for yi, row in zip(y, rows, strict=True):
        if row["rate"] is None:
            continue
        if row["low"] is not None:
            ax.hlines(yi, row["low"], row["high"], color="#000" if row["kind"] == "clinic"
                      else "#444", linewidth=1.4 if row["kind"] == "clinic" else 0.9)
        if row["kind"] == "p0":
            ax.plot(row["rate"], yi, marker="D", markersize=6, color="#000",
                    markerfacecolor="#fff", linestyle="none")
        elif row["kind"] == "clinic":
            ax.plot(row["rate"], yi, marker="s", markersize=6, color="#000", linestyle="none")
        elif row["kind"] == "context":
            ax.plot(row["rate"], yi, marker="o", markersize=4, color="#555",
                    markerfacecolor="#fff", linestyle="none")
        else:
            ax.plot(row["rate"], yi, marker="o", markersize=4, color="#333", linestyle="none")
    first = section["families"][0]["p0"] if section["families"] else None
    if first is not None:
        ax.axvline(first, color="#777", linestyle="--", linewidth=0.7)
    ax.set_yticks(y, [r["label"] for r in rows])
    for tick, row in zip(ax.get_yticklabels(), rows, strict=True):
        if row["kind"] in ("clinic", "p0"):
            tick.set_fontweight("bold")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel(axis_label)
    ax.grid(axis="y", visible=False)
    ax.tick_params(axis="y", length=0)
    return to_svg(fig)


def funnel_plot(section: dict[str, Any]) -> Markup:
    """One panel per family: 95% / 99.8% limits around p0 against n; studies and the clinic."""
    families = [f for f in section["families"] if f["p0"] is not None]
    response = section["rates"]["rows"][0]["evaluable"] if section["rates"] else None
    clinic_ok = bool(response and response["rate"] is not None)
    response = response or {}
    fig, axes = plt.subplots(1, max(len(families), 1), figsize=(170 * MM, 68 * MM),
                             layout="constrained", squeeze=False, sharey=True)
    for ax, family in zip(axes[0], families, strict=False):
        pooled = [s for s in family["studies"] if s["pooled"] and s["response_rate"] is not None]
        n_max = max([s["n"] for s in pooled] + ([response["denominator"]] if clinic_ok else []))
        n_grid = np.linspace(5, n_max * 1.15, 300)
        p0 = family["p0"]
        for z, style, label in ((Z95, "--", "95% limits"), (Z998, ":", "99.8% limits")):
            half = z * np.sqrt(p0 * (1 - p0) / n_grid)
            ax.plot(n_grid, np.clip(p0 + half, 0, 1), linestyle=style, color="#444",
                    linewidth=0.9, marker="none", label=label)
            ax.plot(n_grid, np.clip(p0 - half, 0, 1), linestyle=style, color="#444",
                    linewidth=0.9, marker="none")
        ax.axhline(p0, color="#000", linewidth=0.8, label=f"p0 = {100 * p0:.1f}%")
        ax.plot([s["n"] for s in pooled], [s["response_rate"] for s in pooled], marker="o",
                linestyle="none", color="#555", markerfacecolor="#fff", markersize=4,
                label="pooled studies")
        for s in pooled:
            ax.annotate(f"[{s['ref']}]", (s["n"], s["response_rate"]), xytext=(3, 2),
                        textcoords="offset points", fontsize=6, color="#444")
        if clinic_ok:
            ax.plot([response["denominator"]], [response["rate"]], marker="s", linestyle="none",
                    color="#000", markersize=6, label="this clinic")
            position = family["funnel"]["label"] if family["funnel"] else ""
            ax.annotate(f"clinic: {position}", (response["denominator"], response["rate"]),
                        xytext=(0, 9 if response["rate"] < 0.75 else -14),
                        textcoords="offset points", fontsize=7, fontweight="bold", ha="center",
                        bbox={"boxstyle": "square,pad=0.15", "facecolor": "white",
                              "edgecolor": "none", "alpha": 0.85})
        ax.set_ylim(0, 1)
        ax.set_xlim(0, n_max * 1.15)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_xlabel("n (courses or participants)")
        ax.set_title(f"{family['label']}\np0 = {100 * p0:.1f}%", fontsize=7)
    axes[0][0].set_ylabel("Response rate")
    handles, labels = axes[0][0].get_legend_handles_labels()
    labels = ["p0 (pooled rate)" if lbl.startswith("p0") else lbl for lbl in labels]
    fig.legend(handles, labels, loc="outside lower center", ncol=5, fontsize=6.5, frameon=False)
    return to_svg(fig)
