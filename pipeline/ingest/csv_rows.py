"""CSV rows as DuckDB reads them, without a copy: a view over `read_csv`, settled once read.

`csv_view` defines temp view `csv_rows`: `__line` (NULL until settled), `__flag` (1: the row
repeats the header; 2: a decimal comma was read as a point) and `c0 … cN` as text. Whatever
reads the view first into a table (validation itself, for canonical files) reads the file, in
parallel and in file order; `settle_rows` then fixes what only the whole file tells: each
row's line (from its place in the table: records fill the physical lines that are not blank
or unreadable), the structural rejects DuckDB stored, and the comment and repeated header
lines, which leave the rows for `stage_rejects`. When records and physical lines do not add
up (a quoted field spanning lines), `settle_rows` says so and the caller re-reads the file
with the exact parser (readers.py). `csv_cells` reads chosen cells again, for the few rows
whose text as written is wanted after all. See docs/bad-input-files.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa

from pipeline.db import changed, run
from pipeline.ingest.contract import normalize_column
from pipeline.ingest.csv_text import MAX_LINE_BYTES, CsvText
from pipeline.paths import sql

STRUCTURAL_REASONS = {
    "MISSING COLUMNS": "the line has fewer fields than the header; check for a missing delimiter",
    "TOO MANY COLUMNS": "the line has more fields than the header; quote fields that contain "
    "the delimiter",
    "UNQUOTED VALUE": "malformed quoting; a field with a quote must be wholly quoted",
    "INVALID STATE": "malformed quoting; a field with a quote must be wholly quoted",
    "LINE SIZE OVER MAXIMUM": f"the line is longer than {MAX_LINE_BYTES >> 20} MiB, the most one "
    "row may hold; check for a runaway field or a quote that is never closed",
    "INVALID ENCODING": "the line is not valid text in the file's encoding",
}
COMMENT_REASON = (
    "comment line: it starts with '#', so it is not a row; delete it, or quote the first "
    "value if it really starts with '#'"
)
REPEATED_HEADER_REASON = (
    "repeated header line: two exports joined into one file? Not a row; delete the line"
)
DECIMAL_NOTE = "numbers with a decimal comma (such as 0,5) read with a decimal point"
# Decimal commas (European Excel): "0,5" in a number column of a `;` or tab file is 0.5.
# In a tab file "1,250" could also be a thousands separator, so that form is left alone
# (and rejected as not a number by validation) rather than guessed.
DECIMAL_COMMA = r"[+-]?\d+,\d+"
THOUSANDS = r"[+-]?[1-9]\d{0,2},\d{3}"
HEADER_FLAG, DECIMAL_FLAG = 1, 2


@dataclass(frozen=True)
class CsvRead:
    """A CSV file behind view csv_rows, until its rows are settled."""

    text: CsvText
    tag: str  # names DuckDB's rejects tables for this file
    numbers: tuple[int, ...]  # positions of number columns where a decimal comma is read


def literal(value: str) -> str:
    """A SQL string literal (the view cannot take parameters)."""
    return "'" + value.replace("'", "''") + "'"


def header_test(header: list[str]) -> str:
    """SQL: the row's cells are the header's names (case, spaces and a BOM aside). A cheap test
    on the first cell first (a CASE, so that it runs first), then every cell."""
    same = " AND ".join(
        f"coalesce(lower(trim(replace(c{i}, chr(65279), ''))), '') = {literal(normalize_column(h))}"
        for i, h in enumerate(header)
    )
    first = literal(normalize_column(header[0]))
    return f"CASE WHEN c0 ILIKE '%' || {first} || '%' THEN {same} ELSE false END"


def decimal_match(i: int, delimiter: str) -> str:
    """SQL: cell c{i} is a number written with a decimal comma."""
    return (f"(contains(c{i}, ',') AND regexp_full_match(trim(c{i}), '{DECIMAL_COMMA}')"
            + (f" AND NOT regexp_full_match(trim(c{i}), '{THOUSANDS}'))" if delimiter == "\t"
               else ")"))


def csv_view(con: duckdb.DuckDBPyConnection, text: CsvText, tag: str, numbers: list[int]) -> CsvRead:
    """View csv_rows over DuckDB's reader: no row is read until the view is."""
    width = len(text.header)
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width)) + "}"
    reader = (
        f"read_csv({literal(str(text.path))}, header = true, skip = {text.header_line - 1}, "
        f"auto_detect = false, columns = {columns}, delim = {literal(text.delimiter)}, "
        f"quote = '\"', escape = '\"', strict_mode = true, null_padding = false, "
        f"max_line_size = {MAX_LINE_BYTES}, store_rejects = true, rejects_table = 'rj_{tag}', "
        f"rejects_scan = 'rs_{tag}')"
    )
    flag = f"CASE WHEN {header_test(text.header)} THEN {HEADER_FLAG} ELSE 0 END"
    cells = [f"c{i}" for i in range(width)]
    if numbers:
        decimal = {i: decimal_match(i, text.delimiter) for i in numbers}
        flag += f" + CASE WHEN {' OR '.join(decimal.values())} THEN {DECIMAL_FLAG} ELSE 0 END"
        for i, match in decimal.items():
            cells[i] = f"CASE WHEN {match} THEN replace(trim(c{i}), ',', '.') ELSE c{i} END AS c{i}"
    # No row number here: a window over the reader would read the file on one thread. The
    # table the rows are read into keeps file order (rowid), and settle_rows numbers them.
    run(con, f"CREATE OR REPLACE TEMP VIEW csv_rows AS SELECT NULL::BIGINT AS __line, "
             f"({flag})::UTINYINT AS __flag, {', '.join(cells)} FROM {reader}")
    return CsvRead(text, tag, tuple(numbers))


