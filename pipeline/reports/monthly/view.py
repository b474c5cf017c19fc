"""What the monthly template prints besides the context's figures: labels built from the
config, captions, rows joined across periods and the constants the methods appendix names.

Built from the resolved context (so it never reveals a withheld count) and kept out of the JSON,
which holds the figures only. The template formats these; it computes nothing.
"""

from __future__ import annotations

from typing import Any

from pipeline.casemix import INTERCEPT, MIN_COURSES
from pipeline.casemix_predictors import AGE_BAND, INSTRUMENT, PRIOR_TRIALS, PROTOCOL, SEVERITY, SEX
from pipeline.config import Config
from pipeline.formatting import fmt_count
from pipeline.methods import labels
from pipeline.metrics import HIGH_BP
from pipeline.outcomes import NEVER, SAFETY_ITEM, TIMING_CLASSES
from pipeline.reports.monthly.curves import HISTORY_MONTHS, MIN_HISTORY_MONTHS, RUN_LENGTH
from pipeline.reports.monthly.periods import PREFERRED_INSTRUMENT
from pipeline.reports.monthly.sections import SEVERITY_INSTRUMENT


def phrase(period: dict[str, Any]) -> str:
    """'October 2026' for the month, 'the 12 months to October 2026' for the rolling year."""
    return period["label"] if period["key"] == "month" else f"the {period['label']}"


