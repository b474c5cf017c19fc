"""What real FHIR and REDCap exports hit: sessions without a plan reference, files without a
session, panel-coded scores, .json resources and Bundles, records without the patients form,
notes by field (README "FHIR" and "REDCap")."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.errors import InputError
from pipeline.ingest import ingest
from tests.conftest import LOAD_DAY, PROTOCOLS, query, rejects, write
from tests.test_adapters_fhir import LA, PHQ9_ITEMS, PHQ9_TOTAL, ndjson

SNOMED = "http://snomed.info/sct"
EXAMPLE_REDCAP = Path(__file__).resolve().parents[1] / "examples" / "redcap"


def procedure(pid: str, code: str, start: str, end: str) -> dict:
    """A Synthea-style Procedure: performedPeriod with an offset, no basedOn/instantiatesCanonical."""
    return {"resourceType": "Procedure", "id": pid, "status": "completed",
            "code": {"coding": [{"system": SNOMED, "code": code}]},
            "subject": {"reference": "Patient/P1"},
            "performedPeriod": {"start": start, "end": end}}


def fhir(folder: Path, db: Path, mapping: str | None = None):  # type: ignore[no-untyped-def]
    if mapping is not None:
        write(folder, "fhir_mapping.toml", mapping)
    return ingest(folder, db, load_config(), today=LOAD_DAY, source_format="fhir")


def test_procedures_mapped_to_a_protocol_by_code_load_with_start_and_duration(tmp_path, db):
    folder = tmp_path / "fhir"
    write(folder, "protocols.csv", PROTOCOLS)
    ndjson(folder, "Procedure.ndjson", [
        procedure("pr-1", "229064008", "2026-02-02T09:00:00+12:00", "2026-02-02T09:41:30+12:00"),
        procedure("pr-2", "229064008", "2026-02-04T09:00:00+12:00", "2026-02-04T09:40:00+12:00"),
        procedure("pr-3", "710824005", "2026-02-04T10:00:00+12:00", "2026-02-04T10:20:00+12:00"),
    ])
    report = fhir(folder, db, f'[fhir.protocol_codes]\n"{SNOMED}|229064008" = "IND6"\n')
    # wall-clock times kept; 09:00 -> 09:41:30 is 41.5 minutes
    assert query(db, "SELECT session_id, protocol_id, started_at, duration_minutes FROM sessions "
                     "ORDER BY 1") == [
        ("pr-1", "IND6", datetime(2026, 2, 2, 9, 0), 41.5),
        ("pr-2", "IND6", datetime(2026, 2, 4, 9, 0), 40.0)]
    unit = next(f for f in report.files if f.file == "Procedure.ndjson")
    assert (unit.read, unit.added, unit.rejected) == (2, 2, 0)
    assert any("1 x Procedure that is not an infusion" in n for n in unit.notes)


def test_default_protocol_and_a_reject_that_names_the_mapping_keys(tmp_path, db):
    folder = tmp_path / "fhir"
    write(folder, "protocols.csv", PROTOCOLS)
    ndjson(folder, "Procedure.ndjson", [
        procedure("pr-1", "96365", "2026-02-02T09:00:00", "2026-02-02T09:40:00")])
    fhir(folder, db)
    [(file, line, column, reason)] = rejects(db)
    assert (file, line, column) == ("Procedure.ndjson", 1, "protocol_id")
    assert "[fhir.protocol_codes]" in reason and "[fhir] default_protocol" in reason
    assert reason.endswith(f"(its code: {SNOMED}|96365)")
    fhir(folder, db, '[fhir]\ndefault_protocol = "IND6"\n')
    assert query(db, "SELECT session_id, protocol_id FROM sessions") == [("pr-1", "IND6")]


def test_a_procedure_file_without_an_infusion_never_stops_the_load(tmp_path, db):
    folder = tmp_path / "fhir"  # no protocols anywhere
    ndjson(folder, "Procedure.ndjson", [
        procedure("pr-1", "710824005", "2026-02-02T09:00:00", "2026-02-02T09:20:00")])
    ndjson(folder, "Observation.ndjson", [PHQ9_TOTAL])
    report = fhir(folder, db)
    unit = next(f for f in report.files if f.file == "Procedure.ndjson")
    assert unit.read == 0
    assert any(n.startswith("no infusion session in this file") for n in unit.notes)
    assert query(db, "SELECT count(*) FROM assessments") == [(1,)]


def test_sessions_without_any_protocol_stop_the_load_naming_the_file(tmp_path, db):
    folder = tmp_path / "fhir"
    ndjson(folder, "Procedure.ndjson", [
        procedure("pr-1", "96365", "2026-02-02T09:00:00", "2026-02-02T09:40:00")])
    with pytest.raises(InputError, match=r"^Procedure.ndjson: holds 1 session, but no protocols "
                                         r"are loaded"):
        fhir(folder, db, '[fhir]\ndefault_protocol = "IND6"\n')


MII_PANEL = {  # modelled on the German MII PROMs example: the score on the panel code
    "resourceType": "Observation", "id": "mii-phq9", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "44249-1"}]},
    "subject": {"reference": "Patient/P1"}, "effectiveDateTime": "2026-02-02T08:30:00Z",
    "valueQuantity": {"value": 14, "code": "{score}"},
}


def test_a_panel_coded_observation_with_a_value_is_the_total_when_no_total_exists(tmp_path, db):
    folder = tmp_path / "fhir"
    ndjson(folder, "Observation.ndjson", [MII_PANEL])
    fhir(folder, db)
    assert query(db, "SELECT assessment_id, instrument, total_score FROM assessments") == [
        ("mii-phq9", "PHQ-9", 14.0)]


def test_a_panel_with_a_value_beside_its_total_is_not_a_second_score(tmp_path, db):
    folder = tmp_path / "fhir"
    panel = {**MII_PANEL, "effectiveDateTime": PHQ9_TOTAL["effectiveDateTime"], "valueQuantity":
             {"value": 12}, "hasMember": [{"reference": "Observation/phq9-total-1"}]}
    ndjson(folder, "Observation.ndjson", [PHQ9_TOTAL, panel])
    report = fhir(folder, db)
    assert query(db, "SELECT assessment_id FROM assessments") == [("phq9-total-1",)]
    notes = next(f for f in report.files if f.file == "Observation.ndjson").notes
    assert any("panel Observation with a value beside its total-score Observation" in n for n in notes)


def test_a_response_at_the_time_of_a_panel_score_gives_its_items(tmp_path, db):
    folder = tmp_path / "fhir"
    answers = (2, 2, 1, 2, 1, 2, 2, 1, 1)  # sum 14, the panel's value
    response = {"resourceType": "QuestionnaireResponse", "id": "mii-qr", "status": "completed",
                "questionnaire": "Questionnaire/mii-qst-pro-phq-9",
                "subject": {"reference": "Patient/P1"}, "authored": "2026-02-02T08:30:00+00:00",
                "item": [{"linkId": f"PHQ.{n}", "answer": [{"valueCoding": {"code": LA[a]}}]}
                         for n, a in enumerate(answers, start=1)]}
    (folder / "Observation.json").parent.mkdir(parents=True, exist_ok=True)
    (folder / "Observation.json").write_text(json.dumps(MII_PANEL, indent=2))
    (folder / "QuestionnaireResponse.json").write_text(json.dumps(response, indent=2))
    report = fhir(folder, db, '[fhir.questionnaires."Questionnaire/mii-qst-pro-phq-9"]\n'
                              'instrument = "PHQ-9"\nitems = ["PHQ.1", "PHQ.2", "PHQ.3", "PHQ.4", '
                              '"PHQ.5", "PHQ.6", "PHQ.7", "PHQ.8", "PHQ.9"]\n')
    assert query(db, "SELECT assessment_id, total_score, items FROM assessments") == [
        ("mii-phq9", 14.0, list(answers))]
    qr = next(f for f in report.files if f.file == "QuestionnaireResponse.json")
    assert qr.read == 0 and any("same patient, instrument and time" in n for n in qr.notes)


def test_json_files_with_one_resource_or_a_bundle_are_read(tmp_path, db):
    folder = tmp_path / "fhir"
    patient = {"resourceType": "Patient", "id": "P1", "birthDate": "1980-03-04", "gender": "female"}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": PHQ9_TOTAL},
        {"fullUrl": "urn:uuid:2", "resource": {"resourceType": "Organization", "id": "o1"}},
        {"fullUrl": "urn:uuid:3", "resource": {**PHQ9_TOTAL, "id": "phq9-total-2",
                                               "effectiveDateTime": "2026-02-16T08:30:00"}}]}
    write(folder, "patient-example.json", json.dumps(patient, indent=2))
    write(folder, "scores-bundle.json", json.dumps(bundle, indent=2))
    write(folder, "hospitalInformation.json", json.dumps(
        {"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": {"resourceType": "Organization", "id": "o2"}}] * 2}, indent=2))
    report = fhir(folder, db)
    assert query(db, "SELECT patient_id, birth_date::VARCHAR FROM patients") == [("P1", "1980-03-04")]
    assert query(db, "SELECT assessment_id FROM assessments ORDER BY 1") == [
        ("phq9-total-1",), ("phq9-total-2",)]
    # a reject points at the line where the entry's resource starts in the pretty-printed Bundle
    bad = {**bundle, "entry": [bundle["entry"][0], {"resource": {**PHQ9_TOTAL, "id": "x",
                                                                 "status": "preliminary"}}]}
    write(folder, "scores-bundle.json", json.dumps(bad, indent=2))
    fhir(folder, tmp_path / "second.duckdb")
    text = (folder / "scores-bundle.json").read_text().split("\n")
    starts = [n for n, line in enumerate(text, start=1) if line.strip().startswith('"resource"')]
    assert [(r[0], r[1], r[2]) for r in rejects(tmp_path / "second.duckdb")] == [
        ("scores-bundle.json", starts[1], "status")]
    assert ("hospitalInformation.json (2 Organization resources, a type this pipeline does not "
            "read)") in report.ignored_files


def test_ndjson_saved_with_a_json_name_is_read_line_by_line(tmp_path, db):
    folder = tmp_path / "fhir"
    second = {**PHQ9_TOTAL, "id": "phq9-total-2", "effectiveDateTime": "2026-02-16T08:30:00"}
    ndjson(folder, "export.json", [PHQ9_TOTAL, {**second, "status": "preliminary"}])
    fhir(folder, db)
    assert query(db, "SELECT assessment_id FROM assessments") == [("phq9-total-1",)]
    assert [(r[0], r[1], r[2]) for r in rejects(db)] == [("export.json", 2, "status")]


def test_item_observations_of_a_panel_still_join_their_separate_total(tmp_path, db):
    folder = tmp_path / "fhir"
    items = [{"resourceType": "Observation", "id": f"item-{n}", "status": "final",
              "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
              "subject": {"reference": "Patient/P1"},
              "effectiveDateTime": PHQ9_TOTAL["effectiveDateTime"],
              "valueCodeableConcept": {"coding": [{"code": LA[a]}]}}
             for n, (code, a) in enumerate(zip(PHQ9_ITEMS, (1, 1, 2, 2, 1, 1, 2, 1, 1), strict=True))]
    total = {k: v for k, v in PHQ9_TOTAL.items() if k != "derivedFrom"}
    ndjson(folder, "Observation.ndjson", [total, *items])
    fhir(folder, db)
    assert query(db, "SELECT total_score, items FROM assessments") == [
        (12.0, [1, 1, 2, 2, 1, 1, 2, 1, 1])]


# ---------------------------------------------------------------- REDCap


@pytest.fixture
def redcap(tmp_path: Path) -> Path:
    folder = tmp_path / "redcap"
    shutil.copytree(EXAMPLE_REDCAP, folder)
    return folder


def load_redcap(folder: Path, db: Path):  # type: ignore[no-untyped-def]
    return ingest(folder, db, load_config(), today=LOAD_DAY, source_format="redcap")


def test_a_record_without_the_patients_form_is_a_patient_and_keeps_its_scores(redcap, db):
    export = redcap / "redcap_export.csv"
    lines = export.read_text().splitlines(keepends=True)
    # P002's demographics row (line 13) is gone: its enrollment row holds no other form
    export.write_text("".join(line for n, line in enumerate(lines, start=1) if n != 13))
    report = load_redcap(redcap, db)
    assert query(db, "SELECT patient_id, birth_date, sex, source FROM patients ORDER BY 1") == [
        ("P001", datetime(1980, 3, 4).date(), "f", "patients"),
        ("P002", None, None, "patients")]
    # P002's baseline PHQ-9 (19) and its sessions still load: nothing is an unknown patient
    assert query(db, "SELECT count(*) FROM assessments WHERE patient_id = 'P002'") == [(1,)]
    assert all("unknown patient" not in r[3] for r in rejects(db))
    patients = next(f for f in report.files if f.table == "patients")
    assert patients.read == 2
    assert any(n.startswith("1 records have no row of form demographics") for n in patients.notes)


def test_notes_list_unmapped_fields_not_forms_with_a_mapped_field(redcap, db):
    mapping = redcap / "redcap_mapping.toml"
    # payer and member_id are left out; the rest of demographics is mapped
    mapping.write_text(mapping.read_text().replace('payer = "payer"\n', "")
                       .replace('member_id = "member_id"\n', ""))
    report = load_redcap(redcap, db)
    notes = [n for f in report.files for n in f.notes if n.startswith("data in fields")]
    assert notes == ["data in fields the mapping does not name, not loaded: demographics (payer, "
                     "member_id)"]
