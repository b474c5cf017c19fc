"""The same clinic data written canonically and written EHR-style with a mapping give identical
course outcomes and protocol summaries (README "Loading your EHR's export").

Fair comparison, as in test_adapters_roundtrip: the demo plants flawed rows; the EHR files are
written (tests/ehr_writer.py, with polars) from the rows the canonical load accepted, so every
EHR row must load and `outcomes metrics` must write byte-identical files.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.demo import write_demo
from tests.adapter_writers import accepted_rows
from tests.conftest import query
from tests.ehr_writer import write_ehr

AS_OF = "2026-10-31"


def outcomes(*args: str | Path) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ehr")
    write_demo(root / "demo", patients=60, seed=7, end=__import__("datetime").date(2026, 10, 31))
    outcomes("ingest", root / "demo", "--db", root / "canonical.duckdb")
    outcomes("metrics", "--db", root / "canonical.duckdb", "--as-of", AS_OF, "--out",
             root / "out_canonical")
    write_ehr(accepted_rows(root / "demo", root / "canonical.duckdb"), root / "ehr", monthly=True)
    outcomes("ingest", root / "ehr", "--db", root / "ehr.duckdb")  # mapping.toml in the folder
    outcomes("metrics", "--db", root / "ehr.duckdb", "--as-of", AS_OF, "--out", root / "out_ehr")
    return root


def test_ehr_files_look_like_an_ehr_export(runs):
    head = (runs / "ehr" / "Appointments-2026.csv").read_text().splitlines()
    assert head[0].startswith("Appointment ID,Patient MRN,Date of Service,Start Time,Service,")
    assert any(" AM," in line or " PM," in line for line in head[1:])
    assert (runs / "ehr" / "Measures.csv").read_text().startswith(
        "Patient MRN,Visit Date,Visit Time,Appointment ID,Timing,PHQ9 Total,GAD7 Score,MADRS Total")


def test_every_ehr_row_loads(runs):
    loads = query(runs / "ehr.duckdb", "SELECT file, rows_read, rows_loaded, duplicates, rejected "
                                       "FROM loads ORDER BY ALL")
    assert {r[0] for r in loads} >= {"Appointments-2025.csv", "Appointments-2026.csv",
                                     "Measures.csv", "Patients.csv", "protocols.csv"}
    assert all(r[3] == 0 and r[4] == 0 and r[1] == r[2] for r in loads), loads


@pytest.mark.parametrize("name", ["course_outcomes.csv", "protocol_summary.csv"])
def test_course_outcomes_and_protocol_summaries_are_identical(runs, name):
    expected = (runs / "out_canonical" / name).read_bytes()
    assert (runs / "out_ehr" / name).read_bytes() == expected
    assert expected.count(b"\n") > 10  # the comparison is not vacuous


def test_the_canonical_tables_agree_ids_of_scores_aside(runs):
    for sql in (
        "SELECT * EXCLUDE (row_hash, load_id) FROM sessions ORDER BY ALL",
        "SELECT patient_id, instrument, administered_at, date_only, total_score, session_id, "
        "timing FROM assessments ORDER BY ALL",
        "SELECT * EXCLUDE (row_hash, load_id) FROM patients ORDER BY ALL",
    ):
        assert query(runs / "ehr.duckdb", sql) == query(runs / "canonical.duckdb", sql), sql
