"""Real `outcomes` processes that say where they are, so a test can kill one in a chosen phase
by waiting for that phase to begin (a line read from a pipe), never by sleeping a guessed time.

The process runs the real CLI; the only addition is that every stage the progress tracker is
given (pipeline.progress.Tracker.stage: "ingest: sessions.csv: reading", "metrics: writing the
files", …) and every step it counts (Tracker.advance: "payer packets: done") is also written,
line by line, to a pipe the test reads. The work itself is untouched.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import pty
import re
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import built_once, cli, copy_db

CANONICAL = ("protocols", "patients", "sessions", "assessments", "treatment_history")
TABLES = (*CANONICAL, "rejects", "loads", "changes",
          *(f"history.{t}_retired" for t in CANONICAL))

# argv: the write end of the pipe, then the command's own arguments
ANNOUNCING = """
import os, sys
import pipeline.progress as progress
channel = os.fdopen(int(sys.argv[1]), "w", buffering=1)
stage, advance = progress.Tracker.stage, progress.Tracker.advance
def announced_stage(self, text):
    channel.write(f"{self.title}: {text}\\n")
    stage(self, text)
def announced_advance(self, steps=1):
    advance(self, steps)
    channel.write(f"{self.title}: done\\n")
progress.Tracker.stage, progress.Tracker.advance = announced_stage, announced_advance
from pipeline.cli import main
main(sys.argv[2:], prog_name="outcomes")
"""


class Announcing:
    """`outcomes ARGS` in its own process, announcing its stages to the test (see above)."""

    def __init__(self, *args: str | Path, capture: bool = True) -> None:
        read_end, write_end = os.pipe()
        output = subprocess.PIPE if capture else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", ANNOUNCING, str(write_end), *map(str, args)],
                stdout=output, stderr=output, text=True, pass_fds=(write_end,))
        finally:
            os.close(write_end)  # the child holds the only write end: EOF when it ends
        self.pid = self.process.pid
        self._read_end = read_end
        self._pending = b""
        self.stages: list[str] = []  # every line announced so far

    def wait_for_stage(self, pattern: str, timeout: float = 600.0) -> str:
        """Block until the process announces a stage matching `pattern` (re.search) and return
        it; the process goes on with that stage meanwhile. An AssertionError when it ends (or
        `timeout` passes) first."""
        wanted = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self._read_end, selectors.EVENT_READ)
            while True:
                while b"\n" in self._pending:
                    line, self._pending = self._pending.split(b"\n", 1)
                    self.stages.append(line.decode("utf-8"))
                    if wanted.search(self.stages[-1]):
                        return self.stages[-1]
                left = deadline - time.monotonic()
                chunk = os.read(self._read_end, 1 << 16) if left > 0 and selector.select(left) else b""
                if not chunk:
                    raise AssertionError(
                        f"the process ended (or {timeout:.0f} s passed) before a stage matching "
                        f"{pattern!r}; it announced {self.stages}")
                self._pending += chunk

    def kill_at(self, pattern: str) -> str:
        """SIGKILL the process as soon as it announces a stage matching `pattern`; returns the
        stage. It lands in that stage (or, on a slow machine, a little after its start)."""
        try:
            stage = self.wait_for_stage(pattern)
            self.process.send_signal(signal.SIGKILL)
        finally:
            self.finish()
        return stage

    def kill_when(self, condition: Callable[[], bool], timeout: float = 300.0) -> None:
        """SIGKILL the process as soon as `condition()` holds (or it has ended: the kill then
        finds nothing to stop), looked at every 5 ms."""
        try:
            wait_for(lambda: self.process.poll() is not None or condition(), timeout=timeout)
            self.process.send_signal(signal.SIGKILL)
        finally:
            self.finish()

    def finish(self, timeout: float = 600.0) -> tuple[int, str, str]:
        """Wait for the process to end: its exit status, standard output and error."""
        try:
            out, err = self.process.communicate(timeout=timeout)
        finally:
            if self._read_end >= 0:
                os.close(self._read_end)
                self._read_end = -1
        return self.process.returncode, out or "", err or ""


def fingerprint(db: Path) -> dict[str, tuple[int, int]]:
    """Row count and an order-free hash of every row of every canonical and audit table
    (the wall-clock `loaded_at` left out), read with DuckDB directly."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {}
        for table in TABLES:
            columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()
                       if r[0] != "loaded_at"]
            row = ", ".join(f'"{c}"' for c in columns)
            out[table] = con.execute(
                f"SELECT count(*), coalesce(sum(hash(row({row}))), 0) FROM {table}"
            ).fetchall()[0]
        return out
    finally:
        con.close()


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def lock_holder(path: Path) -> int | None:
    """The pid holding DuckDB's lock on the file, or None: asks the kernel (fcntl F_GETLK) which
    lock would block a writer, without taking one, so looking never gets in the writer's way.
    (That the process has the file open is not enough: DuckDB opens it before it locks it.)"""
    layout = "hhqqi"  # struct flock: l_type, l_whence, l_start, l_len, l_pid
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        probe = struct.pack(layout, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        kind, _, _, _, pid = struct.unpack(layout, fcntl.fcntl(fd, fcntl.F_GETLK, probe))
    finally:
        os.close(fd)
    return None if kind == fcntl.F_UNLCK else pid


def kill_a_load_in_each_phase(data_dir: Path, before_db: Path, after_db: Path, db: Path,
                              phases: tuple[str, ...]) -> list[str]:
    """`outcomes ingest DATA_DIR --db DB` (DB a copy of `before_db`; `after_db` is the same
    load run to its end) killed with SIGKILL once in start-up, as soon as DuckDB's lock on the
    file is taken, then once in each of `phases` (patterns of announced stages, in the order a
    load reaches them), then left to end and killed after it (the kill finds nothing to stop).

    The kills are chained on the one copy: every load starts from whatever the kill before it
    left, so each kill's leftovers must be recovered from by the next load, and the last load,
    which runs to its end, must leave the full state. After every kill the database is
    exactly as before or as after the load. Returns "before" / "after" for each kill."""
    before, after = fingerprint(before_db), fingerprint(after_db)
    copy_db(before_db, db)
    seen = []
    for phase in (None, *phases):
        load = Announcing("ingest", data_dir, "--db", db)
        if phase is None:
            load.kill_when(lambda pid=load.pid: lock_holder(db) == pid)
        else:
            load.kill_at(phase)
        state = fingerprint(db)
        assert state in (before, after), f"a kill at {phase or 'start-up'} left a mixed database"
        seen.append("after" if state == after else "before")
        if state == after:  # the kill came after the commit: a next load would be another one
            copy_db(before_db, db)  # and the killed load's log with it, or it is replayed
            break
    # The next load recovers from whatever the kills left and ends in the full state; killed
    # after it ended, it leaves that state too.
    last = Announcing("ingest", data_dir, "--db", db)
    code, _, err = last.finish()
    last.process.send_signal(signal.SIGKILL)  # once it has ended: nothing to stop
    assert code == 0, err
    final = fingerprint(db)
    assert final == after, {table: (final[table], after[table]) for table in after
                            if final.get(table) != after[table]}
    return [*seen, "after"]


# Runs the CLI with pipeline.progress.DELAY set from the first argument.
WITH_DELAY = """
import sys
import pipeline.progress as progress
progress.DELAY = float(sys.argv[1])
from pipeline.cli import main
main(sys.argv[2:], prog_name="outcomes")
"""


class NoTerminal(Exception):
    """This machine cannot open a pseudo-terminal (e.g. a chroot without /dev/ptmx)."""


class OnTerminal:
    """`outcomes ARGS` in its own process with standard error on a pseudo-terminal (a real
    terminal device, as an analyst's) 200 columns wide, and standard output too unless it goes
    to the file `stdout`; the progress display's delay set to `delay` seconds. `received()`
    reads what the terminals of one or more of them receive."""

    def __init__(self, delay: float, *args: str | Path, stdout: Path | None = None) -> None:
        try:
            self.main, device = pty.openpty()
        except OSError as exc:
            raise NoTerminal(str(exc)) from exc
        fcntl.ioctl(device, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        with open(stdout or os.devnull, "wb") as file:
            self.process = subprocess.Popen(
                [sys.executable, "-c", WITH_DELAY, str(delay), *map(str, args)],
                stdin=subprocess.DEVNULL, stderr=device, stdout=file if stdout else device)
        os.close(device)  # the child holds the terminal: EIO on `main` once it has closed it

    @staticmethod
    def received(*terminals: OnTerminal) -> list[tuple[int, str]]:
        """Exit code and everything its terminal received, for each of `terminals`, read side
        by side (a display left unread would block its process) until every one has ended."""
        texts = {terminal.main: bytearray() for terminal in terminals}
        with selectors.DefaultSelector() as selector:
            for main in texts:
                selector.register(main, selectors.EVENT_READ)
            while selector.get_map():
                for key, _ in selector.select():
                    try:
                        chunk = os.read(key.fd, 1 << 16)
                    except OSError:  # EIO: the process closed the terminal
                        chunk = b""
                    if chunk:
                        texts[key.fd] += chunk
                    else:
                        selector.unregister(key.fd)
                        os.close(key.fd)
        return [(terminal.process.wait(timeout=600),
                 texts[terminal.main].decode("utf-8", errors="replace").replace("\r\n", "\n"))
                for terminal in terminals]


READ_ONLY_AS_OF = "2026-09-30"
_built: dict[str, Any] = {}  # what reports_on_a_read_only_database built in this process


def reports_on_a_read_only_database(tmp_path_factory: pytest.TempPathFactory,
                                    source_db: Path) -> dict[str, Any]:
    """`outcomes report` monthly (2026-09), evidence (as of 2026-09-30) and payer (patient
    P00001) started at once (readers share the file) on a copy of `source_db` whose metrics as
    of 2026-09-30 were stored first (setup, in this process), the copy read-only in a read-only
    folder (no journal can be created beside it). Monthly and evidence have standard error on a
    pseudo-terminal with the progress display shown at once (delay 0), as an analyst would see
    it; on a machine without pseudo-terminals they write to pipes and "terminal" is False.

    Run once per test run and read by two modules, each for its own subject:
    tests/test_faults.py (the reports leave the database and its folder as they were),
    tests/test_progress.py (the stages the monthly and evidence reports showed). Returns the
    folder of the database ("root"), the database ("db"), its SHA-256 before the reports
    ("digest"), each report's --out folder ("out") and (exit code, what its terminal or
    standard error received) ("done")."""
    def build(base: Path) -> dict[str, Any]:
        root = base / "readonly"
        root.mkdir()
        db = root / "clinic.duckdb"
        shutil.copy(source_db, db)
        metrics = cli("metrics", "--db", db, "--as-of", READ_ONLY_AS_OF, "--out",
                      root / "metrics")
        assert metrics.exit_code == 0, metrics.output
        digest = hashlib.sha256(db.read_bytes()).hexdigest()
        out = {name: base / f"ro-{name}" for name in ("monthly", "evidence", "payer")}
        reports = {
            "monthly": ("report", "monthly", "--db", db, "--month", READ_ONLY_AS_OF[:7],
                        "--out", out["monthly"]),
            "evidence": ("report", "evidence", "--db", db, "--as-of", READ_ONLY_AS_OF,
                         "--out", out["evidence"]),
        }
        db.chmod(0o444)
        root.chmod(0o555)
        try:
            payer = subprocess.Popen(
                [sys.executable, "-m", "pipeline", "report", "payer", "--db", str(db),
                 "--patient", "P00001", "--jobs", "1", "--out", str(out["payer"])],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                terminals = [OnTerminal(0, *args) for args in reports.values()]
                done = dict(zip(reports, OnTerminal.received(*terminals), strict=True))
                terminal = True
            except NoTerminal:
                piped = [subprocess.Popen([sys.executable, "-m", "pipeline", *map(str, args)],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True) for args in reports.values()]
                done = {}
                for name, process in zip(reports, piped, strict=True):
                    _, err = process.communicate(timeout=600)
                    done[name] = (process.returncode, err)
                terminal = False
            _, err = payer.communicate(timeout=600)
            done["payer"] = (payer.returncode, err)
        finally:
            root.chmod(0o755)
            db.chmod(0o644)
        return {"root": root, "db": db, "digest": digest, "out": out, "done": done,
                "terminal": terminal}

    if "reports" not in _built:
        _built["reports"] = built_once(tmp_path_factory, "reports-on-a-read-only-database", build)
    return _built["reports"]
