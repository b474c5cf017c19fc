"""Line numbers and values as written in a file large enough to be read in parallel pieces.

A canonical CSV is not copied before validation: DuckDB reads it straight into the typed rows
(in parallel, in file order), and each row's line is settled afterwards from its place among
the records, around blank and unreadable lines. These tests place problems at known lines of a
300,000-line file and check that every reject names exactly that line and the text as written,
also where the text is only read again afterwards (a date before the patient's birth).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipeline.config import load_config
from pipeline.ingest import ingest

LOAD_DAY = date(2026, 11, 28)
ROWS = 300_000
HEADER = "session_id,patient_id,protocol_id,started_at,dose_mg_per_kg"
BEFORE_BIRTH = (
    "dated before the patient's date of birth (patients file); check the year of this date and "
    "of the date of birth"
)
REPEATED_HEADER = (
    "repeated header line: two exports joined into one file? Not a row; delete the line"
)
TOO_MANY = "the line has more fields than the header; quote fields that contain the delimiter"


def good(i: int) -> str:
    day = 1 + i % 28
    return f"S{i:07d},P{1 + i % 2},IND6,2025-03-{day:02d}T09:{i % 60:02d},0.5"


# line number (1-based, header = 1) -> what is written there instead of a good row
ODD = {
    50_001: "",                                        # a blank line: not a row
    120_000: "S9000001,P1,IND6,not a date,0.5",
    150_000: HEADER.upper(),                           # two exports joined
    180_000: "S9000002,P1,IND6, 1979-12-31 09:00 ,0.5",  # P1 was born 1980-03-04
    199_000: "S9000003,P2,IND6,2025-01-01,0.5,extra",
    299_999: "S9000004,P2,IND6,2025-01-01,nine",
}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    export = tmp_path_factory.mktemp("export")
    (export / "protocols.csv").write_text(
        "protocol_id,name,planned_infusions,planned_days\nIND6,6 infusions,6,12\n")
    (export / "patients.csv").write_text(
        "patient_id,birth_date\nP1,1980-03-04\nP2,1975-06-30\n")
    lines = [HEADER] + [ODD.get(n, good(n)) for n in range(2, ROWS + 1)]
    (export / "sessions.csv").write_text("\n".join(lines) + "\n")
    db = export.parent / "clinic.duckdb"
    config = load_config()
    # more threads than the test machine may have cores: the file is read in several pieces
    config = replace(config, database=replace(config.database, threads=4))
    ingest(export, db, config, today=LOAD_DAY)
    return db


def test_every_reject_names_its_line_and_the_text_as_written(loaded):
    con = duckdb.connect(str(loaded), read_only=True)
    try:
        rows = con.execute('SELECT line, "column", value, reason FROM rejects '
                           "WHERE file = 'sessions.csv' ORDER BY line").fetchall()
    finally:
        con.close()
    assert [r[:3] for r in rows] == [
        (120_000, "started_at", "not a date"),
        (150_000, None, HEADER),  # the header's text (docs/bad-input-files.md)
        (180_000, "started_at", " 1979-12-31 09:00 "),
        (199_000, None, ODD[199_000]),
        (299_999, "dose_mg_per_kg", "nine"),
    ]
    assert rows[1][3] == REPEATED_HEADER
    assert rows[2][3] == BEFORE_BIRTH
    assert rows[3][3] == TOO_MANY


def test_every_other_line_is_loaded_in_file_order(loaded):
    # 299,999 lines below the header: 1 blank, 5 rejected, the rest loaded as written
    con = duckdb.connect(str(loaded), read_only=True)
    try:
        read, loaded_rows, rejected = con.execute(
            "SELECT rows_read, rows_loaded, rejected FROM loads WHERE file = 'sessions.csv'"
        ).fetchall()[0]
        ids = [r[0] for r in con.execute("SELECT session_id FROM sessions ORDER BY rowid").fetchall()]
    finally:
        con.close()
    assert (read, loaded_rows, rejected) == (ROWS - 2, ROWS - 7, 5)
    assert ids == [f"S{n:07d}" for n in range(2, ROWS + 1) if n not in ODD]
