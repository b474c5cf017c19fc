"""Metrics (docs/definitions.md "Rates" to "Safety"): course rows -> protocol rates, curves,
safety. Every summary here is a group_by/agg over whole frames; `compute_metrics` returns them
all, keyed by the table name `outcomes metrics` stores them under (pipeline/metrics_files.py
writes and stores them).
"""

from __future__ import annotations

import polars as pl

from pipeline.config import Config, Definitions
from pipeline.outcomes import OutcomeFrames, reduced_by_at_least, safety_item
from pipeline.stats import wilson

GROUP = ["protocol_id", "instrument"]
HIGH_BP = (180, 110)  # mmHg: an infusion reaching systolic >= 180 or diastolic >= 110 (Safety)

# `protocol_summary.csv` (README "Outputs"), in this order; extra columns follow.
PROTOCOL_SUMMARY_COLUMNS = [
    "protocol_id", "instrument", "courses", "in_progress", "evaluable", "responders",
    "response_rate", "response_ci_low", "response_ci_high", "partial_responders",
    "non_responders", "non_response_rate", "non_response_ci_low", "non_response_ci_high",
    "remitters", "remission_rate", "itt_response_rate", "median_infusions_to_response",
]

PROTOCOL_SUMMARY_EXTRA_COLUMNS = [
    "not_evaluable", "partial_response_rate", "partial_response_ci_low",
    "partial_response_ci_high", "remission_evaluable", "remission_ci_low", "remission_ci_high",
    "itt_courses", "itt_response_ci_low", "itt_response_ci_high",
    "reliable_change_evaluable", "reliable_improvers", "reliable_improvement_rate",
    "reliable_improvement_ci_low", "reliable_improvement_ci_high", "reliable_deteriorators",
    "reliable_deterioration_rate", "reliable_deterioration_ci_low",
    "reliable_deterioration_ci_high", "cases", "recovered", "recovery_rate", "recovery_ci_low",
    "recovery_ci_high", "reliable_recovery_evaluable", "reliably_recovered",
    "reliable_recovery_rate", "reliable_recovery_ci_low", "reliable_recovery_ci_high",
]


# ---------------------------------------------------------------------------------------------
# Rates with Wilson intervals


def with_rate(frame: pl.DataFrame, name: str, numerator: str, denominator: str) -> pl.DataFrame:
    """Add `{name}_rate`, `{name}_ci_low`, `{name}_ci_high` (None where the denominator is 0).

    Loops over summary rows (protocol x instrument), never over patients, to reuse stats.wilson.
    """
    pairs = zip(frame[numerator].to_list(), frame[denominator].to_list(), strict=True)
    intervals = [wilson(int(k), int(n)) for k, n in pairs]
    return frame.with_columns(
        pl.when(pl.col(denominator) > 0)
        .then(pl.col(numerator) / pl.col(denominator))
        .otherwise(None)
        .cast(pl.Float64)
        .alias(f"{name}_rate"),
        pl.Series(f"{name}_ci_low", [i[0] if i else None for i in intervals], dtype=pl.Float64),
        pl.Series(f"{name}_ci_high", [i[1] if i else None for i in intervals], dtype=pl.Float64),
    )


# ---------------------------------------------------------------------------------------------
# Kaplan-Meier over groups, in polars (mirrors stats.kaplan_meier; tested against it)


def km_table(frame: pl.DataFrame, by: list[str], duration: str, event: str) -> pl.DataFrame:
    """Kaplan-Meier table per group: one row per distinct time with at_risk, events, survival."""
    totals = frame.group_by(by).agg(subjects=pl.len())
    steps = (
        frame.group_by([*by, duration])
        .agg(events=pl.col(event).cast(pl.Int64).sum(),
             censored=(~pl.col(event)).cast(pl.Int64).sum())
        .join(totals, on=by, how="left")
        .sort([*by, duration])
    )
    leaving = pl.col("events") + pl.col("censored")
    steps = steps.with_columns(
        at_risk=(pl.col("subjects") - leaving.cum_sum().over(by, order_by=duration) + leaving)
    ).with_columns(
        survival=(1 - pl.col("events") / pl.col("at_risk")).cum_prod().over(by, order_by=duration)
    )
    return steps.rename({duration: "time"}).select(
        [*by, "time", "at_risk", "events", "censored", "survival"]
    ).sort([*by, "time"])


def km_medians(table: pl.DataFrame, by: list[str], name: str) -> pl.DataFrame:
    """Smallest time with S(t) <= 0.5 per group (null when never reached)."""
    return table.group_by(by).agg(
        pl.col("time").filter(pl.col("survival") <= 0.5 + 1e-12).min().alias(name)
    )


