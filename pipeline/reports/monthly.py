"""Monthly quality report (SPEC §2 "Reporting month of a course"): metrics -> context -> PDF + JSON.

`write_monthly_report` gathers the inputs (read-only database, `compute_outcomes` as of the last
day of the month and of the month before, sql/reports/monthly_*.sql for sessions and loads);
`build_context` turns them into plain dicts, computing every number the PDF prints; the template
only formats. The JSON file is the same context, so it holds exactly the printed figures.

Periods: "month" = courses whose outcome date falls in M (as of the last day of M); "previous"
= the same for M-1 as of ITS last day; "rolling" = outcome dates in the 12 months ending with M,
as of the last day of M. Safety counts infusions and scores dated in the period.
"""

from __future__ import annotations

import calendar
import json
import math
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

import pipeline
from pipeline.config import Config
from pipeline.db import connect
from pipeline.errors import InputError
from pipeline.formatting import Suppressed, Withheld, fmt_month, is_withheld, json_ready
from pipeline.methods import methods_sentences
from pipeline.metrics import compute_metrics, protocol_summary
from pipeline.outcomes import OutcomeFrames, compute_outcomes
from pipeline.paths import SQL_DIR
from pipeline.reports.monthly_cells import Cell, Cells, share
from pipeline.stats import p_chart

TEMPLATE = "monthly.html.j2"
HISTORY_MONTHS = 24  # p-chart: up to 24 months ending at M ...
MIN_HISTORY_MONTHS = 12  # ... and never fewer than 12
ALL = "All protocols"
PREFERRED_INSTRUMENT = "PHQ-9"
TIMINGS = [("early", "Early (1–2)"), ("gradual", "Gradual (3–4)"), ("late", "Late (≥ 5)"),
           ("never", "Not yet / never")]
REASONS = ["no baseline", "zero baseline", "no follow-up score"]


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
    run_time: datetime


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


def outcome_rates(row: dict[str, Any] | None, cells: Cells) -> dict[str, dict[str, Any]]:
    """Response, partial, non-response, remission and ITT response of one protocol_summary row.

    Complementary suppression: response + partial + non-response add up to the evaluable
    courses; the remission and ITT denominators are withheld when their difference from the
    evaluable count (baseline at or below the cutoff; no endpoint) would be a small cell.
    """
    if row is None:
        empty = cells.rate(0, 0)
        return {key: empty for key in ("response", "partial_response", "non_response",
                                       "remission", "itt_response")}
    evaluable = int(row["evaluable"])
    counts = cells.group([int(row["responders"]), int(row["partial_responders"]),
                          int(row["non_responders"])])
    remission_n = cells.derived(evaluable, int(row["remission_evaluable"]))
    itt_courses = int(row["itt_courses"])
    itt_n: Cell = (Withheld() if cells.small(itt_courses - evaluable) and not cells.small(itt_courses)
                   else cells.count(itt_courses))

    def one(name: str, numerator: str, denominator: str, k_cell: Cell | None = None,
            n_cell: Cell | None = None) -> dict[str, Any]:
        return cells.rate(int(row[numerator]), int(row[denominator]), numerator_cell=k_cell,
                          denominator_cell=n_cell, value=_clean(row[f"{name}_rate"]),
                          low=_clean(row[f"{name}_ci_low"]), high=_clean(row[f"{name}_ci_high"]))

    return {
        "response": one("response", "responders", "evaluable", counts[0]),
        "partial_response": one("partial_response", "partial_responders", "evaluable", counts[1]),
        "non_response": one("non_response", "non_responders", "evaluable", counts[2]),
        "remission": one("remission", "remitters", "remission_evaluable", n_cell=remission_n),
        "itt_response": one("itt_response", "responders", "itt_courses", counts[0], itt_n),
    }


# ---------------------------------------------------------------------------------------------
# Sections


