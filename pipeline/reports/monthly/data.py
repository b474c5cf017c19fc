"""What the monthly report reads from the results: one reader, `read_monthly`, over the outcome
relations on the results' connection (pipeline/results.py `Reader`). DuckDB filters and counts
the course, infusion and score rows (sql/reports/monthly); only counts per protocol, instrument,
site, provider or month reach Python, and the course rows of the case-mix model
(docs/definitions.md "Reporting month").

For the month, the previous month and the rolling 12 months (`periods.period_bounds`), with the
outcome relations restricted to the period (sql/reports/monthly/period_*.sql):
- the metric tables the report prints, by pipeline/metrics.py (the same definitions as
  metrics.json), per protocol and pooled over the protocols (`clinic_summary`);
- the course rows counted by protocol, instrument, status, reason, category and timing
  (`course_counts`), the courses ended and discontinued (`course_totals`), the baseline and
  endpoint scores of evaluable rows (`severity_scores`);
- per site and provider: courses, evaluable rows and responses, infusions;
- the item-9 flags counted and the courses per protocol and status.
Every metric summary and its course counts (each period pooled and by protocol, the p-chart's
months) are taken in one pass (`summaries`); the other metric tables and each
sql/reports/monthly table once for the three periods (report_period holds one row per period;
the period views carry its key, period_key, and show it to the metric SQL in front of
protocol_id or patient_id, PERIOD_VIEWS); the activity of the month and the previous month in
one query: DuckDB's cost per query (binding and planning), not the data, is what a report's
reading costs.
Besides: each month of the p-chart pooled (`months`: its summary and course counts), the
month's and the previous month's activity, the case-mix model's course rows, units and inputs,
each protocol's planned infusions and the instruments any course row is scored on.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple, TypeVar

import duckdb
import polars as pl

from pipeline.casemix_predictors import CaseMixInputs, read_case_mix_inputs
from pipeline.config import Config
from pipeline.metrics import attrition, cumulative_response, define_macros, safety, summarise
from pipeline.months import month_of
from pipeline.paths import sql
from pipeline.reports.monthly.curves import HISTORY_MONTHS
from pipeline.reports.monthly.periods import ACTIVITY_PERIODS, ALL, period_bounds

# the relations restricted to the periods (views period_<name>, sql/reports/monthly/period_*.sql,
# their rows with period_key): the metric SQL reads them under these names, each row with its
# period's key in front of the column named here, so that it counts every period apart in one
# query (the key of a clinic-wide row is the macro clinic_scope, CLINIC_SCOPE)
PERIOD_VIEWS = {"courses": "protocol_id", "course_infusions": "protocol_id", "scores": "patient_id"}
# the period keys of a query over several periods or summaries at once: all of one width, so none
# is the start of another
KEY_WIDTH = 3
Key = TypeVar("Key", bound=Hashable)
CLINIC_SCOPE = ("CREATE OR REPLACE TEMP MACRO clinic_scope(protocol_id) AS "
                f"left(protocol_id, {KEY_WIDTH})")
# the item-9 flags (sql/metrics/item9_flags.sql) counted per period: scores and patients
ITEM9 = ("SELECT report_period.period_key, count(flags.patient_id) AS scores, "
         "count(DISTINCT flags.patient_id) AS patients FROM report_period LEFT JOIN ({}) AS flags "
         "ON starts_with(flags.patient_id, report_period.period_key) "
         "GROUP BY report_period.period_key")
# what the view course_outcomes shows of the period's course rows (period_outcomes)
BY_PROTOCOL, POOLED, BY_MONTH = "by protocol", "pooled", "by month"
TEMP = ("monthly_sessions", "period_outcomes", "course_outcomes", "placed_outcomes", *PERIOD_VIEWS,
        *(f"period_{name}" for name in PERIOD_VIEWS))


@dataclass(frozen=True)
class MonthlyData:
    """Everything the monthly report reads for one month (see the module doc)."""

    periods: dict[str, dict[str, pl.DataFrame]]  # period key -> its tables (read_period)
    months: dict[str, pl.DataFrame]  # the p-chart's 24 months pooled: summary, course_counts
    activity: dict[str, dict[str, int]]  # month / previous -> activity.sql counts
    case_rows: pl.DataFrame  # evaluable course rows of the rolling 12 months (case_rows.sql)
    units: pl.DataFrame  # patient_id, course_id, site, provider of the rolling 12 months' courses
    case_mix_inputs: CaseMixInputs
    planned: dict[str, int]  # protocol_id -> planned infusions
    instruments_used: set[str]


class Summary(NamedTuple):
    """What `summaries` reads of one (period, shown)."""

    protocol_summary: pl.DataFrame
    cumulative_response: pl.DataFrame
    course_counts: pl.DataFrame  # sql/reports/monthly/course_counts.sql, without period_key


def set_period(con: duckdb.DuckDBPyConnection, periods: dict[str, tuple[date, date]]) -> None:
    """The periods the views show (key -> first..last, both included; their rows carry the key,
    period_key), the view course_outcomes their course rows by protocol."""
    _bounds(con, {key: (first, last, BY_PROTOCOL) for key, (first, last) in periods.items()})
    _show(con)


def _show(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE OR REPLACE TEMP VIEW course_outcomes AS SELECT * FROM period_outcomes")


def _bounds(con: duckdb.DuckDBPyConnection, periods: dict[str, tuple[date, date, str]]) -> None:
    con.execute("CREATE OR REPLACE TEMP TABLE report_period AS SELECT * FROM (VALUES "
                + ", ".join(["(?::VARCHAR, ?::DATE, ?::DATE, ?::VARCHAR, ?::VARCHAR)"]
                            * len(periods))
                + ") AS periods(period_key, first_day, last_day, all_label, shown)",
                [value for key, (first, last, shown) in periods.items()
                 for value in (key, first, last, ALL, shown)])


def _keys(names: Iterable[Key]) -> dict[Key, str]:
    """A period key of its own for each of `names` (KEY_WIDTH)."""
    return {name: f"{number:0{KEY_WIDTH}d}" for number, name in enumerate(names)}


def _of_period(frame: pl.DataFrame, key: str) -> pl.DataFrame:
    """The rows of `frame` of the period `key`, without its period_key."""
    return frame.filter(pl.col("period_key") == key).drop("period_key")


def summaries(con: duckdb.DuckDBPyConnection, shown: dict[tuple[str, str], tuple[date, date]]
              ) -> dict[tuple[str, str], Summary]:
    """protocol_summary and cumulative_response (pipeline/metrics.py) and the course counts
    (course_counts.sql) of the view course_outcomes for each (period, shown) of `shown`: its
    first..last and how the view shows it (by protocol, pooled over the protocols as ALL, or by
    month), all in one pass: the course rows of every one with protocol_id prefixed by a key of
    its own (sql/reports/monthly/summary_outcomes.sql), split again here. Leaves course_outcomes
    to be set again (`set_period`)."""
    keys = _keys(shown)
    _bounds(con, {keys[name]: (first, last, name[1]) for name, (first, last) in shown.items()})
    con.execute("CREATE OR REPLACE TEMP VIEW course_outcomes AS "
                + sql("reports/monthly/summary_outcomes.sql"))
    cumulative = cumulative_response(con)
    summary = summarise(con, cumulative)
    counts = con.sql(sql("reports/monthly/course_counts.sql")).pl()
    return {name: Summary(_keyed(summary, key), _keyed(cumulative, key),
                          _keyed(_of_period(counts, key), key))
            for name, key in keys.items()}


def _keyed(frame: pl.DataFrame, key: str) -> pl.DataFrame:
    """The rows of `frame` whose protocol_id starts with `key`, without it."""
    return frame.filter(pl.col("protocol_id").str.starts_with(key)).with_columns(
        pl.col("protocol_id").str.slice(len(key)))


def _scoped(frame: pl.DataFrame, key: str) -> pl.DataFrame:
    """`_keyed` for a table of both scopes: a clinic-wide row's protocol_id (the key alone,
    CLINIC_SCOPE) null again."""
    return _keyed(frame, key).with_columns(
        pl.when(pl.col("scope") == "clinic").then(None).otherwise(pl.col("protocol_id"))
        .alias("protocol_id"))


def read_periods(con: duckdb.DuckDBPyConnection, bounds: dict[str, tuple[date, date]],
                 found: dict[tuple[str, str], Summary]
                 ) -> dict[str, dict[str, pl.DataFrame]]:
    """The tables of each period of `bounds` (see the module doc), with its metric summaries
    (`summaries`): pooled over the protocols (clinic_summary) and by protocol
    (protocol_summary, cumulative_response, course_counts). Each table of every period at
    once: the metrics over the period views keyed by period (PERIOD_VIEWS), the
    sql/reports/monthly tables with their rows keyed by period_key."""
    keys = _keys(bounds)
    set_period(con, {keys[key]: period for key, period in bounds.items()})
    con.execute(CLINIC_SCOPE)
    try:
        safety_summary, adverse_events = safety(con)
        attrition_rows = attrition(con)
        item9 = con.sql(ITEM9.format(sql("metrics/item9_flags.sql"))).pl()
    finally:
        define_macros(con)  # clinic_scope as the metrics define it
    tables = {name: con.sql(sql(f"reports/monthly/{name}.sql")).pl()
              for name in ("course_status", "course_totals", "severity_scores", "unit_courses",
                           "unit_rated", "unit_infusions")}
    return {key: {
        "protocol_summary": found[key, BY_PROTOCOL].protocol_summary,
        "clinic_summary": found[key, POOLED].protocol_summary,
        "cumulative_response": found[key, BY_PROTOCOL].cumulative_response,
        "safety_summary": _scoped(safety_summary, period_key),
        "adverse_event_rates": _scoped(adverse_events, period_key),
        "attrition": _keyed(attrition_rows, period_key),
        "item9": _of_period(item9, period_key),
        "course_status": _of_period(tables["course_status"], period_key),
        "course_counts": found[key, BY_PROTOCOL].course_counts,
        **{name: _of_period(frame, period_key) for name, frame in tables.items()
           if name != "course_status"},
    } for key, period_key in keys.items()}


def read_monthly(con: duckdb.DuckDBPyConnection, as_of: date, config: Config) -> MonthlyData:
    """The monthly report's reader (pipeline/results.py `Reader`) for the month ending on
    `as_of`."""
    month = month_of(as_of)
    bounds = period_bounds(month)
    _bounds(con, {"rolling": (*bounds["rolling"], BY_PROTOCOL)})  # the views below read it
    con.execute("CREATE OR REPLACE TEMP VIEW monthly_sessions AS "
                + sql("reports/monthly/sessions.sql"))
    con.execute("CREATE OR REPLACE TEMP VIEW period_outcomes AS "
                + sql("reports/monthly/period_outcomes.sql"))
    for name, column in PERIOD_VIEWS.items():  # our own relation and column names
        con.execute(f"CREATE OR REPLACE TEMP VIEW period_{name} AS "
                    + sql(f"reports/monthly/period_{name}.sql"))
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * REPLACE "
                    f"(period_key || {column} AS {column}) FROM period_{name}")
    try:
        _show(con)
        # the site and provider of the rolling 12 months' infusions and of every course ending
        # in them (one join with the sessions)
        for name, file in (("placed_infusions", "placed_infusions"), ("report_units", "course_units")):
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS "
                        + sql(f"reports/monthly/{file}.sql"))
        con.execute("CREATE OR REPLACE TEMP VIEW placed_outcomes AS "
                    + sql("reports/monthly/placed_outcomes.sql"))
        case_rows = con.sql(sql("reports/monthly/case_rows.sql")).pl()
        units = con.sql("SELECT * FROM report_units SEMI JOIN (SELECT patient_id, course_id "
                        "FROM course_outcomes WHERE evaluable) USING (patient_id, course_id) "
                        "ORDER BY patient_id, course_id").pl()
        history = (month.shift(1 - HISTORY_MONTHS).first, month.last)
        found = summaries(con, {**{(key, shown): period for key, period in bounds.items()
                                   for shown in (POOLED, BY_PROTOCOL)},
                                (BY_MONTH, BY_MONTH): history})
        periods = read_periods(con, bounds, found)
        months = {"summary": found[BY_MONTH, BY_MONTH].protocol_summary,
                  "course_counts": found[BY_MONTH, BY_MONTH].course_counts}
        activity = _activity(con, {key: bounds[key] for key in ACTIVITY_PERIODS})
        planned = {r["protocol_id"]: int(r["planned_infusions"]) for r in
                   con.sql(sql("reports/monthly/planned_infusions.sql")).pl().to_dicts()}
        used = set(con.sql(sql("reports/monthly/instruments_used.sql")).pl()["instrument"])
    finally:
        for name in TEMP:
            con.execute(f"DROP VIEW IF EXISTS temp.main.{name}")
        for name in ("report_units", "placed_infusions", "report_period"):
            con.execute(f"DROP TABLE IF EXISTS temp.main.{name}")
    return MonthlyData(periods, months, activity, case_rows, units,
                       read_case_mix_inputs(con, as_of), planned, used)


def _activity(con: duckdb.DuckDBPyConnection, periods: dict[str, tuple[date, date]]
              ) -> dict[str, dict[str, int]]:
    """sql/reports/monthly/activity.sql for each of `periods` (key -> first..last), in one query."""
    keys = _keys(periods)
    _bounds(con, {keys[key]: (first, last, BY_PROTOCOL) for key, (first, last) in periods.items()})
    rows: dict[str, dict[str, Any]] = {
        row.pop("period_key"): row
        for row in con.sql(sql("reports/monthly/activity.sql")).pl().to_dicts()}
    return {key: {name: int(value) for name, value in rows[keys[key]].items()} for key in periods}
