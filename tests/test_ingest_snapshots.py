"""Exports over time: each file is a snapshot of its table (README "Exports over time").

Tiny exports written in the tests; every expected count is worked out in a comment beside it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import InputError
from tests.conftest import (
    PATIENTS,
    PROTOCOLS,
    copy_db,
    load,
    query,
    query_each,
    rejects,
    result,
    write,
)

SESSIONS_1 = """\
session_id,patient_id,protocol_id,started_at,status,dose_mg
S1,P1,IND6,2026-02-02T09:00,completed,40
S2,P1,IND6,2026-02-04T09:00,completed,40
S3,P1,IND6,2026-02-06T09:00,completed,40
S4,P2,IND6,2026-02-02T10:00,completed,35
S5,P2,IND6,2026-02-04T10:00,completed,35
"""
# S1 unchanged, S2 dose corrected 40 -> 42, S3 gone (deleted in the clinic's system), S4 and S5
# unchanged, S6 new: added 1, corrected 1, unchanged 3, retired 1 (1 of 5 = 20%, not above 0.2).
SESSIONS_2 = """\
session_id,patient_id,protocol_id,started_at,status,dose_mg
S1,P1,IND6,2026-02-02T09:00,completed,40
S2,P1,IND6,2026-02-04T09:00,completed,42
S4,P2,IND6,2026-02-02T10:00,completed,35
S5,P2,IND6,2026-02-04T10:00,completed,35
S6,P2,IND6,2026-02-06T10:00,completed,35
"""
CANONICAL = ("protocols", "patients", "sessions", "assessments", "treatment_history")


def state(db: Path) -> dict[str, list[tuple]]:
    """Every stored row of every table, history and log included (loaded_at left out)."""
    tables = [*CANONICAL, "changes", "rejects",
              *(f"history.{t}_retired" for t in CANONICAL)]
    return query_each(db, {**{t: f"SELECT * FROM {t} ORDER BY ALL" for t in tables},
                           "loads": "SELECT * EXCLUDE (loaded_at) FROM loads ORDER BY ALL"})


@pytest.fixture(scope="module")
def first_load(tmp_path_factory):  # type: ignore[no-untyped-def]
    """A database after load 1 of protocols and patients (tests/conftest.py) and SESSIONS_1,
    made once: a test copies it (`loaded`) instead of loading the same files again."""
    folder = tmp_path_factory.mktemp("first-load")
    write(folder / "export", "protocols.csv", PROTOCOLS)
    write(folder / "export", "patients.csv", PATIENTS)
    write(folder / "export", "sessions.csv", SESSIONS_1)
    load(folder / "export", folder / "clinic.duckdb")
    return folder / "clinic.duckdb"


def counts(report, file):  # type: ignore[no-untyped-def]
    f = result(report, file)
    return (f.read, f.added, f.corrected, f.unchanged, f.duplicates, f.rejected, f.retired)


def test_snapshot_adds_corrects_keeps_and_retires(first_load, db, tmp_path):
    copy_db(first_load, db)  # load 1: protocols, patients and SESSIONS_1
    later = tmp_path / "later"
    write(later, "sessions.csv", SESSIONS_2)
    report = load(later, db)
    # read 5 = added 1 + corrected 1 + unchanged 3 + duplicates 0 + rejected 0; retired 1
    assert counts(report, "sessions.csv") == (5, 1, 1, 3, 0, 0, 1)
    assert query(db, "SELECT session_id, dose_mg, load_id FROM sessions ORDER BY 1") == [
        ("S1", 40.0, 1), ("S2", 42.0, 2), ("S4", 35.0, 1), ("S5", 35.0, 1), ("S6", 35.0, 2)]
    # nothing is deleted: the old S2 and S3 are in history with the load that replaced them
    assert query(db, "SELECT session_id, dose_mg, load_id, retired_load "
                     "FROM history.sessions_retired ORDER BY 1") == [
        ("S2", 40.0, 1, 2), ("S3", 40.0, 1, 2)]
    assert query(db, "SELECT count(*) FROM history.sessions") == [(7,)]
    assert query(db, 'SELECT table_name, change, reason, record_id, "columns", file, line '
                     "FROM changes ORDER BY record_id") == [
        ("sessions", "corrected", "values corrected", "S2", ["dose_mg"], "sessions.csv", 3),
        ("sessions", "retired", "not in this export", "S3", None, "sessions.csv", None)]
    # the printed summary counts by column and reason, and names no id
    text = report.render()
    assert "Mode: snapshot" in text
    assert "sessions corrected, by column:" in text and "1  dose_mg" in text
    assert "1  not in this export" in text
    assert "S2" not in text and "S3" not in text and "P1" not in text


def test_loading_the_same_snapshot_twice_changes_no_row(export, first_load, db):
    write(export, "sessions.csv", SESSIONS_1)
    copy_db(first_load, db)  # load 1 of this export
    before = state(db)
    second = load(export, db)
    after = state(db)
    assert counts(second, "sessions.csv") == (5, 0, 0, 5, 0, 0, 0)
    for table in [t for t in before if t not in ("loads", "rejects")]:
        assert after[table] == before[table], table  # not even a "last seen" stamp moves
    assert len(after["loads"]) == len(before["loads"]) + 3  # the second load is logged


def test_a_table_without_a_file_is_left_as_it_was(first_load, db, tmp_path):
    copy_db(first_load, db)  # load 1: protocols, patients and SESSIONS_1
    later = tmp_path / "later"
    write(later, "patients.csv", "patient_id,birth_date,sex,diagnosis_code,payer,member_id,site\n"
                                 "P1,1980-03-04,F,F33.2,Acme Health,M100,North\n"
                                 "P2,1975-06-30,M,F32.2,Self-pay,,North\n")
    report = load(later, db)
    assert [f.file for f in report.files] == ["patients.csv"]
    assert query(db, "SELECT count(*) FROM sessions") == [(5,)]
    assert query(db, "SELECT count(*) FROM protocols") == [(1,)]


def test_append_adds_and_corrects_but_retires_nothing(first_load, db, tmp_path):
    copy_db(first_load, db)  # load 1: protocols, patients and SESSIONS_1
    later = tmp_path / "later"
    write(later, "sessions.csv", "session_id,patient_id,protocol_id,started_at,status,dose_mg\n"
                                 "S2,P1,IND6,2026-02-04T09:00,completed,42\n"
                                 "S6,P2,IND6,2026-02-06T10:00,completed,35\n")
    report = load(later, db, append=True)
    # read 2 = added 1 (S6) + corrected 1 (S2); S1, S3, S4, S5 stay: 6 sessions
    assert counts(report, "sessions.csv") == (2, 1, 1, 0, 0, 0, 0)
    assert query(db, "SELECT count(*) FROM sessions") == [(6,)]
    assert query(db, "SELECT mode FROM loads WHERE load_id = 2 LIMIT 1") == [("append",)]
    assert "Mode: append" in report.render()


def test_a_truncated_snapshot_stops_with_the_database_unchanged(first_load, db, tmp_path):
    copy_db(first_load, db)  # load 1: protocols, patients and SESSIONS_1
    before = state(db)
    later = tmp_path / "later"
    # 2 of 5 sessions left: 3 would be retired, 60% > max_retired_share 0.2
    write(later, "sessions.csv", "session_id,patient_id,protocol_id,started_at,status,dose_mg\n"
                                 "S1,P1,IND6,2026-02-02T09:00,completed,40\n"
                                 "S2,P1,IND6,2026-02-04T09:00,completed,40\n")
    with pytest.raises(InputError) as err:
        load(later, db)
    message = str(err.value)
    assert "sessions.csv would retire 3 of the 5 current sessions rows (60%)" in message
    assert "--allow-retire" in message and "Nothing was loaded" in message
    assert state(db) == before  # no load logged, no row moved
    report = load(later, db, allow_retire=True)
    assert counts(report, "sessions.csv") == (2, 0, 0, 2, 0, 0, 3)
    assert query(db, "SELECT session_id FROM sessions ORDER BY 1") == [("S1",), ("S2",)]


def test_the_retire_guard_follows_the_configured_share(first_load, db, tmp_path):
    from pipeline.config import load_config
    from pipeline.ingest import ingest

    copy_db(first_load, db)  # load 1: protocols, patients and SESSIONS_1
    later = tmp_path / "later"
    write(later, "sessions.csv", SESSIONS_2)  # retires 1 of 5 = 20%
    config_path = write(tmp_path, "strict.toml", "[ingest]\nmax_retired_share = 0.1\n")
    with pytest.raises(InputError, match=r"retire 1 of the 5 current sessions rows \(20%\)"):
        ingest(later, db, load_config(config_path))


def test_conflicting_ids_in_one_file_keep_the_previous_version(first_load, db, tmp_path):
    copy_db(first_load, db)  # load 1: protocols, patients and SESSIONS_1
    later = tmp_path / "later"
    write(later, "sessions.csv", SESSIONS_1 + "S2,P1,IND6,2026-02-04T09:00,completed,44\n")
    report = load(later, db)
    # lines 3 and 7 both give S2, with doses 40 and 44: both rejected; S2 from load 1 stays
    assert counts(report, "sessions.csv") == (6, 0, 0, 4, 0, 2, 0)
    assert query(db, "SELECT dose_mg, load_id FROM sessions WHERE session_id = 'S2'") == [(40.0, 1)]
    got = [r for r in rejects(db, "sessions.csv") if r[1] in (3, 7)]
    assert [r[1] for r in got] == [3, 7]
    assert all("(lines 3, 7; the version from load 1 stays current)" in r[3] for r in got)


def test_a_rejected_correction_keeps_the_previous_version_and_says_so(export, db, tmp_path):
    write(export, "assessments.csv", "assessment_id,patient_id,instrument,administered_at,"
                                     "total_score,timing\n"
                                     "A1,P1,PHQ-9,2026-02-02T08:30,18,pre\n")
    load(export, db)
    later = tmp_path / "later"
    write(later, "assessments.csv", "assessment_id,patient_id,instrument,administered_at,"
                                    "total_score,timing\n"
                                    "A1,P1,PHQ-9,2026-02-02T08:30,31,pre\n")
    report = load(later, db)
    assert counts(report, "assessments.csv") == (1, 0, 0, 0, 0, 1, 0)
    assert query(db, "SELECT total_score FROM assessments") == [(18.0,)]
    reason = rejects(db, "assessments.csv")[-1][3]
    assert reason == ("score outside the PHQ-9 range 0–27 (the version from load 1 stays "
                      "current)")


def test_rows_without_an_id_are_matched_by_content(first_load, db, tmp_path):
    copy_db(first_load, db)  # load 1: protocols, patients and SESSIONS_1
    export = tmp_path / "scores"
    header = "patient_id,instrument,administered_at,total_score,timing\n"
    write(export, "assessments.csv", header + "P1,PHQ-9,2026-02-02T08:30,18,pre\n"
                                              "P1,PHQ-9,2026-02-04T08:30,12,pre\n")
    load(export, db)
    later = tmp_path / "later"
    # the baseline is corrected 18 -> 16: without an id, one row retired and one added (1 of 2
    # rows retired is above max_retired_share 0.2, so the analyst confirms it)
    write(later, "assessments.csv", header + "P1,PHQ-9,2026-02-02T08:30,16,pre\n"
                                             "P1,PHQ-9,2026-02-04T08:30,12,pre\n")
    report = load(later, db, allow_retire=True)
    assert counts(report, "assessments.csv") == (2, 1, 0, 1, 0, 0, 1)
    assert query(db, "SELECT total_score FROM assessments ORDER BY administered_at") == [
        (16.0,), (12.0,)]
    retired = query(db, "SELECT reason FROM changes WHERE change = 'retired'")
    assert retired == [("not in this export (a row without an id is matched by its values: a "
                        "changed row is one retired and one added)",)]


def test_a_rejected_row_without_an_id_keeps_the_rows_of_its_patient_instrument_and_time(
        first_load, db, tmp_path):
    copy_db(first_load, db)  # load 1: protocols, patients and SESSIONS_1
    export = tmp_path / "scores"
    header = "patient_id,instrument,administered_at,total_score,timing\n"
    write(export, "assessments.csv", header + "P1,PHQ-9,2026-02-02T08:30,18,pre\n")
    load(export, db)
    later = tmp_path / "later"
    write(later, "assessments.csv", header + "P1,PHQ-9,2026-02-02T08:30,30,pre\n")
    report = load(later, db)
    # the corrected row is rejected (30 > 27); the row of the same patient, instrument and time
    # stays current instead of being retired as "not in this export"
    assert counts(report, "assessments.csv") == (1, 0, 0, 0, 0, 1, 0)
    assert query(db, "SELECT total_score FROM assessments") == [(18.0,)]


def test_a_new_optional_column_is_a_correction_not_a_conflict(first_load, db, tmp_path):
    copy_db(first_load, db)  # load 1: protocols, patients and SESSIONS_1
    later = tmp_path / "later"
    rows = SESSIONS_1.splitlines()
    with_bp = [rows[0] + ",bp_systolic_max,bp_diastolic_max"] + [
        r + (",150,90" if r.startswith("S1,") else ",,") for r in rows[1:]]
    write(later, "sessions.csv", "\n".join(with_bp) + "\n")
    report = load(later, db)
    # S1 gains a blood pressure: corrected; S2-S5 have empty bp cells: unchanged
    assert counts(report, "sessions.csv") == (5, 0, 1, 4, 0, 0, 0)
    assert query(db, "SELECT bp_systolic_max, bp_diastolic_max FROM sessions "
                     "WHERE session_id = 'S1'") == [(150, 90)]
    assert query(db, 'SELECT reason, "columns" FROM changes') == [
        ("values where the earlier version had none", ["bp_systolic_max", "bp_diastolic_max"])]


def test_a_column_the_new_file_lacks_keeps_its_values(first_load, db, tmp_path):
    copy_db(first_load, db)  # load 1: protocols, patients and SESSIONS_1
    later = tmp_path / "later"
    # the export setting dropped dose_mg and status: nothing changes, and the report says so
    write(later, "sessions.csv", "session_id,patient_id,protocol_id,started_at\n"
                                 "S1,P1,IND6,2026-02-02T09:00\nS2,P1,IND6,2026-02-04T09:00\n"
                                 "S3,P1,IND6,2026-02-06T09:00\nS4,P2,IND6,2026-02-02T10:00\n"
                                 "S5,P2,IND6,2026-02-04T10:00\n")
    report = load(later, db)
    assert counts(report, "sessions.csv") == (5, 0, 0, 5, 0, 0, 0)
    assert query(db, "SELECT DISTINCT dose_mg FROM sessions ORDER BY 1") == [(35.0,), (40.0,)]
    note = next(n for n in result(report, "sessions.csv").notes if "keep the values" in n)
    assert "dose_mg" in note and "status" in note
    # a corrected start keeps the dose it had
    write(later, "sessions.csv", "session_id,patient_id,protocol_id,started_at\n"
                                 "S1,P1,IND6,2026-02-02T11:00\nS2,P1,IND6,2026-02-04T09:00\n"
                                 "S3,P1,IND6,2026-02-06T09:00\nS4,P2,IND6,2026-02-02T10:00\n"
                                 "S5,P2,IND6,2026-02-04T10:00\n")
    load(later, db)
    assert query(db, "SELECT started_at::VARCHAR, dose_mg FROM sessions WHERE session_id = 'S1'") == [
        ("2026-02-02 11:00:00", 40.0)]


def test_items_are_kept_only_while_the_total_is_unchanged(first_load, db, tmp_path):
    copy_db(first_load, db)  # load 1: protocols, patients and SESSIONS_1
    export = tmp_path / "scores"
    header = "assessment_id,patient_id,instrument,administered_at,total_score,timing"
    items = ",".join(f"item_{k}" for k in range(1, 10))
    write(export, "assessments.csv", f"{header},{items}\n"
                                     "A1,P1,PHQ-9,2026-02-02T08:30,18,pre,2,2,2,2,2,2,2,2,2\n"
                                     "A2,P1,PHQ-9,2026-02-04T08:30,9,pre,1,1,1,1,1,1,1,1,1\n")
    load(export, db)
    later = tmp_path / "later"
    # no item columns now; A1 unchanged keeps its items, A2's total corrected 9 -> 8 drops them
    write(later, "assessments.csv", f"{header}\nA1,P1,PHQ-9,2026-02-02T08:30,18,pre\n"
                                    "A2,P1,PHQ-9,2026-02-04T08:30,8,pre\n")
    load(later, db)
    assert query(db, "SELECT assessment_id, items FROM assessments ORDER BY 1") == [
        ("A1", [2] * 9), ("A2", None)]


def test_derived_patients_follow_the_other_tables(tmp_path):
    export = tmp_path / "export"
    db = tmp_path / "clinic.duckdb"
    write(export, "protocols.csv", "protocol_id,name,planned_infusions,planned_days\n"
                                   "IND6,Six,6,12\n")
    write(export, "sessions.csv", "session_id,patient_id,protocol_id,started_at\n"
                                  "S1,P1,IND6,2026-02-02T09:00\nS2,P2,IND6,2026-02-02T10:00\n"
                                  "S3,P2,IND6,2026-02-04T10:00\nS4,P2,IND6,2026-02-06T10:00\n")
    load(export, db)
    assert query(db, "SELECT patient_id, source FROM patients ORDER BY 1") == [
        ("P1", "derived"), ("P2", "derived")]
    # P1's only session deleted (1 of 4 sessions = 25% > 0.2: allowed explicitly)
    write(export, "sessions.csv", "session_id,patient_id,protocol_id,started_at\n"
                                  "S2,P2,IND6,2026-02-02T10:00\nS3,P2,IND6,2026-02-04T10:00\n"
                                  "S4,P2,IND6,2026-02-06T10:00\n")
    load(export, db, allow_retire=True)
    assert query(db, "SELECT patient_id FROM patients") == [("P2",)]
    assert query(db, "SELECT patient_id, retired_load FROM history.patients_retired") == [
        ("P1", 2)]
    assert query(db, "SELECT reason FROM changes WHERE table_name = 'patients'") == [
        ("derived patient no longer in any session, score or trial",)]


def test_a_listed_patient_replaces_a_derived_one_and_history_keeps_it(tmp_path):
    export = tmp_path / "export"
    db = tmp_path / "clinic.duckdb"
    write(export, "protocols.csv", "protocol_id,name,planned_infusions,planned_days\n"
                                   "IND6,Six,6,12\n")
    write(export, "sessions.csv", "session_id,patient_id,protocol_id,started_at\n"
                                  "S1,P1,IND6,2026-02-02T09:00\n")
    load(export, db)
    later = tmp_path / "later"
    write(later, "patients.csv", "patient_id,sex\nP1,F\n")
    report = load(later, db)
    assert counts(report, "patients.csv") == (1, 1, 0, 0, 0, 0, 0)
    assert query(db, "SELECT patient_id, sex, source FROM patients") == [("P1", "f", "patients")]
    assert query(db, "SELECT source, retired_load FROM history.patients_retired") == [
        ("derived", 2)]


def test_cli_guard_exits_1_and_allow_retire_applies(export, db, tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import main

    write(export, "sessions.csv", SESSIONS_1)
    runner = CliRunner()
    assert runner.invoke(main, ["ingest", str(export), "--db", str(db)]).exit_code == 0
    later = tmp_path / "later"
    write(later, "sessions.csv", "session_id,patient_id,protocol_id,started_at\n"
                                 "S1,P1,IND6,2026-02-02T09:00\n")
    refused = runner.invoke(main, ["ingest", str(later), "--db", str(db)])
    assert refused.exit_code == 1
    assert "would retire 4 of the 5 current sessions rows (80%)" in refused.output
    assert "Traceback" not in refused.output
    applied = runner.invoke(main, ["ingest", str(later), "--db", str(db), "--allow-retire"])
    assert applied.exit_code == 0, applied.output
    assert query(db, "SELECT count(*) FROM sessions") == [(1,)]
    appended = runner.invoke(main, ["ingest", str(export), "--db", str(db), "--append"])
    assert appended.exit_code == 0 and "Mode: append" in appended.output
    assert query(db, "SELECT count(*) FROM sessions") == [(5,)]
    wrong = runner.invoke(main, ["metrics", "--db", str(db), "--as-of", "2026-03-31",
                                 "--out", str(tmp_path / "out"), "--load", "7"])
    assert wrong.exit_code == 1
    assert "--load 7: " in wrong.output and "has loads 1 to 3; choose one of them" in wrong.output
    assert runner.invoke(main, ["metrics", "--db", str(db), "--as-of", "2026-03-31", "--out",
                                str(tmp_path / "out"), "--load", "0"]).exit_code == 2
