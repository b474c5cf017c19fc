"""Readers per format. Each leaves two temp tables in the connection:

- `raw`: `__line` (1-based, header = line 1) and `c0 … cN`, every cell as text;
- `stage_rejects`: rows that could not even be split into columns (line, column, value, reason).

Everything after this point is one validation path, whatever the format. CSV and XLSX rows
are screened first (`_screen_rows`): comment lines and repeated header lines go to
`stage_rejects`, decimal commas in number columns of `;`/tab files become decimal points.
"""

from __future__ import annotations

import csv
import datetime as dt
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipeline.db import run
from pipeline.errors import InputError
from pipeline.ingest.contract import (
    ColumnMap,
    HeaderSpec,
    TableContract,
    map_columns,
    normalize_column,
)
from pipeline.ingest.csv_text import (
    MAX_LINE_BYTES,
    CsvText,
    _sha256,
    not_text_error,
    prepare_csv,
    sniff_kind,
)
from pipeline.paths import sql

HEADER_SEARCH_ROWS = 20  # clinic workbooks often have a title row or two above the header

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
# Decimal commas (European Excel): "0,5" in a number column of a `;` or tab file is 0.5.
# In a tab file "1,250" could also be a thousands separator, so that form is left alone
# (and rejected as not a number by validation) rather than guessed.
DECIMAL_COMMA = r"[+-]?\d+,\d+"
THOUSANDS = r"[+-]?[1-9]\d{0,2},\d{3}"
csv.field_size_limit(MAX_LINE_BYTES)  # the exact parser's limit matches DuckDB's max_line_size


@dataclass
class Staged:
    format: str
    encoding: str | None
    sha256: str
    columns: ColumnMap
    notes: list[str]
    # A mapped export (pipeline/ingest/mapped.py): canonical column -> the export's column name,
    # and a temp table (line, column, value) of the values as the export wrote them.
    source_columns: dict[str, str] = field(default_factory=dict)
    source_values: str | None = None


def _empty_stage_rejects(con: duckdb.DuckDBPyConnection) -> None:
    run(
        con,
        "CREATE OR REPLACE TEMP TABLE stage_rejects "
        '(line BIGINT, "column" VARCHAR, value VARCHAR, reason VARCHAR)',
    )


def _stage_rows(
    con: duckdb.DuckDBPyConnection,
    lines: list[int],
    rows: list[list[str | None]],
    width: int,
    bad: list[tuple[int, str | None, str, str]],
    view: str = "raw",
) -> None:
    """raw + stage_rejects from rows split in Python (exact CSV path, XLSX)."""
    data = {"__line": pa.array(lines, pa.int64())}
    for i in range(width):
        data[f"c{i}"] = pa.array([r[i] for r in rows], pa.string())
    _stage_table(con, pa.table(data), bad, view)


