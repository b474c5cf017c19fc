"""Monthly quality report (SPEC §2 "Reporting month of a course"): metrics -> context -> PDF + JSON.

`write_monthly_report` gathers the inputs (read-only database, `compute_outcomes` as of the last
day of the month, sql/reports/monthly_*.sql for sessions and loads); `build_context` turns them
into plain dicts, computing every number the PDF prints; the template only formats. The JSON
file is the same context, so it holds exactly the printed figures (suppressed ones as "<11"/"*").

Periods: "month" = courses whose outcome date falls in M (as of the last day of M); "previous"
= the same for M-1; "rolling" = outcome dates in the 12 months ending with M. Safety counts
infusions and scores dated in the period.

Small-cell suppression (`suppress_small_cells`): every count goes through one `Ledger`
(monthly_cells.py) under a key naming the quantity — (what, period, [instrument,] unit) — so a
figure printed in two sections is one cell, and every additive relation a reader could use is
declared where the counts are made: docs/suppression.md lists them. The ledger decides which
cells print as "<11" or "*" only once the whole report is known; sections return references
that `Ledger.resolve` turns into printed values. Charts are drawn from the resolved context.

Determinism: nothing here reads the clock. The PDF's metadata date comes from
pipeline/reports/dates.py; provenance is the load id and the input files' SHA-256.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import math
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

import pipeline
from pipeline.config import Config
from pipeline.db import connect
from pipeline.errors import InputError
from pipeline.formatting import Suppressed, fmt_month, json_ready
from pipeline.methods import methods_sentences
from pipeline.metrics import compute_metrics, protocol_summary
from pipeline.outcomes import OutcomeFrames, compute_outcomes
from pipeline.paths import SQL_DIR
from pipeline.reports.files import report_timestamp, w3c, write_report_files
from pipeline.reports.suppression import CountRef, Deferred, Ledger, RateRef
from pipeline.stats import p_chart

TEMPLATE = "monthly.html.j2"
HISTORY_MONTHS = 24  # p-chart: up to 24 months ending at M ...
MIN_HISTORY_MONTHS = 12  # ... and never fewer than 12
ALL = "All protocols"
PREFERRED_INSTRUMENT = "PHQ-9"
TIMINGS = [("early", "Early (1–2)"), ("gradual", "Gradual (3–4)"), ("late", "Late (≥ 5)"),
           ("never", "Not yet / never")]
TIMING_STEPS = {"early": (1, 2), "gradual": (3, 4), "late": (5, 10**6)}
REASONS = ["no baseline", "zero baseline", "no follow-up score"]
# counts that do not add up across months (a patient flagged in two months is one patient)
NOT_ADDITIVE = {"item9_patients"}
# keep: the higher, the later a cell is chosen for complementary suppression
KEEP_TOTAL, KEEP_DENOMINATOR, KEEP_HEADLINE = 3, 2, 1


# ---------------------------------------------------------------------------------------------
# Months


def parse_month(month: str) -> tuple[date, date]:
    """'YYYY-MM' -> (first day, last day)."""
    try:
        year, mon = (int(p) for p in month.split("-"))
        first = date(year, mon, 1)
    except (ValueError, TypeError) as exc:
        raise InputError(f"month {month!r}: use the form YYYY-MM, e.g. 2026-03") from exc
    return first, date(year, mon, calendar.monthrange(year, mon)[1])


def shift_month(month: str, by: int) -> str:
    first, _ = parse_month(month)
    index = first.year * 12 + first.month - 1 + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def per_key(start: date, end: date) -> str:
    """The period part of a cell key: the same dates give the same cell in every section."""
    return f"{start.isoformat()}..{end.isoformat()}"


# ---------------------------------------------------------------------------------------------
# Inputs (read once from the database) and period slices of the outcome frames


@dataclass(frozen=True)
class MonthlyInputs:
    month: str
    current: OutcomeFrames  # as of the last day of the month
    previous: OutcomeFrames  # as of the last day of the month before
    history: dict[str, pl.DataFrame]  # YYYY-MM -> course_outcomes as of that month's last day
    sessions: pl.DataFrame  # sql/reports/monthly_sessions.sql (no patient identifiers)
    protocols: dict[str, str]  # protocol_id -> name
    loads: pl.DataFrame  # sql/reports/monthly_loads.sql
    reject_reasons: pl.DataFrame  # sql/reports/monthly_reject_reasons.sql
    package_version: str


def ended_courses(course_outcomes: pl.DataFrame, start: date, end: date) -> pl.DataFrame:
    """SPEC §2 "Reporting month of a course": non-in-progress courses with outcome date in range."""
    return course_outcomes.filter(
        (pl.col("status") != "in_progress")
        & pl.col("course_outcome_date").is_between(start, end)
    )


def period_frames(frames: OutcomeFrames, start: date, end: date) -> OutcomeFrames:
    """The outcome frames restricted to one period, so compute_metrics yields period metrics.

    Courses: outcome date in the period; infusions and scores: dated in the period.
    """
    return replace(
        frames,
        course_outcomes=ended_courses(frames.course_outcomes, start, end),
        courses=ended_courses(frames.courses, start, end),
        course_infusions=frames.course_infusions.filter(
            pl.col("infusion_day").is_between(start, end)),
        scores=frames.scores.filter(pl.col("score_day").is_between(start, end)),
    )


@dataclass(frozen=True)
class Period:
    key: str
    label: str
    start: date
    end: date
    frames: OutcomeFrames  # restricted to the period
    metrics: dict[str, pl.DataFrame]  # compute_metrics over the restricted frames

    @property
    def per(self) -> str:
        return per_key(self.start, self.end)


def make_period(key: str, label: str, frames: OutcomeFrames, start: date, end: date,
                config: Config) -> Period:
    restricted = period_frames(frames, start, end)
    return Period(key, label, start, end, restricted, compute_metrics(restricted, config))


# ---------------------------------------------------------------------------------------------
# Helpers over frames


def course_keys(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select("patient_id", "course_id").unique().sort("patient_id", "course_id")


def clinic_summary(course_outcomes: pl.DataFrame) -> pl.DataFrame:
    """protocol_summary with every protocol pooled: the same definitions, clinic-wide."""
    if course_outcomes.height == 0:
        return pl.DataFrame()
    return protocol_summary(course_outcomes.with_columns(protocol_id=pl.lit(ALL)))


def summary_row(summary: pl.DataFrame, instrument: str | None) -> dict[str, Any] | None:
    if instrument is None or summary.height == 0:
        return None
    rows = summary.filter(pl.col("instrument") == instrument).to_dicts()
    return rows[0] if rows else None


def headline_instrument(course_outcomes: pl.DataFrame) -> str | None:
    """PHQ-9 when any course in the period has it evaluable; else the most evaluated instrument."""
    rated = course_outcomes.filter(pl.col("evaluable"))
    if rated.height == 0:
        present = sorted(course_outcomes["instrument"].unique().to_list())
        return PREFERRED_INSTRUMENT if PREFERRED_INSTRUMENT in present else (
            present[0] if present else None)
    if rated.filter(pl.col("instrument") == PREFERRED_INSTRUMENT).height:
        return PREFERRED_INSTRUMENT
    counts = rated.group_by("instrument").agg(n=pl.len()).sort(["n", "instrument"],
                                                                 descending=[True, False])
    return str(counts["instrument"][0])


def _clean(value: Any) -> Any:
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


def register_outcomes(cells: Ledger, per: str, row: dict[str, Any], protocol: str) -> OutcomeCells:
    """The counts of one protocol_summary row with the relations among them:
    evaluable = responders + partial + non-responders; courses = evaluable + not evaluable;
    ITT = evaluable + no follow-up score; evaluable = remission-evaluable + baseline at or
    below the remission cutoff."""
    instrument = row["instrument"]
    out = {name: cells.virtual((name, per, instrument, protocol), int(row[column]))
           for name, column in OUTCOME_COUNTS}
    out["courses"] = cells.virtual(("courses", per, protocol), int(row["courses"]))
    cells.add(out["evaluable"], [out["responders"], out["partial"], out["non_responders"]])
    cells.add(out["courses"], [out["evaluable"], out["not_evaluable"]])
    cells.split(out["itt"], [out["evaluable"]],
                ("not_evaluable_reason", per, instrument, protocol, "no follow-up score"))
    cells.split(out["evaluable"], [out["remission_evaluable"]],
                ("baseline_at_or_below_remission", per, instrument, protocol))
    return out


def register_period(cells: Ledger, period: Period) -> dict[tuple[str, str], OutcomeCells]:
    """Outcome cells of a period per (protocol, instrument) and clinic-wide ((ALL, instrument)),
    with the protocol rows adding up to the clinic's."""
    per = period.per
    out: dict[tuple[str, str], OutcomeCells] = {}
    summary = period.metrics["protocol_summary"].sort("protocol_id", "instrument").to_dicts()
    for row in summary:
        out[(row["protocol_id"], row["instrument"])] = register_outcomes(
            cells, per, row, row["protocol_id"])
    clinic = clinic_summary(period.frames.course_outcomes)
    for row in clinic.sort("instrument").to_dicts() if clinic.height else []:
        instrument = row["instrument"]
        total = out[(ALL, instrument)] = register_outcomes(cells, per, row, ALL)
        parts = [c for (p, i), c in out.items() if i == instrument and p != ALL]
        for name, _ in OUTCOME_COUNTS:
            cells.add(total[name], [c[name] for c in parts])
        cells.add(total["courses"], [c["courses"] for c in parts])
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
                          value=_clean(row[f"{name}_rate"]), low=_clean(row[f"{name}_ci_low"]),
                          high=_clean(row[f"{name}_ci_high"]))

    return {
        "response": one("response", "responders", "evaluable"),
        "partial_response": one("partial_response", "partial", "evaluable"),
        "non_response": one("non_response", "non_responders", "evaluable"),
        "remission": one("remission", "remitters", "remission_evaluable"),
        "itt_response": one("itt_response", "responders", "itt"),
    }


