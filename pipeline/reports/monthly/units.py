"""Sites and providers of the monthly report: the by-site / by-provider tables
(docs/definitions.md "Site and provider of a course"; which site and provider a course belongs
to is sql/reports/monthly/course_units.sql).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from pipeline.reports.monthly.periods import ALL, KEEP_DENOMINATOR, Period
from pipeline.reports.suppression import Ledger


def breakdown(cells: Ledger, period: Period, units: pl.DataFrame, unit: str,
              instrument: str | None) -> dict[str, Any]:
    """Courses ending, dropouts, response (headline instrument) and infusions per site/provider.
    Every column of units adds up to the "All" row, which is the clinic's figure elsewhere.

    units: the site and provider of each course (reports/monthly/data.py); the period's
    infusions per site and provider are its `unit_infusions` table."""
    per = period.per
    co = period.course_outcomes.join(units, on=["patient_id", "course_id"], how="left")
    co = co.with_columns(pl.col(unit).fill_null("not recorded"))
    per_course = co.select("patient_id", "course_id", unit, "status").unique()
    rated = co.filter(pl.col("evaluable") & (pl.col("instrument") == (instrument or "")))
    infusions = {r["name"]: int(r["infusions"]) for r in
                 period.metrics["unit_infusions"].filter(pl.col("unit") == unit).to_dicts()}
    names = sorted(set(per_course[unit].to_list()) | set(infusions))

    def per_unit(frame: pl.DataFrame, condition: pl.Expr | None = None) -> list[int]:
        if condition is not None:
            frame = frame.filter(condition)
        got = {r[unit]: int(r["n"]) for r in frame.group_by(unit).agg(n=pl.len()).to_dicts()}
        return [got.get(name, 0) for name in names]

    columns = {
        "courses": per_unit(per_course),
        "discontinued": per_unit(per_course, pl.col("status") == "discontinued"),
        "evaluable": per_unit(rated),
        "responders": per_unit(rated, pl.col("category") == "response"),
        "infusions": [infusions.get(name, 0) for name in names],
    }
    keep = {"courses": KEEP_DENOMINATOR, "evaluable": KEEP_DENOMINATOR,
            "infusions": KEEP_DENOMINATOR}

    def key(column: str, where: Any) -> tuple[Any, ...]:
        if column in ("evaluable", "responders"):
            return (column, per, instrument, where)
        return (column, per, where) if column != "infusions" else ("infusions", per, where)

    totals = {column: cells.count(key(column, ALL), sum(values), keep.get(column, 0))
              for column, values in columns.items()}
    parts = {column: [cells.count(key(column, (unit, name)), values[i], keep.get(column, 0))
                      for i, name in enumerate(names)]
             for column, values in columns.items()}
    for column in columns:
        cells.add(totals[column], parts[column])
    rows = []
    for i, name in enumerate(names + ["All"]):
        cell = totals if name == "All" else {column: parts[column][i] for column in columns}
        rows.append({
            "name": name,
            "total": name == "All",
            "courses": cell["courses"],
            "infusions": cell["infusions"],
            "dropout": cells.rate(cell["discontinued"], cell["courses"]),
            "response": cells.rate(cell["responders"], cell["evaluable"]),
        })
    return {"unit": unit, "rows": rows if names else []}