def headline(period: Period, instrument: str | None, cells: Cells) -> dict[str, Any]:
    co = period.frames.course_outcomes
    keys = course_keys(co)
    ended = keys.height
    discontinued = course_keys(co.filter(pl.col("status") == "discontinued")).height
    row = summary_row(clinic_summary(co), instrument)
    safety = period.metrics["safety_summary"].filter(pl.col("scope") == "clinic").to_dicts()
    infusions = int(safety[0]["infusions"]) if safety else 0
    with_ae = int(safety[0]["infusions_with_adverse_event"]) if safety else 0
    return {
        "courses_ended": cells.count(ended),
        **outcome_rates(row, cells),
        "dropout": cells.rate(discontinued, ended),
        "adverse_events": cells.rate(with_ae, infusions),
    }


def activity(frames: OutcomeFrames, sessions: pl.DataFrame, start: date, end: date,
             cells: Cells) -> dict[str, Cell]:
    """What happened in the month, by the date it happened (not by course outcome date)."""
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
    return {
        "new_patients": cells.count(new_patients),
        "courses_started": cells.count(started),
        "courses_completing": cells.count(completing),
        "courses_discontinued": cells.count(discontinued),
        "infusions": cells.count(in_month.height),
        "aborted": cells.count(aborted),
        "cancelled": cells.count(cancelled),
    }


def outcome_rows(period: Period, protocols: dict[str, str], cells: Cells) -> list[dict[str, Any]]:
    """One row per protocol x instrument with courses ending in the period (protocol_summary)."""
    summary = period.metrics["protocol_summary"]
    rows = []
    for r in summary.sort("protocol_id", "instrument").to_dicts():
        evaluable = int(r["evaluable"])
        evaluable_cell = cells.count(evaluable)
        median = _clean(r["median_infusions_to_response"])
        rows.append({
            "protocol_id": r["protocol_id"],
            "protocol_name": protocols.get(r["protocol_id"], r["protocol_id"]),
            "instrument": r["instrument"],
            "courses": cells.count(int(r["courses"])),
            "evaluable": evaluable_cell,
            "not_evaluable": cells.count(int(r["not_evaluable"])),
            **outcome_rates(r, cells),
            "median_infusions_to_response": None if median is None or is_withheld(evaluable_cell)
            else int(median),
            "empty": evaluable == 0,
        })
    return rows


def timing_rows(period: Period, instrument: str | None, cells: Cells) -> list[dict[str, Any]]:
    """SPEC §2 "Infusions to response" timing classes per protocol, headline instrument."""
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
        n = sum(per.values())
        group = cells.group([per.get(key, 0) for key, _ in TIMINGS])
        n_cell = cells.count(n)
        rows.append({
            "protocol_id": protocol_id,
            "evaluable": n_cell,
            "classes": [{"key": key, "count": c, "share": share(c, n, cells)}
                        for (key, _), c in zip(TIMINGS, group, strict=True)],
            "median": None if medians[protocol_id] is None or is_withheld(n_cell)
            else int(medians[protocol_id]),
            "empty": n == 0,
        })
    return rows


def attrition_rows(period: Period, protocols_planned: dict[str, int], cells: Cells,
                   max_columns: int) -> list[dict[str, Any]]:
    """Courses reaching infusion 1..N per protocol (metrics.attrition over the period's courses).

    Under suppression a reached-count is withheld when it differs from the last printed count
    by 1..small_cell_max (the stops in between could otherwise be derived).
    """
    table = period.metrics["attrition"]
    courses = period.frames.courses
    rows = []
    for protocol_id in sorted(table["protocol_id"].unique().to_list()):
        per = table.filter(pl.col("protocol_id") == protocol_id).sort("infusion_number")
        reached = per["courses_reaching"].to_list()
        started = int(per["starting"][0])
        shown: list[Cell] = []
        last_printed = started
        for n in reached[:max_columns]:
            if cells.small(n):
                shown.append(cells.count(n))
            elif cells.on and cells.small(last_printed - n):
                shown.append(Withheld())
            else:
                shown.append(n)
                last_printed = n
        mine = courses.filter(pl.col("protocol_id") == protocol_id)
        completed = mine.filter(pl.col("status") == "completed").height
        discontinued = mine.filter(pl.col("status") == "discontinued").height
        group = cells.group([completed, discontinued])
        rows.append({
            "protocol_id": protocol_id,
            "planned": protocols_planned.get(protocol_id),
            "started": cells.count(started),
            "reached": [{"infusion_number": i + 1, "count": c,
                         "share": c / started if isinstance(c, int) and started else None}
                        for i, c in enumerate(shown)],
            "completed": group[0],
            "discontinued": group[1],
            "dropout": cells.rate(discontinued, started, numerator_cell=group[1]),
        })
    return rows


