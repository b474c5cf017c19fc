"""Report months and the days of the data: the one YYYY-MM parser, the latest data day and the
last complete month (docs/definitions.md "Reporting month").

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
