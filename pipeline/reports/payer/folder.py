"""The payer folder: packets rendered aside, moved in together, index.csv read back from disk.

A run renders every packet into a hidden staging folder inside the output folder
(`.payer-run-PID`), so a run killed while rendering changes nothing the folder already held.
Only when every packet is rendered are they renamed into place, and index.csv is then written
from the files as they are on disk: each row's SHA-256 and page count are those of the file
under that name. Rows of an earlier index whose file is still there, unchanged and not replaced
by this run are kept, so index.csv always lists every packet in the folder (README "Payer
packets"). Temporaries left by a killed run (`.NAME.partial-PID`, `.payer-run-PID`, where
process PID no longer runs) are removed at the start of the next run.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.csv_cells import original_cell, rows_csv
from pipeline.outputs import atomic_path
from pipeline.reports.payer.batch import count_pages

INDEX = "index.csv"
INDEX_COLUMNS = ["file", "patient_id", "course_id", "protocol_id", "course_start", "course_end",
                 "status", "pages", "sha256"]
STAGING_PREFIX = ".payer-run-"
_TEMPORARY = re.compile(r"\..+\.partial-(\d+)|\.payer-run-(\d+)")


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def clean_stale(out_dir: Path) -> list[str]:
    """Remove the hidden temporaries of runs that no longer run; returns their names."""
    removed = []
    for path in out_dir.iterdir() if out_dir.is_dir() else []:
        match = _TEMPORARY.fullmatch(path.name)
        if not match or _running(int(match.group(1) or match.group(2))):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):  # not ours to remove: left for its owner
                path.unlink(missing_ok=True)
        if not path.exists():
            removed.append(path.name)
    return sorted(removed)


@contextlib.contextmanager
def staging(out_dir: Path) -> Iterator[Path]:
    """A hidden folder inside `out_dir` to render into; removed on the way out."""
    out_dir.mkdir(parents=True, exist_ok=True)
    clean_stale(out_dir)
    folder = out_dir / f"{STAGING_PREFIX}{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def file_facts(path: Path) -> tuple[int, str]:
    """(pages, SHA-256) of a packet PDF as it is on disk."""
    data = path.read_bytes()
    return count_pages(data), hashlib.sha256(data).hexdigest()


def read_index(out_dir: Path) -> list[dict[str, str]]:
    """The rows of the folder's index.csv (values as exported), or none."""
    try:
        with open(out_dir / INDEX, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    if rows and set(INDEX_COLUMNS) - set(rows[0]):
        return []
    return [{c: original_cell(row[c] or "") for c in INDEX_COLUMNS} for row in rows]


def still_there(row: dict[str, str], out_dir: Path) -> bool:
    """Whether an earlier index row still describes its file: a plain file name, on disk, with
    the SHA-256 the row gives."""
    name = row["file"]
    path = out_dir / name
    if Path(name).name != name or not name.endswith(".pdf") or not path.is_file():
        return False
    return file_facts(path)[1] == row["sha256"]


def publish(staged: Path, out_dir: Path, rows: list[dict[str, Any]]) -> Path:
    """Move the staged files into `out_dir` and write index.csv from disk; returns its path.

    rows: one per staged PDF, with the INDEX_COLUMNS but pages and sha256, in index order.
    """
    index = out_dir / INDEX
    names = {row["file"] for row in rows}
    earlier = [row for row in read_index(out_dir) if row["file"] not in names]
    # first drop the rows of the files about to be replaced: killed while moving, the index
    # still only lists files it describes
    _write_index(index, [row for row in earlier if still_there(row, out_dir)])
    for path in sorted(staged.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            os.replace(path, out_dir / path.name)
    written = []
    for row in rows:
        pages, sha256 = file_facts(out_dir / row["file"])
        written.append({**row, "pages": pages, "sha256": sha256})
    _write_index(index, written + [row for row in earlier if still_there(row, out_dir)])
    return index


def _write_index(index: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_path(index) as partial:
        partial.write_text(rows_csv(INDEX_COLUMNS, ([row[c] for c in INDEX_COLUMNS] for row in rows)),
                           encoding="utf-8")