def rated_courses(course_outcomes: pl.DataFrame) -> pl.DataFrame:
    """Evaluable courses that are not in progress: the denominator of every outcome rate."""
    return course_outcomes.filter(pl.col("evaluable") & (pl.col("status") != "in_progress"))


def cumulative_response(course_outcomes: pl.DataFrame) -> pl.DataFrame:
    """docs/definitions.md "Cumulative response": KM per protocol x instrument.

    Event = response at `infusions_to_response`; censored at the last scored infusion.
    """
    rated = rated_courses(course_outcomes).with_columns(
        responded=pl.col("infusions_to_response").is_not_null(),
        infusion_number=pl.coalesce("infusions_to_response", "last_scored_infusion"),
    )
    table = km_table(rated, GROUP, "infusion_number", "responded")
    return table.with_columns(cumulative_response=1 - pl.col("survival")).rename(
        {"time": "infusion_number"}
    )


# ---------------------------------------------------------------------------------------------
# Protocol summary


def protocol_summary(course_outcomes: pl.DataFrame) -> pl.DataFrame:
    """docs/definitions.md "Rates" per protocol x instrument over evaluable, non-in-progress courses."""
    not_in_progress = pl.col("status") != "in_progress"
    rated = pl.col("evaluable") & not_in_progress
    category = pl.col("category")
    counts = course_outcomes.group_by(GROUP).agg(
        courses=pl.len(),
        in_progress=(~not_in_progress).sum(),
        evaluable=rated.sum(),
        responders=(rated & (category == "response")).sum(),
        partial_responders=(rated & (category == "partial_response")).sum(),
        non_responders=(rated & (category == "non_response")).sum(),
        remitters=(rated & pl.col("remission").fill_null(False)).sum(),
        remission_evaluable=(rated & pl.col("remission").is_not_null()).sum(),
        reliable_improvers=(rated & pl.col("reliable_improvement").fill_null(False)).sum(),
        reliable_deteriorators=(rated & pl.col("reliable_deterioration").fill_null(False)).sum(),
        reliable_change_evaluable=(rated & pl.col("reliable_improvement").is_not_null()).sum(),
        itt_courses=(not_in_progress & (pl.col("baseline_score") > 0).fill_null(False)).sum(),
        cases=(rated & pl.col("caseness_at_baseline").fill_null(False)).sum(),
        recovered=(rated & pl.col("recovery").fill_null(False)).sum(),
        reliably_recovered=(rated & pl.col("reliable_recovery").fill_null(False)).sum(),
        reliable_recovery_evaluable=(rated & pl.col("reliable_recovery").is_not_null()).sum(),
        not_evaluable=(not_in_progress & ~pl.col("evaluable")).sum(),
    ).sort(GROUP)
    counts = counts.with_columns(pl.exclude(GROUP).cast(pl.Int64))
    for name, numerator, denominator in [
        ("response", "responders", "evaluable"),
        ("partial_response", "partial_responders", "evaluable"),
        ("non_response", "non_responders", "evaluable"),
        ("remission", "remitters", "remission_evaluable"),
        ("reliable_improvement", "reliable_improvers", "reliable_change_evaluable"),
        ("reliable_deterioration", "reliable_deteriorators", "reliable_change_evaluable"),
        ("itt_response", "responders", "itt_courses"),
        ("recovery", "recovered", "cases"),
        ("reliable_recovery", "reliably_recovered", "reliable_recovery_evaluable"),
    ]:
        counts = with_rate(counts, name, numerator, denominator)
    medians = km_medians(
        cumulative_response(course_outcomes).rename({"infusion_number": "time"}),
        GROUP, "median_infusions_to_response",
    )
    summary = counts.join(medians, on=GROUP, how="left")
    return summary.select(PROTOCOL_SUMMARY_COLUMNS + PROTOCOL_SUMMARY_EXTRA_COLUMNS).sort(GROUP)


# ---------------------------------------------------------------------------------------------
# Same-session effect of infusion 1


