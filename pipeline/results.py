"""The results step: the database read once, outcomes computed once, one object for every output
(docs/definitions.md "Where the results come from").

`read_results` opens the database read-only, once. When `outcomes metrics` stored its tables for
the same as-of day, the same load and the same configuration (the `metrics_runs` row: as_of,
load_id, and the config's SHA-256 and package version in its provenance), they are read back;
otherwise the outcomes are computed on the read-only connection and nothing is stored. Either
way every report receives the same `Results`, read on that one connection as of the same day.

A report reads only what it uses, and says what that is:
- `needs`: the rows of the canonical tables it prints (INPUTS, sql/reports/<name>.sql);
- `frames`: whether it needs the outcome frames whole (the payer packets, the metrics files);
- `tables`: the metric tables it reads (pipeline/metrics.py METRIC_TABLES), and of those only
  the `columns` it names (e.g. a course-level table without its identifiers);
- `readers`: its own queries over the outcome relations (a `Reader`), run on the open
  connection, so that DuckDB filters and aggregates the course, infusion and score rows and
  only what the report prints reaches Python (`Results.read`).
From stored results only those are read. When the outcomes are computed instead, a report
that reads no frame keeps the outcome relations in DuckDB (temporary tables, as `outcomes
metrics` does) and reads its tables and readers there; with the frames, they are computed whole
into memory (the metric tables over them on first use) and the readers run over them. The
readers' SQL is the same over any of the three, so a report's figures are too.

`outcomes run` builds one `Results` and hands it to the metrics files and to every report, so
the outcomes are computed once per run; `outcomes metrics` computes on its own (writable)
connection and stores what it computed, for the reports run after it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
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
from pipeline.metrics import (
    METRIC_TABLES,
    ROW_TABLES,
    compute_metrics,
    define_macros,
    metric_tables,
    row_query,
)
from pipeline.months import check_as_of
from pipeline.outcomes import (
    SCORE_ID_COLUMNS,
    OutcomeFrames,
    build_outcome_relations,
    compute_outcomes,
    define_settings,
    drop_outcome_relations,
)
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
INPUTS = ("protocols", "monthly_loads", "monthly_reject_reasons", "loads", "session_count",
          "patients", "payer_sessions", "treatment_history", "latest_data_day")

# The outcome relations a `Reader` finds on its connection, under the name `all_<frame>`:
# every row of the frame as of the results' day (views over the stored tables, or the frames in
# memory). The outcome settings (pipeline/outcomes.py define_settings) and the metrics macros are
# defined there too, and the canonical tables are those of the results' load.
FRAMES = ("course_infusions", "courses", "scores", "post_scores", "course_outcomes", "score_ids")

# A report's own reading of the outcome relations (see the module doc): called with the open
# connection, the as-of day and the config; what it returns is kept in `Results` for `read`.
Reader = Callable[[duckdb.DuckDBPyConnection, date, Config], Any]

# The as-of day: a date, or a rule that finds it on the open connection (e.g. the last day of
# the last complete month of the data, or the latest data day for a patient's packets).
AsOf = date | Callable[[duckdb.DuckDBPyConnection], date]


@dataclass
class Results:
    """Everything the outputs are built from, as of one day and one load."""

    as_of: date
    config: Config
    inputs: dict[str, pl.DataFrame]
    load_id: int | None  # the load the figures come from (`--load N`, or the latest)
    stored: bool  # read back from the tables `outcomes metrics` stored
    _frames: OutcomeFrames | None = field(default=None, repr=False)
    _tables: dict[str, pl.DataFrame] | None = field(default=None, repr=False)
    _read: dict[Reader, Any] = field(default_factory=dict, repr=False)

    @property
    def frames(self) -> OutcomeFrames:
        """The outcome frames, whole (read only when asked for, or computed)."""
        if self._frames is None:
            raise KeyError("results were read without the outcome frames; read them with "
                           "frames=True, or read what the report uses with a reader")
        return self._frames

    @property
    def tables(self) -> dict[str, pl.DataFrame]:
        """The metric tables: those read back, or all of them (pipeline.metrics.compute_metrics
        over the frames) computed on first use."""
        if self._tables is None:
            self._tables = compute_metrics(self.frames, self.config)
        return self._tables

    def input(self, name: str) -> pl.DataFrame:
        try:
            return self.inputs[name]
        except KeyError:
            raise KeyError(f"results were read without the input {name!r}; add it to the "
                           "report's NEEDS") from None

    def read(self, reader: Reader) -> Any:
        """What `reader` returned over these results (read by read_results)."""
        try:
            return self._read[reader]
        except KeyError:
            raise KeyError(f"results were read without the reader {reader.__name__}; add it to "
                           "the report's READERS") from None


def stored_tables(results: Results) -> dict[str, pl.DataFrame]:
    """The tables `outcomes metrics` stores: the metric tables and the outcome frames."""
    frames = {STORED_FRAMES[name]: getattr(results.frames, name) for name in STORED_FRAMES}
    return {**results.tables, **frames}


def stored_name(frame: str) -> str:
    """The stored table of an outcome frame (course_outcomes is a metric table itself)."""
    return STORED_FRAMES.get(frame, frame)


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
                    load: int | None = None, needs: Iterable[str] = (), frames: bool = True,
                    tables: Iterable[str] = METRIC_TABLES,
                    columns: Mapping[str, Sequence[str]] | None = None,
                    readers: Iterable[Reader] = ()) -> Results:
    """Compute the outcomes on `con` (nothing is stored) and read the inputs named in `needs`.
    With `frames`, the outcome frames are computed whole into memory (compute_outcomes) and the
    readers run over them; without, the outcome relations stay in DuckDB, as `outcomes metrics`
    keeps them, and only the metric tables in `tables` (their `columns`) and what the readers
    read reach Python. An as-of day after the day of the load `con` shows is an InputError
    (read_inputs)."""
    inputs = read_inputs(con, needs, as_of)
    load_id = _load_id(con, load)
    if not frames:
        return _compute_in_duckdb(con, as_of, config, load_id, inputs, tables, columns or {},
                                  readers)
    outcome_frames = compute_outcomes(con, as_of, config)
    results = Results(as_of, config, inputs, load_id, stored=False, _frames=outcome_frames)
    if readers:
        for name in FRAMES:
            con.register(f"all_{name}", getattr(outcome_frames, name))
        results._read = run_readers(con, readers, as_of, config)
        for name in FRAMES:
            con.unregister(f"all_{name}")
    return results


def _compute_in_duckdb(con: duckdb.DuckDBPyConnection, as_of: date, config: Config,
                       load_id: int | None, inputs: dict[str, pl.DataFrame], tables: Iterable[str],
                       columns: Mapping[str, Sequence[str]], readers: Iterable[Reader]) -> Results:
    """The outcome relations computed as temporary tables on `con`; the metric tables asked for
    computed over them (pipeline/metrics.py, as compute_metrics does over frames) and read; the
    relations then renamed all_<frame>, as the readers find them (and their period views take
    the relations' own names), score_ids a view; everything dropped at the end."""
    build_outcome_relations(con, as_of, config)
    renamed: list[str] = []
    try:
        wanted = [name for name in METRIC_TABLES if name in set(tables)]
        read: dict[str, pl.DataFrame] = {}
        if wanted:
            summaries = metric_tables(con)  # the course-level ones stay temp tables
            for name in wanted:
                query = row_query(name) if name in ROW_TABLES else None
                if query is not None and columns.get(name):
                    query = f"SELECT {', '.join(columns[name])} FROM ({query})"
                read[name] = con.sql(query).pl() if query else summaries[name]
        for name in FRAMES:  # our own relation names
            if name == "score_ids":
                con.execute(f"CREATE OR REPLACE TEMP VIEW all_{name} AS "
                            f"SELECT {SCORE_ID_COLUMNS} FROM course_scores")
            else:
                con.execute(f"ALTER TABLE temp.main.{name} RENAME TO all_{name}")
                renamed.append(f"all_{name}")
        results = Results(as_of, config, inputs, load_id, stored=False, _tables=read)
        # the settings of these relations are defined (build_outcome_relations), and the macros
        # too when a metric table was computed
        results._read = run_readers(con, readers, as_of, config, settings=False,
                                    macros=not wanted)
        return results
    finally:
        con.execute("DROP VIEW IF EXISTS temp.main.all_score_ids")
        for name in (*renamed, *(t for t in ROW_TABLES if t != "course_outcomes")):
            con.execute(f"DROP TABLE IF EXISTS temp.main.{name}")
        drop_outcome_relations(con)


def run_readers(con: duckdb.DuckDBPyConnection, readers: Iterable[Reader], as_of: date,
                config: Config, settings: bool = True, macros: bool = True
                ) -> dict[Reader, Any]:
    """Each reader over the relations `all_<frame>` on `con` (FRAMES), with the outcome
    settings and the metrics macros defined (here, unless `settings` or `macros` says they
    already are, as of `as_of` under `config`)."""
    readers = dict.fromkeys(readers)
    if readers and settings:
        define_settings(con, as_of, config)
    if readers and macros:
        define_macros(con)
    return {reader: reader(con, as_of, config) for reader in readers}


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
                 load_id: int | None, inputs: dict[str, pl.DataFrame], frames: bool,
                 tables: Iterable[str], columns: Mapping[str, Sequence[str]],
                 readers: Iterable[Reader]) -> Results:
    """The stored results: the metric tables in `tables` (all of them, whole, with `frames`),
    the outcome frames when asked for, and what the readers read over the stored tables."""
    names = METRIC_TABLES if frames else tuple(t for t in METRIC_TABLES if t in set(tables))
    if frames:
        columns = {}
    read = {name: con.sql(f"SELECT {', '.join(columns.get(name, ())) or '*'} "
                          f"FROM main.{name}").pl()  # our own table and column names
            for name in names}
    outcome_frames = None
    if frames:
        outcome_frames = OutcomeFrames(as_of=as_of, **{
            name: read[name] if name in read else
            con.sql(f"SELECT * FROM main.{stored_name(name)}").pl() for name in FRAMES})
    results = Results(as_of, config, inputs, load_id, stored=True, _frames=outcome_frames,
                      _tables=read)
    if readers:
        catalog = '"' + str(con.execute("SELECT current_database()").fetchall()[0][0]).replace(
            '"', '""') + '".main'  # the stored tables, never a temp view of the same name
        for name in FRAMES:
            con.execute(f"CREATE OR REPLACE TEMP VIEW all_{name} AS "
                        f"SELECT * FROM {catalog}.{stored_name(name)}")
        results._read = run_readers(con, readers, as_of, config)
    return results


def read_results(db_path: str | Path, config: Config, as_of: AsOf, load: int | None = None,
                 needs: Iterable[str] = (), frames: bool = True,
                 tables: Iterable[str] = METRIC_TABLES,
                 columns: Mapping[str, Sequence[str]] | None = None,
                 readers: Iterable[Reader] = ()) -> Results:
    """Open the database read-only once and return the results as of `as_of` (see module doc).

    needs: the inputs to read; frames: read the outcome frames whole; tables: the metric tables
    to read back, with only the `columns` named for a table (stored results; computed ones are
    all computed, whole, on first use); readers: the report's own queries over the outcome
    relations, kept for `Results.read`.
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
            return _read_stored(con, day, config, load_id, read_inputs(con, needs, day), frames,
                                tables, columns or {}, readers)
        return compute_results(con, day, config, load, needs, frames, tables, columns, readers)
    finally:
        con.close()
