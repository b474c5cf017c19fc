"""Faults (issue 9): runs killed mid-load, two processes on one database, read-only reporting,
full disks and unwritable output folders. Every test drives the real `outcomes` command in a
subprocess and inspects the real DuckDB file afterwards; a process is killed in a phase it
announces (tests/process_helpers.py), never after a guessed sleep. Setup that is not under test
(the exports, their loads, reference outputs) runs in this process."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from tests.conftest import cli
from tests.process_helpers import (
    TABLES,
    Announcing,
    fingerprint,
    kill_a_load_in_each_phase,
    lock_holder,
    reports_on_a_read_only_database,
    wait_for,
)

AS_OF = "2026-09-30"


def outcomes(*args: str | Path, **kwargs) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)],
                          capture_output=True, text=True, timeout=300, **kwargs)


def start(*args: str | Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """Export A (already loaded before each fault) and export B (the load that is hit). Made in
    this process (`cli`): the processes under test are the ones each test starts."""
    root = tmp_path_factory.mktemp("faults")
    a, b = root / "a", root / "b"
    assert cli("demo", a, "--patients", "300", "--seed", "1").exit_code == 0
    assert cli("demo", b, "--patients", "2500", "--seed", "2").exit_code == 0
    before = root / "before.duckdb"
    assert cli("ingest", a, "--db", before).exit_code == 0
    after = root / "after.duckdb"
    shutil.copy(before, after)
    done = cli("ingest", b, "--db", after)
    assert done.exit_code == 0, done.output
    return {"root": root, "a": a, "b": b, "before": before, "after": after}


def test_a_load_killed_in_each_phase_leaves_the_database_as_before_or_as_after(exports):
    assert fingerprint(exports["before"]) != fingerprint(exports["after"])
    # One kill in each phase of the load, taken when the load announces it (no guessed sleep):
    # start-up (DuckDB's lock just taken), staging (sessions.csv being read, protocols and
    # patients merged), validation (every row of assessments.csv, the largest file, checked),
    # merge (its rows merged, then the rows it no longer holds retired), commit (COMMIT and the
    # checkpoint on close), and after the load ended. Until the commit the changes live in the
    # open transaction only, whatever the stage: the kills before it all meet that state.
    seen = kill_a_load_in_each_phase(
        exports["b"], exports["before"], exports["after"], exports["root"] / "kill.duckdb",
        (r"^ingest: sessions\.csv: reading$", r"^ingest: assessments\.csv: checking every row$",
         r"^ingest: assessments\.csv: [\d,]+ rows read; merging$", r"^ingest: committing$"))
    assert "before" in seen and "after" in seen, seen


def test_metrics_killed_mid_run_leaves_either_old_or_new_complete_outputs(exports):
    db = exports["root"] / "metrics-kill.duckdb"
    shutil.copy(exports["after"], db)
    out = exports["root"] / "metrics-kill-out"
    reference = cli("metrics", "--db", db, "--as-of", AS_OF, "--out", out)  # what a run writes
    assert reference.exit_code == 0, reference.output
    expected = {p.name: sha256(p) for p in out.iterdir()}
    assert {"course_outcomes.csv", "course_outcomes.parquet", "metrics.json"} <= set(expected)
    # Killed in each stage that writes: computing the outcomes (temp tables), storing them in
    # the database, and writing the files, once the first temporary file is in the folder.
    for stage in ("course outcomes", "storing the results in the database", "writing the files"):
        shutil.rmtree(out, ignore_errors=True)
        process = Announcing("metrics", "--db", db, "--as-of", AS_OF, "--out", out)
        process.wait_for_stage(f"^metrics: {stage}$")
        process.kill_when(lambda: stage != "writing the files" or any(  # noqa: B023
            p.name.startswith(".") for p in (out.iterdir() if out.exists() else ())))
        for name, digest in expected.items():
            # Never a truncated file under the real name; temporaries are hidden dot-files.
            assert not (out / name).exists() or sha256(out / name) == digest, name
    rerun = outcomes("metrics", "--db", db, "--as-of", AS_OF, "--out", out)
    assert rerun.returncode == 0, rerun.stderr
    assert {name: sha256(out / name) for name in expected} == expected


def test_a_second_writer_fails_with_a_clear_message_while_the_first_holds_the_database(exports):
    db = exports["root"] / "busy.duckdb"
    shutil.copy(exports["before"], db)
    first = start("ingest", exports["b"], "--db", db)
    try:
        # Freeze the first load once it holds DuckDB's lock: a deterministic overlap.
        wait_for(lambda: lock_holder(db) == first.pid or first.poll() is not None, timeout=300)
        os.kill(first.pid, signal.SIGSTOP)
        assert first.poll() is None, "the first load ended before the overlap"
        # The lock as a second writer meets it.
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(db)).close()
        for second in (("ingest", exports["a"], "--db", db),
                       ("metrics", "--db", db, "--as-of", AS_OF, "--out",
                        exports["root"] / "busy-out"),
                       ("report", "evidence", "--db", db, "--as-of", AS_OF, "--out",
                        exports["root"] / "busy-out")):
            result = outcomes(*second)
            assert result.returncode == 1, (second, result.stderr)
            assert "is in use by another process" in result.stderr
            assert "Traceback" not in result.stderr + result.stdout
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert fingerprint(db) == fingerprint(exports["after"])


@pytest.mark.parametrize("command", ["ingest", "metrics"])
def test_a_writer_holds_the_lock_without_a_gap_until_it_is_done(exports, command):
    # Watch the lock for the whole run of a writer: it must be taken once and kept until the
    # writer is done (one run of "held"), so no other writer can slip in between two of its
    # changes. A writer that closed and reopened its connection would show two runs.
    db = exports["root"] / f"watched-{command}.duckdb"
    shutil.copy(exports["before"], db)
    args = (("ingest", exports["b"], "--db", db) if command == "ingest" else
            ("metrics", "--db", db, "--as-of", AS_OF, "--out", exports["root"] / "watched"))
    writer = start(*args)
    seen: list[bool] = []
    while writer.poll() is None:
        held = lock_holder(db) == writer.pid
        if not seen or seen[-1] != held:
            seen.append(held)
        time.sleep(0.001)
    _, err = writer.communicate()
    assert writer.returncode == 0, err
    assert seen.count(True) == 1, seen


def test_two_loads_started_together_end_as_one_load(exports):
    db = exports["root"] / "race.duckdb"
    shutil.copy(exports["before"], db)
    processes = [start("ingest", exports["b"], "--db", db) for _ in range(2)]
    results = [(p.wait(timeout=300), p.communicate()[1]) for p in processes]
    for code, err in results:
        assert code == 0 or (code == 1 and "is in use by another process" in err), err
        assert "Traceback" not in err
    # Whether they overlapped or ran one after the other, the data is that of one load.
    state = fingerprint(db)
    reference = fingerprint(exports["after"])
    assert {t: state[t] for t in TABLES if t != "loads"} == \
        {t: reference[t] for t in TABLES if t != "loads"}


def test_reports_read_the_database_without_changing_it(twin_dbs, tmp_path_factory):
    # monthly, evidence and payer, all three at once on a database that is read-only in a
    # read-only folder (the 120-patient demo: the size is not the subject); built once per run,
    # test_progress.py reads the same runs for the stages they showed (process_helpers.py)
    reports = reports_on_a_read_only_database(tmp_path_factory, twin_dbs["a"])
    for code, err in reports["done"].values():
        assert code == 0, err
    assert sha256(reports["db"]) == reports["digest"]
    assert sorted(p.name for p in reports["root"].iterdir()) == ["clinic.duckdb", "metrics"]
    assert list(reports["out"]["monthly"].glob("*.pdf"))
    assert list(reports["out"]["evidence"].glob("*.pdf"))
    assert (reports["out"]["payer"] / "index.csv").is_file()


LIMITED_METRICS = """
import resource, signal, sys
import pipeline.metrics_files as files
from pipeline.cli import main

