"""Public real-world exports (FHIR: Synthea, US Core, German MII; REDCap: REDCapR and redcapAPI
demo projects) load with nothing lost: every resource or row is loaded, joined into another
row, or skipped on purpose and counted in the notes; none is rejected.

The files are not copied into this repository (their licences differ and are not all stated):
the tests read them from the shared folder and are skipped where it is absent. Expected
numbers are computed here from the files themselves (json / csv), not from the pipeline.
"""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.ingest import ingest
from tests.conftest import LOAD_DAY, query, rejects, write

SOURCES = Path("/work/shared/real-exports/sources")
pytestmark = pytest.mark.skipif(not SOURCES.is_dir(), reason="shared real-exports folder not present")
LA = {"LA6568-5": 0, "LA6569-3": 1, "LA6570-1": 2, "LA6571-9": 3}
SYNTHEA_CODE = "229064008"  # "Movement therapy" Procedures, standing in for infusions
PROTOCOL = """
[[protocols]]
protocol_id = "IND6"
name = "Induction"
planned_infusions = 6
planned_days = 12
"""


def load(name: str, source_format: str, mapping: Path | None, db: Path):  # type: ignore[no-untyped-def]
    report = ingest(SOURCES / name, db, load_config(), today=LOAD_DAY, source_format=source_format,
                    mapping=mapping)
    assert all(f.adds_up for f in report.files)
    assert rejects(db) == []
    return report


def skipped(report, file: str) -> int:  # type: ignore[no-untyped-def]
    """Resources a file's notes count as skipped or joined (not rows of their own)."""
    notes = [n for f in report.files if f.file == file for n in f.notes]
    counted = (re.match(r"skipped \(not loaded\): (\d+) x ", n)
               or re.match(r"(\d+) .*\(not rows of their own", n) for n in notes)
    return sum(int(m.group(1)) for m in counted if m)


def test_synthea_loads_without_a_mapping_and_counts_every_observation(tmp_path, db):
    report = load("fhir-synthea-ktmtwm", "fhir", None, db)
    lines = (SOURCES / "fhir-synthea-ktmtwm" / "Observation.ndjson").read_text().splitlines()
    loinc = [json.loads(line)["code"]["coding"][0]["code"] for line in lines]
    # registry totals: PHQ-9 44261-6, GAD-7 70274-6; every other Observation is counted as skipped
    totals = sum(code in ("44261-6", "70274-6") for code in loinc)
    obs = next(f for f in report.files if f.file == "Observation.ndjson")
    assert (obs.read, obs.added) == (totals, totals) and totals == 8
    assert obs.read + skipped(report, "Observation.ndjson") == len(lines)
    procedures = next(f for f in report.files if f.file == "Procedure.ndjson")
    assert procedures.read == 0  # no infusion: the load goes on without protocols
    assert query(db, "SELECT count(*) FROM patients") == [(1,)]


def test_synthea_procedures_mapped_to_a_protocol_by_code_are_sessions(tmp_path, db):
    mapping = write(tmp_path, "fhir_mapping.toml", f'[fhir.protocol_codes]\n'
                                                   f'"http://snomed.info/sct|{SYNTHEA_CODE}" = "IND6"\n'
                                                   + PROTOCOL)
    load("fhir-synthea-ktmtwm", "fhir", mapping, db)
    expected = []
    for line in (SOURCES / "fhir-synthea-ktmtwm" / "Procedure.ndjson").read_text().splitlines():
        body = json.loads(line)
        if body["code"]["coding"][0]["code"] == SYNTHEA_CODE:
            start = datetime.fromisoformat(body["performedPeriod"]["start"])
            end = datetime.fromisoformat(body["performedPeriod"]["end"])
            # the wall-clock time is kept (offset dropped); duration in minutes, 2 decimals
            expected.append((body["id"], start.replace(tzinfo=None),
                             round((end - start).total_seconds() / 60, 2)))
    assert len(expected) == 10
    assert query(db, "SELECT session_id, started_at, duration_minutes FROM sessions "
                     "ORDER BY started_at") == sorted(expected, key=lambda r: r[1])