# ---------------------------------------------------------------------------------------------
# Sections (each returns references; Ledger.resolve turns them into printed values)


def courses_ended(cells: Ledger, period: Period) -> CountRef:
    return cells.count(("courses", period.per, ALL),
                       course_keys(period.frames.course_outcomes).height, KEEP_TOTAL)


def headline(cells: Ledger, period: Period, instrument: str | None,
             outcome_cells: dict[tuple[str, str], OutcomeCells]) -> dict[str, Any]:
    co = period.frames.course_outcomes
    ended = courses_ended(cells, period)
    discontinued = cells.count(("discontinued", period.per, ALL),
                               course_keys(co.filter(pl.col("status") == "discontinued")).height)
    row = summary_row(clinic_summary(co), instrument)
    safety = period.metrics["safety_summary"].filter(pl.col("scope") == "clinic").to_dicts()
    infusions = cells.count(("infusions", period.per, ALL),
                            int(safety[0]["infusions"]) if safety else 0, KEEP_DENOMINATOR)
    with_ae = cells.count(("adverse_event_infusions", period.per),
                          int(safety[0]["infusions_with_adverse_event"]) if safety else 0)
    return {
        "courses_ended": ended,
        **outcome_rates(cells, outcome_cells.get((ALL, instrument or "")), row),
        "dropout": cells.rate(discontinued, ended),
        "adverse_events": cells.rate(with_ae, infusions),
    }