def safety_section(period: Period, cells: Cells) -> dict[str, Any]:
    rows = period.metrics["safety_summary"].filter(pl.col("scope") == "clinic").to_dicts()
    flags = period.metrics["item9_flags"]
    item9 = {"scores": cells.count(flags.height),
             "patients": cells.count(flags["patient_id"].n_unique() if flags.height else 0)}
    if not rows:
        return {"infusions": cells.count(0), "empty": True, "events": [], "item9": item9}
    s = rows[0]
    infusions = int(s["infusions"])
    events = period.metrics["adverse_event_rates"].filter(pl.col("scope") == "clinic").sort(
        ["events", "event_type"], descending=[True, False])
    return {
        "empty": infusions == 0,
        "infusions": cells.count(infusions),
        "aborted": cells.rate(int(s["aborted"]), infusions, value=_clean(s["aborted_rate"]),
                              low=_clean(s["aborted_ci_low"]), high=_clean(s["aborted_ci_high"])),
        "bp_recorded": cells.count(int(s["bp_recorded"])),
        "high_bp": cells.rate(int(s["high_bp"]), int(s["bp_recorded"]),
                              value=_clean(s["high_bp_rate"]), low=_clean(s["high_bp_ci_low"]),
                              high=_clean(s["high_bp_ci_high"])),
        "any_adverse_event": cells.rate(int(s["infusions_with_adverse_event"]), infusions),
        "events": [{"event_type": e["event_type"],
                    "rate": cells.rate(int(e["events"]), infusions)} for e in events.to_dicts()],
        "item9": item9,
    }


def completeness_rows(period: Period, cells: Cells) -> list[dict[str, Any]]:
    """Per instrument: courses ending in the period that are not evaluable, by reason."""
    co = period.frames.course_outcomes
    rows = []
    for instrument in sorted(co["instrument"].unique().to_list()):
        mine = co.filter(pl.col("instrument") == instrument)
        reasons = mine.group_by("not_evaluable_reason").agg(n=pl.len()).to_dicts()
        per = {r["not_evaluable_reason"]: int(r["n"]) for r in reasons}
        group = cells.group([per.get(reason, 0) for reason in REASONS] + [per.get(None, 0)])
        rows.append({
            "instrument": instrument,
            "courses": cells.count(mine.height),
            "reasons": group[:-1],
            "evaluable": group[-1],
        })
    return rows


def course_units(frames: OutcomeFrames, sessions: pl.DataFrame) -> pl.DataFrame:
    """Site and provider of each course: those of its first infusion (a choice, see methods)."""
    first = frames.course_infusions.filter(pl.col("infusion_number") == 1).select(
        "patient_id", "course_id", "session_id")
    return first.join(sessions.select("session_id", "site", "provider"), on="session_id",
                      how="left").with_columns(
        pl.col("site").fill_null("not recorded"), pl.col("provider").fill_null("not recorded"),
    ).select("patient_id", "course_id", "site", "provider")