def _timing(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Per protocol of the 12 months: its month row (when a course ended in the month) then its
    12-month row."""
    month_rows = {row["protocol_id"]: row for row in r["timing"]["month"]}
    month_label = r["periods"]["month"]["label"]
    out = []
    for row in r["timing"]["rolling"]:
        month_row = month_rows.get(row["protocol_id"])
        lines = [{"label": month_label, "row": month_row}] if month_row else []
        out.append({"protocol_id": row["protocol_id"], "month_missing": month_row is None,
                    "lines": [*lines, {"label": "12 months", "row": row}]})
    return out


def _attrition(rows: list[dict[str, Any]], columns: list[int]) -> list[dict[str, Any]]:
    """Attrition rows with one cell per column (None beyond the protocol's last infusion)."""
    return [{**row, "cells": [row["reached"][n - 1] if n <= len(row["reached"]) else None
                              for n in columns]} for row in rows]


def _events(safety: dict[str, Any]) -> list[dict[str, Any]]:
    """Adverse event types of the 12 months with the month's rate beside (None: no event)."""
    month = {e["event_type"]: e["rate"] for e in safety["month"]["events"]}
    return [{"event_type": e["event_type"], "month": month.get(e["event_type"]),
             "rolling": e["rate"]} for e in safety["rolling"]["events"]]


def _captions(r: dict[str, Any]) -> dict[str, str]:
    inst = r["headline_instrument"] or ""
    rolling = r["periods"]["rolling"]["label"]
    chart = r["control_chart"]
    withheld = chart["withheld_months"]
    return {
        "cumulative_response": (
            f"Kaplan–Meier estimate of the share of evaluable courses that had responded "
            f"({inst}) after n infusions, per protocol; courses censored at their last scored "
            "infusion. Grey line: 50%."),
        "attrition": (f"Share of the courses ending in the {rolling} that reached each infusion "
                      "number, per protocol."),
        "p_chart": (
            f"p-chart of the monthly response rate ({inst}), each month’s courses by outcome "
            "date, computed as of the report month’s last day. Centre line p̄ = all responders / "
            f"all evaluable courses of the {chart['months']} months shown; dashed: 3-sigma limits "
            "for that month’s number of evaluable courses (wider in small months). A diamond "
            "marks a month outside the limits."
            + (f" {withheld} month(s) withheld by small-cell suppression are not plotted."
               if withheld else "")),
        "severity": (
            f"{SEVERITY_INSTRUMENT} severity band of the "
            f"{fmt_count(r['severity']['courses']) if r['severity'] else ''} evaluable courses "
            f"ending in the {rolling}, at baseline and at endpoint (the same courses)."),
        "funnel": (
            f"Observed ÷ expected responders ({inst}) against expected responders, courses "
            f"ending in the {rolling}. Each point is a site (left) or provider (right), numbered "
            "as in its table; dashed lines: 95% limits, dotted: 99.8% limits of a unit whose "
            "patients respond exactly as the case mix predicts. Filled diamonds: the unit’s 95% "
            "interval excludes 1. Limits narrow as a unit grows: a small unit far from 1 is not "
            "yet evidence."),
    }


PREDICTOR_LABELS = {
    SEVERITY.column: "Baseline severity (share of the scale’s maximum, 0–1)",
    INSTRUMENT.column: "Instrument",
    AGE_BAND.column: "Age band at infusion 1",
    SEX.column: "Sex",
    PROTOCOL.column: "Protocol",
    PRIOR_TRIALS.column: "Prior adequate antidepressant trials",
    INTERCEPT: "Intercept (odds of response at the reference levels, severity 0)",
}
POSITION_WORDS = {"below": "fewer than expected", "within": "as expected",
                  "above": "more than expected"}


def _coefficient_label(name: str, references: dict[str, str]) -> str:
    """'age_band[25–44]' -> 'Age band at infusion 1: 25–44 (against < 25)'."""
    column, _, level = name.partition("[")
    label = PREDICTOR_LABELS.get(column, column)
    if not level:
        return label
    reference = references.get(column)
    return f"{label}: {level[:-1]}" + (f" (against {reference})" if reference else "")


def _case_mix(case_mix: dict[str, Any]) -> dict[str, Any]:
    """Readable coefficient rows and the verdict words of each unit."""
    model = case_mix["model"]
    coefficients = [] if model is None else [
        {"label": _coefficient_label(name, model["reference_levels"]), **c}
        for name, c in model["coefficients"].items()]
    return {
        "coefficients": coefficients,
        "position_words": POSITION_WORDS,
        "blocks": [{"unit": unit, "title": title, "rows": case_mix[plural]}
                   for unit, plural, title in (("site", "sites", "Site"),
                                               ("provider", "providers", "Provider"))],
        "predictors": ", ".join(label.split(" (")[0].lower() for column, label in
                                PREDICTOR_LABELS.items() if column != INTERCEPT),
        "min_courses": MIN_COURSES,
    }


def build_view(r: dict[str, Any], config: Config) -> dict[str, Any]:
    """Everything the template prints that is not a figure of the context `r`."""
    printed = labels(config.definitions)
    inst = r["headline_instrument"]
    item_instrument, item_number = SAFETY_ITEM
    return {
        "phrases": {key: phrase(period) for key, period in r["periods"].items()},
        "headline_rows": [
            {"field": "response", "per100": False,
             "label": f"Response (≥ {printed.response_pct}% reduction)"
                      + (f", {inst}" if inst else "")},
            {"field": "itt_response", "per100": False, "label": "Intention-to-treat response"},
            {"field": "remission", "per100": False, "label": "Remission"},
            {"field": "non_response", "per100": False,
             "label": f"Non-response (< {printed.partial_pct}% reduction)"},
            {"field": "dropout", "per100": False, "label": "Dropouts (discontinued courses)"},
            {"field": "adverse_events", "per100": True,
             "label": "Infusions with an adverse event (per 100)"},
        ],
        "timing_headers": [f"{cls.key.capitalize()} ({cls.span()})" for cls in TIMING_CLASSES]
                          + [NEVER.capitalize()],
        "timing": _timing(r),
        "response_bar": printed.response_bar,
        "withheld_curves": [c["protocol_id"] for c in r["cumulative_response"] if c["withheld"]],
        "attrition": {key: _attrition(rows, r["attrition_columns"])
                      for key, rows in r["attrition"].items()},
        "safety_rows": [
            {"field": "aborted", "per100": False, "label": "Aborted infusions"},
            {"field": "high_bp", "per100": False,
             "label": f"Blood pressure ≥ {HIGH_BP[0]}/{HIGH_BP[1]} (of infusions with BP "
                      "recorded)"},
            {"field": "any_adverse_event", "per100": True,
             "label": "Infusions with any adverse event, per 100"},
        ],
        "safety_item": (f"{item_instrument} scores with item {item_number} (self-harm thoughts) "
                        "above 0"),
        "events": _events(r["safety"]),
        "severity_instrument": SEVERITY_INSTRUMENT,
        "captions": _captions(r),
        "preferred_instrument": PREFERRED_INSTRUMENT,
        "run_length": RUN_LENGTH,
        "history_months": {"most": HISTORY_MONTHS, "least": MIN_HISTORY_MONTHS},
        "case_mix": _case_mix(r["case_mix"]),
    }
