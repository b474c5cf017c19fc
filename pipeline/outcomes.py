"""Course outcomes (docs/definitions.md): runs sql/outcomes for the set-based steps, then polars
for the rest.

The SQL files build, in order, administered infusions, courses, baselines, post-baseline scores
and endpoints as temporary tables on the connection; `add_outcome_columns` adds categories,
remission, reliable change, recovery and infusions to response with whole-frame expressions.

The definitions a report applies again live here, once, and every report imports them: the
reduction test behind response, partial response and relapse (`reduced_by_at_least`), the
response timing classes (`TIMING_CLASSES`), the severity band of a score (`severity_band`) and
the PHQ-9 item-9 safety flag (`safety_item`). The baseline and endpoint are chosen in SQL
(sql/outcomes/06_baselines.sql, 08_endpoints.sql); `OutcomeFrames.score_ids` says which score
each one is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import polars as pl
from polars._typing import PolarsDataType

from pipeline.config import Config, Definitions
from pipeline.instruments import Instrument
from pipeline.paths import SQL_DIR

OUTCOME_SQL_DIR = SQL_DIR / "outcomes"

# `course_outcomes.csv` (README "Outputs"), in this order; extra columns follow.
COURSE_OUTCOME_COLUMNS = [
    "patient_id", "course_id", "protocol_id", "instrument", "course_start", "course_end",
    "infusions", "planned_infusions", "status", "baseline_score", "endpoint_score",
    "pct_change", "category", "remission", "reliable_improvement", "reliable_deterioration",
    "infusions_to_response", "response_timing", "not_evaluable_reason",
]
COURSE_OUTCOME_EXTRA_COLUMNS = [
    "course_outcome_date", "course_id_source", "evaluable", "aborted_infusions",
    "baseline_at", "endpoint_at", "endpoint_after_infusions", "last_scored_infusion",
    "caseness_at_baseline", "recovery", "reliable_recovery",
]


def outcome_sql_files() -> list[tuple[str, str]]:
    """(relation name, SQL text) for every file in sql/outcomes, in file order."""
    files = sorted(OUTCOME_SQL_DIR.glob("*.sql"))
    return [(re.sub(r"^\d+_", "", f.stem), f.read_text(encoding="utf-8")) for f in files]


def build_outcome_relations(
    con: duckdb.DuckDBPyConnection, as_of: date, definitions: Definitions
) -> None:
    """Create the one-row `settings` table and every sql/outcomes relation as a temp table."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE settings AS SELECT ?::DATE AS as_of, "
        "?::INTEGER AS course_gap_days, ?::INTEGER AS baseline_window_days, "
        "?::INTEGER AS endpoint_window_days",
        [as_of, definitions.course_gap_days, definitions.baseline_window_days,
         definitions.endpoint_window_days],
    )
    for name, query in outcome_sql_files():
        # The relation name comes from our own file name, never from input data.
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {query}")


def instrument_frame(instruments: dict[str, Instrument]) -> pl.DataFrame:
    """Registry thresholds as a frame to join on `instrument`."""
    names = list(instruments)
    return pl.DataFrame(
        {
            "instrument": names,
            "remission_cutoff": [instruments[n].remission for n in names],
            "caseness_cutoff": [instruments[n].caseness for n in names],
            "reliable_change": [instruments[n].reliable_change for n in names],
        },
        schema={"instrument": pl.String, "remission_cutoff": pl.Float64,
                "caseness_cutoff": pl.Float64, "reliable_change": pl.Float64},
    )


def reduced_by_at_least(score: Any, baseline: Any, pct: float) -> Any:
    """score <= baseline * (1 - pct/100), compared without dividing (exact on whole scores).

    The one reduction test: response (`response_pct`), partial response
    (`partial_response_pct`), relapse and the same-session halving, and the payer's continuation
    bar. Takes polars expressions (returns an expression) or numbers (returns a bool).
    """
    return score * 100 <= baseline * (100 - pct)


# ---------------------------------------------------------------------------------------------
# Response timing (docs/definitions.md "Infusions to response")


@dataclass(frozen=True)
class TimingClass:
    """Courses whose infusions_to_response lies in first..last (no upper bound when last is None)."""

    key: str
    first: int
    last: int | None = None

    def span(self, open_end: str = "≥ {}") -> str:
        """'1–2'; the open class as `open_end` with its first ('≥ 5', '≥5', '5 or more')."""
        if self.last is None:
            return open_end.format(self.first)
        return f"{self.first}–{self.last}"

    def holds(self, n: int) -> bool:
        return self.first <= n and (self.last is None or n <= self.last)


