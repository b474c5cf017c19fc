"""Faults during a snapshot load (README "Exports over time"): a SIGKILL while corrections and
retirements are applied leaves the database exactly as before or as after the load, history
and `changes` included. Real `outcomes` subprocesses, real DuckDB files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.demo.revisions import revise_export
from tests.conftest import cli
from tests.process_helpers import fingerprint, kill_a_load_in_each_phase
from tests.test_faults import outcomes


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """Export 1 loaded (before), and its corrected month-later snapshot applied (after). Made in
    this process: the processes under test are the ones each test starts."""
    root = tmp_path_factory.mktemp("snapshot-faults")
    first, second = root / "first", root / "second"
    assert cli("demo", first, "--patients", "2500", "--seed", "2").exit_code == 0
    revise_export(first, second, seed=3)
    before = root / "before.duckdb"
    assert cli("ingest", first, "--db", before).exit_code == 0
    after = root / "after.duckdb"
    shutil.copy(before, after)
    done = cli("ingest", second, "--db", after)
    assert done.exit_code == 0, done.output
    assert "retired" in done.stdout
    return {"root": root, "second": second, "before": before, "after": after}


def test_a_snapshot_load_killed_in_each_phase_leaves_the_database_before_or_after(snapshots):
    before, after = fingerprint(snapshots["before"]), fingerprint(snapshots["after"])
    assert before != after
    assert after["changes"][0] > 0 and after["history.sessions_retired"][0] > 0
    # Killed in start-up, in the corrections (sessions.csv's rows merged), in the retirements
    # (the sessions the snapshot no longer holds moved to history), in the validation of the
    # largest file, in the commit, and after the load ended (tests/process_helpers.py).
    seen = kill_a_load_in_each_phase(
        snapshots["second"], snapshots["before"], snapshots["after"],
        snapshots["root"] / "kill.duckdb",
        (r"^ingest: sessions\.csv: [\d,]+ rows read; merging$",
         r"^ingest: sessions: retiring the rows the export no longer holds$",
         r"^ingest: assessments\.csv: checking every row$", r"^ingest: committing$"))
    assert "before" in seen and "after" in seen, seen


def test_the_same_snapshot_applied_again_changes_nothing(snapshots):
    db = snapshots["root"] / "again.duckdb"  # type: ignore[operator]
    shutil.copy(snapshots["after"], db)  # type: ignore[arg-type]
    done = cli("ingest", snapshots["second"], "--db", db)  # a rule of loads: in this process
    assert done.exit_code == 0, done.output
    state, after = fingerprint(db), fingerprint(snapshots["after"])  # type: ignore[arg-type]
    for table in state:
        if table not in ("loads", "rejects"):  # the repeated load is logged, with its rejects
            assert state[table] == after[table], table


def test_a_writer_is_refused_while_another_holds_the_folder_lock(snapshots):
    """DuckDB reads the header before its own lock; writers first lock the database's folder
    (pipeline.db.writer_lock), so a second writer can never start in that gap."""
    import fcntl
    import os

    db = snapshots["root"] / "locked.duckdb"  # type: ignore[operator]
    shutil.copy(snapshots["before"], db)  # type: ignore[arg-type]
    before = fingerprint(db)
    fd = os.open(db.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a first writer would hold it
        for args in (("ingest", snapshots["second"], "--db", db),
                     ("metrics", "--db", db, "--as-of", "2026-09-30", "--out",
                      db.parent / "locked-out")):
            result = outcomes(*args)  # type: ignore[arg-type]
            assert result.returncode == 1, result.stderr
            assert "is in use by another process" in result.stderr
        # readers are not held up (every report reads through one read-only connection,
        # pipeline.results.read_results: the one-packet report is the quickest of them)
        report = outcomes("report", "payer", "--db", db, "--patient", "P00001", "--jobs", "1",
                          "--out", db.parent / "locked-reports")
        assert report.returncode == 0, report.stderr
    finally:
        os.close(fd)
    assert fingerprint(db) == before
    assert outcomes("ingest", snapshots["second"], "--db", db).returncode == 0  # type: ignore[arg-type]
