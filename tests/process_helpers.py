"""Real `outcomes` processes that say where they are, so a test can kill one in a chosen phase
by waiting for that phase to begin (a line read from a pipe), never by sleeping a guessed time.

The process runs the real CLI; the only addition is that every stage the progress tracker is
given (pipeline.progress.Tracker.stage: "ingest: sessions.csv: reading", "metrics: writing the
files", …) and every step it counts (Tracker.advance: "payer packets: done") is also written,
line by line, to a pipe the test reads. The work itself is untouched.
"""

from __future__ import annotations

import fcntl
import os
import re
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

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
    shutil.copy(before_db, db)
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
            shutil.copy(before_db, db)
            break
    # The next load recovers from whatever the kills left and ends in the full state; killed
    # after it ended, it leaves that state too.
    last = Announcing("ingest", data_dir, "--db", db)
    code, _, err = last.finish()
    last.process.send_signal(signal.SIGKILL)  # once it has ended: nothing to stop
    assert code == 0, err
    assert fingerprint(db) == after
    return [*seen, "after"]