TIMING_CLASSES = (TimingClass("early", 1, 2), TimingClass("gradual", 3, 4),
                  TimingClass("late", 5))
NEVER = "never"  # no post-baseline score reached response


def response_timing(n: pl.Expr) -> pl.Expr:
    """The timing class of `infusions_to_response` (NEVER when null)."""
    expr: Any = pl.when(n.is_null()).then(pl.lit(NEVER))
    for cls in TIMING_CLASSES[:-1]:
        assert cls.last is not None
        expr = expr.when(n <= cls.last).then(pl.lit(cls.key))
    return expr.otherwise(pl.lit(TIMING_CLASSES[-1].key))


# ---------------------------------------------------------------------------------------------
# Severity bands and the safety item (the instrument registry, pipeline/instruments.py)


def severity_band(instrument: pl.Expr, score: pl.Expr,
                  instruments: dict[str, Instrument]) -> pl.Expr:
    """Label of the registry band holding the score: the first band with low <= score <= high;
    a score between two bands (a fraction on a whole-number scale) takes the band above it;
    null when the instrument has no bands or the score is null."""
    bands = [(name, band) for name, inst in instruments.items() for band in inst.severity_bands]
    cases = [((instrument == name) & (score >= band.low) & (score <= band.high), band.label)
             for name, band in bands]
    cases += [((instrument == name) & (score <= band.high), band.label) for name, band in bands]
    if not cases:
        return pl.lit(None, dtype=pl.String)
    expr: Any = pl.when(cases[0][0]).then(pl.lit(cases[0][1]))
    for condition, label in cases[1:]:
        expr = expr.when(condition).then(pl.lit(label))
    return expr.otherwise(pl.lit(None, dtype=pl.String))


SAFETY_ITEM = ("PHQ-9", 9)  # PHQ-9 item 9 (thoughts of self-harm): any answer above 0 is flagged


def safety_item(instrument: pl.Expr, items: pl.Expr) -> pl.Expr:
    """The answer to the safety item (PHQ-9 item 9) of a score; null for other instruments or
    when the items were not exported. A value above 0 is a safety flag."""
    name, number = SAFETY_ITEM
    return pl.when(instrument == name).then(items.list.get(number - 1, null_on_oob=True))


def infusions_to_response(
    post_scores: pl.DataFrame, baselines: pl.DataFrame, response_pct: float
) -> pl.DataFrame:
    """docs/definitions.md "Infusions to response": least infusion count n of a post score that
    is a response (reduced_by_at_least response_pct).

    Also returns `last_scored_infusion` (largest infusion count with a score), the KM censor time.
    """
    keys = ["patient_id", "course_id", "instrument"]
    joined = post_scores.join(baselines.select([*keys, "baseline_score"]), on=keys, how="inner")
    responded = reduced_by_at_least(pl.col("total_score"), pl.col("baseline_score"), response_pct)
    return (
        joined.filter(pl.col("baseline_score") > 0)
        .group_by(keys)
        .agg(
            pl.col("infusions_before").filter(responded).min().alias("infusions_to_response"),
            pl.col("infusions_before").max().alias("last_scored_infusion"),
        )
    )