def activity(cells: Ledger, frames: OutcomeFrames, sessions: pl.DataFrame, start: date,
             end: date) -> dict[str, CountRef]:
    """What happened in the month, by the date it happened (not by course outcome date)."""
    per = per_key(start, end)
    infusions = frames.course_infusions
    in_month = infusions.filter(pl.col("infusion_day").is_between(start, end))
    first_day = infusions.group_by("patient_id").agg(first=pl.col("infusion_day").min())
    new_patients = first_day.filter(pl.col("first").is_between(start, end)).height
    courses = frames.courses
    started = courses.filter(pl.col("first_infusion_day").is_between(start, end)).height
    # a course completes on the day of its planned infusion number (planned_infusions-th)
    completing = in_month.join(
        courses.select("patient_id", "course_id", "planned_infusions"),
        on=["patient_id", "course_id"], how="inner",
    ).filter(pl.col("infusion_number") == pl.col("planned_infusions")).height
    discontinued = courses.filter(
        (pl.col("status") == "discontinued")
        & pl.col("course_outcome_date").is_between(start, end)).height
    month_sessions = sessions.filter(pl.col("session_day").is_between(start, end))
    cancelled = month_sessions.filter(pl.col("status") == "cancelled").height
    aborted = in_month.filter(pl.col("status") == "aborted").height
    infusions_cell = cells.count(("infusions", per, ALL), in_month.height, KEEP_DENOMINATOR)
    aborted_cell = cells.count(("aborted", per, ALL), aborted)
    cells.split(infusions_cell, [aborted_cell], ("not aborted", per, ALL))
    return {
        "new_patients": cells.count(("new_patients", per), new_patients),
        "courses_started": cells.count(("courses_started", per), started),
        "courses_completing": cells.count(("courses_completing", per), completing),
        "courses_discontinued": cells.count(("discontinued", per, ALL), discontinued),
        "infusions": infusions_cell,
        "aborted": aborted_cell,
        "cancelled": cells.count(("cancelled", per), cancelled),
    }


def outcome_rows(cells: Ledger, period: Period, protocols: dict[str, str],
                 outcome_cells: dict[tuple[str, str], OutcomeCells]) -> list[dict[str, Any]]:
    """One row per protocol x instrument with courses ending in the period (protocol_summary)."""
    summary = period.metrics["protocol_summary"]
    rows = []
    for r in summary.sort("protocol_id", "instrument").to_dicts():
        counts = outcome_cells[(r["protocol_id"], r["instrument"])]
        evaluable = cells.show(counts["evaluable"], KEEP_DENOMINATOR)
        median = _clean(r["median_infusions_to_response"])
        rows.append({
            "protocol_id": r["protocol_id"],
            "protocol_name": protocols.get(r["protocol_id"], r["protocol_id"]),
            "instrument": r["instrument"],
            "courses": cells.show(counts["courses"], KEEP_DENOMINATOR),
            "evaluable": evaluable,
            "not_evaluable": cells.show(counts["not_evaluable"]),
            **outcome_rates(cells, counts, r),
            "median_infusions_to_response": None if median is None
            else cells.guard(int(median), evaluable, fallback="withheld"),
            "empty": int(r["evaluable"]) == 0,
        })
    return rows


