"""Report months and the days of the data: the one YYYY-MM parser, the latest data day, the last
complete month, the month `outcomes run` reports by default, and the limit every as-of day meets:
the day of the load (docs/definitions.md "As-of date", "Reporting month").

Every month a user gives (`--month`, `report monthly --month`, `report payer --month`) and every
month a report derives goes through `parse_month`, so one form is accepted everywhere and a bad
one gets the same message.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

import duckdb

from pipeline.errors import InputError
from pipeline.paths import sql

_MONTH = re.compile(r"\s*(\d{4})-(\d{1,2})\s*")
EXAMPLE = "use the form YYYY-MM, e.g. 2026-03"


@dataclass(frozen=True)
class Month:
    """One calendar month: `text` is its canonical YYYY-MM."""

    year: int
    month: int

    @property
    def text(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last(self) -> date:
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    def shift(self, by: int) -> Month:
        index = self.year * 12 + self.month - 1 + by
        return Month(index // 12, index % 12 + 1)


def parse_month(text: str, what: str = "month") -> Month:
    """'YYYY-MM' -> Month; InputError naming `what` (e.g. "--month") otherwise."""
    match = _MONTH.fullmatch(text or "")
    if match is None:
        raise InputError(f"{what} {text!r}: {EXAMPLE}")
    year, mon = int(match[1]), int(match[2])
    if not 1 <= mon <= 12 or year < 1:
        raise InputError(f"{what} {text!r}: no such month; {EXAMPLE}")
    return Month(year, mon)


def month_of(day: date) -> Month:
    return Month(day.year, day.month)


def latest_data_day(con: duckdb.DuckDBPyConnection) -> date | None:
    """The day of the latest session or score in the database (None when it holds neither)."""
    return con.execute(sql("reports/latest_data_day.sql")).fetchall()[0][0]


def last_complete_month(latest: date | None) -> Month:
    """The last month whose every day lies within the data (ends on or before `latest`)."""
    if latest is None:
        raise InputError("the database holds no sessions or scores yet; nothing to report")
    month = month_of(latest)
    return month if latest == month.last else month.shift(-1)


def latest_load_day(con: duckdb.DuckDBPyConnection) -> tuple[int, date] | None:
    """(load id, day it was loaded) of the load the connection shows: the latest, or load N
    under `--load N`. None before the first load."""
    rows = con.execute(sql("reports/load_day.sql")).fetchall()
    return (int(rows[0][0]), rows[0][1]) if rows else None


def check_as_of(con: duckdb.DuckDBPyConnection, as_of: date) -> None:
    """InputError when `as_of` is after the day of the load the connection shows.

    An export describes the clinic up to the day it was taken; the load day is the latest day
    that can be (ingest rejects any date after it). Computed as of a later day, every course
    still running at the export would pass its gap and count as discontinued, and the months
    after the export would report zeros. The latest data day is no limit: a quiet week before
    the export is data too (no infusion happened), so an as-of up to the load day is sound.
    """
    load = latest_load_day(con)
    if load is None or as_of <= load[1]:
        return
    load_id, day = load
    raise InputError(
        f"as-of day {as_of.isoformat()} is after the day of load {load_id} ({day.isoformat()}), "
        "the last day the data can describe: courses still running then would count as "
        "discontinued and later months as empty. Choose an as-of day (or a report month that "
        f"ends) on or before {day.isoformat()}, or load a newer export first")


def first_infusion_day(con: duckdb.DuckDBPyConnection) -> date | None:
    """The day of the earliest administered infusion (None when there is none)."""
    return con.execute(sql("reports/first_infusion_day.sql")).fetchall()[0][0]


@dataclass(frozen=True)
class ReportMonth:
    """The month `outcomes run` reports, and why when it is not a complete month of the data."""

    month: Month
    note: str | None = None


def default_report_month(latest: date | None, first_infusion: date | None) -> ReportMonth:
    """The last complete month of the data; when no infusion falls on or before its end (an
    export of one month, or a clinic in its first month), the latest month of the data, with a
    note that the data end before that month does."""
    if latest is None or first_infusion is None:
        raise InputError("the export holds no administered infusion (a completed or aborted "
                         "session); nothing to report yet")
    complete = last_complete_month(latest)
    if first_infusion <= complete.last:
        return ReportMonth(complete)
    month = month_of(latest)
    return ReportMonth(month, data_end_note(month, latest))


def data_end_note(month: Month, latest: date | None) -> str | None:
    """The sentence a report of `month` prints when the data end before the month does."""
    if latest is None or latest >= month.last:
        return None
    return (f"the data end on {latest.isoformat()} (the latest session or score), before the "
            f"end of the month: {month.text} may be incomplete, and its figures count only what "
            "the export holds up to that day")