def settle_rows(con: duckdb.DuckDBPyConnection, table: str, read: CsvRead, notes: list[str]) -> bool:
    """Once `table` (`__line`, `__flag`, …) holds every record of the file, in file order
    (created from csv_rows by projections only: a join would not keep the order): lines,
    structural rejects and screened lines (appended to stage_rejects), notes. False when
    records and physical lines do not add up: the file must be parsed exactly."""
    if table not in ("typed", "raw_records"):  # substituted into SQL: only our own tables
        raise ValueError(f"not a table of read rows: {table!r}")
    text, tag = read.text, read.tag
    rejected = changed(con, "CREATE OR REPLACE TEMP TABLE csv_rejects AS "
                       # the first column's error per line; a line-size error has no column
                       # (NULL index)
                       "SELECT line, arg_min(column_name, coalesce(column_idx, -1)) AS col, "
                       "arg_min(error_type, coalesce(column_idx, -1)) AS error_type, "
                       f"any_value(csv_line) AS csv_line FROM rj_{tag} GROUP BY line")
    run(con, f"DROP TABLE rj_{tag}; DROP TABLE rs_{tag}")
    # rowid order is insertion order (it does not start at 0 inside a transaction)
    records, flags, first = (int(v) for v in con.execute(
        f"SELECT count(*), coalesce(bit_or(__flag), 0), coalesce(min(rowid), 0) FROM {table}"
    ).fetchall()[0])
    data_lines = text.total_lines - text.header_line - len(text.blank_lines)
    if records + rejected != data_lines:
        return False  # multi-line fields or a swallowed tail: the exact path decides
    gaps = bool(text.blank_lines or rejected)
    if not _record_lines(con, text, records, gaps):
        return False
    if gaps:
        run(con, f"UPDATE {table} SET __line = f.line FROM record_lines f "
                 f"WHERE f.rid = {table}.rowid - {first}")
    else:  # the common case: line header+n holds the n-th record
        run(con, f"UPDATE {table} SET __line = rowid - {first} + {text.header_line + 1}")
    if rejected:
        _structural_rejects(con, text.header)
    _screen(con, table, text, flags)
    if flags & DECIMAL_FLAG:
        notes.append(DECIMAL_NOTE)
    return True