def _stage_table(
    con: duckdb.DuckDBPyConnection,
    table: pa.Table,
    bad: list[tuple[int, str | None, str, str]],
    view: str = "raw",
) -> None:
    """`view` (`__line`, c0..cN as text) + stage_rejects."""
    con.register("raw_arrow", table)
    run(con, "CREATE OR REPLACE TEMP TABLE raw_table AS SELECT * FROM raw_arrow")
    run(con, f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM raw_table")
    con.unregister("raw_arrow")
    _empty_stage_rejects(con)
    if bad:
        con.executemany("INSERT INTO stage_rejects VALUES (?, ?, ?, ?)", [list(b) for b in bad])


def _screen_rows(
    con: duckdb.DuckDBPyConnection,
    header: list[str],
    delimiter: str,
    comment_lines: list[tuple[int, str]],
    number_positions: list[int],
) -> list[str]:
    """raw_split -> raw: comment lines and repeated header lines become rejects at their line;
    decimal commas in number columns become points (only when number_positions are given).
    Set-based over the whole file; returns notes for the load report."""
    run(
        con,
        "CREATE OR REPLACE TEMP TABLE line_rejects "
        '(line BIGINT, "column" VARCHAR, value VARCHAR, reason VARCHAR)',
    )
    if comment_lines:
        con.register(
            "comment_arrow",
            pa.table(
                {
                    "line": pa.array([c[0] for c in comment_lines], pa.int64()),
                    "value": pa.array([c[1] for c in comment_lines], pa.string()),
                }
            ),
        )
        # Only lines that start a record: a '#' line inside a quoted multi-line field is data.
        run(
            con,
            "INSERT INTO line_rejects SELECT line, NULL, value, $reason FROM comment_arrow "
            "WHERE line IN (SELECT __line FROM raw_split) OR line IN (SELECT line FROM "
            "stage_rejects)",
            {"reason": COMMENT_REASON},
        )
        con.unregister("comment_arrow")
    names = {f"h{i}": normalize_column(h) for i, h in enumerate(header)}
    same_as_header = " AND ".join(
        f"coalesce(lower(trim(replace(c{i}, chr(65279), ''))), '') = ${key}"
        for i, key in enumerate(names)
    )
    # A cheap test on the first cell first (materialized, so it runs first), then every cell.
    run(
        con,
        f"INSERT INTO line_rejects "
        f"WITH candidates AS MATERIALIZED (SELECT * FROM raw_split "
        f"WHERE c0 ILIKE '%' || $h0 || '%') "
        f"SELECT __line, NULL, $value, $reason FROM candidates "
        f"WHERE {same_as_header} AND __line NOT IN (SELECT line FROM line_rejects)",
        {**names, "value": delimiter.join(header)[:200], "reason": REPEATED_HEADER_REASON},
    )
    screened = con.execute("SELECT count(*) FROM line_rejects").fetchall()[0][0]
    if screened:
        run(con, "DELETE FROM stage_rejects WHERE line IN (SELECT line FROM line_rejects)")
        run(con, "INSERT INTO stage_rejects SELECT * FROM line_rejects")
    notes = []
    replace = ""
    if number_positions:
        decimal = {
            i: f"(contains(c{i}, ',') AND regexp_full_match(trim(c{i}), '{DECIMAL_COMMA}')"
            + (f" AND NOT regexp_full_match(trim(c{i}), '{THOUSANDS}'))" if delimiter == "\t" else ")")
            for i in number_positions
        }
        # Stops at the first decimal comma: a European file shows one at once.
        found = con.execute(
            f"SELECT 1 FROM raw_split WHERE {' OR '.join(decimal.values())} LIMIT 1"
        ).fetchall()
        if found:
            replace = " REPLACE (" + ", ".join(
                f"CASE WHEN {match} THEN replace(trim(c{i}), ',', '.') ELSE c{i} END AS c{i}"
                for i, match in decimal.items()
            ) + ")"
            notes.append("numbers with a decimal comma (such as 0,5) read with a decimal point")
    where = " WHERE __line NOT IN (SELECT line FROM line_rejects)" if screened else ""
    run(con, f"CREATE OR REPLACE TEMP VIEW raw AS SELECT *{replace} FROM raw_split{where}")
    return notes


# ---------------------------------------------------------------- CSV


def _map_lines_around_gaps(con: duckdb.DuckDBPyConnection, text: CsvText, records: int) -> None:
    """Records fill, in file order, the physical lines left after blank lines and rejects."""
    con.register("blank_arrow", pa.table({"line": pa.array(text.blank_lines, pa.int64())}))
    run(con, "CREATE OR REPLACE TEMP TABLE blank_lines AS SELECT line FROM blank_arrow")
    con.unregister("blank_arrow")
    run(
        con,
        "CREATE OR REPLACE TEMP TABLE raw_table AS "
        "WITH free AS (SELECT l AS line, row_number() OVER (ORDER BY l) - 1 AS rid "
        "FROM range($first, $total + 1) t(l) "
        "WHERE l NOT IN (SELECT line FROM blank_lines) "
        "AND l NOT IN (SELECT line FROM stage_rejects)), "
        "records AS (SELECT row_number() OVER (ORDER BY rowid) - 1 AS rid, * FROM raw_records) "
        "SELECT free.line AS __line, r.* EXCLUDE (rid) FROM records r JOIN free USING (rid)",
        {"first": text.header_line + 1, "total": text.total_lines},
    )
    run(con, "CREATE OR REPLACE TEMP VIEW raw_split AS SELECT * FROM raw_table")


def _read_csv_duckdb(con: duckdb.DuckDBPyConnection, text: CsvText, tag: str) -> bool:
    """Fast path: DuckDB reads the file; True when every physical line is accounted for."""
    width = len(text.header)
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width)) + "}"
    run(
        con,
        f"CREATE OR REPLACE TEMP TABLE raw_records AS SELECT * FROM read_csv($path, "
        f"header = true, skip = $skip, auto_detect = false, columns = {columns}, "
        f"delim = $delim, quote = '\"', escape = '\"', strict_mode = true, "
        f"null_padding = false, max_line_size = $max_line, "
        f"store_rejects = true, rejects_table = 'rj_{tag}', rejects_scan = 'rs_{tag}')",
        {
            "path": str(text.path),
            "delim": text.delimiter,
            "skip": text.header_line - 1,
            "max_line": MAX_LINE_BYTES,
        },
    )
    run(
        con,
        f"CREATE OR REPLACE TEMP TABLE stage_rejects AS "
        # the first column's error per line; a line-size error has no column (NULL index)
        f"SELECT line, arg_min(column_name, coalesce(column_idx, -1)) AS col, "
        f"arg_min(error_type, coalesce(column_idx, -1)) AS error_type, "
        f"any_value(csv_line) AS csv_line FROM rj_{tag} GROUP BY line",
    )
    run(con, f"DROP TABLE rj_{tag}; DROP TABLE rs_{tag}")
    records = con.execute("SELECT count(*) FROM raw_records").fetchall()[0][0]
    rejected = con.execute("SELECT count(*) FROM stage_rejects").fetchall()[0][0]
    data_lines = text.total_lines - text.header_line - len(text.blank_lines)
    if records + rejected != data_lines:
        return False  # multi-line fields or a swallowed tail: the exact path decides
    first, last = con.execute("SELECT min(rowid), max(rowid) FROM raw_records").fetchall()[0]
    if records and not text.blank_lines and not rejected and last - first + 1 == records:
        # The common case: line header+n holds the n-th record. rowid order is insertion order
        # (it does not start at 0 inside a transaction, hence the offset); no copy, no sort.
        offset = int(text.header_line) + 1 - int(first)
        run(con, f"CREATE OR REPLACE TEMP VIEW raw_split AS SELECT rowid + {offset} AS __line, * "
                 "FROM raw_records")
    else:
        _map_lines_around_gaps(con, text, records)
        if con.execute("SELECT count(*) FROM raw_split").fetchall()[0][0] != records:
            return False
    names = {f"c{i}": h for i, h in enumerate(text.header)}
    con.register("header_names", pa.table({"c": list(names), "name": list(names.values())}))
    con.register(
        "structural_reasons",
        pa.table(
            {"error_type": list(STRUCTURAL_REASONS), "reason": list(STRUCTURAL_REASONS.values())}
        ),
    )
    run(con, sql("validate/structural.sql"))
    con.unregister("header_names")
    con.unregister("structural_reasons")
    return True