def timing_rows(cells: Ledger, period: Period, instrument: str | None,
                outcome_cells: dict[tuple[str, str], OutcomeCells]) -> list[dict[str, Any]]:
    """SPEC §2 "Infusions to response" timing classes per protocol, headline instrument.
    The classes add up to the evaluable courses; each share is printed only with its count."""
    if instrument is None:
        return []
    rated = period.frames.course_outcomes.filter(
        pl.col("evaluable") & (pl.col("instrument") == instrument))
    summary = period.metrics["protocol_summary"].filter(pl.col("instrument") == instrument)
    medians = {r["protocol_id"]: _clean(r["median_infusions_to_response"])
               for r in summary.to_dicts()}
    counts = rated.group_by("protocol_id", "response_timing").agg(n=pl.len()).sort(
        "protocol_id", "response_timing")
    rows = []
    for protocol_id in sorted(medians):
        per = {r["response_timing"]: int(r["n"]) for r in
               counts.filter(pl.col("protocol_id") == protocol_id).to_dicts()}
        evaluable = cells.show(outcome_cells[(protocol_id, instrument)]["evaluable"],
                               KEEP_DENOMINATOR)
        classes = [cells.count(("timing", period.per, instrument, protocol_id, key),
                               per.get(key, 0)) for key, _ in TIMINGS]
        cells.add(evaluable, classes)
        median = medians[protocol_id]
        rows.append({
            "protocol_id": protocol_id,
            "evaluable": evaluable,
            "classes": [{"key": key, "count": c, "share": cells.share(c, evaluable)}
                        for (key, _), c in zip(TIMINGS, classes, strict=True)],
            "median": None if median is None else cells.guard(int(median), evaluable,
                                                              fallback="withheld"),
            "empty": sum(per.values()) == 0,
        })
    return rows


def attrition_rows(cells: Ledger, period: Period, protocols_planned: dict[str, int],
                   max_columns: int) -> list[dict[str, Any]]:
    """Courses reaching infusion 1..N per protocol (metrics.attrition over the period's courses).

    Relations: started = reached 1; reached n = reached n+1 + stopped after n; started =
    completed + discontinued; reached at the planned number = completed; each share is of the
    started courses; the protocols' completed and discontinued add up to the clinic's.
    """
    table = period.metrics["attrition"]
    courses = period.frames.courses
    per = period.per
    rows = []
    columns: dict[str, list[CountRef]] = {"completed": [], "discontinued": []}
    for protocol_id in sorted(table["protocol_id"].unique().to_list()):
        steps = table.filter(pl.col("protocol_id") == protocol_id).sort("infusion_number")
        started = cells.count(("courses", per, protocol_id), int(steps["starting"][0]),
                              KEEP_DENOMINATOR)
        reached = [cells.virtual(("reached", per, protocol_id, i + 1), int(n))
                   for i, n in enumerate(steps["courses_reaching"].to_list())]
        cells.add(started, reached[:1])
        for i in range(len(reached) - 1):
            cells.split(reached[i], [reached[i + 1]], ("stopped after", per, protocol_id, i + 1))
        mine = courses.filter(pl.col("protocol_id") == protocol_id)
        completed = cells.count(("completed", per, protocol_id),
                                mine.filter(pl.col("status") == "completed").height)
        discontinued = cells.count(("discontinued", per, protocol_id),
                                   mine.filter(pl.col("status") == "discontinued").height)
        cells.add(started, [completed, discontinued])
        columns["completed"].append(completed)
        columns["discontinued"].append(discontinued)
        planned = protocols_planned.get(protocol_id)
        if planned and planned <= len(reached):
            cells.add(reached[planned - 1], [completed])
        shown = [cells.show(c) for c in reached[:max_columns]]
        rows.append({
            "protocol_id": protocol_id,
            "planned": planned,
            "started": started,
            "reached": [{"infusion_number": i + 1, "count": c, "share": cells.share(c, started)}
                        for i, c in enumerate(shown)],
            "completed": completed,
            "discontinued": discontinued,
            "dropout": cells.rate(discontinued, started),
        })
    if rows:
        # the protocols add up to the clinic: its dropouts are printed in the headline
        totals = {name: cells.virtual((name, per, ALL), sum(cells.value(c) for c in parts))
                  for name, parts in columns.items()}
        for name, parts in columns.items():
            cells.add(totals[name], parts)
        cells.add((("courses", per, ALL)), [totals["completed"], totals["discontinued"]])
    return rows


