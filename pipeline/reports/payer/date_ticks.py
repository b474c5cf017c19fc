"""Date ticks for a time axis: 3 to 6 ticks on a step chosen by the span, with short labels.

Times are day numbers (date.toordinal(), plus the time of day as a fraction). The step is the
first of 1, 2, 3 days, 1, 2 weeks, 1, 2, 3, 6 months, 1, 2, 5, 10 … years that puts at most six
ticks in the span; day steps fall on fixed days (weeks on Mondays), month steps on the first of a
month, year steps on 1 January. Labels: "Oct 3" on day and week steps, "Oct" on month steps,
"2026" on year steps; the first tick and the first of each new year carry the year ("Oct 3, 2026",
"Jan 2027"). When the span holds fewer than three ticks the view widens to the nearest ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MIN_TICKS, MAX_TICKS = 3, 6
STEP_DAYS = {"day": 1.0, "month": 30.44, "year": 365.25}
LAST_DAY = dt.date.max.toordinal()


def day_number(value: dt.date | dt.datetime) -> float:
    """A date or date-time as days since 0001-01-01 (day 1), the time of day as a fraction."""
    if isinstance(value, dt.datetime):
        seconds = value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6
        return value.toordinal() + seconds / 86400
    return float(value.toordinal())


def _ceil(value: float) -> int:
    return -int(-value // 1)


def _day_steps(n: int) -> Callable[[float, float], list[int]]:
    def ticks(start: float, end: float) -> list[int]:
        first = _ceil(start)
        first += (1 - first) % n  # ordinal 1 (0001-01-01) is a Monday
        return list(range(first, int(end // 1) + 1, n))
    return ticks


def _month_index(day: float) -> float:
    """Months since year 0 at `day` (a month start is a whole number)."""
    date = dt.date.fromordinal(int(day // 1))
    return date.year * 12 + date.month - 1 + (0 if day == date.toordinal() and date.day == 1 else 0.5)


def _month_steps(n: int) -> Callable[[float, float], list[int]]:
    def ticks(start: float, end: float) -> list[int]:
        first = _ceil(_month_index(start))
        first += (-first) % n
        months = range(first, int(_month_index(end) // 1) + 1, n)
        return [dt.date(m // 12, m % 12 + 1, 1).toordinal() for m in months
                if 1 <= m // 12 <= 9999]
    return ticks


def _year_steps(n: int) -> Callable[[float, float], list[int]]:
    def ticks(start: float, end: float) -> list[int]:
        return [dt.date(y, 1, 1).toordinal() for y in range(
            _ceil(_month_index(start) / 12), int(_month_index(end) // 12) + 1)
            if y % n == 0 and 1 <= y <= 9999]
    return ticks


STEPS: list[tuple[str, int, Callable[[float, float], list[int]]]] = [
    *(("day", n, _day_steps(n)) for n in (1, 2, 3, 7, 14)),
    *(("month", n, _month_steps(n)) for n in (1, 2, 3, 6)),
    *(("year", n, _year_steps(n)) for n in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)),
]


def _label(kind: str, day: int, previous: int | None) -> str:
    date = dt.date.fromordinal(day)
    new_year = previous is None or dt.date.fromordinal(previous).year != date.year
    if kind == "year":
        return str(date.year)
    if kind == "month":
        return f"{MONTHS[date.month - 1]} {date.year}" if new_year else MONTHS[date.month - 1]
    text = f"{MONTHS[date.month - 1]} {date.day}"
    return f"{text}, {date.year}" if new_year else text


def date_ticks(start: float, end: float) -> tuple[list[tuple[float, str]], float, float]:
    """([(day, label)], start, end): 3-6 ticks within [start, end], which widen when needed."""
    kind, n, make = next((step for step in STEPS if len(step[2](start, end)) <= MAX_TICKS), STEPS[-1])
    ticks = make(start, end)
    reach = 400 * n  # days: more than one step of any kind
    margin = 0.25 * n * STEP_DAYS[kind]
    while len(ticks) < MIN_TICKS:  # a short span: widen the view to the nearest tick outside
        before = [t for t in make(start - reach, start) if t < start] if start > reach + 1 else []
        after = [t for t in make(end, end + reach) if t > end] if end < LAST_DAY - reach else []
        if before and (not after or start - before[-1] <= after[0] - end):
            start = before[-1] - margin
        elif after:
            end = after[0] + margin
        else:
            break
        ticks = make(start, end)
    labels = [(float(t), _label(kind, t, ticks[i - 1] if i else None)) for i, t in enumerate(ticks)]
    return labels, start, end
