"""Periods of the monthly report and the outcome counts of each (docs/definitions.md
"Reporting month").

"month" = courses whose outcome date falls in M; "previous" = the same for M-1; "rolling" =
outcome dates in the 12 months ending with M; all from the one computation as of the last day
of M. Safety and activity count infusions and scores dated in the period. A period's metrics
are pipeline/metrics.py's tables over the outcome relations restricted to it, computed in DuckDB
(reports/monthly/data.py), so every figure uses the same definitions as metrics.json.

Every count goes through one `Ledger` (pipeline/reports/suppression.py) under a key naming the
quantity — (what, period, [instrument,] unit) — so a figure printed in two sections is one cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl

from pipeline.months import Month
from pipeline.reports.suppression import CountRef, Ledger, RateRef

ALL = "All protocols"
PREFERRED_INSTRUMENT = "PHQ-9"  # the main instrument when any course has it evaluable
# keep: the higher, the later a cell is chosen for complementary suppression
KEEP_TOTAL, KEEP_DENOMINATOR, KEEP_HEADLINE = 3, 2, 1


def per_key(start: date, end: date) -> str:
    """The period part of a cell key: the same dates give the same cell in every section."""
    return f"{start.isoformat()}..{end.isoformat()}"


ACTIVITY_PERIODS = ("month", "previous")  # the periods whose activity the report counts


def period_bounds(month: Month) -> dict[str, tuple[date, date]]:
    """First and last day of the month, the previous month and the rolling 12 months."""
    previous = month.shift(-1)
    return {"month": (month.first, month.last), "previous": (previous.first, previous.last),
            "rolling": (month.shift(-11).first, month.last)}


@dataclass(frozen=True)
class Period:
    key: str
    label: str
    start: date
    end: date
    # the metric tables of the period and its counts of course rows, courses, sites and
    # providers (reports/monthly/data.py read_period)
    metrics: dict[str, pl.DataFrame]

    @property
    def per(self) -> str:
        return per_key(self.start, self.end)

    @property
    def course_counts(self) -> pl.DataFrame:
        """The period's course rows counted (sql/reports/monthly/course_counts.sql: n per
        protocol, instrument, status, evaluable, reason, category, timing)."""
        return self.metrics["course_counts"]


def summary_row(summary: pl.DataFrame, instrument: str | None) -> dict[str, Any] | None:
    if instrument is None or summary.height == 0:
        return None
    rows = summary.filter(pl.col("instrument") == instrument).to_dicts()
    return rows[0] if rows else None


def headline_instrument(counts: pl.DataFrame) -> str | None:
    """PHQ-9 when any course in the period has it evaluable; else the most evaluated instrument.
    counts: course rows counted per instrument and evaluable (column n)."""
    rated = counts.filter(pl.col("evaluable") & (pl.col("n") > 0))
    if rated.height == 0:
        present = sorted(counts.filter(pl.col("n") > 0)["instrument"].unique().to_list())
        return PREFERRED_INSTRUMENT if PREFERRED_INSTRUMENT in present else (
            present[0] if present else None)
    if rated.filter(pl.col("instrument") == PREFERRED_INSTRUMENT).height:
        return PREFERRED_INSTRUMENT
    totals = rated.group_by("instrument").agg(n=pl.col("n").sum()).sort(
        ["n", "instrument"], descending=[True, False])
    return str(totals["instrument"][0])


def clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---------------------------------------------------------------------------------------------
# Outcome counts as ledger cells (one protocol_summary row = one protocol x instrument x period)

OUTCOME_COUNTS = [("evaluable", "evaluable"), ("responders", "responders"),
                  ("partial", "partial_responders"), ("non_responders", "non_responders"),
                  ("remitters", "remitters"), ("remission_evaluable", "remission_evaluable"),
                  ("itt", "itt_courses"), ("not_evaluable", "not_evaluable")]


OutcomeCells = dict[str, CountRef]

REASONS = ("no baseline", "zero baseline", "no follow-up score")  # of a course not evaluable
NO_FOLLOW_UP = REASONS[2]
BASELINE_AT_OR_BELOW = "baseline_at_or_below_remission"
ReasonCounts = dict[tuple[str, str], dict[str, int]]


def reason_counts(counts: pl.DataFrame) -> ReasonCounts:
    """Courses not evaluable by reason, per (protocol, instrument) and clinic-wide
    ((ALL, instrument)), of the ended course rows counted in `counts` (course_counts)."""
    ended = counts.filter(
        (pl.col("status") != "in_progress") & pl.col("not_evaluable_reason").is_not_null())
    out: ReasonCounts = {}
    for protocol in (pl.col("protocol_id"), pl.lit(ALL)):
        sums = ended.group_by(protocol.alias("protocol_id"), "instrument",
                              "not_evaluable_reason").agg(n=pl.col("n").sum())
        for r in sums.to_dicts():
            out.setdefault((r["protocol_id"], r["instrument"]), {})[
                r["not_evaluable_reason"]] = int(r["n"])
    return out


def register_outcomes(cells: Ledger, per: str, row: dict[str, Any], protocol: str,
                      reasons: dict[str, int]) -> OutcomeCells:
    """The counts of one protocol_summary row with the relations among them:
    evaluable = responders + partial + non-responders; courses = evaluable + not evaluable;
    not evaluable = no baseline + zero baseline + no follow-up score; ITT = evaluable + no
    follow-up score; evaluable = remission-evaluable + baseline at or below the remission
    cutoff. `reasons`: the row's courses not evaluable by reason (reason_counts).

    Every cell is returned (the unprinted parts too), so the protocol rows can be declared to
    add up to the clinic's for each of them."""
    instrument = row["instrument"]
    out = {name: cells.virtual((name, per, instrument, protocol), int(row[column]))
           for name, column in OUTCOME_COUNTS}
    out["courses"] = cells.virtual(("courses", per, protocol), int(row["courses"]))
    for reason in REASONS:
        out[reason] = cells.virtual(("not_evaluable_reason", per, instrument, protocol, reason),
                                    reasons.get(reason, 0))
    cells.add(out["evaluable"], [out["responders"], out["partial"], out["non_responders"]])
    cells.add(out["courses"], [out["evaluable"], out["not_evaluable"]])
    cells.add(out["not_evaluable"], [out[reason] for reason in REASONS])
    cells.add(out["itt"], [out["evaluable"], out[NO_FOLLOW_UP]])
    out[BASELINE_AT_OR_BELOW] = cells.split(out["evaluable"], [out["remission_evaluable"]],
                                            (BASELINE_AT_OR_BELOW, per, instrument, protocol))
    return out