def safety_section(cells: Ledger, period: Period) -> dict[str, Any]:
    """Relations: infusions = aborted + not aborted = BP recorded + not recorded = with an
    adverse event + without; BP recorded = high + not high; each event type <= infusions with
    any event <= the sum of the types; item-9 scores >= patients with such a score."""
    per = period.per
    rows = period.metrics["safety_summary"].filter(pl.col("scope") == "clinic").to_dicts()
    flags = period.metrics["item9_flags"]
    scores = cells.count(("item9_scores", per), flags.height)
    patients = cells.count(("item9_patients", per),
                           flags["patient_id"].n_unique() if flags.height else 0)
    cells.at_least([scores], [patients])
    item9 = {"scores": scores, "patients": patients}
    if not rows:
        return {"infusions": cells.count(("infusions", per, ALL), 0), "empty": True,
                "events": [], "item9": item9}
    s = rows[0]
    infusions = cells.count(("infusions", per, ALL), int(s["infusions"]), KEEP_DENOMINATOR)
    aborted = cells.count(("aborted", per, ALL), int(s["aborted"]))
    bp = cells.count(("bp_recorded", per), int(s["bp_recorded"]), KEEP_DENOMINATOR)
    high_bp = cells.count(("high_bp", per), int(s["high_bp"]))
    with_ae = cells.count(("adverse_event_infusions", per),
                          int(s["infusions_with_adverse_event"]))
    cells.split(infusions, [bp], ("bp not recorded", per))
    events = period.metrics["adverse_event_rates"].filter(pl.col("scope") == "clinic").sort(
        ["events", "event_type"], descending=[True, False]).to_dicts()
    types = [(e["event_type"], cells.count(("adverse_event_type", per, e["event_type"]),
                                          int(e["events"]))) for e in events]
    for _, cell in types:
        cells.at_least([with_ae], [cell])
    if types:
        cells.at_least([cell for _, cell in types], [with_ae])
    return {
        "empty": int(s["infusions"]) == 0,
        "infusions": infusions,
        "aborted": cells.rate(aborted, infusions, value=_clean(s["aborted_rate"]),
                              low=_clean(s["aborted_ci_low"]), high=_clean(s["aborted_ci_high"])),
        "bp_recorded": bp,
        "high_bp": cells.rate(high_bp, bp, value=_clean(s["high_bp_rate"]),
                              low=_clean(s["high_bp_ci_low"]), high=_clean(s["high_bp_ci_high"])),
        "any_adverse_event": cells.rate(with_ae, infusions),
        "events": [{"event_type": name, "rate": cells.rate(cell, infusions)}
                   for name, cell in types],
        "item9": item9,
    }


def completeness_rows(cells: Ledger, period: Period,
                      outcome_cells: dict[tuple[str, str], OutcomeCells]) -> list[dict[str, Any]]:
    """Per instrument: courses ending in the period that are not evaluable, by reason.
    Relation: courses = no baseline + zero baseline + no follow-up score + evaluable."""
    co = period.frames.course_outcomes
    per = period.per
    rows = []
    for instrument in sorted(co["instrument"].unique().to_list()):
        mine = co.filter(pl.col("instrument") == instrument)
        reasons = mine.group_by("not_evaluable_reason").agg(n=pl.len()).to_dicts()
        counts = {r["not_evaluable_reason"]: int(r["n"]) for r in reasons}
        courses = cells.count(("courses", per, ALL), mine.height, KEEP_TOTAL)
        reason_cells = [cells.count(("not_evaluable_reason", per, instrument, ALL, reason),
                                    counts.get(reason, 0)) for reason in REASONS]
        evaluable = cells.count(("evaluable", per, instrument, ALL), counts.get(None, 0),
                                KEEP_DENOMINATOR)
        cells.add(courses, [*reason_cells, evaluable])
        clinic = outcome_cells.get((ALL, instrument))
        if clinic is not None:
            cells.add(clinic["not_evaluable"], reason_cells)
        rows.append({"instrument": instrument, "courses": courses, "reasons": reason_cells,
                     "evaluable": evaluable})
    return rows


def course_units(frames: OutcomeFrames, sessions: pl.DataFrame) -> pl.DataFrame:
    """Site and provider of each course: those of its first infusion (a choice, see methods)."""
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


