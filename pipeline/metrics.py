"""Metrics (docs/definitions.md "Rates" to "Safety"): course rows -> protocol rates, curves,
safety, computed in DuckDB by sql/metrics over the outcome relations (pipeline/outcomes.py).

`metric_tables` runs on a connection that holds the relations `course_outcomes`, `courses`,
`course_infusions` and `scores`: the course-level tables (ROW_TABLES) stay there as temporary
tables and only protocol-level frames reach Python, where the Wilson intervals and the
Kaplan-Meier products are taken over them. `compute_metrics` does the same over outcome frames
already in polars (the results of `outcomes run`) and returns every table as a frame, keyed by
the table name `outcomes metrics` stores it under (pipeline/metrics_files.py).
"""

from __future__ import annotations

import functools

import duckdb
import polars as pl

from pipeline.config import Config
from pipeline.db import OFFLINE, quiet_duckdb
from pipeline.outcomes import HIGH_BP as HIGH_BP  # re-exported: the reports import it here
from pipeline.outcomes import (
    OUTCOME_ORDER,
    OutcomeFrames,
    define_settings,
    nulls_first,
    outcome_query,
)
from pipeline.paths import sql
from pipeline.stats import wilson

GROUP = ["protocol_id", "instrument"]

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
# Running sql/metrics


def query(con: duckdb.DuckDBPyConnection, name: str, order: str | None = None) -> pl.DataFrame:
    """sql/metrics/<name>.sql on `con` as a frame (a protocol-level table), in `order`."""
    text = sql(f"metrics/{name}.sql")
    if order is not None:
        text = f"SELECT * FROM ({text}) ORDER BY {nulls_first(order)}"
    return con.sql(text).pl()


