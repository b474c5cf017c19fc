"""The progress display on long work (README "Progress on a terminal"): real commands in their own
process with standard error on a pseudo-terminal (a real terminal device, as an analyst's), the
display's delay set to 0 s (shown at once) or to 600 s (work shorter than the delay: nothing)."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import copy_db
from tests.process_helpers import (
    WITH_DELAY,
    NoTerminal,
    OnTerminal,
    reports_on_a_read_only_database,
)

ESC = "\x1b"

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_terminal(delay: float, *args: str | Path, stdout: Path | None = None
                ) -> tuple[int, str]:
    """Exit code and everything the terminal received (stderr, and stdout unless it goes to
    the file `stdout`) from `outcomes ARGS`; the terminal is 200 columns wide."""
    try:
        terminal = OnTerminal(delay, *args, stdout=stdout)
    except NoTerminal as exc:  # e.g. a chroot without /dev/ptmx and /dev/pts: nothing to draw on
        pytest.skip(f"this machine cannot open a pseudo-terminal ({exc})")
    return OnTerminal.received(terminal)[0]


def lines_shown(text: str) -> list[str]:
    """The texts of the display's lines, in the order drawn, without colours or redraws."""
    plain = ANSI.sub("", text)
    return [part.strip() for part in re.split(r"[\r\n]", plain) if part.strip()]


def first_shown(text: str, title: str) -> list[str]:
    """The stages shown for `title`, each once, in the order first drawn."""
    stages: list[str] = []
    for line in lines_shown(text):
        if match := re.match(rf"\W*{re.escape(title)}: (.+?)\s+[━╸╺]", line):
            if match.group(1) not in stages:
                stages.append(match.group(1))
    return stages


@pytest.fixture(scope="module")
def small_db(tmp_path_factory: pytest.TempPathFactory, twin_dbs: dict[str, Path]) -> Path:
    return copy_db(twin_dbs["a"], tmp_path_factory.mktemp("progress") / "clinic.duckdb")


def data_rows(path: Path) -> int:
    with path.open(newline="", encoding="utf-8") as file:
        return sum(1 for _ in csv.reader(file)) - 1  # the header is not a row


def test_ingest_shows_each_file_with_the_rows_read(twin_dbs: dict[str, Path], tmp_path: Path):
    export = twin_dbs["a"].parent / "export"
    code, shown = on_terminal(0, "ingest", export, "--db", tmp_path / "clinic.duckdb")
    assert code == 0, shown
    stages = first_shown(shown, "ingest")
    for name in ("patients.csv", "sessions.csv", "assessments.csv"):
        # the rows of the file as the csv module counts them, not as the loader does
        rows = data_rows(export / name)
        assert [f"{name}: reading", f"{name}: checking every row",
                f"{name}: {rows:,} rows read; merging"] == [s for s in stages if s.startswith(name)]
    assert stages[-1] == "committing"
    assert "read = added + corrected + unchanged" in shown  # the load report follows


def test_metrics_shows_each_stage_in_order(small_db: Path, tmp_path: Path):
    code, shown = on_terminal(0, "metrics", "--db", small_db, "--as-of", "2026-10-31",
                              "--out", tmp_path / "metrics")
    assert code == 0, shown
    assert first_shown(shown, "metrics") == [
        "opening the database", "course outcomes", "rates, curves and safety",
        "storing the results in the database", "writing the files"]
    # the bar counts the stages done: 4 of 5 when the last one runs
    assert any(re.search(r"metrics: writing the files .* 4/5", line)
               for line in lines_shown(shown))
    assert lines_shown(shown)[-1].startswith("metrics as of 2026-10-31: ")  # the summary


@pytest.mark.parametrize(("report", "title", "middle"), [
    ("monthly", "monthly report", "building the figures"),
    ("evidence", "evidence report", "pooling the studies and comparing"),
], ids=["monthly", "evidence"])
def test_reports_show_each_stage_in_order(twin_dbs: dict[str, Path],
                                          tmp_path_factory: pytest.TempPathFactory, report: str,
                                          title: str, middle: str):
    # The monthly report for 2026-09 and the evidence report as of 2026-09-30 on the 120-patient
    # demo, the display shown at once: the same runs in which test_faults.py checks that
    # reports leave the database as it was (built once per run, tests/process_helpers.py).
    reports = reports_on_a_read_only_database(tmp_path_factory, twin_dbs["a"])
    if not reports["terminal"]:
        pytest.skip("this machine cannot open a pseudo-terminal")
    code, shown = reports["done"][report]
    assert code == 0, shown
    assert first_shown(shown, title) == [
        "reading the results", middle, "drawing the charts", "rendering the PDF"]


@pytest.mark.parametrize(("delay", "flags"), [(0, ("--quiet",)), (600, ())],
                         ids=["quiet", "shorter-than-the-delay"])
def test_nothing_is_shown_under_quiet_or_before_the_delay(small_db: Path, tmp_path: Path,
                                                          delay: float, flags: tuple[str, ...]):
    out = tmp_path / "metrics"
    code, shown = on_terminal(delay, "metrics", "--db", small_db, "--as-of", "2026-10-31",
                              "--out", out, *flags)
    assert code == 0, shown
    assert ESC not in shown
    assert shown.startswith("metrics as of 2026-10-31: ") and shown.count("\n") == 1


def test_nothing_is_shown_when_standard_error_is_not_a_terminal(small_db: Path, tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-c", WITH_DELAY, "0", "metrics", "--db", str(small_db), "--as-of",
         "2026-10-31", "--out", str(tmp_path / "metrics")],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # neither this display nor DuckDB's own progress bar
    assert ESC not in result.stdout
    assert result.stdout.startswith("metrics as of 2026-10-31: ")
    assert result.stdout.count("\n") == 1


def test_a_summary_sent_to_a_file_stays_in_the_file(small_db: Path, tmp_path: Path):
    summary = tmp_path / "summary.txt"
    code, shown = on_terminal(0, "metrics", "--db", small_db, "--as-of", "2026-10-31",
                              "--out", tmp_path / "metrics", stdout=summary)
    assert code == 0, shown
    assert "metrics: writing the files" in ANSI.sub("", shown)  # the display on the terminal
    assert "metrics as of" not in shown
    text = summary.read_text(encoding="utf-8")
    assert ESC not in text and text.startswith("metrics as of 2026-10-31: ")
    assert text.count("\n") == 1
