"""Sites and providers of the monthly report: the by-site / by-provider tables
(docs/definitions.md "Site and provider of a course"; which site and provider a course belongs
to is sql/reports/monthly/course_units.sql).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from pipeline.reports.monthly.periods import ALL, KEEP_DENOMINATOR, Period
from pipeline.reports.suppression import Ledger


def breakdown(cells: Ledger, period: Period, unit: str, instrument: str | None
              ) -> dict[str, Any]:
    """Courses ending, dropouts, response (headline instrument) and infusions per site/provider.
    Every column of units adds up to the "All" row, which is the clinic's figure elsewhere.

    From the period's unit_courses, unit_rated and unit_infusions (reports/monthly/data.py)."""
    per = period.per

    def counts(table: str, column: str, extra: pl.Expr | None = None) -> dict[str, int]:
        rows = period.metrics[table].filter(pl.col("unit") == unit)
        if extra is not None:
            rows = rows.filter(extra)
        return {r["name"]: int(r[column]) for r in rows.to_dicts()}

    rated = pl.col("instrument") == (instrument or "")
    found = {
        "courses": counts("unit_courses", "courses"),
        "discontinued": counts("unit_courses", "discontinued"),
        "evaluable": counts("unit_rated", "evaluable", rated),
        "responders": counts("unit_rated", "responders", rated),
        "infusions": counts("unit_infusions", "infusions"),
    }
    names = sorted(set(found["courses"]) | set(found["infusions"]))
    columns = {column: [got.get(name, 0) for name in names] for column, got in found.items()}
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
