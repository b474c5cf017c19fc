"""The records of a payer batch, set-based: one `Results` (one outcome computation as of the
report day, the canonical rows read on the same connection), then polars joins and
`partition_by` on (patient, course) — no per-patient query. The result is a list of plain dicts
(picklable, shipped to render workers), one packet per course.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import polars as pl

from pipeline.errors import InputError
from pipeline.months import Month, latest_data_day
from pipeline.outcomes import OutcomeFrames, safety_item, severity_band
from pipeline.paths import sql
from pipeline.reports.payer.criteria import PayerRules
from pipeline.reports.payer.names import unique_stems
from pipeline.reports.payer.packet import build_packet
from pipeline.results import AsOf, Results

PATIENT_KEY = ["patient_id"]
COURSE_KEY = ["patient_id", "course_id"]
SCORE_KEY = [*COURSE_KEY, "instrument"]
BASELINE, ENDPOINT = "baseline", "latest (endpoint)"  # the roles of the chosen scores


def packets_as_of(patient: str | None, month: Month | None) -> AsOf:
    """A month's packets are as of its last day; a patient's as of the latest data day (after
    checking, on the open connection, that the patient is in the database at all)."""
    if (patient is None) == (month is None):
        raise InputError("give exactly one of a patient id or a month (YYYY-MM)")
    if month is not None:
        return month.last

    def latest_for_patient(con: duckdb.DuckDBPyConnection) -> dt.date:
        known = con.execute(sql("reports/patient_known.sql"), {"patient_id": patient})
        if not known.fetchall()[0][0]:
            raise InputError(f"patient {patient!r} is not in the database; check the id "
                             "(ids are case-sensitive, e.g. P00001)")
        latest = latest_data_day(con)
        if latest is None:
            raise InputError("the database holds no sessions or scores yet; nothing to report")
        return latest

    return latest_for_patient


def course_scores(frames: OutcomeFrames, courses: pl.DataFrame, pre_window_days: int
                  ) -> pl.DataFrame:
    """Every score of each course: pre-treatment scores (no later than the start of infusion 1,
    within the wider of the baseline and payer-entry windows) and the post-baseline scores of
    the outcomes engine (docs/definitions.md), each with the number of infusions before it."""
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


def chosen(kind: str) -> pl.Expr:
    """Whether a score is the course's baseline (kind "baseline") or endpoint ("endpoint") as
    the outcomes engine chose it: by its assessment id; an export without assessment ids is
    matched on the chosen score's time and value."""
    chosen_id = pl.col(f"{kind}_assessment_id")
    return (pl.when(chosen_id.is_not_null()).then(pl.col("assessment_id") == chosen_id)
            .otherwise((pl.col("scored_at") == pl.col(f"{kind}_at"))
                       & (pl.col("total_score") == pl.col(f"{kind}_score")))
            .fill_null(False))


def with_roles(scores: pl.DataFrame, frames: OutcomeFrames,
               instruments: dict[str, Any]) -> pl.DataFrame:
    """A course's scores with `role` (baseline / endpoint as the engine chose them; the first of
    equal twins), `severity` (outcomes.severity_band) and `safety_item` (PHQ-9 item 9)."""
    picks = frames.score_ids.join(
        frames.course_outcomes.select(*SCORE_KEY, "baseline_at", "baseline_score",
                                      "endpoint_at", "endpoint_score"),
        on=SCORE_KEY, how="left")
    marked = scores.with_row_index("row").join(picks, on=SCORE_KEY, how="left")

    def first(condition: pl.Expr) -> pl.Expr:
        return condition & (pl.col("row") == pl.col("row").filter(condition).min().over(SCORE_KEY))

    role = (pl.when(first(chosen("baseline"))).then(pl.lit(BASELINE))
            .when(first(chosen("endpoint"))).then(pl.lit(ENDPOINT))
            .otherwise(pl.lit("")))
    return marked.with_columns(
        role=role,
        severity=severity_band(pl.col("instrument"), pl.col("total_score"), instruments),
        safety_item=safety_item(pl.col("instrument"), pl.col("items")),
    ).sort("row").select(*scores.columns, "role", "severity", "safety_item")


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
                   month: Month | None) -> pl.DataFrame:
    courses = frames.courses
    if patient is not None:
        return courses.filter(pl.col("patient_id") == patient)
    assert month is not None
    first, last = month.first, month.last
    infused = frames.course_infusions.filter(pl.col("infusion_day").is_between(first, last))
    scored = scores.filter(pl.col("score_day").is_between(first, last))
    active = pl.concat([infused.select(COURSE_KEY), scored.select(COURSE_KEY)]).unique()
    return courses.join(active, on=COURSE_KEY, how="semi")


# ---------------------------------------------------------------------------------------------
# Everything for a batch


def load_packets(results: Results, rules: PayerRules, patient: str | None = None,
                 month: Month | None = None) -> list[dict[str, Any]]:
    """Packets in file order for one patient's courses or a month's active courses, from
    `results` as of `packets_as_of(patient, month)`."""
    as_of, config, frames = results.as_of, results.config, results.frames
    if month is not None and as_of != month.last:
        raise ValueError(f"payer packets for {month.text} need results as of {month.last}")
    definitions = config.definitions
    pre_window = max(definitions.baseline_window_days, rules.entry.window_days)
    all_scores = course_scores(frames, frames.courses, pre_window)
    courses = select_courses(frames, all_scores, patient, month)
    if courses.is_empty():
        if patient is not None:
            raise InputError(f"patient {patient!r} has no administered infusion as of "
                             f"{as_of.isoformat()}; there is no course to document")
        return []
    courses = courses.sort(["patient_id", "course_start", "course_id"])
    selected = courses.select(PATIENT_KEY).unique()

    sessions = results.input("payer_sessions").join(selected, on=PATIENT_KEY, how="semi")
    trials = results.input("treatment_history").join(selected, on=PATIENT_KEY, how="semi").sort(
        ["patient_id", "start_date", "medication", "trial_id"], nulls_last=True)
    scores = with_roles(all_scores.join(courses.select(COURSE_KEY), on=COURSE_KEY, how="semi"),
                        frames, config.instruments)
    placed = course_sessions(sessions, frames, courses, definitions.course_gap_days,
                             definitions.baseline_window_days)
    outcomes = frames.course_outcomes.join(courses.select(COURSE_KEY), on=COURSE_KEY,
                                           how="semi").with_columns(
        **{f"{end}_band": severity_band(pl.col("instrument"), pl.col(f"{end}_score"),
                                        config.instruments) for end in ("baseline", "endpoint")})

    def split(frame: pl.DataFrame, key: list[str]) -> dict[tuple, list[dict[str, Any]]]:
        parts = frame.partition_by(key, as_dict=True, maintain_order=True)
        return {k: part.to_dicts() for k, part in parts.items()}

    sessions_by = split(placed, COURSE_KEY)
    scores_by = split(scores, COURSE_KEY)
    outcomes_by = split(outcomes, COURSE_KEY)
    trials_by = split(trials, PATIENT_KEY)
    patients_by = {r["patient_id"]: r for r in results.input("patients").join(
        selected, on=PATIENT_KEY, how="semi").to_dicts()}
    protocols_by = {r["protocol_id"]: r for r in results.input("protocols").to_dicts()}

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
    unique_stems(packets)
    return packets
