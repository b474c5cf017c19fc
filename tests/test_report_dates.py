"""Dates after the data and exports of one month (issue 15, items 4 and 5).

An export describes the clinic up to the day it was loaded: an as-of day (or a report month
ending) after that day is refused, with nothing written, for every command and under `--load N`
(that load's day). `outcomes run` on an export of one month reports that month, saying it may be
incomplete, and checks its arguments before the ingest writes anything.
"""

from __future__ import annotations

import json
import subprocess
from datetime import date
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.ingest import ingest
from pipeline.months import month_of
from tests.conftest import LOAD_DAY, cli, copy_db, query, write

# The demo database (conftest `demo_db`) was loaded on LOAD_DAY, 2026-11-28.
AFTER_LOAD = "2026-11-29"
REFUSED = "after the day of load 1 (2026-11-28)"


def assert_refused(result, out: Path, *words: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and message.startswith("error: "), message
    for word in words:
        assert word in message, message
    assert not out.exists(), sorted(out.rglob("*"))


def stored_runs(db: Path) -> list[tuple]:
    tables = query(db, "SELECT table_name FROM duckdb_tables() WHERE table_name = 'metrics_runs'")
    return query(db, "SELECT as_of FROM metrics_runs") if tables else []


def test_metrics_as_of_after_the_load_day_is_refused_and_nothing_is_stored(demo_db, tmp_path):
    db = copy_db(demo_db, tmp_path / "db" / "clinic.duckdb")
    for as_of in (AFTER_LOAD, "2030-01-01"):
        result = cli("metrics", "--db", db, "--as-of", as_of, "--out", tmp_path / "m")
        assert_refused(result, tmp_path / "m", f"as-of day {as_of}", REFUSED,
                       "on or before 2026-11-28")
    assert stored_runs(db) == []


def test_metrics_as_of_on_the_load_day_is_allowed(demo_db, tmp_path):
    db = copy_db(demo_db, tmp_path / "db" / "clinic.duckdb")
    result = cli("metrics", "--db", db, "--as-of", LOAD_DAY.isoformat(), "--out", tmp_path / "m")
    assert result.exit_code == 0, result.output
    assert stored_runs(db) == [(LOAD_DAY,)]


@pytest.mark.parametrize("args", [
    ("monthly", "--month", "2030-01"),
    ("monthly", "--month", "2026-11"),  # ends 2026-11-30, two days after the load
    ("payer", "--month", "2026-11"),
    ("evidence", "--as-of", AFTER_LOAD),
])
def test_reports_after_the_load_day_are_refused_with_nothing_written(demo_db, tmp_path, args):
    out = tmp_path / "out"
    result = cli("report", args[0], "--db", demo_db, *args[1:], "--out", out)
    assert_refused(result, out, REFUSED)


def test_load_n_is_held_to_that_loads_day(demo_db, demo_export, tmp_path):
    """Load 2 (the same export again) on 2026-12-20: as of 2026-12-01 is fine on the latest
    load and refused for --load 1, loaded on 2026-11-28."""
    db = copy_db(demo_db, tmp_path / "db" / "clinic.duckdb")
    ingest(demo_export, db, load_config(), today=date(2026, 12, 20))
    refused = cli("metrics", "--db", db, "--as-of", "2026-12-01", "--load", "1",
                  "--out", tmp_path / "m1")
    assert_refused(refused, tmp_path / "m1", REFUSED)
    allowed = cli("metrics", "--db", db, "--as-of", "2026-12-01", "--out", tmp_path / "m2")
    assert allowed.exit_code == 0, allowed.output
    late = cli("metrics", "--db", db, "--as-of", "2026-12-21", "--out", tmp_path / "m3")
    assert_refused(late, tmp_path / "m3", "after the day of load 2 (2026-12-20)")


# ---------------------------------------------------------------------------------------------
# outcomes run: one month of data, and arguments checked before anything is written

SESSIONS = """\
session_id,patient_id,protocol_id,started_at,status
S1,P1,IND6,2026-03-02 09:00,completed
S2,P1,IND6,2026-03-04 09:00,completed
S3,P1,IND6,2026-03-06 09:00,completed
S4,P1,IND6,2026-03-09 09:00,completed
S5,P1,IND6,2026-03-11 09:00,completed
S6,P1,IND6,2026-03-13 09:00,completed
S7,P2,IND6,2026-03-16 09:00,completed
S8,P2,IND6,2026-03-18 09:00,completed
"""
SCORES = """\
patient_id,instrument,administered_at,total_score,timing
P1,PHQ-9,2026-03-02 08:30,20,pre
P1,PHQ-9,2026-03-09 08:30,12,pre
P1,PHQ-9,2026-03-25,8,followup
P2,PHQ-9,2026-03-16 08:30,18,pre
"""


@pytest.fixture
def one_month(export: Path) -> Path:
    """Two patients, infusions from 2 to 18 March 2026, the latest score on 25 March."""
    write(export, "sessions.csv", SESSIONS)
    write(export, "assessments.csv", SCORES)
    return export


@pytest.mark.slow
def test_run_on_one_month_of_data_reports_that_month_and_says_it_may_be_incomplete(
        one_month, tmp_path):
    out = tmp_path / "out"
    result = cli("run", one_month, "--out", out, "--config", write(
        tmp_path, "c.toml", "[definitions]\nsuppress_small_cells = false\n"))
    assert result.exit_code == 0, result.output
    assert "Report month 2026-03 (as of 2026-03-31, the latest month of the data" in result.output
    assert "the data end on 2026-03-25" in result.output
    report = json.loads((out / "reports" / "monthly-2026-03.json").read_text(encoding="utf-8"))
    assert report["as_of"] == "2026-03-31"
    assert report["data_end_note"].startswith("the data end on 2026-03-25")
    text = subprocess.run(["pdftotext", str(out / "reports" / "monthly-2026-03.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout
    assert "Incomplete month:" in text and "2026-03-25" in text
    # P1 completed 6 of 6 infusions on 13 March (completed); P2's 2 infusions still run on 31 March
    courses = (out / "metrics" / "course_outcomes.csv").read_text(encoding="utf-8")
    assert courses.count(",completed,") == 1 and courses.count(",in_progress,") == 1
    assert (out / "payer" / "index.csv").is_file()


def test_run_with_a_month_that_is_no_month_writes_nothing(one_month, tmp_path):
    out = tmp_path / "out"
    result = cli("run", one_month, "--out", out, "--month", "2026-13")
    assert_refused(result, out, "--month '2026-13': no such month")


def test_run_with_a_month_not_yet_over_writes_nothing(one_month, tmp_path):
    """The month after today's (the run's own load is today): refused before the ingest."""
    next_month = month_of(date.today()).shift(1)
    out = tmp_path / "out"
    result = cli("run", one_month, "--out", out, "--month", next_month.text)
    assert_refused(result, out, f"--month {next_month.text} ends on {next_month.last}",
                   "after today")


def test_run_with_a_month_before_the_first_infusion_names_the_month_not_as_of(one_month,
                                                                             tmp_path):
    out = tmp_path / "out"
    result = cli("run", one_month, "--out", out, "--month", "2026-02")
    assert result.exit_code == 1
    assert ("--month 2026-02: no administered infusion on or before 2026-02-28 (the first is on "
            "2026-03-02); choose 2026-03 or later") in result.stderr
    assert "--as-of" not in result.output
    assert not (out / "metrics").exists() and not (out / "reports").exists()
