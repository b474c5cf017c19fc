"""The results step: the database read once, outcomes computed once, one object for every output
(docs/definitions.md "Results").

`read_results` opens the database read-only, once. When `outcomes metrics` stored its tables for
the same as-of day, the same load and the same configuration (the `metrics_runs` row: as_of,
load_id, and the config's SHA-256 and package version in its provenance), they are read back;
otherwise the outcomes are computed on the read-only connection and nothing is stored. Either
way every report receives the same `Results`: the outcome frames, the metric tables over them,
and the rows of the canonical tables a report prints (protocol names, sessions, loads, ...),
read on that one connection as of the same day.

`outcomes run` builds one `Results` and hands it to the metrics files and to every report, so
the outcomes are computed once per run; `outcomes metrics` computes on its own (writable)
connection and stores what it computed, for the reports run after it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

import pipeline
from pipeline.config import Config
from pipeline.db import connect, latest_load
from pipeline.errors import InputError
from pipeline.metrics import METRIC_TABLES, compute_metrics
from pipeline.months import check_as_of
from pipeline.outcomes import OutcomeFrames, compute_outcomes
from pipeline.paths import sql

# The outcome frames besides course_outcomes, stored beside the metric tables under these names
# (course_outcomes is a metric table itself).
STORED_FRAMES = {
    "course_infusions": "outcome_course_infusions",
    "courses": "outcome_courses",
    "scores": "outcome_scores",
    "post_scores": "outcome_post_scores",
    "score_ids": "outcome_score_ids",
}

# Rows of the canonical tables the outputs print, each read by sql/reports/<name>.sql (a query
# may use the bound parameter $as_of). A report names the ones it needs.
INPUTS = ("protocols", "monthly_sessions", "monthly_loads", "monthly_reject_reasons", "loads",
          "session_count", "patients", "payer_sessions", "treatment_history", "latest_data_day")

# The as-of day: a date, or a rule that finds it on the open connection (e.g. the last day of
# the last complete month of the data, or the latest data day for a patient's packets).
AsOf = date | Callable[[duckdb.DuckDBPyConnection], date]


@dataclass
class Results:
    """Everything the outputs are built from, as of one day and one load."""

    as_of: date
    config: Config
    frames: OutcomeFrames
    inputs: dict[str, pl.DataFrame]
    load_id: int | None  # the load the figures come from (`--load N`, or the latest)
    stored: bool  # read back from the tables `outcomes metrics` stored
    _tables: dict[str, pl.DataFrame] | None = field(default=None, repr=False)

    @property
    def tables(self) -> dict[str, pl.DataFrame]:
        """The metric tables (pipeline.metrics.compute_metrics), computed on first use."""
        if self._tables is None:
            self._tables = compute_metrics(self.frames, self.config)
        return self._tables

    def input(self, name: str) -> pl.DataFrame:
        try:
            return self.inputs[name]
        except KeyError:
            raise KeyError(f"results were read without the input {name!r}; add it to the "
                           "report's NEEDS") from None


def stored_tables(results: Results) -> dict[str, pl.DataFrame]:
    """The tables `outcomes metrics` stores: the metric tables and the outcome frames."""
    frames = {STORED_FRAMES[name]: getattr(results.frames, name) for name in STORED_FRAMES}
    return {**results.tables, **frames}


def read_inputs(con: duckdb.DuckDBPyConnection, names: Iterable[str], as_of: date
                ) -> dict[str, pl.DataFrame]:
    """The report inputs `names` as of `as_of`. Every reader of the database comes through here
    first: an as-of day after the day of the load `con` shows is an InputError
    (months.check_as_of), before anything is computed or written."""
    check_as_of(con, as_of)
    frames = {}
    for name in dict.fromkeys(names):
        if name not in INPUTS:
            raise ValueError(f"unknown report input {name!r}")
        query = sql(f"reports/{name}.sql")
        params = {"as_of": as_of} if "$as_of" in query else None
        frames[name] = con.sql(query, params=params).pl()
    return frames


def compute_results(con: duckdb.DuckDBPyConnection, as_of: date, config: Config,
                    load: int | None = None, needs: Iterable[str] = ()) -> Results:
    """Compute the outcomes on `con` (nothing is stored) and read the inputs named in `needs`.
    An as-of day after the day of the load `con` shows is an InputError (read_inputs)."""
    inputs = read_inputs(con, needs, as_of)
    frames = compute_outcomes(con, as_of, config)
    return Results(as_of, config, frames, inputs, _load_id(con, load), stored=False)


def _load_id(con: duckdb.DuckDBPyConnection, load: int | None) -> int | None:
    return load if load is not None else latest_load(con)


def stored_run(con: duckdb.DuckDBPyConnection) -> tuple[date, int | None, dict[str, Any]] | None:
    names = {row[0] for row in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
        "AND database_name = current_database()").fetchall()}
    needed = {"metrics_runs", "course_outcomes", *STORED_FRAMES.values()}
    if not needed <= names:
        return None
    rows = con.execute("SELECT as_of, load_id, provenance FROM metrics_runs").fetchall()
    if len(rows) != 1:
        return None
    as_of, load_id, provenance = rows[0]
    return as_of, load_id, json.loads(provenance) if isinstance(provenance, str) else provenance


def matches(run: tuple[date, int | None, dict[str, Any]] | None, as_of: date,
            load_id: int | None, config: Config) -> bool:
    """Whether stored results were computed as of this day, on this load, under this config
    (its SHA-256; None for the built-in defaults) by this version of the package."""
    if run is None:
        return False
    stored_as_of, stored_load, provenance = run
    return (stored_as_of == as_of and stored_load == load_id
            and provenance.get("config", {}).get("sha256") == config.sha256
            and provenance.get("package_version") == pipeline.__version__)


def _read_stored(con: duckdb.DuckDBPyConnection, as_of: date, config: Config,
                 load_id: int | None, inputs: dict[str, pl.DataFrame]) -> Results:
    tables = {name: con.sql(f"SELECT * FROM main.{name}").pl()  # our own table names
              for name in METRIC_TABLES}
    frames = {name: con.sql(f"SELECT * FROM main.{table}").pl()
              for name, table in STORED_FRAMES.items()}
    outcome_frames = OutcomeFrames(as_of=as_of, course_outcomes=tables["course_outcomes"],
                                   **frames)
    return Results(as_of, config, outcome_frames, inputs, load_id, stored=True, _tables=tables)


def read_results(db_path: str | Path, config: Config, as_of: AsOf, load: int | None = None,
                 needs: Iterable[str] = ()) -> Results:
    """Open the database read-only once and return the results as of `as_of` (see module doc).

    Raises InputError for a missing or unreadable database file.
    """
    db_path = Path(db_path)
    if not db_path.is_file():
        raise InputError(f"database {db_path} not found; load an export first with "
                         f"`outcomes ingest DATA_DIR --db {db_path}`")
    try:
        con = connect(db_path, config, read_only=True, load=load)
    except duckdb.Error as exc:
        raise InputError(f"{db_path} cannot be opened as a DuckDB database: {exc}") from exc
    try:
        day = as_of if isinstance(as_of, date) else as_of(con)
        load_id = _load_id(con, load)
        if matches(stored_run(con), day, load_id, config):
            return _read_stored(con, day, config, load_id, read_inputs(con, needs, day))
        return compute_results(con, day, config, load, needs)
    finally:
        con.close()
