"""Payer packets: everything a packet needs, fetched set-based once, split per course.

One `compute_outcomes` as of the report day, one query per canonical table, then polars joins
and `partition_by` on (patient, course): no per-patient SQL. The result is a list of plain
dicts (picklable, shipped to render workers). Every number a packet prints is computed here or
taken from the outcomes engine's course rows; templates only format.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import re
from dataclasses import asdict
from typing import Any

import duckdb
import polars as pl

from pipeline.config import Config
from pipeline.errors import InputError
from pipeline.instruments import Instrument
from pipeline.outcomes import OutcomeFrames, compute_outcomes
from pipeline.reports.payer.criteria import (
    PayerRules,
    evaluate_continuation,
    evaluate_diagnosis,
    evaluate_entry,
    evaluate_resistance,
)

PATIENT_KEY = ["patient_id"]
COURSE_KEY = ["patient_id", "course_id"]

# Descriptions printed beside the codes that appear in a packet (domain.md §6).
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

CATEGORY_TEXT = {
    "response": "Response",
    "partial_response": "Partial response",
    "non_response": "Non-response",
}


# An id is used verbatim in a file name only when it is short and plain; export ids are free
# text (`../../etc/x`, `a/b`, 2 000 characters, bidi overrides, newlines).
PLAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")
SLUG_CHARS = 24
DIGEST_CHARS = 10


def safe_id(value: str) -> str:
    """File-name part for an id: the id itself when plain (letters, digits, `_`, `-`; starting
    with a letter or digit; at most 40 characters), else an ASCII slug of it (at most 24
    characters) + "-" + the first 10 hex digits of the SHA-256 of the id.

    So a part never holds `/`, `\\`, `..`, spaces, control or bidi characters, never starts with
    `-` or `.`, is at most 35 characters when derived, and depends on the id alone (the same file
    name in a --patient run and in a month batch); two ids that slug alike differ by digest.
    """
    if PLAIN_ID.fullmatch(value):
        return value
    slug = re.sub(r"[^A-Za-z0-9]+", "-", value).strip("-")[:SLUG_CHARS].rstrip("-") or "id"
    return f"{slug}-{hashlib.sha256(value.encode('utf-8')).hexdigest()[:DIGEST_CHARS]}"


def file_stem(patient_id: str, course_id: str) -> str:
    """`<patient part>_<course part>` (see safe_id): the packet's PDF, HTML and attachments."""
    return f"{safe_id(patient_id)}_{safe_id(course_id)}"


def month_bounds(month: str) -> tuple[dt.date, dt.date]:
    if not re.fullmatch(r"\d{4}-\d{2}", month or ""):
        raise InputError(f"month {month!r}: use the form YYYY-MM, e.g. 2026-03")
    year, mon = int(month[:4]), int(month[5:])
    if not 1 <= mon <= 12:
        raise InputError(f"month {month!r}: no such month; use the form YYYY-MM, e.g. 2026-03")
    return dt.date(year, mon, 1), dt.date(year, mon, calendar.monthrange(year, mon)[1])


