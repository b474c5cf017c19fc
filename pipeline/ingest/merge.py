"""What one validated export file does to its canonical table (README "Exports over time").

A snapshot file makes the table equal to it: rows are added, corrected (new values win),
left unchanged, or retired (no longer in the file); `--append` adds and corrects only. Every
superseded or retired version moves to `history.<table>_retired`, and each correction and
retirement is listed in `changes`. The SQL is in sql/merge/ and sql/load/; this module runs it
in order on a file's validated rows (temp table typed, sql/validate/).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from pipeline.db import changed, run
from pipeline.ingest.contract import CONTRACTS, TableContract
from pipeline.ingest.readers import Staged
from pipeline.paths import sql


@dataclass(frozen=True)
class MergeCounts:
    """The fate of one file's rows."""

    added: int
    corrected: int
    unchanged: int
    duplicates: int
    rejected: int


def absent_columns(contract: TableContract, staged: Staged) -> list[str]:
    """Optional columns the file lacks: matched rows keep their earlier values there."""
    absent = [c for c in contract.optional
              if c not in staged.columns.positions and c != contract.id_column]
    if contract.has_items and not staged.columns.items:
        absent.append("items")
    return absent


def _table(name: str) -> str:
    if name not in CONTRACTS:  # the name is substituted into SQL: only our own table names
        raise ValueError(f"not a canonical table: {name!r}")
    return name


def keep_absent_values(con: duckdb.DuckDBPyConnection, contract: TableContract,
                       absent: list[str]) -> None:
    """Copy the current values of absent columns into the file's rows of the same id.

    An export that drops a column must not erase its data. Item scores are kept only where the
    total is unchanged: a corrected total with the earlier items would no longer add up.
    """
    if not absent:
        return
    table, id_column = _table(contract.name), contract.id_column
    values = {c: ("CASE WHEN cur.total_score = typed.total_score THEN cur.items END"
                  if c == "items" else f"cur.{c}") for c in absent}
    sets = ", ".join(f"{c} = {v}" for c, v in values.items())
    # Column names come from the contract (our own identifiers), never from the input.
    run(con, f"UPDATE typed SET {sets} FROM {table} cur WHERE typed.__id = cur.{id_column}")
    run(con, sql("merge/rehash.sql"))


def define_existing(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """View existing: the table's current rows as validation matches them (sql/existing/)."""
    run(con, sql(f"existing/{_table(name)}.sql"))


def start_table(con: duckdb.DuckDBPyConnection, name: str) -> int:
    """Before the first file of a table: its current row count (derived patients aside)."""
    table = _table(name)
    run(con, "CREATE OR REPLACE TEMP TABLE seen_rows (__rowid BIGINT)")
    return int(con.execute(
        f"SELECT count(*) FROM {table} WHERE NOT coalesce(source = 'derived', false)"
        if table == "patients" else f"SELECT count(*) FROM {table}").fetchall()[0][0])


def merge_file(con: duckdb.DuckDBPyConnection, contract: TableContract,
               absent: list[str]) -> MergeCounts:
    """Classify one file's validated rows (temp table typed) against the table's current rows
    (view existing) and apply them.

    A file whose table is empty and whose keys are all distinct (a first load) matches nothing
    and repeats nothing: each valid line is added, and the classification is not run. Steps
    that cannot change anything (no reject, no superseded version) are left out too.
    """
    table = _table(contract.name)
    keep_absent_values(con, contract, absent)
    valid, current = con.execute(
        "SELECT (SELECT count(*) FROM typed WHERE __problems IS NULL), "
        f"(SELECT count(*) FROM {table})").fetchall()[0]
    repeats = changed(con, sql("merge/repeat_keys.sql"))
    if not current and not repeats:
        return _add_all(con, table, int(valid))
    define_existing(con, table)
    if repeats:
        run(con, sql("merge/repeats.sql"))
    else:  # no line to compare with another
        run(con, "CREATE OR REPLACE TEMP TABLE repeat_status "
                 "(__line BIGINT, id_lines VARCHAR, repeat_same BOOLEAN)")
    run(con, sql("merge/classify.sql"))
    row = con.execute(sql("merge/counts.sql")).fetchall()[0]
    counts = MergeCounts(*(int(v) for v in row[:5]))
    left_out, superseded = (int(v) for v in row[5:])
    if counts.rejected:
        run(con, sql("load/rejects.sql"))
    if superseded:
        run(con, sql("merge/changes.sql"))
        move_to_history(con, table, "superseded")
    _insert(con, table, int(valid), left_out)
    return counts


def _add_all(con: duckdb.DuckDBPyConnection, table: str, valid: int) -> MergeCounts:
    """Every valid line is added; the others are rejected, as classify.sql would judge them
    with no current row to match and no key repeated (row_status and kept empty)."""
    rejected = int(con.execute(
        "SELECT count(DISTINCT line) FROM (SELECT line FROM stage_rejects "
        "UNION ALL SELECT __line FROM typed WHERE __problems IS NOT NULL)").fetchall()[0][0])
    if rejected:
        run(con, sql("merge/nothing_matched.sql"))
        run(con, sql("load/rejects.sql"))
    if valid:
        run(con, sql("load/insert.sql").replace("__table__", table).replace("__chosen__", "true"))
    return MergeCounts(valid, 0, 0, 0, rejected)


def _insert(con: duckdb.DuckDBPyConnection, table: str, valid: int, left_out: int) -> None:
    """The file's added and corrected rows into the table, in file order, without a sort."""
    most = 2 * left_out < valid  # most valid lines are inserted: mark the few left out
    run(con, sql("load/mark_inserts.sql").replace("__mark__", "left out" if most else "inserted"))
    chosen = f"coalesce(__insert, {'true' if most else 'false'})"
    run(con, sql("load/insert.sql").replace("__table__", table).replace("__chosen__", chosen))


def retire_absent(con: duckdb.DuckDBPyConnection, name: str) -> int:
    """Snapshot: retire the table's rows that no file of this load holds; returns how many."""
    table = _table(name)
    define_existing(con, table)
    retiring = changed(con, sql("merge/retiring.sql"))
    if retiring:
        run(con, sql("merge/retire.sql").replace("__table__", table))
        move_to_history(con, table, "retiring")
    return retiring


HISTORY_ROWS = ("superseded", "retiring", "derived_retiring")  # temp tables of rowids to move


def move_to_history(con: duckdb.DuckDBPyConnection, table: str, rows: str) -> None:
    """Move the rows of `table` whose rowid is in temp table `rows` into its history table."""
    if rows not in HISTORY_ROWS:
        raise ValueError(f"not a temp table of rows to move: {rows!r}")  # substituted into SQL
    run(con, sql("merge/to_history.sql").replace("__table__", _table(table))
        .replace("__rows__", rows))
