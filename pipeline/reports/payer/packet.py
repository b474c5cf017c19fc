"""One payer packet as plain data: everything it shows about one patient course, with the
criteria verdicts (pipeline/reports/payer/criteria.py). Every number is the outcomes engine's
or the record's; templates only format.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any

from pipeline.config import Config
from pipeline.instruments import Instrument
from pipeline.outcomes import SAFETY_ITEM
from pipeline.reports.payer.criteria import (
    PayerRules,
    evaluate_continuation,
    evaluate_diagnosis,
    evaluate_entry,
    evaluate_resistance,
)
from pipeline.reports.payer.names import file_stem

CODE_DESCRIPTIONS = {
    "96365": "IV infusion, therapy, initial, up to 1 hour",
    "96366": "IV infusion, each additional hour",
    "96127": "Brief emotional/behavioral assessment, per instrument",
    "J3490": "Unclassified drug (ketamine)",
    "J3499": "Unclassified drug",
    "G2082": "Esketamine visit, up to 56 mg, incl. 2 h observation",
    "G2083": "Esketamine visit, over 56 mg, incl. 2 h observation",
    "S0013": "Esketamine, nasal spray, 1 mg",
    "T1503": "Administration of medication, other than oral/injectable",
}


SEX_TEXT = {"m": "male", "male": "male", "f": "female", "female": "female"}


# whether a prior trial counts toward treatment resistance (criteria.classify_trial)
COUNTS_TEXT = {"counts": "yes", "incomplete": "incomplete"}

CATEGORY_TEXT = {
    "response": "Response",
    "partial_response": "Partial response",
    "non_response": "Non-response",
}


def _join(values: list[str] | None) -> str:
    return "; ".join(values) if values else ""


def _age(birth: dt.date | None, on: dt.date) -> int | None:
    if birth is None:
        return None
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _yes_no(value: bool | None, absent: str) -> str:
    return absent if value is None else ("yes" if value else "no")


def outcome_rows(rows: list[dict[str, Any]], scored: set[str], registry: dict[str, Instrument],
                 ) -> list[dict[str, Any]]:
    """The engine's course rows (unchanged values) with display text for each status."""
    shown = []
    for row in rows:
        if row["instrument"] not in scored and row["baseline_score"] is None:
            continue
        inst = registry.get(row["instrument"])
        evaluable = bool(row["evaluable"])
        if evaluable:
            category = CATEGORY_TEXT.get(row["category"], row["category"])
            remission = _yes_no(row["remission"], "n/a (baseline at or below cut-off)")
            reliable = _yes_no(row["reliable_improvement"], "not defined for this scale")
        else:
            category = f"Not evaluable ({row['not_evaluable_reason']})"
            remission = reliable = "–"
        shown.append({
            **row,
            "category_text": category,
            "remission_text": remission,
            "reliable_text": reliable,
            "remission_cutoff": inst.remission if inst else None,
            "reliable_change": inst.reliable_change if inst else None,
            "baseline_band": row["baseline_band"],
            "endpoint_band": row["endpoint_band"],
        })
    return shown


