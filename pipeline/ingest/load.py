"""One load: every file of an export validated and merged in a single transaction (README
"What ingest guarantees").

Each input row ends in exactly one place: loaded, counted as an exact duplicate, or in
`rejects`. A file-level problem (unreadable, missing required column) raises InputError and
the transaction rolls back, leaving the database as it was.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import replace
from datetime import date, datetime
from functools import partial
from itertools import groupby
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipeline.config import Config
from pipeline.db import changed, connect, run, writer_lock
from pipeline.errors import InputError, disk_cause
from pipeline.ingest.adapters import adapter_units
from pipeline.ingest.adapters.common import default_mapping
from pipeline.ingest.contract import CONTRACTS, TABLES, TableContract, contract_header, discover
from pipeline.ingest.csv_rows import csv_cells
from pipeline.ingest.mapped import mapped_units, name_source_columns
from pipeline.ingest.mapping_file import MAPPING_NAME
from pipeline.ingest.merge import (
    absent_columns,
    merge_file,
    move_to_history,
    retire_absent,
    start_table,
)
from pipeline.ingest.readers import Staged, settle_direct, stage_file
from pipeline.ingest.report import FileResult, LoadReport
from pipeline.ingest.units import LoadUnit
from pipeline.instruments import alias_table
from pipeline.paths import sql
from pipeline.progress import Tracker, tracking


def _one(con: duckdb.DuckDBPyConnection, query: str) -> Any:
    return con.execute(query).fetchall()[0][0]


def _failed_load_message(data_dir: Path, db_path: str | Path, exc: duckdb.Error) -> str:
    text = " ".join(str(exc).split())  # DuckDB's messages span lines; print one paragraph
    if (cause := disk_cause(exc)) is not None:
        return (f"cannot write the database {db_path}: {cause}; the load of {data_dir} was "
                "rolled back and the database is as it was. Free some space (or use another "
                "--db) and load again")
    return f"{data_dir}: the load failed and was rolled back: {text}"


def _setup_session(con: duckdb.DuckDBPyConnection, config: Config, load_id: int, today: date,
                   mode: str) -> None:
    registry = config.instruments.values()
    con.register(
        "registry_arrow",
        pa.table(
            {
                "name": [i.name for i in registry],
                "total_min": [float(i.total_min) for i in registry],
                "total_max": [float(i.total_max) for i in registry],
                "item_count": [i.item_count for i in registry],
                "item_min": [i.item_min for i in registry],
                "item_max": [i.item_max for i in registry],
                "scoring": [i.scoring for i in registry],
            }
        ),
    )
    run(con, "CREATE OR REPLACE TEMP TABLE instruments AS SELECT * FROM registry_arrow")
    aliases = alias_table(config.instruments)
    con.register("alias_arrow", pa.table({"alias_key": list(aliases), "instrument": list(aliases.values())}))
    run(con, "CREATE OR REPLACE TEMP TABLE instrument_aliases AS SELECT * FROM alias_arrow")
    run(con, sql("validate/instruments.sql"))
    con.unregister("registry_arrow")
    con.unregister("alias_arrow")
    run(
        con,
        "CREATE OR REPLACE TEMP TABLE settings AS SELECT $load_id::INTEGER AS load_id, "
        "$today::DATE AS load_date, $mode::VARCHAR AS mode, false AS patients_listed, "
        "''::VARCHAR AS file, ''::VARCHAR AS table_name, ''::VARCHAR AS id_column",
        {"load_id": load_id, "today": today, "mode": mode},
    )
    run(con, sql("validate/macros.sql"))  # after settings: macros read it
    run(
        con,
        "CREATE OR REPLACE TEMP TABLE rejected_ids "
        "(table_name VARCHAR, id VARCHAR, file VARCHAR, line BIGINT)",
    )


def _build_stg(con: duckdb.DuckDBPyConnection, staged: Staged, contract: TableContract) -> None:
    """raw (c0..cN by position) -> stg (contract names); the column names are our own."""
    cols = staged.columns
    # A direct CSV's raw is csv_rows, which flags rows (csv_rows.py); other readers' may not.
    flagged = staged.direct is not None or any(
        r[0] == "__flag" for r in con.execute("DESCRIBE raw").fetchall())
    parts = ["__line", "__flag" if flagged else "0::UTINYINT AS __flag"]
    for name in contract.columns:
        pos = cols.positions.get(name)
        parts.append(f"c{pos} AS {name}" if pos is not None else f"NULL::VARCHAR AS {name}")
    if contract.has_items:
        n = max(cols.items, default=0)  # item columns the file has; the rules slice per instrument
        items = [f"c{cols.items[k]}" if k in cols.items else "NULL::VARCHAR" for k in range(1, n + 1)]
        listed = f"list_value({', '.join(items)})" if items else "[]::VARCHAR[]"
        parts.append(f"{listed} AS items_raw")
    run(con, f"CREATE OR REPLACE TEMP VIEW stg AS SELECT {', '.join(parts)} FROM raw")


def _type_rows(con: duckdb.DuckDBPyConnection, staged: Staged, contract: TableContract) -> None:
    """typed: every row of raw parsed and judged in one pass (sql/validate/<table>.sql)."""
    _build_stg(con, staged, contract)
    run(con, sql(f"validate/{contract.name}.sql"))


# The date a row of each table is dated by, checked against the patient's date of birth.
DATED_BY = {"sessions": "started_at", "assessments": "administered_at",
            "treatment_history": "start_date"}


def _check_references(con: duckdb.DuckDBPyConnection, staged: Staged,
                      contract: TableContract) -> None:
    """Rules that read other tables (patients, protocols, earlier loads): their problems join
    the rows' own in typed.__problems. Values as written are read again for those rows only."""
    run(con, "CREATE OR REPLACE TEMP TABLE ref_problems (line BIGINT, \"column\" VARCHAR, "
             "value VARCHAR, reason VARCHAR, raw_column VARCHAR)")
    name = contract.name
    found = 0
    if name == "patients":
        found += changed(con, sql("validate/first_seen_references.sql"))
    if name == "sessions":
        found += changed(con, sql("validate/protocol_references.sql"))
    if name in DATED_BY:
        found += changed(con, sql("validate/birth_references.sql")
                         .replace("__date__", DATED_BY[name]))
        found += changed(con, sql("validate/patient_references.sql"))
    if not found:
        return
    for (column,) in con.execute(
            "SELECT DISTINCT raw_column FROM ref_problems WHERE raw_column IS NOT NULL").fetchall():
        _raw_cells(con, staged, column)
        run(con, "UPDATE ref_problems SET value = r.value FROM raw_cells r "
                 "WHERE ref_problems.line = r.line AND ref_problems.raw_column = $column",
            {"column": column})
    run(con, sql("validate/attach_references.sql"))


