"""EHR exports through mapping.toml: columns, formats, value maps, wide score sheets, rejects
at the export's own line and column (README "Loading your EHR's export")."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.errors import InputError
from pipeline.ingest import LoadReport, ingest
from tests.conftest import LOAD_DAY, PROTOCOLS, copy_db, query, rejects, write

APPOINTMENTS = """\
Appointment ID,Patient MRN,Date of Service,Start Time,Service,Appointment Status,Weight (kg)
A1,M1,03/04/2026,9:15 AM,Ketamine IV - Induction (6),Checked Out,80
A2,M1,03/06/2026,1:30 PM,Ketamine IV - Induction (6),checked out ,80.5
A3,M1,03/09/2026,10:00 AM,Ketamine IV - Induction (6),No Show,
A4,M2,03/34/2026,10:00 AM,Ketamine IV - Induction (6),Checked Out,70
A5,M2,03/10/2026,11:00 AM,Ketamine IM,Checked Out,70
A6,M2,03/11/2026,11:00 AM,Ketamine IV - Induction (6),Left early,70
"""
MEASURES = """\
Patient MRN,Visit Date,PHQ9 Total,GAD7 Score,Notes
M1,03/04/2026,18,12,first visit
M1,03/09/2026,,10,
M2,03/10/2026,30,,
M2,03/11/2026,,,no scores
"""
MAPPING = """\
[files]                                   # canonical table -> file name (glob) in DATA_DIR
sessions = "Appointments*.csv"
assessments = "Measures.csv"

[sessions.columns]
session_id = "Appointment ID"
patient_id = "Patient MRN"
started_at = ["Date of Service", "Start Time"]   # joined with a space, then parsed
protocol_id = "Service"
status = "Appointment Status"
weight_kg = "Weight (kg)"

[sessions.formats]
started_at = "%m/%d/%Y %I:%M %p"

[sessions.values.status]
"Checked Out" = "completed"
"No Show" = "cancelled"

[sessions.values.protocol_id]
"Ketamine IV - Induction (6)" = "IND6"

[assessments.wide]
patient_id = "Patient MRN"
administered_at = "Visit Date"
scores = { "PHQ-9" = "PHQ9 Total", "GAD-7" = "GAD7 Score" }   # empty cell = not administered

