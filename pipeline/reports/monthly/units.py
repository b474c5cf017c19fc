"""Sites and providers of the monthly report: which site and provider a course belongs to, and
the by-site / by-provider tables (docs/definitions.md "Site and provider of a course").
"""

from __future__ import annotations

from typing import Any

import polars as pl

from pipeline.outcomes import OutcomeFrames
from pipeline.reports.monthly.periods import ALL, KEEP_DENOMINATOR, Period
from pipeline.reports.suppression import Ledger


def course_units(frames: OutcomeFrames, sessions: pl.DataFrame) -> pl.DataFrame:
    """Site and provider of each course: those of its first infusion (a choice, see methods).

    sessions: the monthly_sessions input (session_id, site, provider). The case-mix model
    (pipeline/casemix.py) takes this frame as its `units`."""
    first = frames.course_infusions.filter(pl.col("infusion_number") == 1).select(
        "patient_id", "course_id", "session_id")
    return first.join(sessions.select("session_id", "site", "provider"), on="session_id",
                      how="left").with_columns(
        pl.col("site").fill_null("not recorded"), pl.col("provider").fill_null("not recorded"),
    ).select("patient_id", "course_id", "site", "provider")


def breakdown(cells: Ledger, period: Period, units: pl.DataFrame, sessions: pl.DataFrame,
              unit: str, instrument: str | None) -> dict[str, Any]:
    """Courses ending, dropouts, response (headline instrument) and infusions per site/provider.
    Every column of units adds up to the "All" row, which is the clinic's figure elsewhere."""
    per = period.per
    co = period.frames.course_outcomes.join(units, on=["patient_id", "course_id"], how="left")
    co = co.with_columns(pl.col(unit).fill_null("not recorded"))
    per_course = co.select("patient_id", "course_id", unit, "status").unique()
    rated = co.filter(pl.col("evaluable") & (pl.col("instrument") == (instrument or "")))
    infusion_units = period.frames.course_infusions.join(
        sessions.select("session_id", "site", "provider"), on="session_id", how="left"
    ).with_columns(pl.col(unit).fill_null("not recorded"))
    names = sorted(set(per_course[unit].to_list()) | set(infusion_units[unit].to_list()))

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
        "infusions": per_unit(infusion_units),
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