def breakdown(period: Period, units: pl.DataFrame, sessions: pl.DataFrame, unit: str,
              instrument: str | None, cells: Cells) -> dict[str, Any]:
    """Courses ending, dropouts, response (headline instrument) and infusions per site/provider."""
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
    printed = {key: cells.group(values) for key, values in columns.items()}
    rows = []
    for i, name in enumerate(names + ["All"]):
        if name == "All":
            raw = {key: sum(values) for key, values in columns.items()}
            cell = {key: cells.count(value) for key, value in raw.items()}
        else:
            raw = {key: values[i] for key, values in columns.items()}
            cell = {key: printed[key][i] for key in columns}
        rows.append({
            "name": name,
            "total": name == "All",
            "courses": cell["courses"],
            "infusions": cell["infusions"],
            "dropout": cells.rate(raw["discontinued"], raw["courses"],
                                  numerator_cell=cell["discontinued"],
                                  denominator_cell=cell["courses"]),
            "response": cells.rate(raw["responders"], raw["evaluable"],
                                   numerator_cell=cell["responders"],
                                   denominator_cell=cell["evaluable"]),
        })
    return {"unit": unit, "rows": rows if names else []}


def control_chart(inputs: MonthlyInputs, instrument: str | None, cells: Cells) -> dict[str, Any]:
    """p-chart of the monthly response rate (headline instrument), as of the report month's end.

    Centre line p-bar and 3-sigma limits per month's n (stats.p_chart); months before the first
    month with any course are dropped, keeping at least 12.
    """
    months = sorted(inputs.history)
    points = []
    for month in months:
        start, end = parse_month(month)
        row = summary_row(clinic_summary(ended_courses(inputs.history[month], start, end)),
                          instrument)
        points.append((month, int(row["responders"]) if row else 0,
                       int(row["evaluable"]) if row else 0))
    first_data = next((i for i, p in enumerate(points) if p[2] > 0), len(points))
    points = points[min(first_data, max(len(points) - MIN_HISTORY_MONTHS, 0)):]
    limits = p_chart([p[1] for p in points], [p[2] for p in points])
    chart_points = []
    for (month, k, n), lim in zip(points, limits, strict=True):
        printed = cells.rate(k, n)
        proportion = printed["rate"]
        signal = None
        if proportion is not None and lim["upper"] is not None and lim["lower"] is not None:
            if proportion > lim["upper"] + 1e-12:
                signal = "above"
            elif proportion < lim["lower"] - 1e-12:
                signal = "below"
        chart_points.append({
            "month": month, "responders": printed["numerator"], "evaluable": printed["denominator"],
            "proportion": proportion, "lower": lim["lower"], "upper": lim["upper"],
            "signal": signal, "withheld": printed["suppressed"],
        })
    centre = limits[0]["centre"] if limits else None
    total_n = sum(p[2] for p in points)
    # Wheeler's run rule: 8 or more consecutive plotted points on one side of the centre line
    run_side, run_length, runs = None, 0, []
    for p in chart_points:
        side = None if p["proportion"] is None or centre is None else (
            "above" if p["proportion"] > centre else "below" if p["proportion"] < centre else None)
        run_length = run_length + 1 if side is not None and side == run_side else (
            1 if side else 0)
        run_side = side
        if run_length == 8:
            runs.append({"side": side, "ending": p["month"]})
    return {
        "instrument": instrument,
        "centre": centre if total_n else None,
        "months": len(chart_points),
        "points": chart_points,
        "outside": [{"month": p["month"], "side": p["signal"]} for p in chart_points
                    if p["signal"]],
        "runs": runs,
        "withheld_months": sum(1 for p in chart_points if p["withheld"]),
        "courses": cells.count(total_n),
    }


