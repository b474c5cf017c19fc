"""The metrics outputs (`outcomes metrics`, and the metrics step of `outcomes run`): the metric
tables written as files (README "Outputs") and stored in DuckDB with the `metrics_runs` row that
lets later reports read them instead of computing again (pipeline/results.py).

Each course-level table (course_outcomes, same_session_courses, durability_courses,
item9_flags) is a CSV and a Parquet file with the same rows, streamed in Arrow batches;
protocol_summary.csv holds the rates; metrics.json holds the protocol-level tables, the
definitions, methods and provenance, and names the course-level files instead of repeating
their rows, so it stays small at any scale.

`outcomes metrics` keeps the course-level relations in DuckDB from the outcome SQL to the files
and the stored tables (only protocol-level frames reach Python); `outcomes run` writes the same
files from the `Results` it hands to the reports. Either way the files are written from a
DuckDB relation by one writer (`write_files`), so the two give the same bytes.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

import duckdb
import polars as pl
import pyarrow.parquet as pq

import pipeline
from pipeline.config import Config
from pipeline.csv_cells import safe_frame
from pipeline.db import connect, writer_lock
from pipeline.errors import InputError, disk_cause
from pipeline.formatting import json_ready
from pipeline.methods import methods_sentences
from pipeline.metrics import METRIC_TABLES, ROW_TABLES, local_connection, metric_tables, row_query
from pipeline.outcomes import build_outcome_relations, outcome_query
from pipeline.outputs import OutputGroup, atomic_paths
from pipeline.progress import tracking
from pipeline.pseudonyms import define_pseudonym, pseudonymized
from pipeline.results import STORED_FRAMES, Results, read_inputs, stored_tables

CSV_DATETIME = "%Y-%m-%dT%H:%M:%S"
NEEDS = ("loads", "session_count")  # the inputs of the metrics outputs (pipeline/results.py)
BATCH_ROWS = 100_000  # rows per Arrow batch written to a file
# the stages shown on a terminal (pipeline/progress.py)
OPEN, OUTCOMES, RATES = "opening the database", "course outcomes", "rates, curves and safety"
STORE, WRITE = "storing the results in the database", "writing the files"
STAGES = (OPEN, OUTCOMES, RATES, STORE, WRITE)


def provenance(as_of: date, config: Config, loads: pl.DataFrame) -> dict[str, Any]:
    # The wall-clock loaded_at stays in the database's `loads` log; outputs carry only what
    # the export determines, so the same export gives byte-identical outputs.
    loads = loads.sort("load_id", "file")
    return {
        "as_of": as_of.isoformat(),
        # the load the figures come from (`--load N`, or the latest)
        "load_id": loads["load_id"].max() if loads.height else None,
        "package_version": pipeline.__version__,
        "config": {"path": config.source, "sha256": config.sha256},
        "inputs": json_ready(loads.to_dicts()),
    }


def check(sessions: int, courses: int, as_of: date, db_path: Path) -> None:
    """InputError when there is nothing to compute: no sessions, or no infusion by as-of."""
    if sessions == 0:
        raise InputError(f"{db_path} holds no sessions; load an export with `outcomes ingest`")
    if courses == 0:
        raise InputError(f"{db_path} has no administered infusion on or before "
                         f"{as_of.isoformat()}; choose a later --as-of")


def store_tables(con: duckdb.DuckDBPyConnection, frames: Mapping[str, pl.DataFrame],
                 queries: Mapping[str, str], run: dict[str, Any], db_path: Path) -> None:
    """Replace the stored tables in DuckDB in one transaction: `frames` from polars, `queries`
    (table name -> SELECT on `con`) without leaving DuckDB. A database that cannot be written
    (full disk, file-size limit) is an InputError naming it; nothing is stored then."""
    catalog = con.execute("SELECT current_database()").fetchall()[0][0]
    store = '"' + str(catalog).replace('"', '""') + '".main'  # not the temp tables' names
    con.execute("BEGIN TRANSACTION")
    try:
        for name, frame in frames.items():
            con.register("metrics_frame", frame.to_arrow())
            # `name` is one of our own table names (see stored_tables), never input data.
            con.execute(f"CREATE OR REPLACE TABLE {store}.{name} AS SELECT * FROM metrics_frame")
            con.unregister("metrics_frame")
        for name, query in queries.items():
            con.execute(f"CREATE OR REPLACE TABLE {store}.{name} AS {query}")
        con.execute(f"CREATE OR REPLACE TABLE {store}.metrics_runs (as_of DATE, "
                    "load_id INTEGER, provenance JSON)")
        con.execute(f"INSERT INTO {store}.metrics_runs VALUES (?, ?, ?)",
                    [date.fromisoformat(run["as_of"]), run["load_id"], json.dumps(run)])
        con.execute("COMMIT")
    except Exception as exc:
        with contextlib.suppress(duckdb.TransactionException):  # a failed COMMIT ended it
            con.execute("ROLLBACK")
        cause = disk_cause(exc) if isinstance(exc, duckdb.Error) else None
        if cause is None:
            raise
        raise InputError(f"cannot write the database {db_path}: {cause}; the metrics were not "
                         "stored (the database is as it was) and no output file was changed. "
                         "Free some space (or raise the file-size limit) and run again") from exc


# ---------------------------------------------------------------------------------------------
# Writing the files


def _json_ready_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """ISO date-times as text; polars writes NaN as null and dates as ISO already."""
    iso = [pl.col(c).dt.strftime("%Y-%m-%dT%H:%M:%S") for c, t in frame.schema.items()
           if isinstance(t, pl.Datetime)]
    return frame.with_columns(iso)


def write_metrics_json(path: Path, head: dict[str, Any], tables: dict[str, Any]) -> None:
    """metrics.json: the head and the course-level file references through Python's json, each
    protocol-level table (a frame) by polars straight into the file."""
    with path.open("wb") as out:
        out.write(b"{\n")
        for i, (key, value) in enumerate({**head, **tables}.items()):
            out.write(json.dumps(key).encode("utf-8") + b": ")
            if isinstance(value, pl.DataFrame):
                _json_ready_frame(value).write_json(out)
            else:
                out.write(json.dumps(json_ready(value), ensure_ascii=False).encode("utf-8"))
            out.write(b",\n" if i < len(head) + len(tables) - 1 else b"\n")
        out.write(b"}\n")


def _csv_ready(frame: pl.DataFrame) -> pl.DataFrame:
    """CSV writes datetimes as ISO text without a zone; lists are not CSV-able, drop them."""
    return frame.select([c for c, t in frame.schema.items() if not isinstance(t, pl.List)])


def write_csv(frame: pl.DataFrame, out: BinaryIO, header: bool = True) -> None:
    # csv_cells: text cells a spreadsheet could run as a formula get a quote in front
    safe_frame(_csv_ready(frame)).write_csv(out, include_header=header,
                                            datetime_format=CSV_DATETIME)


def stream_rows(con: duckdb.DuckDBPyConnection, query: str, group: OutputGroup, csv_path: Path,
                parquet_path: Path) -> int:
    """The rows of `query` written to `csv_path` (polars' CSV format) and `parquet_path` (typed
    columns), temporary paths of `group`, in Arrow batches so memory stays bounded; returns the
    number of rows."""
    reader = con.sql(query).to_arrow_reader(BATCH_ROWS)
    rows = 0
    with group.writing(csv_path), csv_path.open("wb") as csv_out:
        with (group.writing(parquet_path), parquet_path.open("wb") as parquet_out,
              pq.ParquetWriter(parquet_out, reader.schema, compression="zstd") as parquet):
            for batch in reader:
                frame = pl.from_arrow(batch)
                assert isinstance(frame, pl.DataFrame)
                with group.writing(csv_path):
                    write_csv(frame, csv_out, header=rows == 0)
                parquet.write_batch(batch)
                rows += frame.height
        if rows == 0:
            empty = pl.from_arrow(reader.schema.empty_table())
            assert isinstance(empty, pl.DataFrame)
            write_csv(empty, csv_out)
    return rows


def write_files(con: duckdb.DuckDBPyConnection, summaries: Mapping[str, pl.DataFrame],
                run: dict[str, Any], config: Config, out_dir: Path,
                pseudonym_key: bytes | None) -> dict[str, Any]:
    """The files into out_dir: the course-level tables (ROW_TABLES) read from `con`, the
    protocol-level ones from `summaries`. All replace their targets together once the last is
    complete (pipeline/outputs.py), so a failure part way leaves the previous outputs as they
    were. Returns the metrics.json head, the protocol-level tables and the entry of each
    course-level file (its names and row count)."""
    queries = {name: row_query(name) for name in ROW_TABLES}
    if pseudonym_key is not None:
        define_pseudonym(con, pseudonym_key)
        queries = {name: pseudonymized(con, query) for name, query in queries.items()}
        run = {**run, "pseudonymized": "identifier columns are HMAC-SHA-256 pseudonyms "
                                       "(16 hex digits) under the clinic's key"}
    head = {
        "as_of": run["as_of"],
        "provenance": run,
        "definitions_in_force": config.definitions_in_force(),
        "methods": methods_sentences(config),
    }
    files = {}
    with atomic_paths() as group:
        for name, query in queries.items():
            entry = {"csv": f"{name}.csv", "parquet": f"{name}.parquet"}
            paths = (group.path(out_dir / entry["csv"]), group.path(out_dir / entry["parquet"]))
            files[name] = {**entry, "rows": stream_rows(con, query, group, *paths)}
        path = group.path(out_dir / "protocol_summary.csv")
        with group.writing(path), path.open("wb") as out:
            write_csv(summaries["protocol_summary"], out)
        path = group.path(out_dir / "metrics.json")
        tables = {name: files.get(name, summaries.get(name)) for name in METRIC_TABLES}
        with group.writing(path):
            write_metrics_json(path, head, tables)
    return {**head, **summaries, "files": files}


# ---------------------------------------------------------------------------------------------
# The two entry points


def write_metrics(results: Results, db_path: Path, out_dir: Path,
                  pseudonym_key: bytes | None = None) -> dict[str, Any]:
    """The metrics step of `outcomes run`: store the results' tables, then write the files."""
    check(int(results.input("session_count")["sessions"][0]), results.frames.courses.height,
          results.as_of, db_path)
    run = provenance(results.as_of, results.config, results.input("loads"))
    with writer_lock(db_path), tracking("metrics", stages=STAGES) as tracker:  # README "Running safely"
        tracker.stage(STORE)
        con = connect(db_path, results.config)
        try:
            store_tables(con, stored_tables(results), {}, run, db_path)
        finally:
            con.close()
        tracker.stage(WRITE)
        summaries = {name: frame for name, frame in results.tables.items()
                     if name not in ROW_TABLES}
        con = local_connection()
        try:
            for name in ROW_TABLES:
                con.register(name, results.tables[name])
            return write_files(con, summaries, run, results.config, out_dir, pseudonym_key)
        finally:
            con.close()


