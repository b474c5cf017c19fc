"""REDCap adapter: longitudinal and repeating rows, form status, checkboxes, codes (README "REDCap")."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.errors import InputError
from pipeline.ingest import ingest
from tests.conftest import LOAD_DAY, query, rejects, write

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "redcap"


def load_redcap(folder: Path, db: Path, mapping: Path | None = None):  # type: ignore[no-untyped-def]
    return ingest(folder, db, load_config(), today=LOAD_DAY, source_format="redcap", mapping=mapping)


@pytest.fixture
def example(tmp_path: Path) -> Path:
    folder = tmp_path / "redcap"
    shutil.copytree(EXAMPLE, folder)
    return folder


def test_example_project_loads_and_rejects_only_the_incomplete_form(example, db):
    report = load_redcap(example, db)
    assert all(f.adds_up for f in report.files)
    # line 12 is P001's third PHQ-9 (repeat instance 3) with phq9_complete = 0
    assert rejects(db) == [("redcap_export.csv", 12, "phq9_complete",
                            "form phq9 is marked Incomplete (0); only rows marked Complete (2) are "
                            "loaded: complete the form in REDCap, or add the status to complete in "
                            "the mapping")]
    assert query(db, "SELECT count(*) FROM sessions") == [(8,)]
    assert query(db, "SELECT count(*) FROM patients") == [(2,)]
    assert query(db, "SELECT protocol_id FROM protocols ORDER BY 1") == [("IND6",), ("MAINT",)]


def test_longitudinal_repeating_rows_get_record_event_form_instance_ids(example, db):
    load_redcap(example, db)
    # the baseline event row (line 3) holds PHQ-9 and GAD-7 (non-repeating): two scores, one row
    assert query(db, "SELECT assessment_id, instrument, total_score, timing FROM assessments "
                     "WHERE administered_at = '2026-02-02 08:30' ORDER BY 1") == [
        ("P001:baseline_arm_1:gad7:1", "GAD-7", 11.0, "pre"),
        ("P001:baseline_arm_1:phq9:1", "PHQ-9", 18.0, "pre"),
    ]
    # repeating PHQ-9 instance 1 names infusion instance 4 -> linked to that session
    assert query(db, "SELECT a.session_id, s.started_at::VARCHAR FROM assessments a JOIN sessions s "
                     "USING (session_id)") == [
        ("P001:treatment_arm_1:infusion:4", "2026-02-09 09:00:00")]
    # dropdown/radio codes: mapping codes for protocol and status, dictionary labels otherwise
    assert query(db, "SELECT session_id, protocol_id, status FROM sessions WHERE patient_id = 'P002' "
                     "ORDER BY 1") == [
        ("P002:treatment_arm_1:infusion:1", "IND6", "completed"),
        ("P002:treatment_arm_1:infusion:2", "IND6", "cancelled"),
    ]
    assert query(db, "SELECT patient_id, sex, site FROM patients ORDER BY 1") == [
        ("P001", "f", "North"), ("P002", "m", "South")]


def test_checkbox_columns_become_semicolon_joined_adverse_events(example, db):
    load_redcap(example, db)
    # infusion 6 of P001 ticks inf_ae___1 (Nausea) and inf_ae___4 (Dizziness)
    assert query(db, "SELECT list_sort(adverse_events) FROM sessions "
                     "WHERE adverse_events IS NOT NULL") == [(["dizziness", "nausea"],)]


def test_ticked_checkboxes_are_joined_in_the_exports_column_order_in_every_process(example,
                                                                                 tmp_path):
    """inf_ae___1 (Nausea) comes before inf_ae___4 (Dizziness) in the export. The labels were
    joined in a set's order, which changes with each process's string hashing: under hash
    seed 0 the session held dizziness first, under seed 2 nausea first, and its row_hash with
    it, so a reload of the same export in another process would have "corrected" the row."""
    stored = []
    for seed in ("0", "2"):
        db = tmp_path / f"seed-{seed}.duckdb"
        done = subprocess.run([sys.executable, "-m", "pipeline", "ingest", str(example),
                               "--db", str(db), "--format", "redcap"], capture_output=True,
                              text=True, env={**os.environ, "PYTHONHASHSEED": seed})
        assert done.returncode == 0, done.stderr
        stored.append(query(db, "SELECT session_id, adverse_events, row_hash FROM sessions "
                                "WHERE adverse_events IS NOT NULL"))
    assert stored[0] == stored[1]
    assert [row[1] for row in stored[0]] == [["nausea", "dizziness"]]


CLASSIC_DICTIONARY = """\
Variable / Field Name,Form Name,Field Type,Field Label,"Choices, Calculations, OR Slider Labels"
study_id,enrolment,text,Study ID,
inf_when,infusions,text,Start,
inf_plan,infusions,dropdown,Protocol,"1, IND6 | 2, Other"
inf_status,infusions,radio,Status,"1, Completed | 2, Aborted | 3, Cancelled"
inf_ae,infusions,checkbox,Adverse events,"1, Nausea | 2, Headache"
score_date,phq,text,Date,
phq_total,phq,text,Total,
"""
# A classic (non-longitudinal) project: no redcap_event_name column.
CLASSIC_EXPORT = """\
study_id,redcap_repeat_instrument,redcap_repeat_instance,inf_when,inf_plan,inf_status,inf_ae___1,inf_ae___2,infusions_complete,score_date,phq_total,phq_complete
P1,infusions,1,2026-02-02 09:00,1,1,0,1,2,,,
P1,infusions,2,2026-02-04 09:00,1,7,0,0,2,,,
P1,infusions,3,2026-02-06 09:00,1,1,1,1,1,,,
P1,phq,1,,,,,,,2026-02-02 08:00,18,2
P1,phq,2,,,,,,,2026-02-06 08:00,12,2
P1,ecg,1,,,,,,,,,
"""
CLASSIC_MAPPING = """\
[sessions]
form = "infusions"
started_at = "inf_when"
protocol_id = "inf_plan"
status = "inf_status"
adverse_events = "inf_ae"
keep_codes = ["protocol_id"]