def _read_csv_exact(con: duckdb.DuckDBPyConnection, text: CsvText, label: str) -> None:
    """Exact path (Python's csv): record start lines even when fields span lines."""
    width = len(text.header)
    lines: list[int] = []
    rows: list[list[str | None]] = []
    bad: list[tuple[int, str | None, str, str]] = []
    skipped = text.header_line - 1  # comment and blank lines above the header
    with text.path.open(encoding="utf-8", newline="") as f:
        for _ in range(skipped):
            f.readline()
        reader = csv.reader(f, delimiter=text.delimiter, strict=True)
        start = skipped + 1
        try:
            next(reader)  # header
            start = skipped + reader.line_num + 1
            for row in reader:
                if row:
                    if len(row) == width and sum(map(len, row)) <= MAX_LINE_BYTES:
                        lines.append(start)
                        rows.append([v if v != "" else None for v in row])
                    else:
                        kind = (
                            "LINE SIZE OVER MAXIMUM" if len(row) == width
                            else "MISSING COLUMNS" if len(row) < width
                            else "TOO MANY COLUMNS"
                        )
                        bad.append(
                            (start, None, text.delimiter.join(row)[:200], STRUCTURAL_REASONS[kind])
                        )
                start = skipped + reader.line_num + 1
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise InputError(
                    f"{label}: line {start}: a field longer than {MAX_LINE_BYTES >> 20} MiB, the "
                    "most one row may hold; most likely a quote that opens here is never "
                    "closed, so every later line would be lost; fix the quote and load again"
                ) from exc
            raise InputError(
                f"{label}: line {start}: {exc}. A quoted field that opens here is never closed, "
                "so every later line would be lost; fix the quote and load again"
            ) from exc
    _stage_rows(con, lines, rows, width, bad, view="raw_split")