def run_metrics(db_path: str | Path, as_of: date, out_dir: Path, config: Config,
                pseudonym_key: bytes | None = None, load: int | None = None) -> dict[str, Any]:
    """`outcomes metrics`: compute as of `as_of` (on `load`), store, write the CSVs and metrics.json.

    Everything course-level stays in DuckDB: the outcome relations and course-level metric
    tables are temp tables on the connection, stored and written from there.
    pseudonym_key: when given, identifier columns in the written files are keyed pseudonyms
    (pipeline.pseudonyms); the database keeps the real ids.
    Returns the metrics.json head, the protocol-level tables and the course-level files.
    Raises InputError for a missing database or no data.
    """
    db_path = Path(db_path)
    if not db_path.is_file():
        raise InputError(f"database {db_path} not found; load an export first with "
                         f"`outcomes ingest DATA_DIR --db {db_path}`")
    with writer_lock(db_path), tracking("metrics", stages=STAGES) as tracker:  # README "Running safely"
        tracker.stage(OPEN)
        try:
            # writable: the schema is brought up to date (history tables) before `load` is pinned
            con = connect(db_path, config, load=load)
        except duckdb.Error as exc:
            raise InputError(f"{db_path} cannot be opened as a DuckDB database: {exc}") from exc
        try:
            inputs = read_inputs(con, NEEDS, as_of)  # refuses an as-of after the load's day
            sessions = int(inputs["session_count"]["sessions"][0])
            if sessions:
                tracker.stage(OUTCOMES)
                build_outcome_relations(con, as_of, config)
            courses = con.sql("SELECT count(*) FROM courses").fetchall()[0][0] if sessions else 0
            check(sessions, courses, as_of, db_path)
            tracker.stage(RATES)
            summaries = metric_tables(con)
            run = provenance(as_of, config, inputs["loads"])
            stored = {name: row_query(name) for name in ROW_TABLES}
            stored |= {table: outcome_query(name) for name, table in STORED_FRAMES.items()}
            tracker.stage(STORE)
            store_tables(con, summaries, stored, run, db_path)
            tracker.stage(WRITE)
            return write_files(con, summaries, run, config, out_dir, pseudonym_key)
        finally:
            con.close()
