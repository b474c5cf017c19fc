"""Loads as a whole: reconciliation, idempotency, atomicity, encodings, XLSX and Parquet inputs."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter

from pipeline.errors import InputError
from pipeline.ingest import LoadReport
from tests.conftest import PATIENTS, PROTOCOLS, cli, copy_db, load, query, rejects, result, write

SESSIONS = """\
session_id,patient_id,protocol_id,started_at,status
S1,P1,IND6,2026-02-02T09:00,completed
S2,P1,IND6,2026-02-04T09:00,cancelled
S3,P1,IND6,2026-02-30T09:00,completed
"""
ASSESSMENTS = """\
patient_id,instrument,administered_at,total_score,timing
P1,PHQ-9,2026-02-02T08:30,18,pre
P1,PHQ-9,2026-02-02,12,post
P1,PHQ-9,2026-02-02,12,post
P1,PHQ-9,2026-02-06,40,pre
"""
CANONICAL = ("protocols", "patients", "sessions", "assessments")


def snapshot(db: Path) -> dict[str, list[tuple]]:
    return {t: query(db, f"SELECT * FROM {t} ORDER BY ALL") for t in (*CANONICAL, "rejects")}


def references(export: Path) -> Path:
    """protocols.csv and patients.csv of tests/conftest.py in `export`."""
    write(export, "protocols.csv", PROTOCOLS)
    write(export, "patients.csv", PATIENTS)
    return export


# A case about one file loads only that file, into a copy of an earlier load of protocols and
# patients (`db`); a case about a whole export loads every file into a new database, and the
# export of every file with SESSIONS and ASSESSMENTS is loaded once.


@pytest.fixture
def export(empty_export: Path) -> Path:
    """Empty (unlike tests/conftest.py `export`): the case writes the files it is about."""
    return empty_export


@pytest.fixture(scope="module")
def whole_load(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, LoadReport]:
    """protocols, patients, SESSIONS and ASSESSMENTS loaded once into a new database: the
    export, the database (copy it to write) and the report."""
    folder = tmp_path_factory.mktemp("whole")
    export = references(folder / "export")
    write(export, "sessions.csv", SESSIONS)
    write(export, "assessments.csv", ASSESSMENTS)
    return export, folder / "clinic.duckdb", load(export, folder / "clinic.duckdb")


@pytest.fixture
def db(tmp_path: Path, references_db: Path) -> Path:
    """A copy of tests/conftest.py `references_db`: protocols and patients loaded (load 1)."""
    return copy_db(references_db, tmp_path / "clinic.duckdb")


def test_reconciliation_adds_up_for_every_file(whole_load):
    _, db, report = whole_load
    got = {f.file: (f.read, f.loaded, f.duplicates, f.rejected) for f in report.files}
    assert got == {
        "protocols.csv": (1, 1, 0, 0),
        "patients.csv": (2, 2, 0, 0),
        "sessions.csv": (3, 2, 0, 1),
        "assessments.csv": (4, 2, 1, 1),
    }
    loads = query(
        db, "SELECT file, rows_read, rows_loaded, duplicates, rejected FROM loads ORDER BY file"
    )
    assert all(read == loaded + dup + rej for _, read, loaded, dup, rej in loads)
    # the printed reconciliation shows the same numbers and no patient id
    text = report.render()
    # read, added, corrected, unchanged, duplicates, rejected, retired
    assert ["assessments.csv", "4", "2", "0", "0", "1", "1", "0", "ok"] in [
        ln.split() for ln in text.splitlines()]
    assert "P1" not in text and "P2" not in text


def test_loads_record_sha256_of_each_file_as_exported(export, db):
    write(export, "sessions.csv", SESSIONS)
    load(export, db)
    expected = hashlib.sha256((export / "sessions.csv").read_bytes()).hexdigest()
    assert query(db, "SELECT sha256 FROM loads WHERE file = 'sessions.csv'") == [(expected,)]


def test_loading_the_same_export_twice_changes_nothing(whole_load, tmp_path):
    export, first, _ = whole_load
    db = copy_db(first, tmp_path / "clinic.duckdb")  # after load 1 of the export
    before = snapshot(db)
    second = load(export, db)
    after = snapshot(db)
    for table in CANONICAL:
        assert after[table] == before[table], table
    # the second load is logged, finds its 2 rows unchanged (1 repeated in the file) and the
    # same bad row again, and writes nothing: no new version, no change
    f = result(second, "assessments.csv")
    assert (f.read, f.added, f.corrected, f.unchanged, f.duplicates, f.rejected, f.retired) == (
        4, 0, 0, 2, 1, 1, 0)
    assert query(db, "SELECT count(*) FROM history.assessments_retired") == [(0,)]
    assert query(db, "SELECT count(*) FROM changes") == [(0,)]
    assert second.load_id == 2
    assert len(after["rejects"]) == 2 * len(before["rejects"])


def test_missing_required_column_stops_the_load_and_leaves_db_unchanged(export, tmp_path):
    db = tmp_path / "fresh.duckdb"  # a new database: no earlier load
    references(export)
    write(export, "sessions.csv", SESSIONS)
    load(export, db)
    before = snapshot(db)
    write(export, "sessions.csv", SESSIONS + "S9,P2,IND6,2026-03-02T09:00,completed\n")
    write(export, "assessments.csv", "patient_id,instrument,total_score\nP1,PHQ-9,10\n")
    with pytest.raises(InputError) as err:
        load(export, db)
    assert "assessments.csv: required column 'administered_at' missing" in str(err.value)
    assert snapshot(db) == before
    assert query(db, "SELECT max(load_id) FROM loads") == [(1,)]


def test_failure_half_way_rolls_back_files_already_processed(export, tmp_path):
    db = tmp_path / "fresh.duckdb"  # a new database: no earlier load
    # sessions.csv loads fine, then assessments.csv has an unterminated quote on line 3:
    # the whole load, sessions included, must leave no trace.
    references(export)
    write(export, "sessions.csv", SESSIONS)
    write(
        export,
        "assessments.csv",
        ASSESSMENTS.replace("P1,PHQ-9,2026-02-02,12,post\n", 'P1,"PHQ-9,2026-02-02,12,post\n', 1),
    )
    with pytest.raises(InputError) as err:
        load(export, db)
    assert "assessments.csv: line 3" in str(err.value)
    assert "never closed" in str(err.value)
    assert {t: query(db, f"SELECT count(*) FROM {t}")[0][0] for t in (*CANONICAL, "loads")} == {
        t: 0 for t in (*CANONICAL, "loads")
    }


def test_utf8_bom_and_windows_1252_files_load_with_encoding_recorded(export, tmp_path):
    db = tmp_path / "fresh.duckdb"  # a new database: no earlier load
    write(export, "protocols.csv", PROTOCOLS)
    write(
        export,
        "patients.csv",
        "\ufeffPatient_ID,Payer\nP1,Acme “Gold” €\nP2,Zoë Care\n",
        encoding="utf-8",
    )
    write(
        export,
        "sessions.csv",
        "session_id,patient_id,protocol_id,started_at,provider\n"
        "S1,P1,IND6,2026-02-02T09:00,Dr. Müller – “lead”\n",
        encoding="cp1252",
    )
    report = load(export, db)
    assert result(report, "patients.csv").encoding == "utf-8-sig"
    assert result(report, "sessions.csv").encoding == "cp1252"
    assert "not UTF-8; read as cp1252" in report.render()
    assert query(db, "SELECT payer FROM patients ORDER BY patient_id") == [
        ("Acme “Gold” €",),
        ("Zoë Care",),
    ]
    assert query(db, "SELECT provider FROM sessions") == [("Dr. Müller – “lead”",)]


def test_latin1_file_with_bytes_undefined_in_cp1252_loads(export, db):
    # 0x81 is undefined in Windows-1252, so this can only be Latin-1.
    path = export / "sessions.csv"
    path.write_bytes(
        b"session_id,patient_id,protocol_id,started_at,provider\n"
        b"S1,P1,IND6,2026-02-02T09:00,Jos\xe9\x81\n"
    )
    report = load(export, db)
    assert result(report, "sessions.csv").encoding == "latin-1"
    assert query(db, "SELECT provider FROM sessions") == [("José\x81",)]


def test_column_names_are_case_insensitive_and_semicolon_files_load(export, db):
    write(
        export,
        "sessions.csv",
        "SESSION_ID;Patient_Id;PROTOCOL_ID;Started_At;Notes\n"
        "S1;P1;IND6;2026-02-02T09:00;free text\n",
    )
    report = load(export, db)
    assert result(report, "sessions.csv").loaded == 1
    assert "columns not in the contract, not loaded: notes" in report.render()


def test_xlsx_with_title_row_reports_sheet_row_numbers(export, db):
    path = export / "assessments.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet()
    stamp = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(0, 0, ["Clinic export, February"])  # row 1: title
    sheet.write_row(2, 0, ["Patient_ID", "Instrument", "administered_at", "total_score"])  # row 3
    sheet.write_row(3, 0, ["P1", "PHQ-9"])  # row 4
    sheet.write_datetime(3, 2, dt.datetime(2026, 2, 2, 8, 30), stamp)
    sheet.write_number(3, 3, 18)
    sheet.write_row(5, 0, ["P1", "PHQ-9", "2026-02-03", "n/a"])  # row 6 (row 5 empty)
    sheet.write_row(6, 0, ["P1", "GAD-7"])  # row 7: date-only cell
    sheet.write_datetime(6, 2, dt.datetime(2026, 2, 4), day)
    sheet.write_number(6, 3, 9)
    sheet.write_row(7, 0, ["P1", "PHQ-9", "2026-02-05", 5, "stray note"])  # row 8: beyond header
    book.close()
    report = load(export, db)
    f = result(report, "assessments.xlsx")
    assert (f.format, f.read, f.loaded, f.rejected) == ("xlsx", 4, 2, 2)
    got = rejects(db, "assessments.xlsx")
    assert [r[1:3] for r in got] == [(6, "total_score"), (8, None)]
    assert got[0][3] == "not a number; the total score must be a number"
    assert got[1][3].startswith("the line has more fields than the header")
    assert query(
        db,
        "SELECT instrument, administered_at, date_only, total_score FROM assessments "
        "ORDER BY administered_at",
    ) == [
        ("PHQ-9", dt.datetime(2026, 2, 2, 8, 30), False, 18.0),
        ("GAD-7", dt.datetime(2026, 2, 4), True, 9.0),
    ]


def test_parquet_input_with_typed_columns_loads(export, db):
    pl.DataFrame(
        {
            "Session_ID": ["S1", "S2"],
            "patient_id": ["P1", "P1"],
            "protocol_id": ["IND6", "IND6"],
            "started_at": [dt.datetime(2026, 2, 2, 9), dt.datetime(2099, 1, 1, 9)],
            "dose_mg_per_kg": [0.5, 0.5],
        }
    ).write_parquet(export / "sessions.parquet")
    report = load(export, db)
    f = result(report, "sessions.parquet")
    assert (f.format, f.loaded, f.rejected) == ("parquet", 1, 1)
    # Parquet row 2 is reported as line 3, as it would be in a CSV with a header
    assert [(r[1], r[2]) for r in rejects(db)] == [(3, "started_at")]
    assert query(db, "SELECT started_at, dose_mg_per_kg FROM sessions") == [
        (dt.datetime(2026, 2, 2, 9), 0.5)
    ]


def test_two_files_for_one_table_stop_the_load(export, db):
    write(export, "sessions.csv", SESSIONS)
    pl.read_csv(export / "sessions.csv").write_parquet(export / "Sessions.parquet")
    with pytest.raises(InputError, match="keep one of them"):
        load(export, db)


def test_cli_bad_file_exits_1_with_message_and_no_traceback(export, db):
    write(export, "sessions.csv", "session_id,patient_id,started_at\nS1,P1,2026-02-02\n")
    proc = cli("ingest", export, "--db", db)
    assert proc.exit_code == 1
    assert "sessions.csv: required column 'protocol_id' missing" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_cli_ingest_prints_reconciliation(export, db):
    write(export, "sessions.csv", SESSIONS)
    proc = cli("ingest", export, "--db", db)
    assert proc.exit_code == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()]
    assert ["sessions.csv", "3", "2", "0", "0", "0", "1", "0", "ok"] in rows


def test_cli_ingest_help_documents_every_option():
    proc = cli("ingest", "--help")
    assert proc.exit_code == 0
    for option in ("DATA_DIR", "--db", "--config", "--help"):
        assert option in proc.stdout
    assert cli("ingest").exit_code == 2  # usage error


def test_treatment_history_loads_with_its_own_checks(export, db):
    write(export, "treatment_history.csv", """\
        patient_id,medication,drug_class,start_date,end_date,adequate_dose,improvement_pct,episode
        P1,sertraline,SSRI,2024-01-10,2024-03-20,yes,10,current
        P1,venlafaxine,SNRI,2024-04-01,2024-03-01,yes,20,current
        P1,bupropion,atypical,2024-06-01,2024-08-15,maybe,150,current
        P9,mirtazapine,atypical,2024-06-01,,no,,prior
        """)
    report = load(export, db)
    f = result(report, "treatment_history.csv")
    assert (f.read, f.loaded, f.rejected) == (4, 1, 3)
    assert [(r[1], r[2]) for r in rejects(db, "treatment_history.csv")] == [
        (3, "end_date"), (4, "adequate_dose"), (4, "improvement_pct"), (5, "patient_id")]
    assert query(db, "SELECT medication, adequate_dose, improvement_pct FROM treatment_history") == [
        ("sertraline", True, 10.0)]
