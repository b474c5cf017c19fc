"""What the monthly report reads from the results: one reader, `read_monthly`, over the outcome
relations on the results' connection (pipeline/results.py `Reader`). DuckDB filters and counts
the course, infusion and score rows; only the report's figures and the course rows of its window
reach Python (docs/definitions.md "Reporting month").

- `course_outcomes`: the course rows, not in progress, whose outcome date falls in the 24 months
  ending with the report month (the p-chart's months; the month, the previous month and the
  rolling 12 months lie inside), in the stored order, with the columns the report uses; `units`:
  the site and provider of each of their courses (sql/reports/monthly/course_units.sql);
- for the month, the previous month and the rolling 12 months (`periods.period_bounds`): the
  metric tables the report prints, computed by pipeline/metrics.py over the period's relations
  (sql/reports/monthly/period_*.sql: the same definitions as metrics.json), the item-9 flags
  counted, the courses per protocol and status, and the infusions per site and provider;
- the month's and the previous month's activity (sql/reports/monthly/activity.sql);
- each protocol's planned infusions and the instruments any course row is scored on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import polars as pl

from pipeline.config import Config
from pipeline.metrics import attrition, cumulative_response, safety, summarise
from pipeline.months import month_of
from pipeline.outcomes import OUTCOME_ORDER
from pipeline.paths import sql
from pipeline.reports.monthly.curves import HISTORY_MONTHS
from pipeline.reports.monthly.periods import ACTIVITY_PERIODS, period_bounds

# the relations restricted to a period: the metric SQL reads them under these names
PERIOD_VIEWS = ("course_outcomes", "courses", "course_infusions", "scores")
# the columns of the course rows the report reads (the sections, protocol_summary's counts and
# Kaplan-Meier input, the case-mix model)
COURSE_COLUMNS = (
    "patient_id", "course_id", "protocol_id", "instrument", "course_start", "status",
    "baseline_score", "endpoint_score", "category", "remission", "reliable_improvement",
    "reliable_deterioration", "infusions_to_response", "response_timing", "not_evaluable_reason",
    "course_outcome_date", "evaluable", "last_scored_infusion", "caseness_at_baseline",
    "recovery", "reliable_recovery",
)


@dataclass(frozen=True)
class MonthlyData:
    """Everything the monthly report reads for one month (see the module doc)."""

    course_outcomes: pl.DataFrame  # course rows ending in the window, COURSE_COLUMNS
    units: pl.DataFrame  # patient_id, course_id, site, provider of those courses
    periods: dict[str, dict[str, pl.DataFrame]]  # period key -> its tables (read_period)
    activity: dict[str, dict[str, int]]  # month / previous -> activity.sql counts
    planned: dict[str, int]  # protocol_id -> planned infusions
    instruments_used: set[str]


def set_period(con: duckdb.DuckDBPyConnection, first: date, last: date) -> None:
    """The period the views of PERIOD_VIEWS show: first..last, both included."""
    con.execute("CREATE OR REPLACE TEMP TABLE report_period AS "
                "SELECT ?::DATE AS first_day, ?::DATE AS last_day", [first, last])


def read_period(con: duckdb.DuckDBPyConnection, first: date, last: date
                ) -> dict[str, pl.DataFrame]:
    """The metric tables of one period (pipeline/metrics.py over the period's relations) and
    its own counts: item9 (scores and patients flagged), course_status, unit_infusions."""
    set_period(con, first, last)
    cumulative = cumulative_response(con)
    safety_summary, adverse_events = safety(con)
    return {
        "protocol_summary": summarise(con, cumulative),
        "cumulative_response": cumulative,
        "safety_summary": safety_summary,
        "adverse_event_rates": adverse_events,
        "attrition": attrition(con),
        "item9": con.sql("SELECT count(*) AS scores, count(DISTINCT patient_id) AS patients "
                         f"FROM ({sql('metrics/item9_flags.sql')})").pl(),
        "course_status": con.sql(sql("reports/monthly/course_status.sql")).pl(),
        "unit_infusions": con.sql(sql("reports/monthly/unit_infusions.sql")).pl(),
    }


def read_monthly(con: duckdb.DuckDBPyConnection, as_of: date, config: Config) -> MonthlyData:
    """The monthly report's reader (pipeline/results.py `Reader`) for the month ending on
    `as_of`."""
    month = month_of(as_of)
    set_period(con, month.shift(1 - HISTORY_MONTHS).first, month.last)  # the window
    con.execute("CREATE OR REPLACE TEMP VIEW monthly_sessions AS "
                + sql("reports/monthly/sessions.sql"))
    for name in PERIOD_VIEWS:  # our own relation names
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS "
                    + sql(f"reports/monthly/period_{name}.sql"))
    try:
        course_outcomes = con.sql(f"SELECT {', '.join(COURSE_COLUMNS)} FROM course_outcomes "
                                  f"ORDER BY {OUTCOME_ORDER['course_outcomes']}").pl()
        units = con.sql(sql("reports/monthly/course_units.sql")).pl()
        periods = {key: read_period(con, first, last)
                   for key, (first, last) in period_bounds(month).items()}
        activity = {key: _activity(con, *period_bounds(month)[key]) for key in ACTIVITY_PERIODS}
        planned = {r["protocol_id"]: int(r["planned_infusions"]) for r in
                   con.sql(sql("reports/monthly/planned_infusions.sql")).pl().to_dicts()}
        used = set(con.sql(sql("reports/monthly/instruments_used.sql")).pl()["instrument"])
    finally:
        for name in ("monthly_sessions", *PERIOD_VIEWS):
            con.execute(f"DROP VIEW IF EXISTS temp.main.{name}")
        con.execute("DROP TABLE IF EXISTS temp.main.report_period")
    return MonthlyData(course_outcomes, units, periods, activity, planned, used)


def _activity(con: duckdb.DuckDBPyConnection, first: date, last: date) -> dict[str, int]:
    row: dict[str, Any] = con.sql(sql("reports/monthly/activity.sql"),
                                  params={"first": first, "last": last}).pl().to_dicts()[0]
    return {name: int(value) for name, value in row.items()}
