"""Opening the DuckDB system-of-record file: settings, schema, and a clear lock message."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
from collections.abc import Iterator
from pathlib import Path

import duckdb

from pipeline.config import Config
from pipeline.errors import InputError
from pipeline.paths import SQL_DIR, sql


class DatabaseBusy(Exception):
    """Another process holds the database file."""


def _busy(db_path: str | Path) -> DatabaseBusy:
    return DatabaseBusy(f"{db_path} is in use by another process (a load or report is running); "
                        "wait for it to finish and try again")


_WRITERS: dict[str, list[int]] = {}  # folder -> [fd, depth] held by this process


@contextlib.contextmanager
def writer_lock(db_path: str | Path) -> Iterator[None]:
    """Hold the right to write databases in db_path's folder for the duration (README "Running
    safely").

    DuckDB reads a database's header before it takes its own file lock, so a second writer
    starting just as the first commits could work from the old header and overwrite that
    commit. Every writer therefore first takes an exclusive flock on the database's folder (no
    extra file is created; the lock ends with the process). Re-entrant within a process, so
    `outcomes run` can hold it across ingest and metrics. A second writer gets DatabaseBusy at
    once; readers are not affected.
    """
    folder = Path(db_path).resolve().parent
    folder.mkdir(parents=True, exist_ok=True)
    key = str(folder)
    held = _WRITERS.get(key)
    if held is not None:
        held[1] += 1
        try:
            yield
        finally:
            held[1] -= 1
        return
    fd = os.open(key, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise _busy(db_path) from None
    _WRITERS[key] = [fd, 1]
    try:
        yield
    finally:
        del _WRITERS[key]
        os.close(fd)  # closing the descriptor releases the flock


# Extensions cannot be downloaded here: DuckDB never tries at query time (every database the
# pipeline opens, on file or in memory).
OFFLINE = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def quiet_duckdb(con: duckdb.DuckDBPyConnection) -> None:
    """No progress bar of DuckDB's own: it would print even into a file or a pipe. The
    pipeline's display (pipeline/progress.py) shows long work on a terminal instead."""
    con.execute("SET enable_progress_bar = false")


def connect(
    db_path: str | Path, config: Config, read_only: bool = False, load: int | None = None
) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the database with offline-safe settings and the canonical schema.

    load: show the database as it stood right after that load (`--load N`, README "Exports
    over time"): the canonical tables, loads, rejects and changes are shadowed by temp views.
    None, or the latest load, reads the stored tables themselves.
    """
    settings: dict[str, str | bool | int | float | list[str]] = dict(OFFLINE)
    if config.database.memory_limit:
        settings["memory_limit"] = config.database.memory_limit
    if config.database.temp_directory:
        settings["temp_directory"] = config.database.temp_directory
    if config.database.threads:
        settings["threads"] = config.database.threads
    fresh = not Path(db_path).exists()
    if not read_only:
        Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(db_path), read_only=read_only, config=settings)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise _busy(db_path) from exc
        raise
    quiet_duckdb(con)
    if not read_only:
        _create_schema(con, fresh)
    if load is not None:
        try:
            pin_load(con, load, db_path)
        except BaseException:
            con.close()
            raise
    return con


# The catalog entries of the canonical schema: every column of its tables and views, each view's
# definition, its sequences.
_CATALOG = """
SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns()
WHERE database_name = current_database()
UNION ALL
SELECT schema_name, view_name, sql, NULL FROM duckdb_views()
WHERE database_name = current_database() AND NOT internal
UNION ALL
SELECT schema_name, sequence_name, NULL, NULL FROM duckdb_sequences()
WHERE database_name = current_database()
"""


@functools.cache
def _schema() -> tuple[tuple[str, bool], ...]:
    """The statements of sql/schema/*.sql in order, each with whether it only declares an
    object (CREATE … IF NOT EXISTS, CREATE OR REPLACE VIEW, ALTER … ADD COLUMN IF NOT EXISTS)."""
    declaring = {duckdb.StatementType.CREATE, duckdb.StatementType.ALTER}
    return tuple((statement.query, statement.type in declaring)
                 for schema_file in sorted((SQL_DIR / "schema").glob("*.sql"))
                 for statement in duckdb.extract_statements(schema_file.read_text(encoding="utf-8")))


@functools.cache
def _schema_catalog() -> frozenset[tuple]:
    """What the schema declares, as _CATALOG lists it, built once per process in memory."""
    con = duckdb.connect(":memory:")
    try:
        for query, _ in _schema():
            run(con, query)
        return frozenset(con.execute(_CATALOG).fetchall())
    finally:
        con.close()


def _create_schema(con: duckdb.DuckDBPyConnection, fresh: bool) -> None:
    """Run sql/schema/*.sql. In a database that already holds every object the schema declares,
    as it declares it, those statements would change nothing: one catalog query stands in for
    them, and only the others (the update of legacy `loads` rows) run."""
    statements = _schema()
    if not fresh and _schema_catalog() <= set(con.execute(_CATALOG).fetchall()):
        statements = tuple(s for s in statements if not s[1])
    for query, _ in statements:
        run(con, query)


def latest_load(con: duckdb.DuckDBPyConnection) -> int | None:
    """The newest load_id in the database (None before the first load)."""
    return con.execute("SELECT max(load_id) FROM main.loads").fetchall()[0][0]


def pin_load(con: duckdb.DuckDBPyConnection, load: int, db_path: str | Path) -> None:
    """Make `con` read the database as it stood right after `load` (README "Exports over time")."""
    latest = latest_load(con)
    if latest is None:
        raise InputError(f"{db_path} holds no load yet; load an export with `outcomes ingest`")
    if not 1 <= load <= latest:
        raise InputError(f"--load {load}: {db_path} has loads 1 to {latest}; choose one of them")
    if load == latest:
        return  # the stored tables are the state after the latest load
    has_history = con.execute(
        "SELECT count(*) FROM duckdb_schemas() WHERE schema_name = 'history' "
        "AND database_name = current_database()"
    ).fetchall()[0][0]
    if not has_history:
        raise InputError(f"{db_path} was written before load history existed; run `outcomes "
                         "ingest` (or `outcomes metrics`) on it once to add the history tables")
    catalog = con.execute("SELECT current_database()").fetchall()[0][0]
    quoted = '"' + str(catalog).replace('"', '""') + '"'  # an identifier, not a value
    run(con, "CREATE OR REPLACE TEMP TABLE pinned_load AS SELECT $load::INTEGER AS load_id",
        {"load": load})
    run(con, sql("history/pin_load.sql").replace("__store__", quoted))


def _execute(con: duckdb.DuckDBPyConnection, query: str, params: dict | list | None
             ) -> duckdb.DuckDBPyConnection:
    return con.execute(query, params) if params is not None else con.execute(query)


def run(con: duckdb.DuckDBPyConnection, query: str, params: dict | list | None = None) -> None:
    """Execute statements that return no rows (DuckDB 2 keeps a result open until completed)."""
    _execute(con, query, params).complete()


def changed(con: duckdb.DuckDBPyConnection, query: str, params: dict | list | None = None) -> int:
    """Execute one statement that writes rows (INSERT, UPDATE, DELETE, CREATE TABLE … AS);
    returns how many it wrote, so that no count query has to follow."""
    rows = _execute(con, query, params).fetchall()
    return int(rows[0][0]) if rows else 0
