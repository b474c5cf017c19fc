"""The payer folder (issue 15, item 10): a `report payer --month` run killed in a folder holding an
earlier month's packets left an index.csv listing PDFs whose SHA-256 no longer matched and
missing the PDFs the killed run had added; hidden `.partial-PID` files of killed runs stayed for
ever; `--html` files were written in place.

Now packets are rendered into a hidden staging folder, moved in when all are done, and index.csv
is written from the files on disk. Checked with a real process killed with SIGKILL while it
renders, and the SHA-256 of every file recomputed here with hashlib.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.demo import write_demo
from pipeline.ingest import ingest
from pipeline.reports.payer.folder import INDEX_COLUMNS, clean_stale
from tests.conftest import cli
from tests.process_helpers import Announcing

# 20-patient demo, seed 7: 3 packets in June 2025, 2 in July, 1 course active in both (the
# fewest packets these tests need: 2 of the earlier month's own, one shared, and a packet left
# to render when the later month's run is killed after its first)
EARLIER, LATER = "2025-06", "2025-07"


def read_index(folder: Path) -> list[dict[str, str]]:
    with open(folder / "index.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert not rows or list(rows[0]) == INDEX_COLUMNS
    return rows


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_index_is_the_folder(folder: Path) -> list[dict[str, str]]:
    """Every row's file is there with the row's SHA-256; every packet PDF there has a row."""
    rows = read_index(folder)
    for row in rows:
        assert sha256(folder / row["file"]) == row["sha256"], row["file"]
    assert sorted(r["file"] for r in rows) == sorted(p.name for p in folder.glob("*.pdf"))
    return rows


def dead_pid() -> int:
    """The id of a process that has ended (and was reaped)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("payer-folder")
    write_demo(root / "export", patients=20, seed=7, end=date(2026, 10, 31))
    path = root / "clinic.duckdb"
    ingest(root / "export", path, load_config(None), today=date(2026, 11, 28))
    return path


@pytest.fixture(scope="module")
def rendered(db: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each month's packets rendered once into a folder of their own (copy one to write into
    it): the earlier month's, and the later month's on their own."""
    root = tmp_path_factory.mktemp("payer-months")
    for month in (EARLIER, LATER):
        payer(db, month, root / month)
    return {month: root / month for month in (EARLIER, LATER)}


def copied(folder: Path, target: Path) -> tuple[Path, list[dict[str, str]]]:
    """A copy of a rendered folder to run into, and its index."""
    shutil.copytree(folder, target)
    return target, read_index(target)


def payer(db: Path, month: str, out: Path, *extra: str) -> list[dict[str, str]]:
    result = cli("report", "payer", "--db", db, "--month", month, "--out", out, "--jobs", "1",
                 *extra)
    assert result.exit_code == 0, result.output
    return read_index(out)


def kill_while_rendering(db: Path, month: str, out: Path) -> int:
    """Start `report payer --month --html`, SIGKILL it once it has written its first packet
    (PDF and HTML) into its staging folder under `out`, as it announces (the next packets are
    still to render); returns its process id."""
    process = Announcing("report", "payer", "--db", db, "--month", month, "--out", out, "--html",
                         "--jobs", "1", capture=False)
    process.kill_at(r"^payer packets: done$")
    assert process.process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    return process.pid


@pytest.mark.slow
def test_a_killed_run_leaves_the_folder_and_its_index_as_they_were(db, rendered, tmp_path):
    out, first = copied(rendered[EARLIER], tmp_path / "payer")
    assert len(first) >= 3
    files = {p.name: sha256(p) for p in out.glob("*.pdf")}
    pid = kill_while_rendering(db, LATER, out)
    assert read_index(out) == first
    assert {p.name: sha256(p) for p in out.glob("*.pdf")} == files
    assert not list(out.glob("*.html"))  # --html files are moved in with their PDFs only
    # the killed run's hidden staging folder is what remains of it ...
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert leftovers and all(name.endswith(f"-{pid}") for name in leftovers)
    # ... and the next run removes it, with any other temporary of a process that has ended
    (out / f".x.pdf.partial-{dead_pid()}").write_bytes(b"%PDF-1.7 truncated")
    rows = payer(db, LATER, out, "--html")
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
    html = {p.stem for p in out.glob("*.html")}
    assert html and html <= {Path(r["file"]).stem for r in rows}


@pytest.mark.slow
def test_the_index_lists_every_packet_in_the_folder_with_its_sha256(db, rendered, tmp_path):
    later = read_index(rendered[LATER])  # the later month's packets on their own
    out, earlier_rows = copied(rendered[EARLIER], tmp_path / "payer")
    earlier = {r["file"]: r for r in earlier_rows}
    payer(db, LATER, out)
    rows = assert_index_is_the_folder(out)
    # this run's packets first, as a run into an empty folder lists them (same bytes) ...
    assert rows[:len(later)] == later
    # ... then the earlier month's that this run did not replace, their rows unchanged
    later_files = {r["file"] for r in later}
    kept = [r for r in rows[len(later):]]
    assert kept, "the two months have packets of their own"
    assert kept == [r for name, r in earlier.items() if name not in later_files]
    assert set(earlier) & later_files, "the two months share courses (replaced, listed once)"
    assert len({r["file"] for r in rows}) == len(rows)


@pytest.mark.slow
def test_an_index_row_whose_file_was_changed_or_removed_is_dropped(db, rendered, tmp_path):
    out, earlier = copied(rendered[EARLIER], tmp_path / "payer")
    later_files = {r["file"] for r in read_index(rendered[LATER])}
    own = [r["file"] for r in earlier if r["file"] not in later_files]
    assert len(own) >= 2
    (out / own[0]).write_bytes(b"%PDF-1.7 edited by hand")
    (out / own[1]).unlink()
    rows = payer(db, LATER, out)
    names = {r["file"] for r in rows}
    assert own[0] not in names and own[1] not in names
    for row in rows:
        assert sha256(out / row["file"]) == row["sha256"]


def test_clean_stale_removes_only_temporaries_of_ended_processes(tmp_path):
    gone, alive = dead_pid(), os.getpid()
    for name in [f".a.pdf.partial-{gone}", f".index.csv.partial-{gone}",
                 f".a.pdf.partial-{alive}", f".payer-run-{alive}", "a.pdf", ".hidden",
                 f"b.pdf.partial-{gone}"]:
        (tmp_path / name).write_text("x", encoding="utf-8")
    (tmp_path / f".payer-run-{gone}").mkdir()
    (tmp_path / f".payer-run-{gone}" / "c.pdf").write_text("x", encoding="utf-8")
    assert clean_stale(tmp_path) == sorted([f".a.pdf.partial-{gone}",
                                            f".index.csv.partial-{gone}", f".payer-run-{gone}"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([
        f".a.pdf.partial-{alive}", f".payer-run-{alive}", "a.pdf", ".hidden",
        f"b.pdf.partial-{gone}"])