def latest_data_day(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    return con.execute(
        "SELECT max(d) FROM (SELECT max(started_at)::DATE AS d FROM sessions "
        "UNION ALL SELECT max(administered_at)::DATE FROM assessments)"
    ).fetchall()[0][0]


def severity_label(instrument: Instrument | None, score: float | None) -> str | None:
    if instrument is None or score is None:
        return None
    for band in instrument.severity_bands:
        if band.low <= score <= band.high:
            return band.label
    for band in instrument.severity_bands:  # non-integer scores between two bands
        if score <= band.high:
            return band.label
    return None


# ---------------------------------------------------------------------------------------------
# Set-based fetch


def _table(con: duckdb.DuckDBPyConnection, query: str, params: list[Any] | None = None
           ) -> pl.DataFrame:
    return con.sql(query, params=params).pl() if params else con.sql(query).pl()


def course_scores(frames: OutcomeFrames, courses: pl.DataFrame, pre_window_days: int
                  ) -> pl.DataFrame:
    """Every score of each course: pre-treatment scores (no later than the start of infusion 1,
    within the wider of the baseline and payer-entry windows) and the post-baseline scores of
    the outcomes engine (SPEC §2), each with the number of infusions before it."""
    pre = (
        frames.scores.join(courses.select([*COURSE_KEY, "course_start", "first_infusion_day"]),
                           on="patient_id", how="inner")
        .filter((pl.col("scored_at") <= pl.col("course_start"))
                & (pl.col("score_day") >= pl.col("first_infusion_day")
                   - pl.duration(days=pre_window_days)))
        .with_columns(infusions_before=pl.lit(0, dtype=pl.Int64))
    )
    post = frames.post_scores.join(courses.select(COURSE_KEY), on=COURSE_KEY, how="semi").join(
        frames.scores.select(["assessment_id", "patient_id", "instrument", "scored_at",
                              "total_score", "administered_at", "date_only", "items"]),
        on=["assessment_id", "patient_id", "instrument", "scored_at", "total_score"], how="left",
    )
    columns = [*COURSE_KEY, "assessment_id", "instrument", "administered_at", "date_only",
               "scored_at", "score_day", "total_score", "timing", "items", "infusions_before"]
    return pl.concat([pre.select(columns), post.select(columns)], how="vertical_relaxed").sort(
        [*COURSE_KEY, "scored_at", "instrument", "total_score", "assessment_id"],
        nulls_last=True)


def course_sessions(sessions: pl.DataFrame, frames: OutcomeFrames, courses: pl.DataFrame,
                    gap_days: int, baseline_days: int) -> pl.DataFrame:
    """Administered sessions with their course and infusion number; cancelled sessions placed
    in the course of the same patient and protocol whose span holds them (unnumbered)."""
    numbered = frames.course_infusions.select(["session_id", *COURSE_KEY, "infusion_number"])
    administered = sessions.join(numbered, on=["session_id", "patient_id"], how="inner")
    cancelled = sessions.filter(pl.col("status") == "cancelled")
    by_export_id = cancelled.filter(pl.col("export_course_id").is_not_null()).with_columns(
        course_id=pl.col("export_course_id")).join(courses.select(COURSE_KEY), on=COURSE_KEY,
                                                   how="semi")
    spans = courses.select([*COURSE_KEY, "protocol_id", "course_start", "first_infusion_day",
                            "last_infusion_day", "next_course_start"])
    by_span = (
        cancelled.filter(pl.col("export_course_id").is_null())
        .join(spans, on=["patient_id", "protocol_id"], how="inner")
        .filter(
            (pl.col("started_at").dt.date() >= pl.col("first_infusion_day")
             - pl.duration(days=baseline_days))
            & (pl.col("started_at").dt.date() <= pl.col("last_infusion_day")
               + pl.duration(days=gap_days))
            & (pl.col("next_course_start").is_null()
               | (pl.col("started_at") < pl.col("next_course_start")))
        )
        # the course started latest before the session; else the first one after it
        .with_columns(after_start=pl.col("course_start") <= pl.col("started_at"))
        .sort(["session_id", "after_start", "course_start"], descending=[False, True, True])
        .group_by("session_id", maintain_order=True).first()
        .select([*sessions.columns, "course_id"])
    )
    placed = pl.concat([by_export_id.select([*sessions.columns, "course_id"]), by_span],
                       how="vertical_relaxed").with_columns(
        infusion_number=pl.lit(None, dtype=pl.Int64))
    return pl.concat([administered.select(placed.columns), placed], how="vertical_relaxed").sort(
        [*COURSE_KEY, "started_at", "session_id"])


def select_courses(frames: OutcomeFrames, scores: pl.DataFrame, patient: str | None,
                   month: tuple[dt.date, dt.date] | None) -> pl.DataFrame:
    courses = frames.courses
    if patient is not None:
        return courses.filter(pl.col("patient_id") == patient)
    assert month is not None
    first, last = month
    infused = frames.course_infusions.filter(pl.col("infusion_day").is_between(first, last))
    scored = scores.filter(pl.col("score_day").is_between(first, last))
    active = pl.concat([infused.select(COURSE_KEY), scored.select(COURSE_KEY)]).unique()
    return courses.join(active, on=COURSE_KEY, how="semi")


# ---------------------------------------------------------------------------------------------
# One packet (plain dicts)


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
            "baseline_band": severity_label(inst, row["baseline_score"]),
            "endpoint_band": severity_label(inst, row["endpoint_score"]),
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

    baseline_at = {o["instrument"]: (o["baseline_at"], o["baseline_score"]) for o in outcomes}
    endpoint_at = {o["instrument"]: (o["endpoint_at"], o["endpoint_score"]) for o in outcomes}
    score_rows, marked = [], set()
    for s in scores:
        inst = registry.get(s["instrument"])
        # Mark the scores the engine chose (same time and value; the first of equal twins).
        role = ""
        at_value = (s["scored_at"], s["total_score"])
        if baseline_at.get(s["instrument"]) == at_value and ("b", s["instrument"]) not in marked:
            role = "baseline"
            marked.add(("b", s["instrument"]))
        elif endpoint_at.get(s["instrument"]) == at_value and ("e", s["instrument"]) not in marked:
            role = "latest (endpoint)"
            marked.add(("e", s["instrument"]))
        items = s.get("items") or []
        flag = None
        if s["instrument"] == "PHQ-9" and len(items) >= 9 and items[8] is not None and items[8] > 0:
            flag = f"item 9 = {items[8]} (safety flag)"
        n = s["infusions_before"]
        score_rows.append({
            "assessment_id": s["assessment_id"],
            "instrument": s["instrument"],
            "administered_at": s["administered_at"].date() if s["date_only"] else s["administered_at"],
            "scored_at": s["scored_at"],
            "score_day": s["score_day"],
            "total_score": s["total_score"],
            "severity": severity_label(inst, s["total_score"]),
            "timing": s["timing"],
            "infusions_before": n,
            "when": "before infusion 1" if n == 0 else f"after infusion {n}",
            "role": role,
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
                           "adequate_text": _yes_no(t.get("adequate_dose"), "not documented")})

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


# ---------------------------------------------------------------------------------------------
# Everything for a batch


def load_packets(con: duckdb.DuckDBPyConnection, config: Config, rules: PayerRules,
                 patient: str | None = None, month: str | None = None,
                 ) -> tuple[dt.date, list[dict[str, Any]]]:
    """(as-of day, packets in file order) for one patient's courses or a month's active courses."""
    if (patient is None) == (month is None):
        raise InputError("give exactly one of a patient id or a month (YYYY-MM)")
    bounds = month_bounds(month) if month is not None else None
    known_patients = _table(con, "SELECT patient_id, birth_date, sex, diagnosis_code, payer, "
                                 "member_id, site FROM patients")
    if bounds is not None:
        as_of = bounds[1]
    else:
        in_db = known_patients.filter(pl.col("patient_id") == patient).height > 0
        if not in_db:
            raise InputError(f"patient {patient!r} is not in the database; check the id "
                             "(ids are case-sensitive, e.g. P00001)")
        latest = latest_data_day(con)
        if latest is None:
            raise InputError("the database holds no sessions or scores yet; nothing to report")
        as_of = latest

    frames = compute_outcomes(con, as_of, config)
    definitions = config.definitions
    pre_window = max(definitions.baseline_window_days, rules.entry.window_days)
    all_scores = course_scores(frames, frames.courses, pre_window)
    courses = select_courses(frames, all_scores, patient, bounds)
    if courses.is_empty():
        if patient is not None:
            raise InputError(f"patient {patient!r} has no administered infusion as of "
                             f"{as_of.isoformat()}; there is no course to document")
        return as_of, []
    courses = courses.sort(["patient_id", "course_start", "course_id"])
    selected = courses.select(PATIENT_KEY).unique()

    sessions = _table(
        con,
        "SELECT session_id, patient_id, protocol_id, started_at, started_date_only, "
        "course_id AS export_course_id, lower(status) AS status, dose_mg_per_kg, weight_kg, "
        "dose_mg, duration_minutes, site, provider, bp_systolic_max, bp_diastolic_max, "
        "adverse_events, cpt_codes FROM sessions WHERE started_at::DATE <= ?",
        [as_of],
    ).join(selected, on=PATIENT_KEY, how="semi")
    trials = _table(
        con,
        "SELECT trial_id, patient_id, medication, drug_class, start_date, end_date, adequate_dose, "
        "improvement_pct, episode FROM treatment_history WHERE start_date <= ?",
        [as_of],
    ).join(selected, on=PATIENT_KEY, how="semi").sort(
        ["patient_id", "start_date", "medication", "trial_id"], nulls_last=True)
    protocols = _table(con, "SELECT protocol_id, name, planned_infusions, planned_days, "
                            "dose_mg_per_kg, infusion_minutes, phase, indication FROM protocols")

    scores = all_scores.join(courses.select(COURSE_KEY), on=COURSE_KEY, how="semi")
    placed = course_sessions(sessions, frames, courses, definitions.course_gap_days,
                             definitions.baseline_window_days)
    outcomes = frames.course_outcomes.join(courses.select(COURSE_KEY), on=COURSE_KEY, how="semi")

    def split(frame: pl.DataFrame, key: list[str]) -> dict[tuple, list[dict[str, Any]]]:
        parts = frame.partition_by(key, as_dict=True, maintain_order=True)
        return {k: part.to_dicts() for k, part in parts.items()}

    sessions_by = split(placed, COURSE_KEY)
    scores_by = split(scores, COURSE_KEY)
    outcomes_by = split(outcomes, COURSE_KEY)
    trials_by = split(trials, PATIENT_KEY)
    patients_by = {r["patient_id"]: r for r in known_patients.join(
        selected, on=PATIENT_KEY, how="semi").to_dicts()}
    protocols_by = {r["protocol_id"]: r for r in protocols.to_dicts()}

    packets = []
    for course in courses.to_dicts():
        key = (course["patient_id"], course["course_id"])
        packets.append(build_packet(
            course=course,
            patient=patients_by.get(course["patient_id"]),
            protocol=protocols_by.get(course["protocol_id"]),
            sessions=sessions_by.get(key, []),
            scores=scores_by.get(key, []),
            outcomes=outcomes_by.get(key, []),
            trials=trials_by.get((course["patient_id"],), []),
            as_of=as_of,
            config=config,
            rules=rules,
        ))
    _unique_stems(packets)
    return as_of, packets


def _unique_stems(packets: list[dict[str, Any]]) -> None:
    """Stems that still coincide (plain ids `a_b` + `c` and `a` + `b_c`, or `P1` and `p1` on a
    case-insensitive file system) get a short digest of the raw id pair, so no file is
    overwritten."""
    seen: dict[str, int] = {}
    for p in packets:
        key = p["stem"].casefold()
        seen[key] = seen.get(key, 0) + 1
    for p in packets:
        if seen[p["stem"].casefold()] > 1:
            raw = f"{p['course']['patient_id']}\x00{p['course']['course_id']}".encode()
            p["stem"] += "-" + hashlib.sha256(raw).hexdigest()[:8]
