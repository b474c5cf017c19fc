"""The sections of the monthly report: each registers the counts it prints in the `Ledger`
(with the relations a reader could use, docs/suppression.md) and returns references that
`Ledger.resolve` turns into printed values once the whole report is known.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl

from pipeline.config import Config
from pipeline.outcomes import NEVER, TIMING_CLASSES, severity_band
from pipeline.reports.monthly.periods import (
    ALL,
    KEEP_DENOMINATOR,
    KEEP_TOTAL,
    REASONS,
    OutcomeCells,
    Period,
    clean,
    outcome_rates,
    per_key,
    summary_row,
)
from pipeline.reports.suppression import CountRef, Ledger

SEVERITY_INSTRUMENT = "PHQ-9"  # the severity-band chart
TIMING_KEYS = [cls.key for cls in TIMING_CLASSES] + [NEVER]


def course_totals(period: Period) -> dict[str, int]:
    """The courses (not course rows) ending in the period, and those discontinued."""
    row = period.metrics["course_totals"].to_dicts()[0]
    return {name: int(value) for name, value in row.items()}


def courses_ended(cells: Ledger, period: Period) -> CountRef:
    return cells.count(("courses", period.per, ALL), course_totals(period)["ended"], KEEP_TOTAL)


def headline(cells: Ledger, period: Period, instrument: str | None,
             outcome_cells: dict[tuple[str, str], OutcomeCells]) -> dict[str, Any]:
    ended = courses_ended(cells, period)
    discontinued = cells.count(("discontinued", period.per, ALL),
                               course_totals(period)["discontinued"])
    row = summary_row(period.metrics["clinic_summary"], instrument)
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


def activity(cells: Ledger, counts: dict[str, int], start: date, end: date
             ) -> dict[str, CountRef]:
    """What happened in the month, by the date it happened (not by course outcome date):
    `counts` of sql/reports/monthly/activity.sql."""
    per = per_key(start, end)
    infusions_cell = cells.count(("infusions", per, ALL), counts["infusions"], KEEP_DENOMINATOR)
    aborted_cell = cells.count(("aborted", per, ALL), counts["aborted"])
    cells.split(infusions_cell, [aborted_cell], ("not aborted", per, ALL))
    return {
        "new_patients": cells.count(("new_patients", per), counts["new_patients"]),
        "courses_started": cells.count(("courses_started", per), counts["courses_started"]),
        "courses_completing": cells.count(("courses_completing", per),
                                          counts["courses_completing"]),
        "courses_discontinued": cells.count(("discontinued", per, ALL),
                                            counts["courses_discontinued"]),
        "infusions": infusions_cell,
        "aborted": aborted_cell,
        "cancelled": cells.count(("cancelled", per), counts["cancelled"]),
    }


def outcome_rows(cells: Ledger, period: Period, protocols: dict[str, str],
                 outcome_cells: dict[tuple[str, str], OutcomeCells]) -> list[dict[str, Any]]:
    """One row per protocol x instrument with courses ending in the period (protocol_summary)."""
    summary = period.metrics["protocol_summary"]
    rows = []
    for r in summary.sort("protocol_id", "instrument").to_dicts():
        counts = outcome_cells[(r["protocol_id"], r["instrument"])]
        evaluable = cells.show(counts["evaluable"], KEEP_DENOMINATOR)
        median = clean(r["median_infusions_to_response"])
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
    """docs/definitions.md "Infusions to response" timing classes per protocol, headline instrument.
    The classes add up to the evaluable courses; each share is printed only with its count."""
    if instrument is None:
        return []
    rated = period.course_counts.filter(
        pl.col("evaluable") & (pl.col("instrument") == instrument))
    summary = period.metrics["protocol_summary"].filter(pl.col("instrument") == instrument)
    medians = {r["protocol_id"]: clean(r["median_infusions_to_response"])
               for r in summary.to_dicts()}
    counts = rated.group_by("protocol_id", "response_timing").agg(n=pl.col("n").sum()).sort(
        "protocol_id", "response_timing")
    rows = []
    for protocol_id in sorted(medians):
        per = {r["response_timing"]: int(r["n"]) for r in
               counts.filter(pl.col("protocol_id") == protocol_id).to_dicts()}
        evaluable = cells.show(outcome_cells[(protocol_id, instrument)]["evaluable"],
                               KEEP_DENOMINATOR)
        classes = [cells.count(("timing", period.per, instrument, protocol_id, key),
                               per.get(key, 0)) for key in TIMING_KEYS]
        cells.add(evaluable, classes)
        median = medians[protocol_id]
        rows.append({
            "protocol_id": protocol_id,
            "evaluable": evaluable,
            "classes": [{"key": key, "count": c, "share": cells.share(c, evaluable)}
                        for key, c in zip(TIMING_KEYS, classes, strict=True)],
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
    status = {r["protocol_id"]: r for r in period.metrics["course_status"].to_dicts()}
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
        mine = status.get(protocol_id, {})
        completed = cells.count(("completed", per, protocol_id), int(mine.get("completed", 0)))
        discontinued = cells.count(("discontinued", per, protocol_id),
                                   int(mine.get("discontinued", 0)))
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
    flags = period.metrics["item9"].to_dicts()[0]  # the item-9 flags counted
    scores = cells.count(("item9_scores", per), int(flags["scores"]))
    patients = cells.count(("item9_patients", per), int(flags["patients"]))
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
        "aborted": cells.rate(aborted, infusions, value=clean(s["aborted_rate"]),
                              low=clean(s["aborted_ci_low"]), high=clean(s["aborted_ci_high"])),
        "bp_recorded": bp,
        "high_bp": cells.rate(high_bp, bp, value=clean(s["high_bp_rate"]),
                              low=clean(s["high_bp_ci_low"]), high=clean(s["high_bp_ci_high"])),
        "any_adverse_event": cells.rate(with_ae, infusions),
        "events": [{"event_type": name, "rate": cells.rate(cell, infusions)}
                   for name, cell in types],
        "item9": item9,
    }


def completeness_rows(cells: Ledger, period: Period) -> list[dict[str, Any]]:
    """Per instrument: courses ending in the period that are not evaluable, by reason (the
    clinic's reason cells of periods.register_outcomes, printed).
    Relation: courses = no baseline + zero baseline + no follow-up score + evaluable."""
    co = period.course_counts
    per = period.per
    rows = []
    for instrument in sorted(co["instrument"].unique().to_list()):
        mine = co.filter(pl.col("instrument") == instrument)
        reasons = mine.group_by("not_evaluable_reason").agg(n=pl.col("n").sum()).to_dicts()
        counts = {r["not_evaluable_reason"]: int(r["n"]) for r in reasons}
        courses = cells.count(("courses", per, ALL), int(mine["n"].sum()), KEEP_TOTAL)
        reason_cells = [cells.count(("not_evaluable_reason", per, instrument, ALL, reason),
                                    counts.get(reason, 0)) for reason in REASONS]
        evaluable = cells.count(("evaluable", per, instrument, ALL), counts.get(None, 0),
                                KEEP_DENOMINATOR)
        cells.add(courses, [*reason_cells, evaluable])
        rows.append({"instrument": instrument, "courses": courses, "reasons": reason_cells,
                     "evaluable": evaluable})
    return rows


def severity_distribution(cells: Ledger, period: Period, config: Config) -> dict[str, Any] | None:
    """PHQ-9 severity bands (outcomes.severity_band) at baseline and endpoint, evaluable courses
    of the period (paired). Baseline bands and endpoint bands each add up to the evaluable PHQ-9
    courses."""
    name = SEVERITY_INSTRUMENT
    inst = config.instruments.get(name)
    if inst is None or not inst.severity_bands:
        return None
    per = period.per
    # evaluable course rows counted per instrument, baseline and endpoint score
    rated = period.metrics["severity_scores"].filter(pl.col("instrument") == name)
    total = int(rated["n"].sum())
    courses = cells.count(("evaluable", per, name, ALL), total, KEEP_DENOMINATOR)
    bands: list[dict[str, Any]] = []
    for column in ("baseline", "endpoint"):
        banded = rated.select("n", band=severity_band(pl.col("instrument"),
                                                      pl.col(f"{column}_score"), {name: inst}))
        band_cells = []
        for band in inst.severity_bands:
            n = int(banded.filter(pl.col("band") == band.label)["n"].sum())
            band_cells.append(cells.count(("severity", per, column, band.label), n))
        cells.add(courses, band_cells)
        for i, cell in enumerate(band_cells):
            if column == "baseline":
                band = inst.severity_bands[i]
                bands.append({"label": band.label, "range": f"{band.low:g}–{band.high:g}",
                              "baseline": cell})
            else:
                bands[i]["endpoint"] = cell
    return {"courses": courses, "bands": bands, "empty": total == 0}