[assessments.formats]
administered_at = "%m/%d/%Y"
"""


def load(folder: Path, db: Path, mapping: Path | None = None, **options):  # type: ignore[no-untyped-def]
    return ingest(folder, db, load_config(), today=LOAD_DAY, mapping=mapping, **options)


def write_ehr(folder: Path) -> Path:
    write(folder, "protocols.csv", PROTOCOLS)
    write(folder, "Appointments-2026.csv", APPOINTMENTS)
    write(folder, "Measures.csv", MEASURES)
    write(folder, "mapping.toml", MAPPING)
    return folder


@pytest.fixture
def ehr(tmp_path: Path) -> Path:
    return write_ehr(tmp_path / "ehr")


@pytest.fixture(scope="module")
def ehr_loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, LoadReport]:
    """The `ehr` export loaded once into a new database, for the cases that only read the
    result: the export, the database (copy it to write) and the report."""
    folder = tmp_path_factory.mktemp("ehr-loaded")
    export = write_ehr(folder / "ehr")
    return export, folder / "clinic.duckdb", load(export, folder / "clinic.duckdb")


def test_us_dates_status_words_and_services_load_through_the_mapping(ehr_loaded):
    _, db, report = ehr_loaded
    assert all(f.adds_up for f in report.files)
    # 03/04/2026 under %m/%d/%Y is 4 March; 1:30 PM is 13:30; "checked out " matches loosely
    assert query(db, "SELECT session_id, patient_id, protocol_id, started_at, status, weight_kg "
                     "FROM sessions ORDER BY 1") == [
        ("A1", "M1", "IND6", datetime(2026, 3, 4, 9, 15), "completed", 80.0),
        ("A2", "M1", "IND6", datetime(2026, 3, 6, 13, 30), "completed", 80.5),
        ("A3", "M1", "IND6", datetime(2026, 3, 9, 10, 0), "cancelled", None),
    ]
    sessions = next(f for f in report.files if f.table == "sessions")
    assert (sessions.file, sessions.read, sessions.added, sessions.rejected) == (
        "Appointments-2026.csv", 6, 3, 3)


def test_rejects_name_the_exports_file_line_column_and_value(ehr_loaded):
    _, db, _ = ehr_loaded
    got = query(db, 'SELECT file, line, "column", value, reason FROM rejects ORDER BY file, line')
    assert got[0][:4] == ("Appointments-2026.csv", 5, "Date of Service + Start Time",
                          "03/34/2026 10:00 AM")
    assert "does not match the date format" in got[0][4] and "%m/%d/%Y %I:%M %p" in got[0][4]
    assert got[1][:4] == ("Appointments-2026.csv", 6, "Service", "Ketamine IM")
    assert "[sessions.values.protocol_id]" in got[1][4]
    assert "(listed: Ketamine IV - Induction (6))" in got[1][4]
    assert got[2][:4] == ("Appointments-2026.csv", 7, "Appointment Status", "Left early")
    assert "(listed: Checked Out, No Show)" in got[2][4]
    # a canonical rule (score range) names the sheet's column too
    assert got[3] == ("Measures.csv", 4, "PHQ9 Total", "30", "score outside the PHQ-9 range 0–27")
    assert len(got) == 4


def test_wide_sheet_loads_one_score_per_filled_cell(ehr_loaded):
    _, db, report = ehr_loaded
    # filled cells: PHQ-9 on lines 2 and 4 (line 4 is 30, out of range), GAD-7 on lines 2 and 3
    assert query(db, "SELECT patient_id, instrument, administered_at, total_score FROM assessments "
                     "ORDER BY 1, 3, 2") == [
        ("M1", "GAD-7", datetime(2026, 3, 4), 12.0),
        ("M1", "PHQ-9", datetime(2026, 3, 4), 18.0),
        ("M1", "GAD-7", datetime(2026, 3, 9), 10.0),
    ]
    units = [(f.file, f.read, f.added, f.rejected) for f in report.files if f.table == "assessments"]
    assert units == [("Measures.csv", 2, 1, 1), ("Measures.csv", 2, 2, 0)]
    notes = report.render()
    assert "1 rows hold no score" in notes
    assert "columns not in mapping.toml, not loaded: Notes" in notes


def test_a_date_format_removes_the_day_month_ambiguity(tmp_path, db):
    folder = tmp_path / "eu"
    write(folder, "protocols.csv", PROTOCOLS)
    write(folder, "sessions.csv", "session_id,patient_id,protocol_id,started_at\n"
                                  "S1,P1,IND6,03/04/2026 09:00\nS2,P1,IND6,13/04/2026 09:00\n")
    write(folder, "mapping.toml", '[sessions.formats]\nstarted_at = "%d/%m/%Y %H:%M"\n')
    load(folder, db)
    # the clinic declared day/month: 03/04 is 3 April, 13/04 is 13 April; no file rename needed
    assert query(db, "SELECT session_id, started_at FROM sessions ORDER BY 1") == [
        ("S1", datetime(2026, 4, 3, 9, 0)), ("S2", datetime(2026, 4, 13, 9, 0))]
    # without the mapping both are rejected: only ISO dates load, 03/04 is ambiguous
    (folder / "mapping.toml").unlink()
    load(folder, tmp_path / "plain.duckdb")
    reasons = [r[3] for r in rejects(tmp_path / "plain.duckdb")]
    assert len(reasons) == 2 and "cannot be told apart" in reasons[0]


VISITS_MAPPING = """\
[files]
sessions = "visits.csv"
[sessions.columns]
session_id = "Visit"
patient_id = "MRN"
protocol_id = "Proto"
started_at = "When"
"""


def visits(tmp_path: Path, text: str, more_mapping: str = "") -> Path:
    """A sessions export with its own column names, its mapping and protocols.csv."""
    folder = tmp_path / "visits"
    write(folder, "protocols.csv", PROTOCOLS)
    write(folder, "visits.csv", text)
    write(folder, "mapping.toml", VISITS_MAPPING + more_mapping)
    return folder


def test_list_of_formats_reads_date_only_values_as_dates(tmp_path, db):
    folder = visits(tmp_path, "Visit,MRN,Proto,When\nV1,P1,IND6,03/04/2026 9:15 AM\n"
                              "V2,P1,IND6,03/05/2026\n",
                    '[sessions.formats]\nstarted_at = ["%m/%d/%Y %I:%M %p", "%m/%d/%Y"]\n')
    load(folder, db)
    assert query(db, "SELECT session_id, started_at, started_date_only FROM sessions ORDER BY 1") == [
        ("V1", datetime(2026, 3, 4, 9, 15), False), ("V2", datetime(2026, 3, 5), True)]


def test_canonical_rules_reject_with_the_exports_column_and_value_as_written(ehr, db):
    write(ehr, "Appointments-2026.csv", APPOINTMENTS.splitlines()[0] + "\n"
          "A1,M1,12/30/2026,9:15 AM,Ketamine IV - Induction (6),Checked Out,80\n"
          "A3,M1,03/06/2026,1:30 PM,Ketamine IV - Induction (6),Checked Out,800\n"
          "A2,M1,03/07/2026,1:30 PM,Ketamine IV - Induction (6),Checked Out,80\n"
          "A2,M1,03/08/2026,1:30 PM,Ketamine IV - Induction (6),Checked Out,80\n")
    load(ehr, db)
    got = {(r[1], r[2]): r for r in query(db, 'SELECT file, line, "column", value, reason '
                                              "FROM rejects WHERE file LIKE 'Appoint%'")}
    # 30 December 2026 is after the day of load (28 November 2026)
    assert got[(2, "Date of Service + Start Time")][3] == "12/30/2026 9:15 AM"
    assert "later than the day of the load" in got[(2, "Date of Service + Start Time")][4]
    assert got[(3, "Weight (kg)")][3] == "800"
    # A2 twice with different values: the conflict names the export's id column
    assert got[(4, "Appointment ID")][3] == "A2" and "conflicting" in got[(4, "Appointment ID")][4]
    assert (5, "Appointment ID") in got


def test_mapping_naming_a_column_the_file_lacks_stops_the_load(ehr, db):
    write(ehr, "mapping.toml", MAPPING.replace('"Start Time"', '"Start Tme"'))
    with pytest.raises(InputError) as err:
        load(ehr, db)
    message = str(err.value)
    assert message.startswith("Appointments-2026.csv: column 'Start Tme' is not in the file's "
                              "header, but mapping.toml [sessions.columns] started_at names it")
    assert "Start Time" in message  # the header found is listed
    assert not db.exists() or query(db, "SELECT count(*) FROM loads") == [(0,)]


def test_wide_sheet_lacking_a_score_column_names_the_instrument_key(ehr, db):
    write(ehr, "Measures.csv", MEASURES.replace("GAD7 Score", "GAD-7"))
    with pytest.raises(InputError, match=r"Measures.csv: column 'GAD7 Score' is not in the file's "
                                         r"header, but mapping.toml \[assessments.wide\] "
                                         r'scores."GAD-7" names it'):
        load(ehr, db)


@pytest.mark.parametrize("text, expected", [
    ("[sesions.columns]\nsession_id = 'x'\n",
     "the mapping: unknown key 'sesions'; did you mean 'sessions'?"),
    ("[files]\nvisits = 'a.csv'\n", "[files]: unknown key 'visits'"),
    ("[sessions.columns]\nsession_id = 'A'\npatient_id = 'B'\nstarted_at = 'C'\nprotocol = 'D'\n",
     "[sessions.columns]: unknown key 'protocol'; did you mean 'protocol_id'?"),
    ("[sessions.columns]\nsession_id = 'A'\npatient_id = 'B'\n",
     "[sessions.columns]: lacks the required columns protocol_id, started_at; add "
     'protocol_id = "<export column>", started_at = "<export column>"'),
    ("[sessions.formats]\nstarted_at = '%m/%d'\n",
     "[sessions.formats] started_at: format '%m/%d' has no year"),
    ("[sessions.formats]\nstarted_at = '%m/%d/%Y %Q'\n",
     "[sessions.formats] started_at: format '%m/%d/%Y %Q' is not a strptime format"),
    ("[sessions.formats]\nstatus = '%Y'\n",
     "[sessions.formats] status: only date columns take a format (in sessions: started_at)"),
    ("[sessions.values.status]\n'No Show' = ''\n",
     "[sessions.values.status]: 'No Show' = '': write the canonical value (completed, aborted, "
     "cancelled) in quotes"),
    ("[sessions.values.status]\n'No Show' = 'no-show'\n",
     "[sessions.values.status]: 'No Show' = 'no-show' is not a status; use completed, aborted, "
     "cancelled"),
    ("[assessments.wide]\npatient_id = 'A'\nadministered_at = 'B'\nscores = { 'PHQ-8' = 'C' }\n",
     '[assessments.wide] scores."PHQ-8": not in the instrument registry'),
    ("[assessments.wide]\npatient_id = 'A'\nscores = { 'PHQ-9' = 'C' }\n",
     "[assessments.wide]: needs administered_at"),
    ("[files]\nsessions = 'exports/a.csv'\n", "[files] sessions: 'exports/a.csv' is a path"),
    ("[files\n", "is not valid TOML"),
])
def test_mistakes_in_the_mapping_file_stop_the_load_with_one_line(tmp_path, db, text, expected):
    folder = tmp_path / "bad"
    write(folder, "protocols.csv", PROTOCOLS)
    mapping = write(folder, "mapping.toml", text)
    with pytest.raises(InputError) as err:
        load(folder, db)
    assert str(err.value).startswith(str(mapping)) and expected in str(err.value)
    assert "\n" not in str(err.value)


def test_a_glob_reads_every_monthly_file_as_one_snapshot(ehr, db):
    lines = APPOINTMENTS.splitlines()
    head = lines[0] + "\n"
    (ehr / "Appointments-2026.csv").unlink()
    write(ehr, "Appointments-2026-03a.csv", head + lines[1] + "\n" + lines[2] + "\n")
    write(ehr, "Appointments-2026-03b.csv", head + lines[3] + "\n")
    first = load(ehr, db)
    assert [(f.file, f.added) for f in first.files if f.table == "sessions"] == [
        ("Appointments-2026-03a.csv", 2), ("Appointments-2026-03b.csv", 1)]
    # next month: A2's weight corrected, A3 deleted in the EHR -> corrected and retired
    write(ehr, "Appointments-2026-03a.csv", head + lines[1] + "\n" + lines[2].replace("80.5", "81")
          + "\n")
    (ehr / "Appointments-2026-03b.csv").unlink()
    second = load(ehr, db, allow_retire=True)
    sessions = [f for f in second.files if f.table == "sessions"]
    assert [(f.unchanged, f.corrected, f.retired) for f in sessions] == [(1, 1, 1)]
    assert query(db, "SELECT session_id, weight_kg FROM sessions ORDER BY 1") == [
        ("A1", 80.0), ("A2", 81.0)]


def test_reloading_the_same_mapped_export_changes_nothing(ehr_loaded, tmp_path):
    ehr, first, _ = ehr_loaded
    db = copy_db(first, tmp_path / "clinic.duckdb")  # after load 1 of the export
    again = load(ehr, db)
    assert all(f.added == 0 and f.corrected == 0 and f.retired == 0 for f in again.files)


def test_unmapped_optional_columns_are_read_by_their_canonical_names(tmp_path, db):
    folder = visits(tmp_path, "Visit,MRN,Proto,When,dose_mg,Provider\n"
                              "V1,P1,IND6,2026-03-04 09:00,40,Dr A\n")
    load(folder, db)
    assert query(db, "SELECT dose_mg, provider FROM sessions") == [(40.0, "Dr A")]


def test_xlsx_and_parquet_exports_are_mapped_too(tmp_path, db):
    folder = tmp_path / "formats"
    write(folder, "protocols.csv", PROTOCOLS)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Riverside Clinic - measures export"])  # a title row above the header
    sheet.append(["Patient MRN", "Visit Date", "PHQ9 Total", "GAD7 Score"])
    sheet.append(["M1", "03/04/2026", 18, None])
    sheet.append(["M1", "03/18/2026", 7, 5])
    book.save(folder / "Measures.xlsx")
    pl.DataFrame({"Appt": ["A1"], "MRN": ["M1"], "DOS": ["03/04/2026 09:15"],
                  "Svc": ["IND6"]}).write_parquet(folder / "appts.parquet")
    write(folder, "mapping.toml", '[files]\nsessions = "appts.parquet"\nassessments = "Measures.xlsx"\n'
                                  '[sessions.columns]\nsession_id = "Appt"\npatient_id = "MRN"\n'
                                  'started_at = "DOS"\nprotocol_id = "Svc"\n[sessions.formats]\n'
                                  'started_at = "%m/%d/%Y %H:%M"\n'
                                  + MAPPING[MAPPING.index("[assessments.wide]"):])
    report = load(folder, db)
    assert all(f.adds_up and f.rejected == 0 for f in report.files)
    assert query(db, "SELECT started_at FROM sessions") == [(datetime(2026, 3, 4, 9, 15),)]
    assert query(db, "SELECT instrument, administered_at, total_score FROM assessments "
                     "ORDER BY 2, 1") == [("PHQ-9", datetime(2026, 3, 4), 18.0),
                                          ("GAD-7", datetime(2026, 3, 18), 5.0),
                                          ("PHQ-9", datetime(2026, 3, 18), 7.0)]


def test_ingest_uses_mapping_toml_in_the_folder_or_the_mapping_option(ehr, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["ingest", str(ehr), "--db", str(tmp_path / "a.duckdb")])
    assert result.exit_code == 0, result.output
    assert query(tmp_path / "a.duckdb", "SELECT count(*) FROM sessions") == [(3,)]
    # the same mapping kept elsewhere, given with --mapping
    elsewhere = tmp_path / "clinic-mapping.toml"
    (ehr / "mapping.toml").rename(elsewhere)
    result = runner.invoke(main, ["ingest", str(ehr), "--db", str(tmp_path / "b.duckdb"),
                                  "--mapping", str(elsewhere)])
    assert result.exit_code == 0, result.output
    assert query(tmp_path / "b.duckdb", "SELECT count(*) FROM sessions") == [(3,)]
    # a broken mapping: exit 1 with one line, no traceback
    write(ehr, "mapping.toml", "[sessions.columns]\nsession_id = 'A'\n")
    result = runner.invoke(main, ["ingest", str(ehr), "--db", str(tmp_path / "c.duckdb")])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "lacks the required columns" in result.output
