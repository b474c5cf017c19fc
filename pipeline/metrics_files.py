"""The metrics outputs (`outcomes metrics`, and the metrics step of `outcomes run`): the metric
tables of a `Results` written as course_outcomes.csv, protocol_summary.csv and metrics.json, and
stored in DuckDB with the `metrics_runs` row that lets later reports read them instead of
computing again (pipeline/results.py).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

import pipeline
from pipeline.config import Config
from pipeline.csv_cells import write_frame
from pipeline.db import connect, writer_lock
from pipeline.errors import InputError
from pipeline.formatting import json_ready
from pipeline.methods import methods_sentences
from pipeline.outputs import atomic_path
from pipeline.pseudonyms import pseudonymize
from pipeline.results import Results, compute_results, stored_tables

CSV_DATETIME = "%Y-%m-%dT%H:%M:%S"
NEEDS = ("loads", "session_count")  # the inputs of the metrics outputs (pipeline/results.py)


def provenance(results: Results) -> dict[str, Any]:
    # The wall-clock loaded_at stays in the database's `loads` log; outputs carry only what
    # the export determines, so the same export gives byte-identical outputs.
    loads = results.input("loads").sort("load_id", "file")
    return {
        "as_of": results.as_of.isoformat(),
        # the load the figures come from (`--load N`, or the latest)
        "load_id": loads["load_id"].max() if loads.height else None,
        "package_version": pipeline.__version__,
        "config": {"path": results.config.source, "sha256": results.config.sha256},
        "inputs": json_ready(loads.to_dicts()),
    }


def check(results: Results, db_path: Path) -> None:
    """InputError when there is nothing to compute: no sessions, or no infusion by as-of."""
    if int(results.input("session_count")["sessions"][0]) == 0:
        raise InputError(f"{db_path} holds no sessions; load an export with `outcomes ingest`")
    if results.frames.courses.height == 0:
        raise InputError(f"{db_path} has no administered infusion on or before "
                         f"{results.as_of.isoformat()}; choose a later --as-of")


def store_tables(con: duckdb.DuckDBPyConnection, tables: dict[str, pl.DataFrame],
                 run: dict[str, Any]) -> None:
    """Replace the stored tables in DuckDB in one transaction."""
    con.execute("BEGIN TRANSACTION")
    try:
        for name, frame in tables.items():
            con.register("metrics_frame", frame.to_arrow())
            # `name` is one of our own table names (see stored_tables), never input data.
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM metrics_frame")
            con.unregister("metrics_frame")
        con.execute("CREATE OR REPLACE TABLE metrics_runs (as_of DATE, load_id INTEGER, "
                    "provenance JSON)")
        con.execute("INSERT INTO metrics_runs VALUES (?, ?, ?)",
                    [date.fromisoformat(run["as_of"]), run["load_id"], json.dumps(run)])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def _json_ready_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """ISO date-times as text; polars writes NaN as null and dates as ISO already."""
    iso = [pl.col(c).dt.strftime("%Y-%m-%dT%H:%M:%S") for c, t in frame.schema.items()
           if isinstance(t, pl.Datetime)]
    return frame.with_columns(iso)


def write_metrics_json(path: Path, head: dict[str, Any], tables: dict[str, pl.DataFrame]) -> None:
    """metrics.json streamed to disk: the small head through Python's json, each row table by
    polars straight into the file (at registry scale the tables are gigabytes of JSON, which
    must never be held as one string)."""
    with path.open("wb") as out:
        out.write(b"{\n")
        for key, value in head.items():
            text = json.dumps(key) + ": " + json.dumps(json_ready(value), ensure_ascii=False)
            out.write(text.encode("utf-8") + b",\n")
        for i, (name, frame) in enumerate(tables.items()):
            out.write(json.dumps(name).encode("utf-8") + b": ")
            _json_ready_frame(frame).write_json(out)
            out.write(b",\n" if i < len(tables) - 1 else b"\n")
        out.write(b"}\n")


def _csv_ready(frame: pl.DataFrame) -> pl.DataFrame:
    """CSV writes datetimes as ISO text without a zone; lists are not CSV-able, drop them."""
    return frame.select([c for c, t in frame.schema.items() if not isinstance(t, pl.List)])


def write_files(results: Results, run: dict[str, Any], out_dir: Path,
                pseudonym_key: bytes | None) -> dict[str, Any]:
    """course_outcomes.csv, protocol_summary.csv and metrics.json into out_dir; returns the
    metrics.json head and the tables (with the real ids)."""
    tables = results.tables
    written = tables
    if pseudonym_key is not None:
        written = {name: pseudonymize(frame, pseudonym_key) for name, frame in tables.items()}
        run = {**run, "pseudonymized": "identifier columns are HMAC-SHA-256 pseudonyms "
                                       "(16 hex digits) under the clinic's key"}
    for name in ("course_outcomes", "protocol_summary"):
        with atomic_path(out_dir / f"{name}.csv") as path:
            write_frame(_csv_ready(written[name]), path, CSV_DATETIME)  # csv_cells: no formulas
    head = {
        "as_of": results.as_of.isoformat(),
        "provenance": run,
        "definitions_in_force": results.config.definitions_in_force(),
        "methods": methods_sentences(results.config),
    }
    with atomic_path(out_dir / "metrics.json") as path:
        write_metrics_json(path, head, written)
    return {**head, **tables}


def write_metrics(results: Results, db_path: Path, out_dir: Path,
                  pseudonym_key: bytes | None = None) -> dict[str, Any]:
    """The metrics step of `outcomes run`: store the results' tables, then write the files."""
    check(results, db_path)
    run = provenance(results)
    with writer_lock(db_path):  # README "Running safely"
        con = connect(db_path, results.config)
        try:
            store_tables(con, stored_tables(results), run)
        finally:
            con.close()
    return write_files(results, run, out_dir, pseudonym_key)


def run_metrics(db_path: str | Path, as_of: date, out_dir: Path, config: Config,
                pseudonym_key: bytes | None = None, load: int | None = None) -> dict[str, Any]:
    """`outcomes metrics`: compute as of `as_of` (on `load`), store, write the CSVs and metrics.json.

    pseudonym_key: when given, identifier columns in the written files are keyed pseudonyms
    (pipeline.pseudonyms); the database and the returned frames keep the real ids.
    Returns the metrics.json head and the tables as polars frames. Raises InputError for a
    missing database or no data.
    """
    db_path = Path(db_path)
    if not db_path.is_file():
        raise InputError(f"database {db_path} not found; load an export first with "
                         f"`outcomes ingest DATA_DIR --db {db_path}`")
    with writer_lock(db_path):  # README "Running safely"
        try:
            # writable: the schema is brought up to date (history tables) before `load` is pinned
            con = connect(db_path, config, load=load)
        except duckdb.Error as exc:
            raise InputError(f"{db_path} cannot be opened as a DuckDB database: {exc}") from exc
        try:
            results = compute_results(con, as_of, config, load, NEEDS)
            check(results, db_path)
            run = provenance(results)
            store_tables(con, stored_tables(results), run)
        finally:
            con.close()
    return write_files(results, run, out_dir, pseudonym_key)