def _number_positions(columns: ColumnMap, header: HeaderSpec) -> list[int]:
    """File positions of the number columns (item_N included)."""
    named = [columns.positions[c] for c in header.numeric if c in columns.positions]
    return sorted(named + list(columns.items.values()))


def _misnamed(
    con: duckdb.DuckDBPyConnection, path: Path, header: HeaderSpec, label: str, kind: str
) -> Staged:
    """A workbook or Parquet file saved with a .csv name: read it as what it is, and say so."""
    if kind == "parquet":
        staged = stage_parquet(con, path, header, label)
        staged.notes.append("a Parquet file named .csv; read as Parquet")
        return staged
    if kind == "zip":
        try:
            with zipfile.ZipFile(path) as archive:
                workbook = "xl/workbook.xml" in archive.namelist()
        except (zipfile.BadZipFile, OSError):
            workbook = False
        if workbook:
            staged = stage_xlsx(con, path, header, label)
            staged.notes.append("an XLSX workbook named .csv; read as XLSX")
            return staged
    raise not_text_error(label, kind)


def stage_csv(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    header: HeaderSpec,
    label: str,
    work_dir: Path,
    tag: str,
) -> Staged:
    kind = sniff_kind(path)
    if kind not in ("text", "empty"):
        return _misnamed(con, path, header, label, kind)
    text = prepare_csv(path, work_dir, label)
    columns = header.match(label, text.header)
    notes = list(text.notes)
    if not _read_csv_duckdb(con, text, tag):
        _read_csv_exact(con, text, label)
        notes.append("fields span lines; line numbers from an exact parse")
    numbers = _number_positions(columns, header) if text.delimiter in (";", "\t") else []
    notes += _screen_rows(con, text.header, text.delimiter, text.comment_lines, numbers)
    return Staged("csv", text.encoding, text.sha256, columns, notes)


# ---------------------------------------------------------------- Parquet


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _wrong_kind(label: str, expected: str, kind: str) -> InputError:
    """A .parquet / .xlsx file whose bytes say it is something else."""
    if kind == "empty":
        return InputError(f"{label}: the file is empty; export it again")
    if kind == "xls":
        return not_text_error(label, kind)
    what = {
        "text": "it is a text file (CSV?)",
        "zip": "it is a ZIP archive",
        "parquet": "it is a Parquet file",
    }.get(kind, kind)
    return InputError(
        f"{label}: not {expected} file: {what}; export the table again, or give the file "
        "the extension of its real format (.csv, .xlsx, .parquet)"
    )


def stage_parquet(
    con: duckdb.DuckDBPyConnection, path: Path, header: HeaderSpec, label: str
) -> Staged:
    kind = sniff_kind(path)
    if kind != "parquet":
        raise _wrong_kind(label, "a Parquet", kind)
    try:
        names = [
            r[0]
            for r in con.execute(
                "DESCRIBE SELECT * FROM read_parquet($path)", {"path": str(path)}
            ).fetchall()
        ]
        columns = header.match(label, names)
        select = ", ".join(
            f"CAST({_quote_ident(n)} AS VARCHAR) AS c{i}" for i, n in enumerate(names)
        )
        # Parquet has no header line; row 1 is reported as line 2, as it would be in a CSV.
        run(
            con,
            f"CREATE OR REPLACE TEMP TABLE raw_table AS SELECT file_row_number + 2 AS __line, "
            f"{select} FROM read_parquet($path, file_row_number = true)",
            {"path": str(path)},
        )
        run(con, "CREATE OR REPLACE TEMP VIEW raw AS SELECT * FROM raw_table")
    except duckdb.Error as exc:
        reason = str(exc).splitlines()[0].replace(f"'{path}'", "").strip()  # one paragraph
        raise InputError(
            f"{label}: cannot be read as Parquet ({reason}); the file is damaged or cut short, "
            "export it again"
        ) from exc
    _empty_stage_rejects(con)
    return Staged("parquet", None, _sha256(path), columns, [])


# ---------------------------------------------------------------- XLSX


def _cell_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    return text if text.strip() else None