def test_us_core_phq9_loads_one_score_with_its_items(tmp_path, db):
    folder = SOURCES / "fhir-uscore-phq9"
    report = load("fhir-uscore-phq9", "fhir", None, db)
    items = {}
    for path in folder.glob("Observation-PHQ9-item-example-*.json"):
        body = json.loads(path.read_text())
        code = body["valueCodeableConcept"]["coding"][0]["code"] if "valueCodeableConcept" in body else None
        items[body["code"]["coding"][0]["code"]] = LA.get(code)
    order = ("44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5",
             "44253-3", "44260-8")
    assert query(db, "SELECT patient_id, instrument, total_score, items FROM assessments") == [
        ("example", "PHQ-9", 12.0, [items[c] for c in order])]
    assert sum(items[c] for c in order) == 12  # the total the example states, from its answers
    # every file accounted for: one row, or joined / skipped in its notes
    for path in folder.glob("*.json"):
        unit = next(f for f in report.files if f.file == path.name)
        assert unit.read + skipped(report, path.name) == 1, path.name


def test_mii_phq9_panel_score_takes_the_response_answers_as_items(tmp_path, db):
    mapping = write(tmp_path, "fhir_mapping.toml",
                    '[fhir.questionnaires."Questionnaire/mii-qst-pro-phq-9"]\n'
                    'instrument = "PHQ-9"\n'
                    'items = ["PHQ.1", "PHQ.2", "PHQ.3", "PHQ.4", "PHQ.5", "PHQ.6", "PHQ.7", '
                    '"PHQ.8", "PHQ.9"]\n')
    load("fhir-mii-phq9", "fhir", mapping, db)
    folder = SOURCES / "fhir-mii-phq9"
    response = json.loads(next(folder.glob("QuestionnaireResponse-*.json")).read_text())
    answers = {i["linkId"]: LA[i["answer"][0]["valueCoding"]["code"]] for i in response["item"]
               if i["linkId"] in {f"PHQ.{n}" for n in range(1, 10)}}
    score = json.loads(next(folder.glob("Observation-*.json")).read_text())["valueQuantity"]["value"]
    assert query(db, "SELECT instrument, total_score, items FROM assessments") == [
        ("PHQ-9", float(score), [answers[f"PHQ.{n}"] for n in range(1, 10)])]


def records(name: str, file: str) -> set[str]:
    with (SOURCES / name / file).open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        next(reader)
        return {row[0] for row in reader if row and row[0]}


@pytest.mark.parametrize("name, file, mapping", [
    ("redcap-redcapr-repeating-instruments", "data.csv",
     '[patients]\nform = "demographics"\nbirth_date = "dob"\nsex = "sex"\n'),
    ("redcap-redcapr-longitudinal", "data.csv",
     '[patients]\nform = "demographics"\nbirth_date = "dob"\nsex = "sex"\n'),
    # dob sits on the prescreening survey; no participant filled the info survey
    ("redcap-redcapr-survey", "data.csv",
     '[patients]\nform = "participant_info_survey"\nbirth_date = "dob"\nsex = "sex"\n'),
    ("redcap-redcapapi-testproject", "TestRedcapAPI_Records.csv",
     '[patients]\nform = "randomization"\ncomplete = [0, 1, 2]\n'),
])
def test_redcap_projects_give_one_patient_per_record(tmp_path, db, name, file, mapping):
    report = load(name, "redcap", write(tmp_path, "redcap_mapping.toml", mapping), db)
    ids = records(name, file)
    assert query(db, "SELECT patient_id FROM patients ORDER BY 1") == [(i,) for i in sorted(ids)]
    notes = [n for f in report.files for n in f.notes]
    if "birth_date" in mapping:
        assert query(db, "SELECT count(*) FROM patients WHERE birth_date IS NULL") == [(0,)]
        assert not any("dob" in n for n in notes if n.startswith("data in fields"))
