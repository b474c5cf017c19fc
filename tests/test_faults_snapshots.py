"""Faults during a snapshot load (README "Exports over time"): a SIGKILL while corrections and
retirements are applied leaves the database exactly as before or as after the load, history
and `changes` included. Real `outcomes` subprocesses, real DuckDB files."""

from __future__ import annotations

import random
import shutil
import signal
import time
from pathlib import Path

import pytest

from pipeline.demo.revisions import revise_export
from tests.test_faults import fingerprint, outcomes, start


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory) -> dict[str, Path | float]:  # type: ignore[no-untyped-def]
    """Export 1 loaded (before), and its corrected month-later snapshot applied (after)."""
    root = tmp_path_factory.mktemp("snapshot-faults")
    first, second = root / "first", root / "second"
    assert outcomes("demo", first, "--patients", "2500", "--seed", "2").returncode == 0
    revise_export(first, second, seed=3)
    before = root / "before.duckdb"
    assert outcomes("ingest", first, "--db", before).returncode == 0
    after = root / "after.duckdb"
    shutil.copy(before, after)
    began = time.monotonic()
    done = outcomes("ingest", second, "--db", after)
    seconds = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    assert "retired" in done.stdout
    return {"root": root, "second": second, "before": before, "after": after,
            "seconds": seconds}


def test_a_snapshot_load_killed_at_random_points_leaves_the_database_before_or_after(snapshots):
    before, after = fingerprint(snapshots["before"]), fingerprint(snapshots["after"])  # type: ignore[arg-type]
    assert before != after
    assert after["changes"][0] > 0 and after["history.sessions_retired"][0] > 0
    seconds = float(snapshots["seconds"])  # type: ignore[arg-type]
    rng = random.Random(13)
    # The last point waits for the load to end (a kill then finds nothing to stop): a
    # fixed sleep could still land before the commit on a loaded machine.
    delays: list[float | None] = [*sorted(rng.uniform(0.1, 1.0) * seconds for _ in range(5)), None]
    seen = []
    for i, delay in enumerate(delays):
        db = snapshots["root"] / f"kill-{i}.duckdb"  # type: ignore[operator]
        shutil.copy(snapshots["before"], db)  # type: ignore[arg-type]
        process = start("ingest", snapshots["second"], "--db", db)  # type: ignore[arg-type]
        if delay is None:
            process.wait(timeout=600)
        else:
            time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.communicate()
        state = fingerprint(db)
        assert state in (before, after), f"kill after {delay} s left a mixed database"
        seen.append("after" if state == after else "before")
        if state == before:
            retry = outcomes("ingest", snapshots["second"], "--db", db)  # type: ignore[arg-type]
            assert retry.returncode == 0, retry.stderr
            assert fingerprint(db) == after
    assert "before" in seen and "after" in seen, seen


def test_the_same_snapshot_applied_again_changes_nothing(snapshots):
    db = snapshots["root"] / "again.duckdb"  # type: ignore[operator]
    shutil.copy(snapshots["after"], db)  # type: ignore[arg-type]
    done = outcomes("ingest", snapshots["second"], "--db", db)  # type: ignore[arg-type]
    assert done.returncode == 0, done.stderr
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
        # readers are not held up
        report = outcomes("report", "evidence", "--db", db, "--as-of", "2026-09-30", "--out",
                          db.parent / "locked-reports")
        assert report.returncode == 0, report.stderr
    finally:
        os.close(fd)
    assert fingerprint(db) == before
    assert outcomes("ingest", snapshots["second"], "--db", db).returncode == 0  # type: ignore[arg-type]