def add_outcome_columns(
    course_scores: pl.DataFrame,
    post_scores: pl.DataFrame,
    instruments: dict[str, Instrument],
    definitions: Definitions,
) -> pl.DataFrame:
    """Per-course outcomes from baseline and endpoint, one row per course x instrument
    (docs/definitions.md "Evaluable" to "Infusions to response")."""
    keys = ["patient_id", "course_id", "instrument"]
    to_response = infusions_to_response(
        post_scores, course_scores.select([*keys, "baseline_score"]), definitions.response_pct
    )
    frame = (
        course_scores.join(instrument_frame(instruments), on="instrument", how="left")
        .join(to_response, on=keys, how="left")
    )
    baseline, endpoint = pl.col("baseline_score"), pl.col("endpoint_score")
    reason = (
        pl.when(baseline.is_null()).then(pl.lit("no baseline"))
        .when(baseline <= 0).then(pl.lit("zero baseline"))
        .when(endpoint.is_null()).then(pl.lit("no follow-up score"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    frame = frame.with_columns(
        not_evaluable_reason=reason, evaluable=reason.is_null()
    )
    evaluable = pl.col("evaluable")

    def when_evaluable(expr: pl.Expr, dtype: PolarsDataType) -> pl.Expr:
        return pl.when(evaluable).then(expr).otherwise(pl.lit(None, dtype=dtype))

    response = reduced_by_at_least(endpoint, baseline, definitions.response_pct)
    partial = reduced_by_at_least(endpoint, baseline, definitions.partial_response_pct)
    category = (
        pl.when(response).then(pl.lit("response"))
        .when(partial).then(pl.lit("partial_response"))
        .otherwise(pl.lit("non_response"))
    )
    remission_cutoff, rc = pl.col("remission_cutoff"), pl.col("reliable_change")
    remission = pl.when(baseline > remission_cutoff).then(endpoint <= remission_cutoff)
    improvement = pl.when(rc.is_not_null()).then(baseline - endpoint >= rc)
    deterioration = pl.when(rc.is_not_null()).then(endpoint - baseline >= rc)
    caseness = pl.col("caseness_cutoff")
    is_case = pl.when(caseness.is_not_null() & baseline.is_not_null()).then(baseline >= caseness)
    recovery = pl.when(is_case).then(endpoint < caseness)
    n = pl.col("infusions_to_response")
    timing = response_timing(n)
    frame = frame.with_columns(
        pct_change=when_evaluable(((endpoint - baseline) / baseline * 100).round(1), pl.Float64),
        category=when_evaluable(category, pl.String),
        remission=when_evaluable(remission, pl.Boolean),
        reliable_improvement=when_evaluable(improvement, pl.Boolean),
        reliable_deterioration=when_evaluable(deterioration, pl.Boolean),
        infusions_to_response=when_evaluable(n, pl.Int64),
        response_timing=when_evaluable(timing, pl.String),
        last_scored_infusion=when_evaluable(pl.col("last_scored_infusion"), pl.Int64),
        caseness_at_baseline=is_case,
        recovery=when_evaluable(recovery, pl.Boolean),
    ).with_columns(
        reliable_recovery=pl.when(pl.col("recovery").is_not_null() & rc.is_not_null())
        .then(pl.col("recovery") & pl.col("reliable_improvement")),
        course_end=pl.col("last_infusion_day"),
        course_start=pl.col("first_infusion_day"),
    )
    return frame.select(COURSE_OUTCOME_COLUMNS + COURSE_OUTCOME_EXTRA_COLUMNS).sort(
        ["patient_id", "course_start", "course_id", "instrument"]
    )


@dataclass(frozen=True)
class OutcomeFrames:
    """Everything the metrics step needs, read once from the database as of one day."""

    as_of: date
    course_infusions: pl.DataFrame  # one row per administered infusion, with course and number
    courses: pl.DataFrame  # one row per course
    scores: pl.DataFrame  # assessments as of, with scored_at
    post_scores: pl.DataFrame
    course_outcomes: pl.DataFrame  # course_outcomes.csv columns first
    # which score is each course's baseline and endpoint (sql/outcomes/06, 08): patient_id,
    # course_id, instrument, baseline_assessment_id, endpoint_assessment_id
    score_ids: pl.DataFrame


def compute_outcomes(
    con: duckdb.DuckDBPyConnection, as_of: date, config: Config
) -> OutcomeFrames:
    """Run sql/outcomes on `con` as of `as_of` and return the frames, sorted for stable output."""
    build_outcome_relations(con, as_of, config.definitions)
    course_infusions = con.sql("SELECT * FROM course_infusions").pl().sort(
        ["patient_id", "started_at", "session_id"]
    )
    courses = con.sql("SELECT * FROM courses").pl().sort(
        ["patient_id", "course_start", "course_id"]
    )
    scores = con.sql("SELECT * FROM scores").pl().sort(
        ["patient_id", "instrument", "scored_at", "total_score"]
    )
    post_scores = con.sql("SELECT * FROM post_scores").pl().sort(
        ["patient_id", "course_id", "instrument", "scored_at", "total_score"]
    )
    course_scores = con.sql("SELECT * FROM course_scores").pl()
    score_ids = course_scores.select(
        "patient_id", "course_id", "instrument", "baseline_assessment_id", "endpoint_assessment_id"
    ).sort("patient_id", "course_id", "instrument")
    # The frames now hold everything; free the temp relations before polars works on them.
    for name, _ in reversed(outcome_sql_files()):
        con.execute(f"DROP TABLE IF EXISTS {name}").fetchall()
    outcomes = add_outcome_columns(course_scores, post_scores, config.instruments,
                                   config.definitions)
    return OutcomeFrames(as_of, course_infusions, courses, scores, post_scores, outcomes, score_ids)