def define_macros(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(sql("metrics/macros.sql"))


@functools.cache
def _local_database() -> duckdb.DuckDBPyConnection:
    """The process's in-memory DuckDB behind every local_connection (opened on first use)."""
    return duckdb.connect(config=dict(OFFLINE))


def local_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection for sql/metrics over frames already in polars; close it
    when done.

    A cursor of one in-memory database per process: a connection of its own (its registered
    frames, temp tables, macros and settings are its own and end when it is closed), without
    the ~12 ms of starting a database each time.
    """
    con = _local_database().cursor()
    quiet_duckdb(con)
    define_macros(con)
    return con


# ---------------------------------------------------------------------------------------------
# Kaplan-Meier over groups (mirrors stats.kaplan_meier; tested against it and lifelines)


def km_table(con: duckdb.DuckDBPyConnection, source: str) -> pl.DataFrame:
    """Kaplan-Meier table per protocol x instrument of `source` (a query with the columns
    protocol_id, instrument, time, event): one row per distinct time with at_risk, events,
    censored, survival, and the group's subjects. Counts in SQL (sql/metrics/km_counts.sql);
    the product over the few rows of each group here. `source` is run once into a temp table
    (km_counts reads it twice)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE km_input AS {source}")
    counts = query(con, "km_counts", "protocol_id, instrument, time")
    con.execute("DROP TABLE km_input")
    return counts.with_columns(
        survival=(1 - pl.col("events") / pl.col("at_risk")).cum_prod().over(GROUP, order_by="time")
    ).select([*GROUP, "time", "at_risk", "events", "censored", "survival", "subjects"])


def km_medians(table: pl.DataFrame, name: str) -> pl.DataFrame:
    """Smallest time with S(t) <= 0.5 per group (null when never reached)."""
    return table.group_by(GROUP).agg(
        pl.col("time").filter(pl.col("survival") <= 0.5 + 1e-12).min().alias(name)
    )


def rated_courses(course_outcomes: pl.DataFrame) -> pl.DataFrame:
    """Evaluable courses that are not in progress: the denominator of every outcome rate
    (sql/metrics/rated_courses.sql, over a frame)."""
    con = local_connection()
    try:
        con.register("course_outcomes", course_outcomes)
        return con.sql(sql("metrics/rated_courses.sql")).pl()
    finally:
        con.close()


def cumulative_response(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """docs/definitions.md "Cumulative response": KM per protocol x instrument.

    Event = response at `infusions_to_response`; censored at the last scored infusion.
    """
    table = km_table(con, sql("metrics/response_times.sql"))
    return table.drop("subjects").with_columns(
        cumulative_response=1 - pl.col("survival")).rename({"time": "infusion_number"})


# ---------------------------------------------------------------------------------------------
# Protocol summary

RATES = [
    ("response", "responders", "evaluable"),
    ("partial_response", "partial_responders", "evaluable"),
    ("non_response", "non_responders", "evaluable"),
    ("remission", "remitters", "remission_evaluable"),
    ("reliable_improvement", "reliable_improvers", "reliable_change_evaluable"),
    ("reliable_deterioration", "reliable_deteriorators", "reliable_change_evaluable"),
    ("itt_response", "responders", "itt_courses"),
    ("recovery", "recovered", "cases"),
    ("reliable_recovery", "reliably_recovered", "reliable_recovery_evaluable"),
]


def summarise(con: duckdb.DuckDBPyConnection, cumulative: pl.DataFrame) -> pl.DataFrame:
    """docs/definitions.md "Rates" per protocol x instrument over evaluable, non-in-progress
    courses (sql/metrics/protocol_counts.sql), with the median of the cumulative response."""
    counts = query(con, "protocol_counts", "protocol_id, instrument")
    for name, numerator, denominator in RATES:
        counts = with_rate(counts, name, numerator, denominator)
    medians = km_medians(cumulative.rename({"infusion_number": "time"}),
                         "median_infusions_to_response")
    summary = counts.join(medians, on=GROUP, how="left")
    return summary.select(PROTOCOL_SUMMARY_COLUMNS + PROTOCOL_SUMMARY_EXTRA_COLUMNS).sort(GROUP)


def protocol_summary(course_outcomes: pl.DataFrame) -> pl.DataFrame:
    """`summarise` over course rows in a frame (e.g. every protocol pooled)."""
    con = local_connection()
    try:
        con.register("course_outcomes", course_outcomes)
        return summarise(con, cumulative_response(con))
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# Same-session effect, durability, safety, attrition


def same_session_effect(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """docs/definitions.md "Same-session effect" per protocol x instrument, over the temp table
    same_session_courses (sql/metrics/same_session_courses.sql)."""
    summary = query(con, "same_session_counts", "protocol_id, instrument").with_columns(
        status=pl.when(pl.col("measured") > 0).then(pl.lit("measured"))
        .otherwise(pl.lit("not measured")),
    )
    return with_rate(summary, "reduced_by_half", "reduced_by_half", "measured")


def durability(con: duckdb.DuckDBPyConnection) -> tuple[pl.DataFrame, pl.DataFrame]:
    """docs/definitions.md "Durability": KM curve of days to relapse and summary per protocol x
    instrument, over the temp table durability_courses."""
    table = km_table(con, "SELECT protocol_id, instrument, days AS time, relapsed AS event "
                          "FROM durability_courses")
    medians = km_medians(table, "median_days_to_relapse")
    summary = (
        table.group_by(GROUP)
        .agg(responders=pl.col("subjects").first(), relapses=pl.col("events").sum())
        .join(medians, on=GROUP, how="left")
        .sort(GROUP)
    )
    curve = table.drop("subjects").rename({"time": "days"})
    return curve.sort([*GROUP, "days"]), summary


def safety(con: duckdb.DuckDBPyConnection) -> tuple[pl.DataFrame, pl.DataFrame]:
    """docs/definitions.md "Safety" per protocol and clinic-wide (protocol_id null, scope 'clinic').

    Returns (per-scope summary, adverse events per 100 administered infusions by type).
    High BP share is over infusions with a blood pressure recorded.
    """
    by = ["scope", "protocol_id"]
    summary = query(con, "safety_counts", "scope, protocol_id")
    summary = with_rate(summary, "aborted", "aborted", "infusions")
    summary = with_rate(summary, "high_bp", "high_bp", "bp_recorded")
    summary = summary.with_columns(
        adverse_events_per_100=pl.col("infusions_with_adverse_event") / pl.col("infusions") * 100
    )
    events = (
        query(con, "adverse_events", "scope, protocol_id, event_type")
        .join(summary.select(*by, "infusions"), on=by, how="left", nulls_equal=True)
        .with_columns(per_100_infusions=pl.col("events") / pl.col("infusions") * 100)
    )
    return summary, events


def attrition(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Courses reaching infusion 1, 2, ... N per protocol (sql/metrics/attrition.sql)."""
    return query(con, "attrition", "protocol_id, infusion_number").with_columns(
        share_of_starters=pl.col("courses_reaching") / pl.col("starting")
    ).select("protocol_id", "infusion_number", "courses_reaching", "starting",
             "share_of_starters")


# ---------------------------------------------------------------------------------------------
# The whole run


METRIC_TABLES = ("course_outcomes", "protocol_summary", "cumulative_response",
                 "same_session_courses", "same_session_effect", "durability_courses",
                 "durability_curve", "durability_summary", "safety_summary",
                 "adverse_event_rates", "attrition", "item9_flags")
KEYS = "patient_id, course_id, instrument"
# The course-level tables: left in DuckDB (temp tables of these names), read in this order.
ROW_TABLES = {
    "course_outcomes": OUTCOME_ORDER["course_outcomes"],
    "same_session_courses": nulls_first(KEYS),
    "durability_courses": nulls_first(KEYS),
    "item9_flags": nulls_first("patient_id, administered_at, assessment_id"),
}


def metric_tables(con: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    """Every protocol-level metric table, computed on `con` (which holds the outcome relations
    and `settings`); the course-level ones are left there as temp tables (ROW_TABLES)."""
    define_macros(con)
    for name in ROW_TABLES:
        if name != "course_outcomes":  # our own file and table names
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql(f'metrics/{name}.sql')}")
    cumulative = cumulative_response(con)
    durability_curve, durability_summary = durability(con)
    safety_summary, adverse_events = safety(con)
    return {
        "protocol_summary": summarise(con, cumulative),
        "cumulative_response": cumulative,
        "same_session_effect": same_session_effect(con),
        "durability_curve": durability_curve,
        "durability_summary": durability_summary,
        "safety_summary": safety_summary,
        "adverse_event_rates": adverse_events,
        "attrition": attrition(con),
    }


def row_query(name: str) -> str:
    """SELECT of one course-level table in its order."""
    if name == "course_outcomes":
        return outcome_query(name)
    return f"SELECT * FROM {name} ORDER BY {ROW_TABLES[name]}"


def in_table_order(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    return {name: tables[name] for name in METRIC_TABLES}


def compute_metrics(frames: OutcomeFrames, config: Config) -> dict[str, pl.DataFrame]:
    """Every metric table over outcome frames in polars, keyed by its stored table name."""
    con = local_connection()
    try:
        define_settings(con, frames.as_of, config)
        for name in ("course_outcomes", "courses", "course_infusions", "scores"):
            con.register(name, getattr(frames, name))
        tables = metric_tables(con)
        rows = {name: con.sql(row_query(name)).pl() for name in ROW_TABLES}
    finally:
        con.close()
    return in_table_order({**tables, **rows})