def _raw_cells(con: duckdb.DuckDBPyConnection, staged: Staged, column: str) -> None:
    """raw_cells(line, value): the text as written in `column` of the ref_problems rows."""
    if column not in CONTRACTS[str(_one(con, "SELECT table_name FROM settings"))].columns:
        raise ValueError(f"not a contract column: {column!r}")  # substituted into SQL
    run(con, "CREATE OR REPLACE TEMP TABLE wanted_lines AS "
             "SELECT DISTINCT line FROM ref_problems WHERE raw_column = $column", {"column": column})
    if staged.direct is not None:  # the file was not copied: read those cells again
        csv_cells(con, staged.direct, column, "wanted_lines")
    else:
        run(con, f"CREATE OR REPLACE TEMP TABLE raw_cells AS SELECT __line AS line, {column} AS value "
                 "FROM stg WHERE __line IN (SELECT line FROM wanted_lines)")


def _stage(
    con: duckdb.DuckDBPyConnection, work_dir: Path, *, path: Path, contract: TableContract, label: str
) -> Staged:
    return stage_file(con, path, contract_header(contract), label, work_dir, tag=contract.name,
                      direct=True)


def canonical_units(data_dir: Path) -> tuple[list[LoadUnit], list[str]]:
    """One unit per canonical file found in data_dir (README "Input: the canonical
    export"), and the names ignored."""
    files, ignored = discover(data_dir)
    units = [
        LoadUnit(path.name, contract, partial(_stage, path=path, contract=contract, label=path.name))
        for contract in TABLES
        if (path := files.get(contract.name)) is not None
    ]
    return units, ignored