write_files = files.write_files

def limited(*args, **kwargs):
    # the database is stored and closed by now: the limit hits the output files only
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
    return write_files(*args, **kwargs)

files.write_files = limited
main(sys.argv[2:], prog_name="outcomes")
"""


def test_a_file_size_limit_while_writing_outputs_is_a_clear_error_and_keeps_old_outputs(exports):
    db = exports["root"] / "limit.duckdb"
    shutil.copy(exports["before"], db)  # 300 patients: course_outcomes.csv is over the limit
    out = exports["root"] / "limit-out"
    args = ("metrics", "--db", db, "--as-of", AS_OF, "--out", out)
    assert cli(*args).exit_code == 0  # the old outputs, written in this process
    old = {p.name: sha256(p) for p in out.iterdir()}
    limit = 64 * 1024
    assert (out / "course_outcomes.csv").stat().st_size > limit
    result = subprocess.run([sys.executable, "-c", LIMITED_METRICS, str(limit), *map(str, args)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "cannot write" in result.stderr and "course_outcomes.csv" in result.stderr
    assert "File too large" in result.stderr
    assert {p.name: sha256(p) for p in out.iterdir()} == old  # nothing half-written

def _mount_tmpfs(target: Path, options: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
                          capture_output=True)
    return done.returncode == 0


def _tmpfs(target: Path, options: str, what: str):  # type: ignore[no-untyped-def]
    if not _mount_tmpfs(target, options):
        pytest.skip(f"needs root and tmpfs mounts to make {what}")
    yield target
    subprocess.run(["umount", "-l", str(target)], check=True)


@pytest.fixture
def small_disk(tmp_path):  # type: ignore[no-untyped-def]
    yield from _tmpfs(tmp_path / "small-disk", "size=256k", "a really full disk")


def test_a_full_disk_while_writing_a_report_is_a_clear_error(exports, small_disk):
    result = outcomes("report", "evidence", "--db", exports["before"], "--as-of", AS_OF,
                      "--out", small_disk)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "No space left on device" in result.stderr
    assert "free some space" in result.stderr
    assert not [p for p in small_disk.iterdir() if p.suffix == ".pdf"]


@pytest.fixture
def read_only_disk(tmp_path):  # type: ignore[no-untyped-def]
    yield from _tmpfs(tmp_path / "read-only", "ro,size=64k", "a read-only file system")


def test_a_read_only_out_folder_is_a_clear_error(exports, read_only_disk, tmp_path):
    db = tmp_path / "clinic.duckdb"  # metrics stores its results before it writes the files
    shutil.copy(exports["before"], db)
    result = outcomes("metrics", "--db", db, "--as-of", AS_OF, "--out", read_only_disk / "metrics")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "Read-only file system" in result.stderr
    assert "choose another --out" in result.stderr


def test_an_out_path_through_a_file_is_a_clear_error(exports, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    db = tmp_path / "clinic.duckdb"  # metrics stores its results before it writes the files
    shutil.copy(exports["before"], db)
    for command in (("metrics", "--db", db, "--as-of", AS_OF),
                    ("report", "monthly", "--db", db, "--month", AS_OF[:7]),
                    ("report", "payer", "--db", db, "--patient", "P00001")):
        result = outcomes(*command, "--out", blocker / "sub")
        assert result.returncode == 1, (command, result.stderr)
        assert "Traceback" not in result.stderr + result.stdout
        assert "cannot write" in result.stderr and "not-a-folder" in result.stderr


@contextlib.contextmanager
def nearly_full_copy(db: Path, folder: Path, room: int) -> Iterator[Path]:
    """A copy of `db` on a tmpfs mounted at `folder` with `room` bytes to spare."""
    if not _mount_tmpfs(folder, f"size={db.stat().st_size + room}"):
        pytest.skip("needs root and tmpfs mounts to make a really full disk")
    try:
        copy = folder / "clinic.duckdb"
        shutil.copy(db, copy)
        yield copy
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def test_a_full_disk_during_a_load_rolls_it_back_with_a_clear_error(exports, tmp_path):
    # room for the old data, not the new
    with nearly_full_copy(exports["before"], tmp_path / "nearly-full", 1 << 20) as db:
        result = outcomes("ingest", exports["b"], "--db", db)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr + result.stdout
        assert "No space left on device" in result.stderr and "rolled back" in result.stderr
        assert fingerprint(db) == fingerprint(exports["before"])


def stored_results(db: Path) -> dict[str, object]:
    """Every table's row count and the stored metrics run (its provenance), if any."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SHOW TABLES").fetchall()]
        counts: dict[str, object] = {
            t: con.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0] for t in tables}
        if "metrics_runs" in tables:
            counts["run"] = con.execute("SELECT * FROM metrics_runs").fetchall()
        return counts
    finally:
        con.close()


def test_a_full_disk_while_metrics_stores_its_results_is_a_clear_error(exports, tmp_path):
    # the database fits, its results do not
    with nearly_full_copy(exports["after"], tmp_path / "metrics-full", 256 << 10) as db:
        out = tmp_path / "metrics-out"  # on another disk: only the database is short of room
        result = outcomes("metrics", "--db", db, "--as-of", AS_OF, "--out", out)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr + result.stdout
        assert f"cannot write the database {db}: No space left on device" in result.stderr
        assert "the metrics were not stored" in result.stderr
        assert fingerprint(db) == fingerprint(exports["after"])
        assert stored_results(db) == stored_results(exports["after"])  # as they were, if any
        assert not out.exists() or not any(out.iterdir())