def build_packet(
    *,
    course: dict[str, Any],
    patient: dict[str, Any] | None,
    protocol: dict[str, Any] | None,
    sessions: list[dict[str, Any]],
    scores: list[dict[str, Any]],
    outcomes: list[dict[str, Any]],
    trials: list[dict[str, Any]],
    as_of: dt.date,
    config: Config,
    rules: PayerRules,
) -> dict[str, Any]:
    """Everything one packet shows, as plain data."""
    registry = config.instruments
    patient = patient or {"patient_id": course["patient_id"]}
    course_start: dt.datetime = course["course_start"]

    score_rows = []
    for s in scores:
        # role, severity and safety_item come from the outcomes engine (records.course_scores)
        flag = None
        if s["safety_item"] is not None and s["safety_item"] > 0:
            flag = f"item {SAFETY_ITEM[1]} = {s['safety_item']} (safety flag)"
        n = s["infusions_before"]
        score_rows.append({
            "assessment_id": s["assessment_id"],
            "instrument": s["instrument"],
            "administered_at": s["administered_at"].date() if s["date_only"] else s["administered_at"],
            "scored_at": s["scored_at"],
            "score_day": s["score_day"],
            "total_score": s["total_score"],
            "severity": s["severity"],
            "timing": s["timing"],
            "infusions_before": n,
            "when": "before infusion 1" if n == 0 else f"after infusion {n}",
            "role": s["role"],
            "flag": flag,
        })

    session_rows = []
    for s in sessions:
        session_rows.append({
            "session_id": s["session_id"],
            "started_at": s["started_at"].date() if s["started_date_only"] else s["started_at"],
            "infusion_number": s["infusion_number"],
            "status": s["status"],
            "dose_mg_per_kg": s["dose_mg_per_kg"],
            "weight_kg": s["weight_kg"],
            "dose_mg": s["dose_mg"],
            "duration_minutes": s["duration_minutes"],
            "cpt_codes": _join(s["cpt_codes"]),
            "bp": (f"{s['bp_systolic_max']}/{s['bp_diastolic_max']}"
                   if s["bp_systolic_max"] is not None and s["bp_diastolic_max"] is not None
                   else None),
            "bp_systolic_max": s["bp_systolic_max"],
            "bp_diastolic_max": s["bp_diastolic_max"],
            "adverse_events": _join(s["adverse_events"]),
            "provider": s["provider"],
            "site": s["site"],
        })
    codes = sorted({c for s in sessions for c in (s["cpt_codes"] or [])})
    providers = sorted({s["provider"] for s in sessions if s["provider"]})
    sites = sorted({s["site"] for s in sessions if s["site"]})

    scored = {s["instrument"] for s in scores}
    outcome_display = outcome_rows(outcomes, scored, registry)
    resistance, classified_trials = evaluate_resistance(trials, course_start.date(),
                                                        rules.resistance)
    criteria = [
        evaluate_diagnosis(patient.get("diagnosis_code"), rules.diagnosis),
        evaluate_entry(scores, course_start, rules.entry),
        resistance,
        evaluate_continuation(outcomes, rules.continuation,
                              {n: i.reliable_change for n, i in registry.items()}),
    ]
    charted = [name for name in sorted(scored)]
    instruments = {
        name: {
            "total_min": registry[name].total_min, "total_max": registry[name].total_max,
            "bands": [asdict(b) for b in registry[name].severity_bands],
            "loinc": registry[name].loinc,
        }
        for name in charted if name in registry
    }
    trial_rows = []
    for t in classified_trials:
        weeks = ((t["end_date"] - t["start_date"]).days / 7) if t.get("end_date") else None
        trial_rows.append({**t, "weeks": weeks,
                           "adequate_text": _yes_no(t.get("adequate_dose"), "not documented"),
                           "counts_text": COUNTS_TEXT.get(t["qualifies"], "no")})

    stem = file_stem(course["patient_id"], course["course_id"])
    return {
        "stem": stem,
        "as_of": as_of,
        "clinic_name": config.clinic.name,
        "patient": {**patient, "age_at_start": _age(patient.get("birth_date"), course_start.date()),
                    "sex_text": SEX_TEXT.get((patient.get("sex") or "").lower(), patient.get("sex"))},
        "course": course,
        "protocol": protocol or {"protocol_id": course["protocol_id"]},
        "sessions": session_rows,
        "cancelled": sum(1 for s in session_rows if s["status"] == "cancelled"),
        "codes": [{"code": c, "description": CODE_DESCRIPTIONS.get(c, "")} for c in codes],
        "providers": providers,
        "sites": sites,
        "scores": score_rows,
        "outcomes": outcome_display,
        "instruments": instruments,
        "trials": trial_rows,
        "criteria": criteria,
        "rules_name": rules.name,
        "definitions": asdict(config.definitions),
    }