def _load_table(con: duckdb.DuckDBPyConnection, units: list[LoadUnit], work_dir: Path,
                snapshot: bool, tracker: Tracker) -> list[FileResult]:
    """Every file of one table, then (snapshot) the retirement of the rows none of them holds.

    The table's retired count and its earlier row count are reported on its last file.
    """
    current_before = start_table(con, units[0].contract.name)
    results = [_load_unit(con, unit, work_dir, current_before > 0, tracker) for unit in units]
    if snapshot:
        tracker.stage(f"{units[0].contract.name}: retiring the rows the export no longer holds")
    # A table without rows before this load has none to retire.
    retired = retire_absent(con, units[0].contract.name) if snapshot and current_before else 0
    results[-1] = replace(results[-1], retired=retired, current_before=current_before)
    return results


def _load_unit(con: duckdb.DuckDBPyConnection, unit: LoadUnit, work_dir: Path,
               has_rows: bool, tracker: Tracker) -> FileResult:
    label, contract = unit.label, unit.contract
    tracker.stage(f"{label}: reading")
    staged = unit.stage(con, work_dir)
    tracker.stage(f"{label}: checking every row")
    id_column = staged.source_columns.get(contract.id_column, contract.id_column)
    run(
        con,
        "UPDATE settings SET file = $file, table_name = $table, id_column = $id",
        {"file": label, "table": contract.name, "id": id_column},
    )
    _type_rows(con, staged, contract)
    if staged.direct is not None:  # the CSV was read by validation: its rows settle now
        settled = settle_direct(con, staged, label)
        if settled is not staged:  # fields span lines: parsed exactly, typed again
            staged = settled
            _type_rows(con, staged, contract)
    if contract.name == "sessions":
        _check_protocols_loaded(con, label)
    _check_references(con, staged, contract)
    if staged.source_columns:
        name_source_columns(con, staged)
    read, offsets = (int(c) for c in con.execute(
        "SELECT (SELECT count(*) FROM typed) + (SELECT count(DISTINCT line) FROM stage_rejects), "
        "(SELECT coalesce(sum(__offsets), 0) FROM typed)"
    ).fetchall()[0])
    tracker.stage(f"{label}: {read:,} rows read; merging")
    absent = absent_columns(contract, staged) if has_rows else []
    merged = merge_file(con, contract, absent)
    tracker.advance()
    result = FileResult(
        label,
        contract.name,
        staged.format,
        staged.encoding,
        staged.sha256,
        read,
        merged.added,
        merged.corrected,
        merged.unchanged,
        merged.duplicates,
        merged.rejected,
        ignored_columns=staged.columns.ignored,
        notes=(*staged.notes, *_value_notes(offsets), *_absent_notes(absent)),
    )
    if not result.adds_up:  # a bug, never the input's fault
        raise RuntimeError(f"{label}: reconciliation failed: {result.equation}")
    return result


def _absent_notes(absent: list[str]) -> list[str]:
    if not absent:
        return []
    return [f"columns not in this file keep the values loaded before: {', '.join(absent)}"]


def _value_notes(offsets: int) -> list[str]:
    """Notes on values read under a documented rule rather than as written (README choices)."""
    if not offsets:
        return []
    values = "value" if offsets == 1 else "values"
    return [
        f"{offsets} date-time {values} with a UTC offset or zone (Z, +01:00, UTC …): the offset "
        "was dropped and the wall-clock time kept as clinic-local time"
    ]


def _check_protocols_loaded(con: duckdb.DuckDBPyConnection, label: str) -> None:
    """Sessions need protocols (planned infusions); a file without a session never stops a load.
    Run on the file's typed rows (its lines, comment and repeated header lines aside)."""
    if _one(con, "SELECT count(*) FROM protocols") == 0:
        sessions = int(_one(con, "SELECT count(*) FROM typed"))
        if sessions:
            raise InputError(
                f"{label}: holds {sessions:,} session{'s' if sessions > 1 else ''}, but no "
                "protocols are loaded (planned infusions per protocol), in this load or before; "
                "add a protocols file (protocols.csv), or [[protocols]] tables to the mapping"
            )