[sessions.codes.status]
1 = "completed"
3 = "cancelled"

[[assessments]]
form = "phq"
instrument = "PHQ-9"
administered_at = "score_date"
total_score = "phq_total"

[[protocols]]
protocol_id = "1"
name = "IND6 under its REDCap code"
planned_infusions = 6
planned_days = 12
"""


def test_classic_project_rejects_unknown_codes_and_unverified_forms_at_their_lines(tmp_path, db):
    folder = tmp_path / "classic"
    write(folder, "dictionary.csv", CLASSIC_DICTIONARY)
    write(folder, "export.csv", CLASSIC_EXPORT)
    write(folder, "redcap_mapping.toml", CLASSIC_MAPPING)
    report = load_redcap(folder, db)
    assert [(r[1], r[2]) for r in rejects(db, "export.csv")] == [
        (3, "inf_status"),         # status code 7: not under codes.status
        (4, "infusions_complete"),  # Unverified (1)
    ]
    assert "not a choice in the data dictionary or under codes.status" in rejects(db)[0][3]
    assert "Unverified (1)" in rejects(db)[1][3]
    sessions = next(f for f in report.files if f.table == "sessions")
    assert (sessions.read, sessions.loaded, sessions.rejected) == (3, 1, 2)
    # ids without an event; keep_codes passes the raw protocol code; checkbox label joined
    assert query(db, "SELECT session_id, protocol_id, adverse_events FROM sessions") == [
        ("P1:infusions:1", "1", ["headache"])]
    assert query(db, "SELECT assessment_id, total_score FROM assessments ORDER BY 1") == [
        ("P1:phq:1", 18.0), ("P1:phq:2", 12.0)]
    # the ecg row belongs to no mapped form: counted in the notes, not silently lost
    notes = [n for f in report.files for n in f.notes]
    assert "1 rows hold no mapped form; not loaded" in notes


def test_allowed_statuses_are_configurable(tmp_path, db):
    folder = tmp_path / "classic"
    write(folder, "dictionary.csv", CLASSIC_DICTIONARY)
    write(folder, "export.csv", CLASSIC_EXPORT)
    write(folder, "redcap_mapping.toml", CLASSIC_MAPPING.replace(
        '[sessions]\n', '[sessions]\ncomplete = [1, 2]\n'))
    load_redcap(folder, db)
    assert [r[1] for r in rejects(db)] == [3]  # only the unknown status code is left


def test_mapping_naming_a_missing_field_stops_the_load(tmp_path, db):
    folder = tmp_path / "classic"
    write(folder, "dictionary.csv", CLASSIC_DICTIONARY)
    write(folder, "export.csv", CLASSIC_EXPORT)
    write(folder, "redcap_mapping.toml", CLASSIC_MAPPING.replace('"inf_when"', '"inf_start"'))
    with pytest.raises(InputError, match="inf_start"):
        load_redcap(folder, db)
    assert not db.exists() or query(db, "SELECT count(*) FROM loads") == [(0,)]


def test_without_a_mapping_the_load_stops_with_a_pointer_to_the_readme(tmp_path, db):
    folder = tmp_path / "classic"
    write(folder, "dictionary.csv", CLASSIC_DICTIONARY)
    write(folder, "export.csv", CLASSIC_EXPORT)
    with pytest.raises(InputError, match="needs a mapping"):
        load_redcap(folder, db)