def stage_xlsx(
    con: duckdb.DuckDBPyConnection, path: Path, header: HeaderSpec, label: str
) -> Staged:
    from openpyxl import load_workbook  # imported here: only XLSX loads pay for it

    kind = sniff_kind(path)
    if kind != "zip":
        raise _wrong_kind(label, "an XLSX", kind)

    def damaged(exc: Exception) -> InputError:
        return InputError(
            f"{label}: cannot be read as an XLSX workbook ({exc}); the file is damaged or cut "
            "short: open it in Excel and save it again, or export CSV"
        )

    with path.open("rb") as handle:  # a file object: openpyxl judges a name by its extension
        try:
            workbook = load_workbook(handle, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for a damaged workbook
            raise damaged(exc) from exc
        names, columns, lines, rows, bad = _read_sheet(workbook, header, label, damaged)
    if names is None or columns is None:
        raise InputError(
            f"{label}: no header row with {', '.join(header.names) or 'column names'} in the "
            f"first {HEADER_SEARCH_ROWS} rows of the first sheet"
        )
    _stage_rows(con, lines, rows, len(names), bad, view="raw_split")
    notes = _screen_rows(con, names, ", ", [], [])
    return Staged("xlsx", None, _sha256(path), columns, notes)


def _read_sheet(
    workbook: Any, spec: HeaderSpec, label: str, damaged: Callable[[Exception], InputError]
) -> tuple[
    list[str] | None,
    ColumnMap | None,
    list[int],
    list[list[str | None]],
    list[tuple[int, str | None, str, str]],
]:
    """Header (searched in the first rows), column map, row numbers, rows and malformed rows of
    the first sheet."""
    header: list[str] | None = None
    columns: ColumnMap | None = None
    lines: list[int] = []
    rows: list[list[str | None]] = []
    bad: list[tuple[int, str | None, str, str]] = []
    try:
        sheet = workbook.worksheets[0]
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [_cell_text(v) for v in values]
            if header is None:
                names = [c or "" for c in cells]
                while names and not names[-1].strip():  # rows are padded to the sheet's width
                    names.pop()
                if spec.is_header(names):
                    header = names
                    columns = spec.match(f"{label} row {number}", header)
                elif number >= HEADER_SEARCH_ROWS:
                    break
                continue
            if all(c is None for c in cells):
                continue  # an empty sheet row, like a blank CSV line
            width = len(header)
            if any(c is not None for c in cells[width:]):
                text = ", ".join(c for c in cells if c is not None)[:200]
                bad.append((number, None, text, STRUCTURAL_REASONS["TOO MANY COLUMNS"]))
                continue
            lines.append(number)
            rows.append((cells + [None] * width)[:width])
    except InputError:
        raise
    except Exception as exc:  # a damaged sheet can fail part-way; its text may quote a cell
        raise damaged(RuntimeError(f"a damaged sheet: {type(exc).__name__}")) from exc
    finally:
        workbook.close()
    return header, columns, lines, rows, bad


def stage_file(
    con: duckdb.DuckDBPyConnection, path: Path, header: HeaderSpec, label: str, work_dir: Path,
    tag: str,
) -> Staged:
    """Stage a .csv, .parquet or .xlsx file by its extension; an unreadable file stops the load."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return stage_parquet(con, path, header, label)
        if suffix == ".xlsx":
            return stage_xlsx(con, path, header, label)
        return stage_csv(con, path, header, label, work_dir, tag=tag)
    except OSError as exc:
        raise InputError(f"{label}: cannot be read ({exc.strerror})") from exc


# ---------------------------------------------------------------- adapters


def stage_arrow(
    con: duckdb.DuckDBPyConnection,
    table: pa.Table,
    contract: TableContract,
    label: str,
    source_format: str,
    sha256: str,
    rejects: list[tuple[int, str | None, str | None, str]] | None = None,
) -> Staged:
    """Stage rows an adapter built: `__line` (line in the source file) + canonical columns as text.

    rejects: rows the adapter could not map at all (line, column, value, reason); they are
    counted as read and rejected, like a malformed CSV line.
    """
    names = [n for n in table.column_names if n != "__line"]
    columns = map_columns(label, names, contract)
    data = {"__line": table.column("__line").cast(pa.int64())}
    for i, name in enumerate(names):
        data[f"c{i}"] = table.column(name).cast(pa.string())
    bad = [(line, col, (value or "")[:200], reason) for line, col, value, reason in (rejects or [])]
    _stage_table(con, pa.table(data), bad)
    return Staged(source_format, None, sha256, columns, [])