def _record_lines(con: duckdb.DuckDBPyConnection, text: CsvText, records: int,
                  gaps: bool) -> bool:
    """record_lines(rid, line): records fill, in file order, the physical lines left after
    blank lines and unreadable lines (csv_rejects). False when they do not fit."""
    if not gaps:
        run(con, "CREATE OR REPLACE TEMP VIEW record_lines AS "
                 f"SELECT range AS rid, range + {text.header_line + 1} AS line FROM range({records})")
        return True
    con.register("blank_arrow", pa.table({"line": pa.array(text.blank_lines, pa.int64())}))
    run(con, "CREATE OR REPLACE TEMP TABLE free_lines AS "
             "SELECT l AS line, row_number() OVER (ORDER BY l) - 1 AS rid "
             "FROM range($first, $total + 1) t(l) "
             "WHERE l NOT IN (SELECT line FROM blank_arrow) "
             "AND l NOT IN (SELECT line FROM csv_rejects)",
        {"first": text.header_line + 1, "total": text.total_lines})
    con.unregister("blank_arrow")
    run(con, "CREATE OR REPLACE TEMP VIEW record_lines AS SELECT rid, line FROM free_lines")
    return bool(con.execute("SELECT count(*) FROM free_lines").fetchall()[0][0] == records)


def csv_cells(con: duckdb.DuckDBPyConnection, read: CsvRead, column: str, lines: str) -> None:
    """raw_cells(line, value): column `column` of view stg on the lines in relation `lines`,
    read again from the file. Only for the rare rows whose text as written is wanted after
    settle_rows (record_lines still stand); one thread, as the records are numbered."""
    run(con, "CREATE OR REPLACE TEMP TABLE raw_cells AS SELECT l.line, s.value "
             f"FROM (SELECT row_number() OVER () - 1 AS rid, {column} AS value FROM stg) s "
             f"JOIN record_lines l USING (rid) WHERE l.line IN (SELECT line FROM {lines})")
    run(con, f"DROP TABLE IF EXISTS rj_{read.tag}; DROP TABLE IF EXISTS rs_{read.tag}")


def _structural_rejects(con: duckdb.DuckDBPyConnection, header: list[str]) -> None:
    names = {f"c{i}": h for i, h in enumerate(header)}
    con.register("header_names", pa.table({"c": list(names), "name": list(names.values())}))
    con.register("structural_reasons", pa.table({"error_type": list(STRUCTURAL_REASONS),
                                                 "reason": list(STRUCTURAL_REASONS.values())}))
    run(con, sql("validate/structural.sql"))
    con.unregister("header_names")
    con.unregister("structural_reasons")


def _screen(con: duckdb.DuckDBPyConnection, table: str, text: CsvText, flags: int) -> None:
    if not text.comment_lines and not flags & HEADER_FLAG:
        return
    header = f"__flag & {HEADER_FLAG} <> 0" if flags & HEADER_FLAG else "false"
    if screen_lines(con, table, header, text.comment_lines, text.delimiter.join(text.header)):
        run(con, f"DELETE FROM {table} WHERE __line IN (SELECT line FROM line_rejects)")


def screen_lines(con: duckdb.DuckDBPyConnection, rows: str, is_header: str,
                 comment_lines: list[tuple[int, str]], header_text: str) -> int:
    """Comment lines and repeated header lines (SQL `is_header` over `rows`) are rejected at
    their line, not rows: line_rejects, moved into stage_rejects; returns how many."""
    run(con, "CREATE OR REPLACE TEMP TABLE line_rejects "
             '(line BIGINT, "column" VARCHAR, value VARCHAR, reason VARCHAR)')
    if comment_lines:
        con.register("comment_arrow", pa.table({
            "line": pa.array([c[0] for c in comment_lines], pa.int64()),
            "value": pa.array([c[1] for c in comment_lines], pa.string())}))
        # Only lines that start a record: a '#' line inside a quoted multi-line field is data.
        run(con, "INSERT INTO line_rejects SELECT line, NULL, value, $reason FROM comment_arrow "
                 f"WHERE line IN (SELECT __line FROM {rows}) "
                 "OR line IN (SELECT line FROM stage_rejects)", {"reason": COMMENT_REASON})
        con.unregister("comment_arrow")
    run(con, f"INSERT INTO line_rejects SELECT __line, NULL, $value, $reason FROM {rows} "
             f"WHERE {is_header} AND __line NOT IN (SELECT line FROM line_rejects)",
        {"value": header_text[:200], "reason": REPEATED_HEADER_REASON})
    screened = int(con.execute("SELECT count(*) FROM line_rejects").fetchall()[0][0])
    if screened:
        run(con, "DELETE FROM stage_rejects WHERE line IN (SELECT line FROM line_rejects)")
        run(con, "INSERT INTO stage_rejects SELECT * FROM line_rejects")
    return screened
