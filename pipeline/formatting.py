"""Number formatting for templates (Jinja filters) and the small-cell marker.

Templates format numbers, they never compute them. Suppression is decided in Python when the
context is built (docs/suppression.md; pipeline/reports/suppression.py decides for both
aggregate reports): a suppressed count arrives here as a `Suppressed` value and prints
as "<11", a count withheld so that a suppressed one cannot be derived arrives as `Withheld` and
prints as "*", and a rate built on either arrives as None with `suppressed=True` in its dict.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from pipeline.months import parse_month


@dataclass(frozen=True)
class Suppressed:
    """A count from 1 to small_cell_max, withheld."""

    small_cell_max: int = 10

    def __str__(self) -> str:
        return f"<{self.small_cell_max + 1}"


@dataclass(frozen=True)
class Withheld:
    """A count above small_cell_max withheld so that a suppressed cell cannot be derived from it
    (complementary suppression); prints as '*', explained in the report's notes."""

    def __str__(self) -> str:
        return "*"


def is_withheld(value: Any) -> bool:
    return isinstance(value, Suppressed | Withheld)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_count(value: Any) -> str:
    """12345 -> '12,345'; a Suppressed count -> '<11'; a Withheld one -> '*'; None -> '–'."""
    if isinstance(value, Suppressed | Withheld):
        return str(value)
    if _missing(value):
        return "–"
    return f"{int(value):,}"


def fmt_pct(value: Any, digits: int = 1) -> str:
    """A proportion 0..1 -> '53.6%'."""
    if _missing(value):
        return "–"
    return f"{100 * float(value):.{digits}f}%"


def fmt_ci(low: Any, high: Any, digits: int = 1) -> str:
    """Interval of proportions -> '45.1–61.9%'."""
    if _missing(low) or _missing(high):
        return "–"
    return f"{100 * float(low):.{digits}f}–{100 * float(high):.{digits}f}%"


def fmt_per100(value: Any, digits: int = 1) -> str:
    """A proportion 0..1 -> '25.2 per 100' (events per 100 infusions)."""
    if _missing(value):
        return "–"
    return f"{100 * float(value):.{digits}f}"


def fmt_num(value: Any, digits: int = 1) -> str:
    if is_withheld(value):
        return str(value)
    if _missing(value):
        return "–"
    if isinstance(value, int) or float(value).is_integer() and digits == 0:
        return f"{int(value):,}"
    return f"{float(value):,.{digits}f}"


def fmt_signed(value: Any, digits: int = 1) -> str:
    """-61.1 -> '−61.1' (a real minus sign), 3 -> '+3.0'."""
    if _missing(value):
        return "–"
    text = f"{float(value):+.{digits}f}"
    return text.replace("-", "\u2212")


def fmt_date(value: Any) -> str:
    if _missing(value):
        return "–"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M") if value.time() != dt.time() else value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def fmt_month(value: Any) -> str:
    """'2026-03' or a date -> 'March 2026'."""
    if isinstance(value, str):
        value = parse_month(value).first
    return value.strftime("%B %Y")


FILTERS = {
    "count": fmt_count,
    "pct": fmt_pct,
    "ci": fmt_ci,
    "num": fmt_num,
    "signed": fmt_signed,
    "date": fmt_date,
    "month": fmt_month,
    "per100": fmt_per100,
}


def finite(value: Any) -> Any:
    """The same nested value with NaN and infinities as None (0/0 in polars is NaN, not null)."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_ready(value: Any) -> Any:
    """Plain JSON values, recursively: dates as ISO text, NaN/inf as null, and a suppressed or
    withheld count as it prints ("<11", "*"), so the JSON says what the PDF says."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, Suppressed | Withheld):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return finite(value)