def control_chart(cells: Ledger, inputs: MonthlyInputs, instrument: str | None,
                  rolling: Period) -> Deferred:
    """p-chart of the monthly response rate (headline instrument), as of the report month's end.

    Centre line p-bar and 3-sigma limits per month's n (stats.p_chart); months before the first
    month with any course are dropped, keeping at least 12. Each month's responders/evaluable
    are the same cells as the headline's month and previous month; the 12 months ending with M
    add up to the rolling figures; the centre line prints total responders / total evaluable.
    A month's limits reveal its n, so they are printed only when its n is.
    """
    months = sorted(inputs.history)
    points = []
    month_cells: dict[str, tuple[CountRef, CountRef]] = {}
    for month in months:
        start, end = parse_month(month)
        per = per_key(start, end)
        row = summary_row(clinic_summary(ended_courses(inputs.history[month], start, end)),
                          instrument)
        if row is not None:
            counts = register_outcomes(cells, per, row, ALL)
            month_cells[month] = (counts["responders"], counts["evaluable"])
        else:
            month_cells[month] = (cells.virtual(("responders", per, instrument, ALL), 0),
                                  cells.virtual(("evaluable", per, instrument, ALL), 0))
        points.append((month, int(row["responders"]) if row else 0,
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
    for month, _, _ in points:
        k_cell, n_cell = month_cells[month]
        rates[month] = cells.rate(cells.show(k_cell, KEEP_HEADLINE),
                                  cells.show(n_cell, KEEP_DENOMINATOR))
    centre_rate = cells.rate(total_k, total_n)

    def build() -> dict[str, Any]:
        centre_dict = cells.rate_dict(centre_rate)
        centre = centre_dict["rate"] if limits and not centre_dict["suppressed"] else None
        chart_points = []
        for (month, _, _), lim in zip(points, limits, strict=True):
            printed = cells.rate_dict(rates[month])
            proportion = printed["rate"]
            n_shown = cells.shown(month_cells[month][1]) and centre is not None
            lower = lim["lower"] if n_shown else None
            upper = lim["upper"] if n_shown else None
            signal = None
            if proportion is not None and upper is not None and lower is not None:
                if proportion > upper + 1e-12:
                    signal = "above"
                elif proportion < lower - 1e-12:
                    signal = "below"
            chart_points.append({
                "month": month, "responders": printed["numerator"],
                "evaluable": printed["denominator"], "proportion": proportion,
                "lower": lower, "upper": upper, "signal": signal,
                "withheld": printed["suppressed"],
            })
        # Wheeler's run rule: 8 or more consecutive plotted points on one side of the centre
        run_side, run_length, runs = None, 0, []
        for p in chart_points:
            side = None if p["proportion"] is None or centre is None else (
                "above" if p["proportion"] > centre else "below" if p["proportion"] < centre
                else None)
            run_length = run_length + 1 if side is not None and side == run_side else (
                1 if side else 0)
            run_side = side
            if run_length == 8:
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
        for key, (first, last) in TIMING_STEPS.items():
            timing_key = ("timing", per, instrument, protocol_id, key)
            if cells.has(timing_key):
                cells.add(timing_key, [e for e, s in zip(events, steps, strict=True)
                                       if first <= int(s["infusion_number"]) <= last])
        never_key = ("timing", per, instrument, protocol_id, "never")
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


def severity_distribution(cells: Ledger, period: Period, config: Config) -> dict[str, Any] | None:
    """PHQ-9 severity bands at baseline and endpoint, evaluable courses of the period (paired).
    Baseline bands and endpoint bands each add up to the evaluable PHQ-9 courses."""
    inst = config.instruments.get("PHQ-9")
    if inst is None or not inst.severity_bands:
        return None
    per = period.per
    rated = period.frames.course_outcomes.filter(
        pl.col("evaluable") & (pl.col("instrument") == "PHQ-9"))
    courses = cells.count(("evaluable", per, "PHQ-9", ALL), rated.height, KEEP_DENOMINATOR)
    bands: list[dict[str, Any]] = []
    for column in ("baseline", "endpoint"):
        band_cells = []
        for band in inst.severity_bands:
            n = rated.filter(pl.col(f"{column}_score").is_between(band.low, band.high)).height
            band_cells.append(cells.count(("severity", per, column, band.label), n))
        cells.add(courses, band_cells)
        for i, cell in enumerate(band_cells):
            if column == "baseline":
                band = inst.severity_bands[i]
                bands.append({"label": band.label, "range": f"{band.low:g}–{band.high:g}",
                              "baseline": cell})
            else:
                bands[i]["endpoint"] = cell
    return {"courses": courses, "bands": bands, "empty": rated.height == 0}


def latest_load(cells: Ledger, inputs: MonthlyInputs) -> dict[str, Any]:
    """The latest load's reconciliation per file (rows read = added + corrected + unchanged +
    duplicates + rejected; retired apart) and its most frequent reject reasons. Identified by
    load id and SHA-256, never by time."""
    latest = inputs.loads.to_dicts()
    files = []
    for r in latest:
        read = cells.count(("load", r["file"], "rows_read"), int(r["rows_read"]),
                           KEEP_DENOMINATOR)
        parts = {name: cells.count(("load", r["file"], name), int(r[name]))
                 for name in LOAD_PARTS}
        cells.add(read, list(parts.values()))
        retired = cells.count(("load", r["file"], "retired"), int(r["retired"]))
        files.append({"file": r["file"], "sha256": r["sha256"], "rows_read": read, **parts,
                      "retired": retired})
    mode = latest[0]["mode"] if latest else None
    return {
        "load_id": latest[0]["load_id"] if latest else None,
        "mode": mode,
        "statement": load_statement(latest[0]["load_id"], mode) if latest else None,
        "files": files,
        "reasons": [{"file": r["file"], "column": r["column_name"], "reason": r["reason"],
                     "problems": cells.count(None, int(r["problems"]))}
                    for r in inputs.reject_reasons.head(8).to_dicts()],
        "reasons_total": inputs.reject_reasons.height,
    }


LOAD_PARTS = ("added", "corrected", "unchanged", "duplicates", "rejected")


def load_statement(load_id: int, mode: str | None) -> str:
    """Which state of the database the figures come from (README "Exports over time")."""
    kind = {"snapshot": "a snapshot load: each file replaced its table's rows",
            "append": "an append load: rows added or corrected by id",
            }.get(mode or "", "a load made before load history existed")
    return (f"The figures come from the database as it stood right after load {load_id} "
            f"({kind}). Later loads do not change them: `outcomes report monthly --load "
            f"{load_id}` rebuilds this report byte for byte.")


def link_periods(cells: Ledger, rolling: Period, parts: list[Period]) -> None:
    """A count of the 12 months = the same count in the month (and previous month) + the rest:
    declared for every quantity registered in both, so "rolling minus month" is protected."""
    for key in cells.keys():
        if len(key) < 2 or key[1] != rolling.per or key[0] in NOT_ADDITIVE:
            continue
        inside = [(key[0], p.per, *key[2:]) for p in parts]
        inside = [k for k in inside if cells.has(k)]
        if inside:
            cells.split(key, inside, ("rest of the 12 months", *key))


def input_fingerprint(loads: pl.DataFrame) -> str | None:
    """A short, stable provenance id: SHA-256 over the latest load's file names and hashes."""
    if loads.height == 0:
        return None
    text = "\n".join(f"{r['file']} {r['sha256']}" for r in
                     loads.sort("file").select("file", "sha256").to_dicts())
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------
# The context


def build_context(inputs: MonthlyInputs, config: Config) -> dict[str, Any]:
    """Plain dicts of every figure the report prints (pure: no I/O, no clock)."""
    return build_ledger_context(inputs, config)[0]


def build_ledger_context(inputs: MonthlyInputs, config: Config) -> tuple[dict[str, Any], Ledger]:
    """The context and the solved ledger behind it (tests read the ledger's self-checks)."""
    cells = Ledger(config.definitions.suppress_small_cells, config.definitions.small_cell_max)
    month = inputs.month
    start, end = parse_month(month)
    previous_month = shift_month(month, -1)
    p_start, p_end = parse_month(previous_month)
    r_start, _ = parse_month(shift_month(month, -11))
    this = make_period("month", fmt_month(month), inputs.current, start, end, config)
    prev = make_period("previous", fmt_month(previous_month), inputs.previous, p_start, p_end,
                       config)
    rolling = make_period("rolling", f"12 months to {fmt_month(month)}", inputs.current,
                          r_start, end, config)
    instrument = headline_instrument(rolling.frames.course_outcomes)
    planned = {r["protocol_id"]: int(r["planned_infusions"])
               for r in inputs.current.courses.select("protocol_id", "planned_infusions")
               .unique().sort("protocol_id").to_dicts()}
    max_columns = min(max(planned.values(), default=1), 10)
    units = course_units(inputs.current, inputs.sessions)
    used = set(inputs.current.course_outcomes["instrument"].unique().to_list())
    periods = {p.key: p for p in (this, prev, rolling)}
    outcome_cells = {key: register_period(cells, p) for key, p in periods.items()}

    def period_info(p: Period) -> dict[str, Any]:
        return {"key": p.key, "label": p.label, "start": p.start.isoformat(),
                "end": p.end.isoformat(), "courses": courses_ended(cells, p)}

    fingerprint = input_fingerprint(inputs.loads)
    draft = {
        "month": month,
        "month_label": fmt_month(month),
        "as_of": end.isoformat(),
        "previous_as_of": end.isoformat(),
        "suppression": {"on": config.definitions.suppress_small_cells,
                        "small_cell_max": config.definitions.small_cell_max,
                        "marker": str(Suppressed(config.definitions.small_cell_max))},
        "headline_instrument": instrument,
        "periods": {key: period_info(p) for key, p in periods.items()},
        "headline": {key: headline(cells, p, instrument, outcome_cells[key])
                     for key, p in periods.items()},
        "activity": {key: activity(cells, frames, inputs.sessions, s, e) for key, frames, s, e in
                     (("month", inputs.current, start, end),
                      ("previous", inputs.previous, p_start, p_end))},
        "outcomes": {key: outcome_rows(cells, periods[key], inputs.protocols, outcome_cells[key])
                     for key in ("month", "rolling")},
        "instruments_not_used": sorted(set(config.instruments) - used),
        "timing": {key: timing_rows(cells, periods[key], instrument, outcome_cells[key])
                   for key in ("month", "rolling")},
        "attrition": {key: attrition_rows(cells, periods[key], planned, max_columns)
                      for key in ("month", "rolling")},
        "attrition_columns": list(range(1, max_columns + 1)),
        "safety": {key: safety_section(cells, periods[key]) for key in ("month", "rolling")},
        "completeness": {key: completeness_rows(cells, periods[key], outcome_cells[key])
                         for key in ("month", "rolling")},
        "latest_load": latest_load(cells, inputs),
        "breakdown": {key: [breakdown(cells, periods[key], units, inputs.sessions, unit,
                                      instrument) for unit in ("site", "provider")]
                      for key in ("month", "rolling")},
        "control_chart": control_chart(cells, inputs, instrument, rolling),
        "cumulative_response": km_curves(cells, rolling, instrument, outcome_cells["rolling"]),
        "severity": severity_distribution(cells, rolling, config),
        "methods": methods_sentences(config),
        "provenance": {
            "package_version": inputs.package_version,
            "as_of": end.isoformat(),
            "load_id": int(inputs.loads["load_id"][0]) if inputs.loads.height else None,
            "input_fingerprint": fingerprint,
            "config": {"path": Path(config.source).name if config.source else None,
                       "sha256": config.sha256},
            "inputs": [{"file": r["file"], "sha256": r["sha256"]}
                       for r in inputs.loads.to_dicts()],
        },
    }
    link_periods(cells, rolling, [this, prev])
    cells.solve()
    context: dict[str, Any] = cells.resolve(draft)
    context["suppression"]["withheld_curves"] = sum(
        1 for c in context["cumulative_response"] if c["withheld"])
    return context, cells


# ---------------------------------------------------------------------------------------------
# I/O


def _sql(name: str) -> str:
    return (SQL_DIR / "reports" / name).read_text(encoding="utf-8")


def read_inputs(con: duckdb.DuckDBPyConnection, month: str, config: Config) -> MonthlyInputs:
    """Everything the context needs, computed once, as of the last day of M (SPEC §2 "Reporting
    month of a course"): the month, the previous month, the rolling 12 months and every p-chart
    month are the courses whose outcome date falls in them, all as of that day. One outcome
    computation serves them all, so the report reads one set of numbers (and stays fast)."""
    current = compute_outcomes(con, parse_month(month)[1], config)
    history = {shift_month(month, -back): current.course_outcomes for back in range(HISTORY_MONTHS)}
    _, end = parse_month(month)
    sessions = con.sql(_sql("monthly_sessions.sql"), params={"as_of": end}).pl()
    protocols = {r["protocol_id"]: r["name"]
                 for r in con.sql(_sql("monthly_protocols.sql")).pl().to_dicts()}
    return MonthlyInputs(
        month=month,
        current=current,
        previous=current,
        history=history,
        sessions=sessions,
        protocols=protocols,
        loads=con.sql(_sql("monthly_loads.sql")).pl(),
        reject_reasons=con.sql(_sql("monthly_reject_reasons.sql")).pl(),
        package_version=pipeline.__version__,
    )


def load_monthly_inputs(db_path: str | Path, month: str, config: Config,
                        load: int | None = None) -> MonthlyInputs:
    parse_month(month)
    db_path = Path(db_path)
    if not db_path.is_file():
        raise InputError(f"database {db_path} not found; load an export first with "
                         f"`outcomes ingest DATA_DIR --db {db_path}`")
    con = connect(db_path, config, read_only=True, load=load)
    try:
        return read_inputs(con, month, config)
    finally:
        con.close()


def context_json(context: dict[str, Any]) -> str:
    """The JSON text of a context: sorted keys, fixed float text, one trailing newline —
    the same context gives the same bytes."""
    return json.dumps(json_ready(context), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write_monthly_report(db_path: str | Path, month: str, out_dir: Path,
                         config: Config, load: int | None = None) -> list[Path]:
    """Write monthly-YYYY-MM.pdf and monthly-YYYY-MM.json to out_dir; returns [pdf, json]."""
    from pipeline.render import Renderer
    from pipeline.reports.monthly.charts import chart_svgs

    inputs = load_monthly_inputs(db_path, month, config, load=load)
    context = build_context(inputs, config)
    created = report_timestamp(parse_month(month)[1])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pdf_path = out_dir / f"monthly-{month}.pdf"
    json_path = out_dir / f"monthly-{month}.json"
    renderer = Renderer(page_size=config.clinic.page_size)
    provenance = context["provenance"]
    doc = {
        "title": f"Monthly quality report — {context['month_label']}",
        "author": config.clinic.name,
        "subject": f"Outcomes, attrition and safety of courses ending in {context['month_label']}",
        "keywords": "ketamine, outcomes, quality, monthly",
        "version": inputs.package_version,
        "created": w3c(created),
        "clinic_name": config.clinic.name,
        "header_right": f"Monthly quality report · {context['month_label']}",
        "footer": f"As of {context['as_of']} · ketamine-outcomes {inputs.package_version}"
                  + (f" · load {provenance['load_id']}, inputs {provenance['input_fingerprint']}"
                     if provenance["load_id"] is not None else ""),
    }
    html = renderer.html(TEMPLATE, {"doc": doc, "r": context, "charts": chart_svgs(context)})
    write_report_files(json_path, context_json(context),
                       lambda: renderer.pdf(html, pdf_path, created=created))
    return [pdf_path, json_path]
