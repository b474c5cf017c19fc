"""Course outcomes (docs/definitions.md): every step runs in DuckDB, sql/outcomes in file order.

The SQL files build, in order, administered infusions, courses, baselines, post-baseline scores,
endpoints and the course outcome rows (categories, remission, reliable change, recovery,
infusions to response) as temporary tables on the connection. `compute_outcomes` reads them
into polars frames (`outcomes run`, the payer packets); the metrics step
(pipeline/metrics_files.py) and a report that reads no frame (pipeline/results.py) leave them
in DuckDB and read only protocol-level tables and counts (pipeline/metrics.py).

The definitions a report applies again live here, once, and every report and SQL file uses them:
the reduction test behind response, partial response and relapse (`reduced_by_at_least`, which
is also the SQL macro of the same name), the response timing classes (`TIMING_CLASSES`, the SQL
relation `timing_classes`), the severity band of a score (`severity_band`), the PHQ-9 item-9
safety flag (`SAFETY_ITEM`, `safety_item`) and the high blood-pressure bar (`HIGH_BP`). The
baseline and endpoint are chosen in SQL (sql/outcomes/06_baselines.sql, 08_endpoints.sql);
`OutcomeFrames.score_ids` says which score each one is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import polars as pl

from pipeline.config import Config
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


# the registry's thresholds, one row per instrument (`threshold_rows`): as a frame to join on
# `instrument` (`instrument_frame`) and as the temp table instrument_thresholds (define_settings)
THRESHOLD_COLUMNS = {"instrument": "VARCHAR", "remission_cutoff": "DOUBLE",
                     "caseness_cutoff": "DOUBLE", "reliable_change": "DOUBLE"}
_POLARS_TYPES = {"VARCHAR": pl.String, "DOUBLE": pl.Float64}


def threshold_rows(instruments: dict[str, Instrument]) -> list[tuple[Any, ...]]:
    """(instrument, remission, caseness, reliable change) of each instrument (THRESHOLD_COLUMNS)."""
    return [(name, inst.remission, inst.caseness, inst.reliable_change)
            for name, inst in instruments.items()]


def instrument_frame(instruments: dict[str, Instrument]) -> pl.DataFrame:
    """Registry thresholds as a frame to join on `instrument`."""
    return pl.DataFrame(threshold_rows(instruments), orient="row",
                        schema={column: _POLARS_TYPES[kind]
                                for column, kind in THRESHOLD_COLUMNS.items()})


def reduced_by_at_least(score: Any, baseline: Any, pct: Any) -> Any:
    """score <= baseline * (1 - pct/100), compared without dividing (exact on whole scores).

    The one reduction test: response (`response_pct`), partial response
    (`partial_response_pct`), relapse and the same-session halving, and the payer's continuation
    bar. Takes numbers (returns a bool), polars expressions (returns an expression) or DuckDB
    expressions: `define_settings` turns it into the SQL macro `reduced_by_at_least`.
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


# ---------------------------------------------------------------------------------------------
# Severity bands and safety (the instrument registry, pipeline/instruments.py)


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
HIGH_BP = (180, 110)  # mmHg: an infusion reaching systolic >= 180 or diastolic >= 110 (Safety)


def safety_item(instrument: pl.Expr, items: pl.Expr) -> pl.Expr:
    """The answer to the safety item (PHQ-9 item 9) of a score; null for other instruments or
    when the items were not exported. A value above 0 is a safety flag. (The metrics read the
    same item in SQL, sql/metrics/item9_flags.sql, from `SAFETY_ITEM` in `settings`.)"""
    name, number = SAFETY_ITEM
    return pl.when(instrument == name).then(items.list.get(number - 1, null_on_oob=True))


# ---------------------------------------------------------------------------------------------
# The relations in DuckDB