def km_curves(period: Period, instrument: str | None, cells: Cells) -> list[dict[str, Any]]:
    """Cumulative response by infusion number per protocol (metrics.cumulative_response)."""
    if instrument is None:
        return []
    table = period.metrics["cumulative_response"].filter(pl.col("instrument") == instrument)
    curves = []
    for protocol_id in sorted(table["protocol_id"].unique().to_list()):
        steps = table.filter(pl.col("protocol_id") == protocol_id).sort("infusion_number")
        n = int(steps["at_risk"][0]) if steps.height else 0
        if n == 0 or cells.small(n):
            continue  # a curve on 1..small_cell_max courses would show their steps
        curves.append({"protocol_id": protocol_id, "courses": n,
                       "steps": [{"infusion_number": int(s["infusion_number"]),
                                  "cumulative_response": float(s["cumulative_response"])}
                                 for s in steps.to_dicts()]})
    return curves


def severity_distribution(period: Period, config: Config, cells: Cells) -> dict[str, Any] | None:
    """PHQ-9 severity bands at baseline and endpoint, evaluable courses of the period (paired)."""
    inst = config.instruments.get("PHQ-9")
    if inst is None or not inst.severity_bands:
        return None
    rated = period.frames.course_outcomes.filter(
        pl.col("evaluable") & (pl.col("instrument") == "PHQ-9"))
    bands: list[dict[str, Any]] = []
    for band in inst.severity_bands:
        def count(column: str, band: Any = band) -> int:
            return rated.filter(pl.col(column).is_between(band.low, band.high)).height
        bands.append({"label": band.label, "range": f"{band.low:g}–{band.high:g}",
                      "baseline": count("baseline_score"), "endpoint": count("endpoint_score")})
    baseline_cells = cells.group([b["baseline"] for b in bands])
    endpoint_cells = cells.group([b["endpoint"] for b in bands])
    for b, base, end in zip(bands, baseline_cells, endpoint_cells, strict=True):
        b["baseline"], b["endpoint"] = base, end
    return {"courses": cells.count(rated.height), "bands": bands, "empty": rated.height == 0}


# ---------------------------------------------------------------------------------------------
# The context


def build_context(inputs: MonthlyInputs, config: Config) -> dict[str, Any]:
    """Plain dicts of every figure the report prints (pure: no I/O)."""
    cells = Cells(config.definitions)
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

    def period_info(p: Period) -> dict[str, Any]:
        return {"key": p.key, "label": p.label, "start": p.start.isoformat(),
                "end": p.end.isoformat(),
                "courses": cells.count(course_keys(p.frames.course_outcomes).height)}

    latest = inputs.loads.to_dicts()
    return {
        "month": month,
        "month_label": fmt_month(month),
        "as_of": end.isoformat(),
        "previous_as_of": end.isoformat(),
        "suppression": {"on": config.definitions.suppress_small_cells,
                        "small_cell_max": config.definitions.small_cell_max,
                        "marker": str(Suppressed(config.definitions.small_cell_max))},
        "headline_instrument": instrument,
        "periods": {key: period_info(p) for key, p in periods.items()},
        "headline": {key: headline(p, instrument, cells) for key, p in periods.items()},
        "activity": {key: activity(frames, inputs.sessions, s, e, cells) for key, frames, s, e in
                     (("month", inputs.current, start, end),
                      ("previous", inputs.previous, p_start, p_end))},
        "outcomes": {key: outcome_rows(periods[key], inputs.protocols, cells)
                     for key in ("month", "rolling")},
        "instruments_not_used": sorted(set(config.instruments) - used),
        "timing": {key: timing_rows(periods[key], instrument, cells)
                   for key in ("month", "rolling")},
        "attrition": {key: attrition_rows(periods[key], planned, cells, max_columns)
                      for key in ("month", "rolling")},
        "attrition_columns": list(range(1, max_columns + 1)),
        "safety": {key: safety_section(periods[key], cells) for key in ("month", "rolling")},
        "completeness": {key: completeness_rows(periods[key], cells)
                         for key in ("month", "rolling")},
        "latest_load": {
            "load_id": latest[0]["load_id"] if latest else None,
            "loaded_at": latest[0]["loaded_at"].isoformat(sep=" ", timespec="minutes")
            if latest else None,
            "files": [{"file": r["file"], "rows_read": cells.count(int(r["rows_read"])),
                       "rows_loaded": cells.count(int(r["rows_loaded"])),
                       "duplicates": cells.count(int(r["duplicates"])),
                       "rejected": cells.count(int(r["rejected"]))} for r in latest],
            "reasons": [{"file": r["file"], "column": r["column_name"], "reason": r["reason"],
                         "problems": cells.count(int(r["problems"]))}
                        for r in inputs.reject_reasons.head(8).to_dicts()],
            "reasons_total": inputs.reject_reasons.height,
        },
        "breakdown": {key: [breakdown(periods[key], units, inputs.sessions, unit, instrument,
                                      cells) for unit in ("site", "provider")]
                      for key in ("month", "rolling")},
        "control_chart": control_chart(inputs, instrument, cells),
        "cumulative_response": km_curves(rolling, instrument, cells),
        "severity": severity_distribution(rolling, config, cells),
        "methods": methods_sentences(config),
        "provenance": {
            "package_version": inputs.package_version,
            "as_of": end.isoformat(),
            "run_time": inputs.run_time.isoformat(sep=" ", timespec="seconds"),
            "config": {"path": Path(config.source).name if config.source else None,
                       "sha256": config.sha256},
            "inputs": [{"file": r["file"], "sha256": r["sha256"]} for r in latest],
        },
    }


