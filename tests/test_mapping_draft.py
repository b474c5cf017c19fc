"""`outcomes mapping draft` and examples/ehr-csv (README "Loading your EHR's export")."""

from __future__ import annotations

import csv
import shutil
import tomllib
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.ingest import ingest
from pipeline.ingest.mapping_draft import draft_mapping
from tests.conftest import LOAD_DAY, PROTOCOLS, query, write

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ehr-csv"
# What a clinic's analyst writes into the draft's "" values for the example export.
ANSWERS = {
    "Checked Out": "completed", "No Show": "cancelled", "Canceled": "cancelled",
    "Stopped Early": "aborted", "Ketamine IV - Induction (6)": "IND6",
    "Ketamine IV - Twice Weekly x4": "TW4", "Ketamine IV - Single Infusion": "SINGLE",
    "Ketamine IV - Maintenance": "MAINT", "Pre-infusion": "pre", "Post-infusion": "post",
    "Follow-up": "followup",
}


def rows(name: str) -> list[dict[str, str]]:
    with (EXAMPLE / name).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def draft(folder: Path) -> str:
    result = CliRunner().invoke(main, ["mapping", "draft", str(folder)])
    assert result.exit_code == 0, result.output
    return result.output


def fill(text: str) -> str:
    """The draft with every listed value filled in from ANSWERS."""
    out = []
    for line in text.splitlines():
        if line.endswith(' = ""'):
            value = line[1:line.index('" = ""')]
            line = f'"{value}" = "{ANSWERS[value]}"'
        out.append(line)
    return "\n".join(out) + "\n"


def load(folder: Path, db: Path):  # type: ignore[no-untyped-def]
    return ingest(folder, db, load_config(), today=LOAD_DAY)


def test_example_export_loads_with_its_mapping(tmp_path, db):
    report = load(EXAMPLE, db)
    assert all(f.adds_up and f.rejected == 0 and f.duplicates == 0 for f in report.files)
    appointments, measures = rows("Appointments.csv"), rows("Measures.csv")
    assert query(db, "SELECT count(*) FROM sessions") == [(len(appointments),)]
    filled = sum(1 for r in measures for c in ("PHQ9 Total", "GAD7 Score", "MADRS Total") if r[c])
    assert query(db, "SELECT count(*) FROM assessments") == [(filled,)]
    first = appointments[0]  # US date and 12-hour time, read independently here
    when = datetime.strptime(f"{first['Date of Service']} {first['Start Time']}", "%m/%d/%Y %I:%M %p")
    assert query(db, "SELECT started_at, status FROM sessions WHERE session_id = ?",
                 [first["Appointment ID"]]) == [(when, "completed")]
    cancelled = sum(r["Appointment Status"] in ("No Show", "Canceled") for r in appointments)
    assert query(db, "SELECT count(*) FROM sessions WHERE status = 'cancelled'") == [(cancelled,)]
    assert cancelled > 0


def test_draft_of_the_example_loads_it_once_the_listed_values_are_filled(tmp_path, db):
    text = draft(EXAMPLE)
    assert 'started_at = ["Date of Service", "Start Time"]' in text
    assert 'administered_at = ["%m/%d/%Y %I:%M %p", "%m/%d/%Y"]   # REVIEW' in text
    assert '"Checked Out" = ""' in text and '"Pre-infusion" = ""' in text
    assert 'scores = { "PHQ-9" = "PHQ9 Total", "GAD-7" = "GAD7 Score", "MADRS" = "MADRS Total" }' in text
    folder = tmp_path / "ehr"
    shutil.copytree(EXAMPLE, folder)
    (folder / "mapping.toml").write_text(fill(text))
    tomllib.loads(fill(text))  # valid TOML
    report = load(folder, db)
    assert all(f.adds_up and f.rejected == 0 for f in report.files)
    shipped = tmp_path / "shipped.duckdb"
    load(EXAMPLE, shipped)
    for table in ("sessions", "assessments"):
        sql = f"SELECT * EXCLUDE (row_hash, load_id) FROM {table} ORDER BY ALL"
        assert query(db, sql) == query(shipped, sql), table
    # the drafted mapping does not map patients' sex values: they load as written
    assert query(db, "SELECT DISTINCT sex FROM patients ORDER BY 1") == [("female",), ("male",)]


def test_draft_left_unfilled_stops_the_load_naming_the_value(tmp_path, db):
    folder = tmp_path / "ehr"
    shutil.copytree(EXAMPLE, folder)
    (folder / "mapping.toml").write_text(draft(EXAMPLE))
    result = CliRunner().invoke(main, ["ingest", str(folder), "--db", str(db)])
    assert result.exit_code == 1
    assert "[patients.values.sex]" not in result.output
    assert "'Checked Out' = '': write the canonical value" in result.output


def test_ambiguous_day_month_dates_are_flagged_and_iso_dates_need_no_format(tmp_path):
    folder = tmp_path / "export"
    write(folder, "protocols.csv", PROTOCOLS)
    write(folder, "Visits.csv", "Visit ID,MRN,Visit Type,Date,Status\n"
                                "V1,P1,IND6,03/04/2026,Completed\nV2,P1,IND6,04/05/2026,Cancelled\n")
    write(folder, "Patients.csv", "MRN,Date of Birth\nP1,1980-03-04\n")
    text = draft_mapping(folder, load_config())
    assert ('started_at = "%m/%d/%Y"   # REVIEW: guessed from 2 values; every value also reads '
            "as %d/%m/%Y") in text
    assert "# birth_date: ISO dates (Date of Birth), read without a format" in text
    assert "[sessions.values.status]" not in text  # Completed / Cancelled are canonical already
    assert "[sessions.values.protocol_id]" not in text  # IND6 is in protocols.csv


def test_missing_columns_unmatched_files_and_monthly_files(tmp_path):
    folder = tmp_path / "export"
    for month in ("2026-09", "2026-10"):
        write(folder, f"Appointments_{month}.csv", "Appt ID,Patient MRN,DOS,Service\n"
                                                   "A1,P1,09/01/2026 9:00 AM,Induction\n")
    write(folder, "staff.csv", "Employee,Role\nAnna,Nurse\n")
    text = draft_mapping(folder, load_config())
    assert 'sessions = "Appointments_2026-*.csv"' in text
    assert "# not matched to a table: staff.csv" in text
    assert 'started_at = "DOS"' in text and 'started_at = "%m/%d/%Y %I:%M %p"' in text
    assert '"Induction" = ""' in text


def test_a_required_column_without_a_match_is_left_for_the_user(tmp_path):
    folder = tmp_path / "export"
    write(folder, "Appointments.csv", "Appointment ID,Patient MRN,Date of Service\n"
                                      "A1,P1,09/01/2026\n")
    text = draft_mapping(folder, load_config())
    assert ('# protocol_id = "<export column>"   # REQUIRED: no column of Appointments.csv matched'
            in text)


def test_draft_of_a_folder_without_tables_is_a_one_line_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    result = CliRunner().invoke(main, ["mapping", "draft", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip().startswith("error: ") and result.output.count("\n") == 1


@pytest.mark.parametrize("name", ["Appointments.csv", "Measures.csv", "Patients.csv"])
def test_example_files_use_us_dates(name):
    first = rows(name)[0]
    date = next(v for k, v in first.items() if k in ("Date of Service", "Visit Date", "DOB"))
    assert datetime.strptime(date, "%m/%d/%Y")
