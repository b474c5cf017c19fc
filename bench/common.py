"""What the benchmark scripts share: running a CLI step as a measured child process, the
machine's description, what a load did, and rewriting one marked part of BENCHMARKS.md.

bench/ is the scripts' own folder (on sys.path when run as `python bench/<script>.py`).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUTCOMES = str(BIN / "outcomes")
AS_OF = "2026-10-31"
MONTH = "2026-10"
BENCHMARKS = ROOT / "BENCHMARKS.md"


@dataclass
class Measure:
    seconds: float
    peak_rss_mib: float
    stdout: str = ""


def measure(cmd: list[str], env: dict[str, str] | None = None) -> Measure:
    """Run cmd as a child; its wall time, its own peak resident memory (os.wait4's ru_maxrss,
    which on Linux covers the worker processes it waited for) and what it printed."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"benchmark step failed: {' '.join(cmd)}\n{err.read().decode()}")
        return Measure(seconds, usage.ru_maxrss / 1024, out.read().decode())


def machine() -> dict:
    import duckdb
    import polars

    mem_kib = next(int(line.split()[1]) for line in open("/proc/meminfo")
                   if line.startswith("MemTotal"))
    return {
        "date": dt.date.today().isoformat(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "polars": polars.__version__,
    }


def load_counts(db: Path, load_id: int | None = None) -> dict[str, int]:
    """What one load did (the last one when load_id is None): rows read, added, corrected,
    unchanged, retired; and how many row versions the database keeps against current rows."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        if load_id is None:
            load_id = int(con.execute("SELECT max(load_id) FROM loads").fetchall()[0][0])
        row = con.execute(
            "SELECT sum(rows_read), sum(added), sum(corrected), sum(unchanged), sum(retired) "
            "FROM loads WHERE load_id = ?", [load_id]).fetchall()[0]
        versions = con.execute(
            "SELECT (SELECT count(*) FROM history.sessions) + (SELECT count(*) FROM "
            "history.assessments) + (SELECT count(*) FROM history.patients), "
            "(SELECT count(*) FROM sessions) + (SELECT count(*) FROM assessments) + "
            "(SELECT count(*) FROM patients)").fetchall()[0]
    finally:
        con.close()
    keys = ("read", "added", "corrected", "unchanged", "retired")
    return {**{k: int(v) for k, v in zip(keys, row, strict=True)},
            "versions": int(versions[0]), "current": int(versions[1])}


def replace_marked(text: str, start: str, end: str, path: Path = BENCHMARKS,
                   at_top: bool = False) -> None:
    """Put text (which begins with `start` and ends with `end`) in place of the part of path
    between those markers; everything outside the markers is left as it is. Without the
    markers, the text goes after the title (at_top) or at the end."""
    current = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n"
    if start in current and end in current:
        head, rest = current.split(start, 1)
        current = head + text + rest.split(end, 1)[1]
    elif at_top and current.startswith("# "):
        title, _, rest = current.partition("\n")
        current = f"{title}\n\n{text}\n\n{rest.lstrip()}"
    else:
        current = current.rstrip() + "\n\n" + text + "\n"
    path.write_text(current, encoding="utf-8")