# ---------------------------------------------------------------------------------------------
# I/O


def _sql(name: str) -> str:
    return (SQL_DIR / "reports" / name).read_text(encoding="utf-8")


def read_inputs(con: duckdb.DuckDBPyConnection, month: str, config: Config,
                run_time: datetime) -> MonthlyInputs:
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
        run_time=run_time,
    )


def write_monthly_report(db_path: str | Path, month: str, out_dir: Path, config: Config,
                         run_time: datetime | None = None) -> list[Path]:
    """Write monthly-YYYY-MM.pdf and monthly-YYYY-MM.json to out_dir; returns [pdf, json]."""
    from pipeline.render import Renderer
    from pipeline.reports.monthly_charts import chart_svgs

    parse_month(month)
    db_path = Path(db_path)
    if not db_path.is_file():
        raise InputError(f"database {db_path} not found; load an export first with "
                         f"`outcomes ingest DATA_DIR --db {db_path}`")
    run_time = run_time or datetime.now().replace(microsecond=0)
    con = connect(db_path, config, read_only=True)
    try:
        inputs = read_inputs(con, month, config, run_time)
    finally:
        con.close()
    context = build_context(inputs, config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pdf_path = out_dir / f"monthly-{month}.pdf"
    json_path = out_dir / f"monthly-{month}.json"
    json_path.write_text(json.dumps(json_ready(context), indent=2, ensure_ascii=False) + "\n",
                         encoding="utf-8")
    renderer = Renderer(page_size=config.clinic.page_size)
    doc = {
        "title": f"Monthly quality report — {context['month_label']}",
        "author": config.clinic.name,
        "subject": f"Outcomes, attrition and safety of courses ending in {context['month_label']}",
        "keywords": "ketamine, outcomes, quality, monthly",
        "version": inputs.package_version,
        # W3C date with a zone, as WeasyPrint needs for the PDF's creation date
        "created": run_time.astimezone().isoformat(timespec="seconds"),
        "clinic_name": config.clinic.name,
        "header_right": f"Monthly quality report · {context['month_label']}",
        "footer": f"As of {context['as_of']} · ketamine-outcomes {inputs.package_version} · "
                  f"run {context['provenance']['run_time']}",
    }
    html = renderer.html(TEMPLATE, {"doc": doc, "r": context, "charts": chart_svgs(context)})
    renderer.pdf(html, pdf_path, created=run_time)
    return [pdf_path, json_path]