def register_period(cells: Ledger, period: Period) -> dict[tuple[str, str], OutcomeCells]:
    """Outcome cells of a period per (protocol, instrument) and clinic-wide ((ALL, instrument)),
    with the protocol rows adding up to the clinic's in every cell, unprinted parts included
    (courses without a follow-up score, baselines at or below the remission cutoff, ...)."""
    per = period.per
    out: dict[tuple[str, str], OutcomeCells] = {}
    reasons = reason_counts(period.course_counts)
    summary = period.metrics["protocol_summary"].sort("protocol_id", "instrument").to_dicts()
    for row in summary:
        key = (row["protocol_id"], row["instrument"])
        out[key] = register_outcomes(cells, per, row, row["protocol_id"], reasons.get(key, {}))
    clinic = period.metrics["clinic_summary"]
    for row in clinic.sort("instrument").to_dicts() if clinic.height else []:
        instrument = row["instrument"]
        total = out[(ALL, instrument)] = register_outcomes(
            cells, per, row, ALL, reasons.get((ALL, instrument), {}))
        parts = [c for (p, i), c in out.items() if i == instrument and p != ALL]
        for name in total:
            cells.add(total[name], [c[name] for c in parts])
    return out


def zero(cells: Ledger) -> CountRef:
    return cells.count(None, 0)


def outcome_rates(cells: Ledger, counts: OutcomeCells | None,
                  row: dict[str, Any] | None) -> dict[str, RateRef]:
    """Response, partial, non-response, remission and ITT response of one protocol_summary row,
    each printed with its counts (so the complementary cells are the ledger's to protect)."""
    if counts is None or row is None:
        empty = cells.rate(zero(cells), zero(cells))
        return {key: empty for key in ("response", "partial_response", "non_response",
                                       "remission", "itt_response")}

    def one(name: str, numerator: str, denominator: str) -> RateRef:
        # responders and evaluable courses are withheld last; ITT and remission give way first
        keep = KEEP_HEADLINE if numerator == "responders" else 0
        denominator_keep = KEEP_DENOMINATOR if denominator == "evaluable" else KEEP_HEADLINE
        return cells.rate(cells.show(counts[numerator], keep),
                          cells.show(counts[denominator], denominator_keep),
                          value=clean(row[f"{name}_rate"]), low=clean(row[f"{name}_ci_low"]),
                          high=clean(row[f"{name}_ci_high"]))

    return {
        "response": one("response", "responders", "evaluable"),
        "partial_response": one("partial_response", "partial", "evaluable"),
        "non_response": one("non_response", "non_responders", "evaluable"),
        "remission": one("remission", "remitters", "remission_evaluable"),
        "itt_response": one("itt_response", "responders", "itt"),
    }