def define_settings(con: duckdb.DuckDBPyConnection, as_of: date, config: Config) -> None:
    """The definitions as SQL on `con`: the one-row `settings` table, the registry thresholds
    (`instrument_thresholds`), the timing classes (`timing_classes`) and the macro
    `reduced_by_at_least` (the Python function above, written out by DuckDB)."""
    definitions = config.definitions
    con.execute(
        "CREATE OR REPLACE TEMP TABLE settings AS SELECT ?::DATE AS as_of, "
        "?::INTEGER AS course_gap_days, ?::INTEGER AS baseline_window_days, "
        "?::INTEGER AS endpoint_window_days, ?::DOUBLE AS response_pct, "
        "?::DOUBLE AS partial_response_pct, ?::VARCHAR AS never_responded, "
        "?::VARCHAR AS safety_instrument, ?::INTEGER AS safety_item, "
        "?::INTEGER AS high_bp_systolic, ?::INTEGER AS high_bp_diastolic",
        [as_of, definitions.course_gap_days, definitions.baseline_window_days,
         definitions.endpoint_window_days, definitions.response_pct,
         definitions.partial_response_pct, NEVER, *SAFETY_ITEM, *HIGH_BP],
    )
    _values_table(con, "instrument_thresholds", THRESHOLD_COLUMNS,
                  threshold_rows(config.instruments))
    _values_table(con, "timing_classes", {"key": "VARCHAR", "first": "INTEGER", "last": "INTEGER"},
                  [(c.key, c.first, c.last) for c in TIMING_CLASSES])
    score, baseline, pct = (duckdb.ColumnExpression(n) for n in ("score", "baseline", "pct"))
    test = reduced_by_at_least(score, baseline, pct)
    con.execute(f"CREATE OR REPLACE TEMP MACRO reduced_by_at_least(score, baseline, pct) AS {test}")


def _values_table(con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, str],
                  rows: list[tuple[Any, ...]]) -> None:
    """The temp table `name` (our own name) of `rows`, its columns named and typed as
    `columns` says, in one statement."""
    if not rows:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} ("
                    + ", ".join(f"{column} {kind}" for column, kind in columns.items()) + ")")
        return
    row = "(" + ", ".join(f"?::{kind}" for kind in columns.values()) + ")"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM (VALUES "
                + ", ".join([row] * len(rows)) + f") AS {name}({', '.join(columns)})",
                [value for values in rows for value in values])


def nulls_first(keys: str) -> str:
    """An ORDER BY list with nulls first, as polars sorts (DuckDB puts them last)."""
    return ", ".join(f"{key.strip()} NULLS FIRST" for key in keys.split(","))


# The order every outcome relation is read, stored and written in (stable outputs).
OUTCOME_ORDER = {
    "course_infusions": nulls_first("patient_id, started_at, session_id"),
    "courses": nulls_first("patient_id, course_start, course_id"),
    "scores": nulls_first("patient_id, instrument, scored_at, total_score, assessment_id"),
    "post_scores": nulls_first(
        "patient_id, course_id, instrument, scored_at, total_score, assessment_id"),
    "course_outcomes": nulls_first("patient_id, course_start, course_id, instrument"),
    "score_ids": nulls_first("patient_id, course_id, instrument"),
}
SCORE_ID_COLUMNS = ("patient_id, course_id, instrument, baseline_assessment_id, "
                    "endpoint_assessment_id")


def outcome_query(name: str) -> str:
    """SELECT of one outcome relation (or `score_ids`, from course_scores) in its order; the
    course rows with the columns of course_outcomes.csv first."""
    columns, source = "*", name
    if name == "score_ids":
        columns, source = SCORE_ID_COLUMNS, "course_scores"
    elif name == "course_outcomes":
        columns = ", ".join(COURSE_OUTCOME_COLUMNS + COURSE_OUTCOME_EXTRA_COLUMNS)
    return f"SELECT {columns} FROM {source} ORDER BY {OUTCOME_ORDER[name]}"


def build_outcome_relations(
    con: duckdb.DuckDBPyConnection, as_of: date, config: Config
) -> None:
    """The settings (define_settings) and every sql/outcomes relation as a temp table."""
    define_settings(con, as_of, config)
    for name, query in outcome_sql_files():
        # The relation name comes from our own file name, never from input data.
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {query}")


def drop_outcome_relations(con: duckdb.DuckDBPyConnection) -> None:
    for name, _ in reversed(outcome_sql_files()):
        con.execute(f"DROP TABLE IF EXISTS temp.main.{name}").fetchall()


@dataclass(frozen=True)
class OutcomeFrames:
    """Everything the reports need, read once from the database as of one day."""

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
    """Run sql/outcomes on `con` as of `as_of` and return the frames, in OUTCOME_ORDER."""
    build_outcome_relations(con, as_of, config)
    frames = {name: con.sql(outcome_query(name)).pl() for name in OUTCOME_ORDER}
    drop_outcome_relations(con)  # the frames hold everything now
    return OutcomeFrames(as_of, **frames)
