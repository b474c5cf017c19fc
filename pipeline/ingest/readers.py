"""Readers per format. Each leaves two temp tables in the connection:

- `raw`: `__line` (1-based, header = line 1) and `c0 … cN`, every cell as text;
- `stage_rejects`: rows that could not even be split into columns (line, column, value, reason).

Everything after this point is one validation path, whatever the format.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline.db import run
from pipeline.errors import InputError
from pipeline.ingest.contract import ColumnMap, TableContract, map_columns
from pipeline.ingest.csv_text import CsvText, _sha256, prepare_csv
from pipeline.paths import sql

HEADER_SEARCH_ROWS = 20  # clinic workbooks often have a title row or two above the header

STRUCTURAL_REASONS = {
    "MISSING COLUMNS": "the line has fewer fields than the header; check for a missing delimiter",
    "TOO MANY COLUMNS": "the line has more fields than the header; quote fields that contain "
    "the delimiter",
    "UNQUOTED VALUE": "malformed quoting; a field with a quote must be wholly quoted",
    "INVALID STATE": "malformed quoting; a field with a quote must be wholly quoted",
    "LINE SIZE OVER MAXIMUM": "the line is too long to be a row of this file",
    "INVALID ENCODING": "the line is not valid text in the file's encoding",
}


@dataclass
class Staged:
    format: str
    encoding: str | None
    sha256: str
    columns: ColumnMap
    notes: list[str]


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
) -> None:
    """raw + stage_rejects from rows split in Python (exact CSV path, XLSX)."""
    data = {"__line": pa.array(lines, pa.int64())}
    for i in range(width):
        data[f"c{i}"] = pa.array([r[i] for r in rows], pa.string())
    _stage_table(con, pa.table(data), bad)


def _stage_table(
    con: duckdb.DuckDBPyConnection, table: pa.Table, bad: list[tuple[int, str | None, str, str]]
) -> None:
    """raw (`__line`, c0..cN as text) + stage_rejects."""
    con.register("raw_arrow", table)
    run(con, "CREATE OR REPLACE TEMP TABLE raw_table AS SELECT * FROM raw_arrow")
    run(con, "CREATE OR REPLACE TEMP VIEW raw AS SELECT * FROM raw_table")
    con.unregister("raw_arrow")
    _empty_stage_rejects(con)
    if bad:
        con.executemany("INSERT INTO stage_rejects VALUES (?, ?, ?, ?)", [list(b) for b in bad])


# ---------------------------------------------------------------- CSV


def _map_lines_around_gaps(con: duckdb.DuckDBPyConnection, text: CsvText, records: int) -> None:
    """Records fill, in file order, the physical lines left after blank lines and rejects."""
    run(con, "CREATE OR REPLACE TEMP TABLE blank_lines (line BIGINT)")
    if text.blank_lines:
        con.executemany("INSERT INTO blank_lines VALUES (?)", [[b] for b in text.blank_lines])
    run(
        con,
        "CREATE OR REPLACE TEMP TABLE raw_table AS "
        "WITH free AS (SELECT l AS line, row_number() OVER (ORDER BY l) - 1 AS rid "
        "FROM range(2, $total + 1) t(l) "
        "WHERE l NOT IN (SELECT line FROM blank_lines) "
        "AND l NOT IN (SELECT line FROM stage_rejects)), "
        "records AS (SELECT row_number() OVER (ORDER BY rowid) - 1 AS rid, * FROM raw_records) "
        "SELECT free.line AS __line, r.* EXCLUDE (rid) FROM records r JOIN free USING (rid)",
        {"total": text.total_lines},
    )
    run(con, "CREATE OR REPLACE TEMP VIEW raw AS SELECT * FROM raw_table")


def _read_csv_duckdb(con: duckdb.DuckDBPyConnection, text: CsvText, tag: str) -> bool:
    """Fast path: DuckDB reads the file; True when every physical line is accounted for."""
    width = len(text.header)
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width)) + "}"
    run(
        con,
        f"CREATE OR REPLACE TEMP TABLE raw_records AS SELECT * FROM read_csv($path, "
        f"header = true, auto_detect = false, columns = {columns}, delim = $delim, "
        f"quote = '\"', escape = '\"', strict_mode = true, null_padding = false, "
        f"store_rejects = true, rejects_table = 'rj_{tag}', rejects_scan = 'rs_{tag}')",
        {"path": str(text.path), "delim": text.delimiter},
    )
    run(
        con,
        f"CREATE OR REPLACE TEMP TABLE stage_rejects AS "
        f"SELECT line, arg_min(column_name, column_idx) AS col, arg_min(error_type, column_idx) AS "
        f"error_type, any_value(csv_line) AS csv_line FROM rj_{tag} GROUP BY line",
    )
    run(con, f"DROP TABLE rj_{tag}; DROP TABLE rs_{tag}")
    records = con.execute("SELECT count(*) FROM raw_records").fetchall()[0][0]
    rejected = con.execute("SELECT count(*) FROM stage_rejects").fetchall()[0][0]
    data_lines = text.total_lines - 1 - len([b for b in text.blank_lines if b > 1])
    if records + rejected != data_lines:
        return False  # multi-line fields or a swallowed tail: the exact path decides
    first, last = con.execute("SELECT min(rowid), max(rowid) FROM raw_records").fetchall()[0]
    blanks_after_header = [b for b in text.blank_lines if b > 1]
    if records and not blanks_after_header and not rejected and last - first + 1 == records:
        # The common case: line n+1 holds the n-th record. rowid order is insertion order (it
        # does not start at 0 inside a transaction, hence the offset); no copy, no sort.
        run(con, f"CREATE OR REPLACE TEMP VIEW raw AS SELECT rowid - {int(first)} + 2 AS __line, * "
                 "FROM raw_records")
    else:
        _map_lines_around_gaps(con, text, records)
        if con.execute("SELECT count(*) FROM raw").fetchall()[0][0] != records:
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
    with text.path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter=text.delimiter, strict=True)
        start = 1
        try:
            next(reader)  # header
            start = reader.line_num + 1
            for row in reader:
                if row:
                    if len(row) == width:
                        lines.append(start)
                        rows.append([v if v != "" else None for v in row])
                    else:
                        reason = STRUCTURAL_REASONS[
                            "MISSING COLUMNS" if len(row) < width else "TOO MANY COLUMNS"
                        ]
                        bad.append((start, None, text.delimiter.join(row)[:200], reason))
                start = reader.line_num + 1
        except csv.Error as exc:
            raise InputError(
                f"{label}: line {start}: {exc}. A quoted field that opens here is never closed, "
                "so every later line would be lost; fix the quote and load again"
            ) from exc
    _stage_rows(con, lines, rows, width, bad)


def stage_csv(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    contract: TableContract,
    label: str,
    work_dir: Path,
    tag: str,
) -> Staged:
    text = prepare_csv(path, work_dir, label)
    columns = map_columns(label, text.header, contract)
    notes = []
    if not text.encoding.startswith("utf-8"):
        notes.append(f"not UTF-8; read as {text.encoding}")
    if not _read_csv_duckdb(con, text, tag):
        _read_csv_exact(con, text, label)
        notes.append("fields span lines; line numbers from an exact parse")
    return Staged("csv", text.encoding, text.sha256, columns, notes)


# ---------------------------------------------------------------- Parquet


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def stage_parquet(
    con: duckdb.DuckDBPyConnection, path: Path, contract: TableContract, label: str
) -> Staged:
    try:
        names = [
            r[0]
            for r in con.execute(
                "DESCRIBE SELECT * FROM read_parquet($path)", {"path": str(path)}
            ).fetchall()
        ]
        columns = map_columns(label, names, contract)
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
        raise InputError(f"{label}: cannot be read as Parquet ({exc}); export it again") from exc
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
    con: duckdb.DuckDBPyConnection, path: Path, contract: TableContract, label: str
) -> Staged:
    from openpyxl import load_workbook  # imported here: only XLSX loads pay for it

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged workbook
        raise InputError(f"{label}: cannot be opened as an XLSX workbook ({exc})") from exc
    try:
        sheet = workbook.worksheets[0]
        header: list[str] | None = None
        columns: ColumnMap | None = None
        lines: list[int] = []
        rows: list[list[str | None]] = []
        bad: list[tuple[int, str | None, str, str]] = []
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [_cell_text(v) for v in values]
            if header is None:
                names = [c or "" for c in cells]
                while names and not names[-1].strip():  # rows are padded to the sheet's width
                    names.pop()
                if set(contract.required) <= {n.strip().lower() for n in names}:
                    header = names
                    columns = map_columns(f"{label} row {number}", header, contract)
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
    finally:
        workbook.close()
    if header is None or columns is None:
        raise InputError(
            f"{label}: no header row with {', '.join(contract.required)} in the first "
            f"{HEADER_SEARCH_ROWS} rows of the first sheet"
        )
    _stage_rows(con, lines, rows, len(header), bad)
    return Staged("xlsx", None, _sha256(path), columns, [])


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