def ingest(
    data_dir: str | Path,
    db_path: str | Path,
    config: Config,
    today: date | None = None,
    source_format: str = "canonical",
    mapping: Path | None = None,
    append: bool = False,
    allow_retire: bool = False,
) -> LoadReport:
    """Validate the export in data_dir and load it into db_path in one transaction.

    Each file is a snapshot of its table (README "Exports over time"): rows are added,
    corrected or retired so that the table equals the file; `append` adds and corrects only.
    A snapshot retiring more than [ingest] max_retired_share of a table's rows stops the load
    (InputError, nothing changed) unless `allow_retire`.

    source_format "canonical" reads canonical files (README "Input: the canonical export"), or
    an EHR export through `mapping` (default: mapping.toml in data_dir; README "Loading your
    EHR's export"); "redcap" and "fhir" go through an adapter (pipeline/ingest/adapters) that
    yields the same units, so every row meets the same checks.
    """
    data_dir = Path(data_dir)
    today = today or date.today()
    if source_format == "canonical":
        mapping = mapping or default_mapping(data_dir, None, MAPPING_NAME)
        units, ignored = (mapped_units(data_dir, config, mapping) if mapping is not None
                          else canonical_units(data_dir))
    else:
        units, ignored = adapter_units(source_format, data_dir, config, mapping)
    order = {c.name: i for i, c in enumerate(TABLES)}
    units = sorted(units, key=lambda u: order[u.contract.name])  # references load first
    with writer_lock(db_path), tracking("ingest", total=len(units)) as tracker:
        con = connect(db_path, config)
        try:
            run(con, "BEGIN TRANSACTION")
            try:
                load_id = int(_one(con, "SELECT coalesce(max(load_id), 0) + 1 FROM loads"))  # type: ignore[arg-type]
                mode = "append" if append else "snapshot"
                _setup_session(con, config, load_id, today, mode)
                results = []
                with tempfile.TemporaryDirectory(prefix="outcomes-ingest-") as work:
                    listed_checked = False
                    for name, group in groupby(units, key=lambda u: u.contract.name):
                        if not listed_checked and order[name] >= order["sessions"]:
                            run(
                                con,
                                "UPDATE settings SET patients_listed = "
                                "(SELECT count(*) > 0 FROM patients WHERE source = 'patients')",
                            )
                            listed_checked = True
                        results.extend(_load_table(con, list(group), Path(work), not append,
                                                   tracker))
                if not allow_retire:
                    _check_retire_share(results, config.ingest.max_retired_share)
                tracker.stage("recording the load")
                if changed(con, sql("load/derived_patients.sql")):
                    run(con, sql("load/derived_retire.sql"))
                    move_to_history(con, "patients", "derived_retiring")
                run(con, sql("load/derived_add.sql"))
                # the day of the load is `today`, the day dates were judged against (no date
                # after it loads); reports refuse an as-of after it (months.check_as_of)
                loaded_at = datetime.combine(today, datetime.now().time().replace(microsecond=0))
                con.executemany(
                    "INSERT INTO loads (load_id, file, table_name, format, encoding, sha256, rows_read, "
                    "rows_loaded, duplicates, rejected, loaded_at, mode, added, corrected, unchanged, "
                    "retired) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        [load_id, r.file, r.table, r.format, r.encoding, r.sha256, r.read, r.loaded,
                         r.duplicates, r.rejected, loaded_at, mode, r.added, r.corrected, r.unchanged,
                         r.retired]
                        for r in results
                    ],
                )
                top = con.execute(sql("load/top_rejects.sql"), [load_id]).fetchall()
                changes = con.execute(sql("load/change_summary.sql"), [load_id]).fetchall()
                tracker.stage("committing")
                run(con, "COMMIT")
            except BaseException:
                # A failed COMMIT (e.g. a full disk) has already ended the transaction; the
                # original error is the one to report.
                with contextlib.suppress(duckdb.Error):
                    run(con, "ROLLBACK")
                raise
        except duckdb.Error as exc:
            raise InputError(_failed_load_message(data_dir, db_path, exc)) from exc
        finally:
            con.close()
    return LoadReport(load_id, str(db_path), today, results, ignored, top, mode, changes)


def _check_retire_share(results: list[FileResult], max_share: float) -> None:
    """A truncated or filtered snapshot must not silently erase history (README)."""
    over = [r for r in results
            if r.retired and r.retired > max_share * r.current_before]
    if not over:
        return
    parts = "; ".join(
        f"{r.file} would retire {r.retired:,} of the {r.current_before:,} current {r.table} rows "
        f"({r.retired / r.current_before:.0%})" for r in over)
    raise InputError(
        f"{parts}, more than [ingest] max_retired_share = {max_share:g} of a table. Nothing was "
        "loaded. A truncated or filtered export would erase history: check that the export is "
        "complete; if these rows were really deleted in the clinic's system, load it again with "
        "--allow-retire")
