"""Readers per format. Each leaves two temp relations in the connection:

- `raw`: `__line` (1-based, header = line 1) and `c0 … cN`, every cell as text (CSV also
  `__flag`, see csv_rows.py), in line order (validation keeps that order, and the rows are
  inserted in it);
- `stage_rejects`: rows that could not even be split into columns (line, column, value, reason).

Everything after this point is one validation path, whatever the format. CSV and XLSX rows
are screened: comment lines and repeated header lines go to `stage_rejects`, decimal commas in
number columns of `;`/tab files become decimal points. A CSV staged `direct` (canonical files)
is not copied: `raw` is a view over DuckDB's reader, and validation's typed rows are settled
afterwards (`settle_direct`: lines around blank lines, structural rejects, screened lines).
"""

from __future__ import annotations

import csv
import datetime as dt
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipeline.db import run
from pipeline.errors import InputError
from pipeline.ingest.contract import ColumnMap, HeaderSpec, TableContract, map_columns
from pipeline.ingest.csv_rows import (
    DECIMAL_NOTE,
    STRUCTURAL_REASONS,
    CsvRead,
    csv_view,
    decimal_match,
    header_test,
    screen_lines,
    settle_rows,
)
from pipeline.ingest.csv_text import (
    MAX_LINE_BYTES,
    CsvText,
    _sha256,
    not_text_error,
    prepare_csv,
    sniff_kind,
)

HEADER_SEARCH_ROWS = 20  # clinic workbooks often have a title row or two above the header

csv.field_size_limit(MAX_LINE_BYTES)  # the exact parser's limit matches DuckDB's max_line_size


@dataclass
class Staged:
    format: str
    encoding: str | None
    sha256: str
    columns: ColumnMap
    notes: list[str]
    # A CSV read by validation itself: its rows settle once typed (load.py, settle_direct).
    direct: CsvRead | None = None
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
    # in line order, as every reader leaves raw (typed keeps it; rows are inserted in it)
    run(con, "CREATE OR REPLACE TEMP TABLE raw_table AS SELECT * FROM raw_arrow ORDER BY __line")
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
    screened = screen_lines(con, "raw_split", header_test(header), comment_lines,
                            delimiter.join(header))
    notes = []
    replaced = ""
    if number_positions:
        decimal = {i: decimal_match(i, delimiter) for i in number_positions}
        # Stops at the first decimal comma: a European file shows one at once.
        found = con.execute(
            f"SELECT 1 FROM raw_split WHERE {' OR '.join(decimal.values())} LIMIT 1"
        ).fetchall()
        if found:
            replaced = " REPLACE (" + ", ".join(
                f"CASE WHEN {match} THEN replace(trim(c{i}), ',', '.') ELSE c{i} END AS c{i}"
                for i, match in decimal.items()
            ) + ")"
            notes.append(DECIMAL_NOTE)
    if screened:  # deleted rather than filtered by a join, which would not keep the line order
        run(con, "DELETE FROM raw_table WHERE __line IN (SELECT line FROM line_rejects)")
    run(con, f"CREATE OR REPLACE TEMP VIEW raw AS SELECT *{replaced} FROM raw_split")
    return notes


# ---------------------------------------------------------------- CSV


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
    direct: bool = False,
) -> Staged:
    """`raw` + `stage_rejects` for a CSV file (or a workbook or Parquet file named .csv).

    direct: `raw` is a view over DuckDB's reader and the file is read by whatever reads `raw`
    first; its rows are settled afterwards with `settle_direct` on the typed rows (ingest does
    this: no copy of the file's text). Otherwise the rows are read and settled here.
    """
    kind = sniff_kind(path)
    if kind not in ("text", "empty"):
        return _misnamed(con, path, header, label, kind)
    text = prepare_csv(path, work_dir, label)
    columns = header.match(label, text.header)
    numbers = _number_positions(columns, header) if text.delimiter in (";", "\t") else []
    read = csv_view(con, text, tag, numbers)
    staged = Staged("csv", text.encoding, text.sha256, columns, list(text.notes))
    _empty_stage_rejects(con)
    if direct:
        run(con, "CREATE OR REPLACE TEMP VIEW raw AS SELECT * FROM csv_rows")
        staged.direct = read
        return staged
    run(con, "CREATE OR REPLACE TEMP TABLE raw_records AS SELECT * FROM csv_rows")
    if not settle_rows(con, "raw_records", read, staged.notes):
        return _stage_exact(con, read, label, staged)
    run(con, "CREATE OR REPLACE TEMP VIEW raw AS SELECT * FROM raw_records")
    return staged


def settle_direct(con: duckdb.DuckDBPyConnection, staged: Staged, label: str) -> Staged:
    """After `typed` was built from a direct CSV `raw`: the rows settled (lines, structural
    rejects, screened lines) and `staged` returned; or, when fields span lines, the file
    staged again by the exact parser, whose rows must be typed again."""
    assert staged.direct is not None
    if settle_rows(con, "typed", staged.direct, staged.notes):
        return staged
    return _stage_exact(con, staged.direct, label, replace(staged, direct=None))


def _stage_exact(con: duckdb.DuckDBPyConnection, read: CsvRead, label: str,
                 staged: Staged) -> Staged:
    _read_csv_exact(con, read.text, label)
    notes = ["fields span lines; line numbers from an exact parse"]
    notes += _screen_rows(con, read.text.header, read.text.delimiter, read.text.comment_lines,
                          list(read.numbers))
    return replace(staged, notes=[*staged.notes, *notes], direct=None)


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
    tag: str, direct: bool = False,
) -> Staged:
    """Stage a .csv, .parquet or .xlsx file by its extension; an unreadable file stops the load.
    direct: a CSV's `raw` is a view over DuckDB's reader, settled once typed (`stage_csv`)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return stage_parquet(con, path, header, label)
        if suffix == ".xlsx":
            return stage_xlsx(con, path, header, label)
        return stage_csv(con, path, header, label, work_dir, tag=tag, direct=direct)
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
