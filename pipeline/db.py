"""Opening the DuckDB system-of-record file: settings, schema, and a clear lock message."""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipeline.config import Config
from pipeline.paths import SQL_DIR


class DatabaseBusy(Exception):
    """Another process holds the database file."""


def connect(
    db_path: str | Path, config: Config, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the database with offline-safe settings and the canonical schema."""
    settings: dict[str, str | bool | int | float | list[str]] = {
        # Extensions cannot be downloaded here; never try at query time.
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    if config.database.memory_limit:
        settings["memory_limit"] = config.database.memory_limit
    if config.database.temp_directory:
        settings["temp_directory"] = config.database.temp_directory
    if config.database.threads:
        settings["threads"] = config.database.threads
    if not read_only:
        Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(db_path), read_only=read_only, config=settings)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise DatabaseBusy(
                f"{db_path} is in use by another process (a load or report is running); "
                "wait for it to finish and try again"
            ) from exc
        raise
    if not read_only:
        for schema_file in sorted((SQL_DIR / "schema").glob("*.sql")):
            run(con, schema_file.read_text(encoding="utf-8"))
    return con


def run(con: duckdb.DuckDBPyConnection, query: str, params: dict | list | None = None) -> None:
    """Execute statements that return no rows (DuckDB 2 keeps a result open until completed)."""
    result = con.execute(query, params) if params is not None else con.execute(query)
    result.complete()