def same_session_effect(
    frames: OutcomeFrames, definitions: Definitions
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """docs/definitions.md "Same-session effect": a `pre` and a same-day `post` score around infusion 1.

    pre = latest `pre` score on the day of infusion 1 not after its start; post = first `post`
    score that day after its start (a date-only post is at the end of the day). Ties -> higher.
    Returns (per course x instrument, per protocol x instrument).
    """
    keys = ["patient_id", "course_id", "instrument"]
    day_scores = frames.courses.select(
        "patient_id", "course_id", "protocol_id", "course_start", "first_infusion_day"
    ).join(frames.scores, on="patient_id", how="inner").filter(
        pl.col("score_day") == pl.col("first_infusion_day")
    )
    pre = (
        day_scores.filter(
            (pl.col("timing") == "pre") & (pl.col("scored_at") <= pl.col("course_start"))
        )
        .sort([*keys, "scored_at", "total_score"], descending=[False] * 3 + [True, True])
        .group_by(keys).agg(pl.col("protocol_id").first(), pre_score=pl.col("total_score").first())
    )
    post = (
        day_scores.filter(
            (pl.col("timing") == "post") & (pl.col("scored_at") > pl.col("course_start"))
        )
        .sort([*keys, "scored_at", "total_score"], descending=[False] * 4 + [True])
        .group_by(keys).agg(post_score=pl.col("total_score").first())
    )
    per_course = pre.join(post, on=keys, how="inner").with_columns(
        same_day_change=pl.col("post_score") - pl.col("pre_score"),
        reduced_by_half=(pl.col("pre_score") > 0)
        & reduced_by_at_least(pl.col("post_score"), pl.col("pre_score"), definitions.response_pct),
    ).sort(keys)
    groups = frames.course_outcomes.select(GROUP).unique()
    summary = groups.join(
        per_course.group_by(GROUP).agg(
            measured=pl.len(),
            mean_change=pl.col("same_day_change").mean(),
            reduced_by_half=pl.col("reduced_by_half").sum(),
        ),
        on=GROUP, how="left",
    ).with_columns(
        pl.col("measured").fill_null(0).cast(pl.Int64),
        pl.col("reduced_by_half").fill_null(0).cast(pl.Int64),
    ).with_columns(
        status=pl.when(pl.col("measured") > 0).then(pl.lit("measured"))
        .otherwise(pl.lit("not measured")),
    ).sort(GROUP)
    summary = with_rate(summary, "reduced_by_half", "reduced_by_half", "measured")
    return per_course.select([*keys, "protocol_id", "pre_score", "post_score",
                              "same_day_change", "reduced_by_half"]), summary


# ---------------------------------------------------------------------------------------------
# Durability after an endpoint response


def durability(
    frames: OutcomeFrames, definitions: Definitions
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """docs/definitions.md "Durability": days from an endpoint response to relapse (a later
    score that is no longer a response).

    Courses: rated courses with category response. Later scores: every later score of the
    patient on that instrument up to as-of (also those in a later course). Censored at the
    last later score (0 days when there is none). Returns (per course, KM curve, summary).
    """
    keys = ["patient_id", "course_id", "instrument"]
    responders = rated_courses(frames.course_outcomes).filter(
        pl.col("category") == "response"
    ).select([*keys, "protocol_id", "baseline_score", "endpoint_at"])
    later = responders.join(
        frames.scores.select("patient_id", "instrument", "scored_at", "score_day", "total_score"),
        on=["patient_id", "instrument"], how="inner",
    ).filter(pl.col("scored_at") > pl.col("endpoint_at")).with_columns(
        days=(pl.col("score_day") - pl.col("endpoint_at").dt.date()).dt.total_days(),
        relapsed=~reduced_by_at_least(pl.col("total_score"), pl.col("baseline_score"),
                                      definitions.response_pct),
    )
    per_score = later.group_by(keys).agg(
        relapse_days=pl.col("days").filter(pl.col("relapsed")).min(),
        last_score_days=pl.col("days").max(),
    )
    per_course = responders.join(per_score, on=keys, how="left").with_columns(
        relapsed=pl.col("relapse_days").is_not_null(),
        days=pl.coalesce("relapse_days", "last_score_days", pl.lit(0)).cast(pl.Int64),
    ).select([*keys, "protocol_id", "relapsed", "days"]).sort(keys)
    curve = km_table(per_course, GROUP, "days", "relapsed").rename({"time": "days"})
    medians = km_medians(curve.rename({"days": "time"}), GROUP, "median_days_to_relapse")
    summary = (
        per_course.group_by(GROUP)
        .agg(responders=pl.len().cast(pl.Int64),
             relapses=pl.col("relapsed").sum().cast(pl.Int64))
        .join(medians, on=GROUP, how="left")
        .sort(GROUP)
    )
    return per_course, curve.sort([*GROUP, "days"]), summary


# ---------------------------------------------------------------------------------------------
# Safety, attrition, PHQ-9 item 9


def safety(frames: OutcomeFrames) -> tuple[pl.DataFrame, pl.DataFrame]:
    """docs/definitions.md "Safety" per protocol and clinic-wide (protocol_id null, scope 'clinic').

    Returns (per-scope summary, adverse events per 100 administered infusions by type).
    High BP share is over infusions with a blood pressure recorded.
    """
    systolic, diastolic = HIGH_BP
    infusions = frames.course_infusions.with_columns(
        high_bp=(pl.col("bp_systolic_max") >= systolic).fill_null(False)
        | (pl.col("bp_diastolic_max") >= diastolic).fill_null(False),
        bp_recorded=pl.col("bp_systolic_max").is_not_null()
        | pl.col("bp_diastolic_max").is_not_null(),
    )
    both = pl.concat([
        infusions.with_columns(scope=pl.lit("protocol")),
        infusions.with_columns(scope=pl.lit("clinic"), protocol_id=pl.lit(None, pl.String)),
    ])
    by = ["scope", "protocol_id"]
    summary = both.group_by(by).agg(
        infusions=pl.len(),
        aborted=(pl.col("status") == "aborted").sum(),
        bp_recorded=pl.col("bp_recorded").sum(),
        high_bp=pl.col("high_bp").sum(),
        infusions_with_adverse_event=(pl.col("adverse_events").list.len() > 0)
        .fill_null(False).sum(),
    ).with_columns(pl.exclude(by).cast(pl.Int64)).sort(by, nulls_last=False)
    summary = with_rate(summary, "aborted", "aborted", "infusions")
    summary = with_rate(summary, "high_bp", "high_bp", "bp_recorded")
    summary = summary.with_columns(
        adverse_events_per_100=pl.col("infusions_with_adverse_event") / pl.col("infusions") * 100
    )
    events = (
        both.select(*by, pl.col("session_id"), pl.col("adverse_events").list.unique())
        .explode("adverse_events")
        .filter(pl.col("adverse_events").is_not_null() & (pl.col("adverse_events") != ""))
        .group_by([*by, "adverse_events"]).agg(events=pl.len().cast(pl.Int64))
        .rename({"adverse_events": "event_type"})
        .join(summary.select(*by, "infusions"), on=by, how="left", nulls_equal=True)
        .with_columns(per_100_infusions=pl.col("events") / pl.col("infusions") * 100)
        .sort([*by, "event_type"], nulls_last=False)
    )
    return summary.sort(by, nulls_last=False), events


def attrition(frames: OutcomeFrames) -> pl.DataFrame:
    """Courses reaching infusion 1, 2, ... N per protocol (N = max of plan and largest course).

    Over completed and discontinued courses (in-progress ones have not had the chance yet).
    """
    courses = frames.courses.filter(pl.col("status") != "in_progress")
    horizon = courses.group_by("protocol_id").agg(
        starting=pl.len().cast(pl.Int64),
        last=pl.max_horizontal(pl.col("infusions").max(), pl.col("planned_infusions").max()),
    ).with_columns(infusion_number=pl.int_ranges(1, pl.col("last") + 1)).explode("infusion_number")
    reached = courses.with_columns(
        infusion_number=pl.int_ranges(1, pl.col("infusions") + 1)
    ).explode("infusion_number").group_by("protocol_id", "infusion_number").agg(
        courses_reaching=pl.len().cast(pl.Int64)
    )
    return horizon.join(reached, on=["protocol_id", "infusion_number"], how="left").with_columns(
        pl.col("infusion_number").cast(pl.Int64),
        pl.col("courses_reaching").fill_null(0),
    ).with_columns(
        share_of_starters=pl.col("courses_reaching") / pl.col("starting")
    ).select("protocol_id", "infusion_number", "courses_reaching", "starting",
             "share_of_starters").sort("protocol_id", "infusion_number")


def item9_flags(frames: OutcomeFrames) -> pl.DataFrame:
    """docs/definitions.md "Safety": a PHQ-9 item 9 above 0 is a safety flag whatever the total
    (scores as of)."""
    return frames.scores.with_columns(
        item_9=safety_item(pl.col("instrument"), pl.col("items"))
    ).filter(pl.col("item_9") > 0).select(
        "patient_id", "assessment_id", "administered_at", "timing", "total_score", "item_9"
    ).sort("patient_id", "administered_at")


# ---------------------------------------------------------------------------------------------
# The whole run


METRIC_TABLES = ("course_outcomes", "protocol_summary", "cumulative_response",
                 "same_session_courses", "same_session_effect", "durability_courses",
                 "durability_curve", "durability_summary", "safety_summary",
                 "adverse_event_rates", "attrition", "item9_flags")


def compute_metrics(frames: OutcomeFrames, config: Config) -> dict[str, pl.DataFrame]:
    """Every metric table, keyed by the DuckDB table name it is stored under."""
    same_course, same_summary = same_session_effect(frames, config.definitions)
    durable_course, durable_curve, durable_summary = durability(frames, config.definitions)
    safety_summary, adverse_events = safety(frames)
    return {
        "course_outcomes": frames.course_outcomes,
        "protocol_summary": protocol_summary(frames.course_outcomes),
        "cumulative_response": cumulative_response(frames.course_outcomes),
        "same_session_courses": same_course,
        "same_session_effect": same_summary,
        "durability_courses": durable_course,
        "durability_curve": durable_curve,
        "durability_summary": durable_summary,
        "safety_summary": safety_summary,
        "adverse_event_rates": adverse_events,
        "attrition": attrition(frames),
        "item9_flags": item9_flags(frames),
    }
