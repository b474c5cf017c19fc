"""The curves of the monthly report: the p-chart of the monthly response rate and the
Kaplan-Meier cumulative response by infusion number, each printed only as far as small-cell
suppression allows.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from pipeline.months import Month
from pipeline.outcomes import NEVER, TIMING_CLASSES
from pipeline.reports.monthly.periods import (
    ALL,
    KEEP_DENOMINATOR,
    KEEP_HEADLINE,
    KEEP_TOTAL,
    OutcomeCells,
    Period,
    per_key,
    reason_counts,
    register_outcomes,
    summary_row,
)
from pipeline.reports.suppression import CountRef, Deferred, Ledger
from pipeline.stats import p_chart

HISTORY_MONTHS = 24  # p-chart: up to 24 months ending at M ...
MIN_HISTORY_MONTHS = 12  # ... and never fewer than 12
RUN_LENGTH = 8  # Wheeler's run rule: this many months in a row on one side of the centre line


def control_chart(cells: Ledger, pooled: dict[str, pl.DataFrame], month: Month,
                  instrument: str | None, rolling: Period) -> Deferred:
    """p-chart of the monthly response rate (headline instrument), as of the report month's end.

    pooled: the course rows of the 24 months pooled by month (protocol_id = YYYY-MM): their
    protocol_summary ("summary") and course_counts (reports/monthly/data.py).

    Centre line p-bar and 3-sigma limits per month's n (stats.p_chart); months before the first
    month with any course are dropped, keeping at least 12. Each month's responders/evaluable
    are the same cells as the headline's month and previous month; the 12 months ending with M
    add up to the rolling figures; the centre line prints total responders / total evaluable.
    A month's limits reveal its n, so they are printed only when its n is.
    """
    history = [month.shift(-back) for back in reversed(range(HISTORY_MONTHS))]
    months = [m.text for m in history]
    points = []
    month_cells: dict[str, tuple[CountRef, CountRef]] = {}
    for m in history:
        per = per_key(m.first, m.last)
        in_month = pl.col("protocol_id") == m.text
        row = summary_row(pooled["summary"].filter(in_month), instrument)
        if row is not None:
            reasons = reason_counts(pooled["course_counts"].filter(in_month))
            counts = register_outcomes(cells, per, row, ALL,
                                       reasons.get((ALL, row["instrument"]), {}))
            month_cells[m.text] = (counts["responders"], counts["evaluable"])
        else:
            month_cells[m.text] = (cells.virtual(("responders", per, instrument, ALL), 0),
                                   cells.virtual(("evaluable", per, instrument, ALL), 0))
        points.append((m.text, int(row["responders"]) if row else 0,
                       int(row["evaluable"]) if row else 0))
    last_year = months[-12:]
    for index, name in ((0, "responders"), (1, "evaluable")):
        total_key = (name, rolling.per, instrument, ALL)
        if cells.has(total_key):
            cells.add(total_key, [month_cells[m][index] for m in last_year])
    first_data = next((i for i, p in enumerate(points) if p[2] > 0), len(points))
    points = points[min(first_data, max(len(points) - MIN_HISTORY_MONTHS, 0)):]
    limits = p_chart([p[1] for p in points], [p[2] for p in points])
    total_k = cells.count(("p-chart responders", instrument), sum(p[1] for p in points),
                          KEEP_TOTAL)
    total_n = cells.count(("p-chart evaluable", instrument), sum(p[2] for p in points),
                          KEEP_TOTAL)
    cells.add(total_k, [month_cells[p[0]][0] for p in points])
    cells.add(total_n, [month_cells[p[0]][1] for p in points])
    rates = {}
    for text, _, _ in points:
        k_cell, n_cell = month_cells[text]
        rates[text] = cells.rate(cells.show(k_cell, KEEP_HEADLINE),
                                  cells.show(n_cell, KEEP_DENOMINATOR))
    centre_rate = cells.rate(total_k, total_n)

    def build() -> dict[str, Any]:
        centre_dict = cells.rate_dict(centre_rate)
        centre = centre_dict["rate"] if limits and not centre_dict["suppressed"] else None
        chart_points = []
        for (text, _, _), lim in zip(points, limits, strict=True):
            printed = cells.rate_dict(rates[text])
            proportion = printed["rate"]
            n_shown = cells.shown(month_cells[text][1]) and centre is not None
            lower = lim["lower"] if n_shown else None
            upper = lim["upper"] if n_shown else None
            signal = None
            if proportion is not None and upper is not None and lower is not None:
                if proportion > upper + 1e-12:
                    signal = "above"
                elif proportion < lower - 1e-12:
                    signal = "below"
            chart_points.append({
                "month": text, "responders": printed["numerator"],
                "evaluable": printed["denominator"], "proportion": proportion,
                "lower": lower, "upper": upper, "signal": signal,
                "withheld": printed["suppressed"],
            })
        # Wheeler's run rule: RUN_LENGTH or more consecutive plotted points on one side
        run_side, run_length, runs = None, 0, []
        for p in chart_points:
            side = None if p["proportion"] is None or centre is None else (
                "above" if p["proportion"] > centre else "below" if p["proportion"] < centre
                else None)
            run_length = run_length + 1 if side is not None and side == run_side else (
                1 if side else 0)
            run_side = side
            if run_length == RUN_LENGTH:
                runs.append({"side": side, "ending": p["month"]})
        return {
            "instrument": instrument,
            "centre": centre if cells.value(total_n) else None,
            "months": len(chart_points),
            "points": chart_points,
            "outside": [{"month": p["month"], "side": p["signal"]} for p in chart_points
                        if p["signal"]],
            "runs": runs,
            "withheld_months": sum(1 for p in chart_points if p["withheld"]),
            "courses": total_n,
        }

    return Deferred(build)


def km_curves(cells: Ledger, period: Period, instrument: str | None,
              outcome_cells: dict[tuple[str, str], OutcomeCells]) -> list[Any]:
    """Cumulative response by infusion number per protocol (metrics.cumulative_response).

    A curve drawn with its n tells the responders (step heights) and the courses censored at
    each infusion: those counts are the curve's cells, printed all together or not at all
    (Ledger.atomic). They add up to the evaluable courses and to the timing classes (early =
    responses at infusions 1-2, ...; never = censored). Under suppression a curve is drawn
    only when no step holds 1..small_cell_max responses or censored courses (and none of its
    counts is needed to protect another cell); otherwise it is withheld, with a note.
    """
    if instrument is None:
        return []
    per = period.per
    table = period.metrics["cumulative_response"].filter(
        (pl.col("instrument") == instrument) & pl.col("infusion_number").is_not_null())
    curves: list[Any] = []
    for protocol_id in sorted(table["protocol_id"].unique().to_list()):
        steps = table.filter(pl.col("protocol_id") == protocol_id).sort(
            "infusion_number").to_dicts()
        counts = outcome_cells.get((protocol_id, instrument))
        if not steps or counts is None or cells.value(counts["evaluable"]) == 0:
            continue
        events = [cells.count(("km responses", per, instrument, protocol_id,
                               int(s["infusion_number"])), int(s["events"])) for s in steps]
        censored = [cells.count(("km censored", per, instrument, protocol_id,
                                 int(s["infusion_number"])), int(s["censored"])) for s in steps]
        cells.add(counts["evaluable"], events + censored)
        for cls in TIMING_CLASSES:
            timing_key = ("timing", per, instrument, protocol_id, cls.key)
            if cells.has(timing_key):
                cells.add(timing_key, [e for e, s in zip(events, steps, strict=True)
                                       if cls.holds(int(s["infusion_number"]))])
        never_key = ("timing", per, instrument, protocol_id, NEVER)
        if cells.has(never_key):
            cells.add(never_key, censored)
        cells.atomic(events + censored)
        n = cells.show(counts["evaluable"], KEEP_DENOMINATOR)

        def build(protocol_id: str = protocol_id, steps: list[dict[str, Any]] = steps,
                  members: list[CountRef] = events + censored,
                  n: CountRef = n) -> dict[str, Any]:
            if not all(cells.shown(m) for m in members) or not cells.shown(n):
                return {"protocol_id": protocol_id, "withheld": True, "courses": None,
                        "steps": []}
            return {"protocol_id": protocol_id, "withheld": False, "courses": n,
                    "steps": [{"infusion_number": int(s["infusion_number"]),
                               "cumulative_response": float(s["cumulative_response"])}
                              for s in steps]}

        curves.append(Deferred(build))
    return curves
