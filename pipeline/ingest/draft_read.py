"""What `outcomes mapping draft` learns from an export's files: headers, and per column its
filled cells, whether they are numbers, the date formats every value fits, and the distinct
values (README "Loading your EHR's export"). Read with the ingest readers, measured in SQL."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipeline.ingest.contract import ColumnMap, HeaderSpec, normalize_column
from pipeline.ingest.readers import stage_file

DATES = ("%Y-%m-%d", "%m/%d/%Y", "%d/%m/%Y", "%m/%d/%y", "%d/%m/%y", "%d.%m.%Y", "%m-%d-%Y",
         "%d-%m-%Y", "%d-%b-%Y", "%b %d, %Y")
TIMES = ("%I:%M %p", "%I:%M:%S %p", "%I:%M%p", "%H:%M", "%H:%M:%S")
SWAPPED = {"%m/%d/%Y": "%d/%m/%Y", "%d/%m/%Y": "%m/%d/%Y", "%m/%d/%y": "%d/%m/%y",
           "%d/%m/%y": "%m/%d/%y", "%m-%d-%Y": "%d-%m-%Y", "%d-%m-%Y": "%m-%d-%Y"}
DATEISH = (r"^\s*(\d{1,4}[-/.]\d{1,2}[-/.]\d{2,4}|\d{1,2}-[A-Za-z]{3}-\d{4}"
           r"|[A-Za-z]{3} \d{1,2}, \d{4}|\d{1,2}:\d{2})")
MAX_VALUES = 40  # distinct values listed for a coded column
SAMPLE = 5000  # distinct values of a date column tried against the formats (the most frequent)


def key(name: str) -> str:
    """A header for loose matching: lower case, words only ("Weight (kg)" -> "weight kg")."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", name.lower()).split())


@dataclass
class Column:
    name: str  # as in the header
    filled: int = 0
    numeric: bool = False
    formats: tuple[str, ...] = ()  # a format (or date-time + date pair) that fits every value
    kind: str = ""  # "date", "datetime", "time" or ""
    ambiguous: str | None = None  # the other day/month reading that fits every value too
    misfits: int = 0  # values the format does not read (rejected at their lines)
    checked: int = 0  # values the format was tried on
    values: list[str] = field(default_factory=list)  # most frequent distinct values
    distinct: int = 0


@dataclass
class ExportFile:
    path: Path
    columns: list[Column]
    rows: int

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _candidates() -> list[tuple[tuple[str, ...], str]]:
    """(formats, kind) in order of preference: one format, then date-time with date-only."""
    out: list[tuple[tuple[str, ...], str]] = [(("%Y-%m-%dT%H:%M:%S",), "datetime")]
    for d in DATES:
        out.append(((d,), "date"))
        out += [((f"{d} {t}",), "datetime") for t in TIMES]
    out += [((t,), "time") for t in TIMES]
    out += [((f"{d} {t}", d), "datetime") for d in DATES for t in TIMES]
    return out


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _dates(con: duckdb.DuckDBPyConnection, c: int, column: Column) -> None:
    """The first candidate format (or pair) that reads the most filled values of column c (at
    least 80 %: a few typing errors do not hide the format)."""
    candidates = _candidates()
    # each distinct value once, weighted by how often it occurs (the most frequent SAMPLE)
    fits = con.execute(
        f"WITH v AS (SELECT trim(c{c}) AS v, count(*) AS n FROM raw WHERE nullif(trim(c{c}), '') "
        f"IS NOT NULL GROUP BY 1 ORDER BY n DESC, v LIMIT {SAMPLE}) SELECT sum(n), "
        + ", ".join(f"coalesce(sum(n) FILTER (WHERE try_strptime(v, [{', '.join(map(_lit, f))}]) "
                    "IS NOT NULL), 0)" for f, _ in candidates)
        + " FROM v").fetchall()[0]
    seen, fits = int(fits[0]), fits[1:]
    best = max(fits)
    if best < 0.8 * seen:  # not a date column, or no one format
        return
    found = [(f, kind) for (f, kind), n in zip(candidates, fits, strict=True) if n == best]
    column.formats, column.kind = found[0]
    column.misfits = seen - best
    column.checked = seen
    first = column.formats[-1].split(" ")[0] if column.kind != "time" else ""
    other = SWAPPED.get(first)
    if other and any(f[-1].split(" ")[0] == other for f, _ in found):
        column.ambiguous = other


def read_export_file(path: Path) -> ExportFile:
    """Header and column measures of one .csv/.xlsx/.parquet file (the first sheet of a workbook)."""
    header: list[str] = []

    def match(label: str, names: list[str]) -> ColumnMap:
        header.extend(n if n is not None else "" for n in names)
        return ColumnMap({normalize_column(n): i for i, n in enumerate(header)}, {}, ())

    con = duckdb.connect()
    try:
        with tempfile.TemporaryDirectory(prefix="outcomes-draft-") as work:
            stage_file(con, path, HeaderSpec((), (), match, min_cells=2), path.name, Path(work),
                       tag="draft")
        rows = int(con.execute("SELECT count(*) FROM raw").fetchall()[0][0])
        columns = [Column(name.strip()) for name in header]
        if not columns:
            return ExportFile(path, [], rows)
        measures = con.execute("SELECT " + ", ".join(
            f"count(nullif(trim(c{i}), '')), "
            f"count(try_cast(nullif(trim(c{i}), '') AS DOUBLE)), "
            f"count(*) FILTER (WHERE regexp_matches(c{i}, {_lit(DATEISH)})), "
            f"count(DISTINCT nullif(trim(c{i}), ''))"
            for i in range(len(columns))) + " FROM raw").fetchall()[0]
        for i, column in enumerate(columns):
            filled, numbers, dateish, distinct = measures[4 * i: 4 * i + 4]
            column.filled, column.distinct = int(filled), int(distinct)
            column.numeric = filled > 0 and numbers == filled
            if filled and dateish == filled:
                _dates(con, i, column)
            if filled and not column.numeric and not column.kind and distinct <= MAX_VALUES:
                column.values = [v for (v,) in con.execute(
                    f"SELECT trim(c{i}) AS v FROM raw WHERE nullif(trim(c{i}), '') IS NOT NULL "
                    f"GROUP BY v ORDER BY count(*) DESC, v").fetchall()]
        return ExportFile(path, columns, rows)
    finally:
        con.close()
