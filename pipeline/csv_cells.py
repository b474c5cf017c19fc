"""CSV cells a spreadsheet cannot run: the one rule every CSV the pipeline writes goes through
(README "Outputs", "CSV cells and spreadsheets").

A clinic's export is free text: an id, a provider name or an adverse event can begin with `=`,
`+`, `-` or `@` (`=HYPERLINK("http://…","x")`, `-2+3+cmd|' /C calc'!A0`). Written at the start
of a CSV cell, Excel, LibreOffice and Google Sheets read it as a formula when the analyst opens
the file (CSV injection, OWASP). As OWASP recommends, a text cell that begins with one of these,
or with a tab or carriage return, is written with a single quote (') in front, which spreadsheets
show as text. Also neutralised: the same characters after leading white space and the full-width
forms (＝ ＋ － ＠) that some spreadsheet locales read as formulas, and a text cell that already
begins with quotes before such a character (so that removing one leading quote always gives the
exported value back: `original_cell`).

Not changed: numbers and dates (only text columns are touched: a negative pct_change stays
-61.1), and a text cell that is a plain decimal number (`-5`, `+3.5`, `-1e3`): it cannot run
anything, and a program reading the file gets the exported value. Everything else in a text cell
is as exported; the CSV writer quotes separators, quotes and line breaks.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import polars as pl

QUOTE = "'"
TRIGGERS = "=+\\-@\t\r\uff1d\uff0b\uff0d\uff20"  # for a character class
_FORMULA = rf"[ \t\r\n]*[{TRIGGERS}]"  # white space, then a formula character
_RUNS = "^" + _FORMULA  # what a spreadsheet reads as a formula
_NEEDS_QUOTE = "^'*" + _FORMULA  # also behind quotes: one removed quote gives the value back
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_PLAIN_NUMBER = f"^(?:{_NUMBER})$"  # polars (Rust regex: $ is the end of the text)
RUNS = re.compile(_RUNS)
NEEDS_QUOTE = re.compile(_NEEDS_QUOTE)
PLAIN_NUMBER = re.compile(_NUMBER)  # fullmatch (Python's $ would allow a final line feed)


def runs_as_formula(cell: str) -> bool:
    """Whether a spreadsheet could read `cell` as a formula (a plain number it cannot)."""
    return bool(RUNS.match(cell)) and not PLAIN_NUMBER.fullmatch(cell)


def _needs_quote(text: str) -> bool:
    return bool(NEEDS_QUOTE.match(text)) and not PLAIN_NUMBER.fullmatch(text)


def safe_cell(value: str) -> str:
    """The text as a CSV cell: a quote in front when a spreadsheet could run it."""
    return QUOTE + value if _needs_quote(value) else value


def original_cell(cell: str) -> str:
    """The exported value of a cell `safe_cell` wrote (for a reader of the CSV)."""
    return cell[1:] if cell.startswith(QUOTE) and _needs_quote(cell[1:]) else cell


def safe_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """`safe_cell` on every text column of a polars frame (other columns untouched)."""
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(_NEEDS_QUOTE) & ~pl.col(name).str.contains(_PLAIN_NUMBER))
        .then(pl.lit(QUOTE) + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name in text
    )


def rows_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]],
             fmt: Callable[[Any], Any] = lambda value: value) -> str:
    """CSV text (header and rows, LF line ends): every `str` value through `safe_cell`, every
    other value (number, date, None) through `fmt`, the caller's own formatting, untouched."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([safe_cell(v) if isinstance(v, str) else fmt(v) for v in row] for row in rows)
    return buffer.getvalue()
