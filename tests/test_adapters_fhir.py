"""FHIR adapter: US Core PHQ-9 resources, infusions, skipped and rejected lines (README "FHIR")."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.config import load_config
from pipeline.ingest import ingest
from tests.conftest import LOAD_DAY, PROTOCOLS, query, rejects, write

LOINC = "http://loinc.org"
LA = {0: "LA6568-5", 1: "LA6569-3", 2: "LA6570-1", 3: "LA6571-9"}
PHQ9_ITEMS = ("44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5",
              "44253-3", "44260-8")

# Modelled on US Core's Observation-PHQ9-item-example-44261-6: a survey Observation with the
# total score, derived from the QuestionnaireResponse that holds the answers.
PHQ9_TOTAL = {
    "resourceType": "Observation",
    "id": "phq9-total-1",
    "status": "final",
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                              "code": "survey", "display": "Survey"}]}],
    "code": {"coding": [{"system": LOINC, "code": "44261-6",
                         "display": "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"}],
             "text": "PHQ-9 total score"},
    "subject": {"reference": "Patient/P1"},
    "effectiveDateTime": "2026-02-02T08:30:00-05:00",
    "performer": [{"reference": "Patient/P1"}],
    "valueQuantity": {"value": 12, "system": "http://unitsofmeasure.org", "code": "{score}"},
    "derivedFrom": [{"reference": "QuestionnaireResponse/phq9-qr-1"}],
}
ANSWERS = (1, 1, 2, 2, 1, 1, 2, 1, 1)  # sum 12


def questionnaire_response(qr_id: str, answers: tuple[int, ...], authored: str,
                           total: int | None = None) -> dict:
    """Modelled on US Core's QuestionnaireResponse-phq-9-example: linkIds are `/` + LOINC."""
    items = [{"linkId": f"/{code}", "answer": [{"valueCoding": {"system": LOINC, "code": LA[a]}}]}
             for code, a in zip(PHQ9_ITEMS, answers, strict=True)]
    if total is not None:
        items.append({"linkId": "/44261-6", "answer": [{"valueInteger": total}]})
    return {
        "resourceType": "QuestionnaireResponse", "id": qr_id,
        "questionnaire": "http://hl7.org/fhir/us/core/Questionnaire/phq-9",
        "status": "completed", "subject": {"reference": "Patient/P1"}, "authored": authored,
        "item": [{"linkId": "/44249-1", "text": "PHQ-9 quick depression assessment panel",
                  "item": items}],
    }


PATIENTS = [
    {"resourceType": "Patient", "id": "P1", "birthDate": "1980-03-04", "gender": "female",
     "identifier": [{"system": "http://payer.example/member", "value": "M100"}]},
    {"resourceType": "Patient", "id": "P2", "birthDate": "1975-06-30", "gender": "male"},
]
INFUSION = {
    "resourceType": "MedicationAdministration", "id": "ma-1", "status": "completed",
    "medicationCodeableConcept": {"coding": [
        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "6130", "display": "ketamine"}]},
    "subject": {"reference": "Patient/P1"},
    "effectivePeriod": {"start": "2026-02-02T09:00:00Z", "end": "2026-02-02T09:40:00Z"},
    "request": {"reference": "MedicationRequest/p1-induction"},
    "dosage": {"dose": {"value": 40, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}},
}
MAPPING = """\
[fhir]
member_id_system = "http://payer.example/member"

[fhir.protocol_refs]
"MedicationRequest/p1-induction" = "IND6"
"http://clinic.example/PlanDefinition/ind6" = "IND6"
"""


def ndjson(folder: Path, name: str, resources: list) -> None:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in resources]
    write(folder, name, "\n".join(lines) + "\n")


def load_fhir(folder: Path, db: Path):  # type: ignore[no-untyped-def]
    return ingest(folder, db, load_config(), today=LOAD_DAY, source_format="fhir")


def export_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "fhir"
    write(folder, "protocols.csv", PROTOCOLS)
    write(folder, "fhir_mapping.toml", MAPPING)
    ndjson(folder, "Patient.ndjson", PATIENTS)
    ndjson(folder, "MedicationAdministration.ndjson", [INFUSION])
    return folder


def test_us_core_total_observation_takes_its_items_from_the_response_it_derives_from(tmp_path, db):
    folder = export_folder(tmp_path)
    ndjson(folder, "Observation.ndjson", [PHQ9_TOTAL])
    ndjson(folder, "QuestionnaireResponse.ndjson",
           [questionnaire_response("phq9-qr-1", ANSWERS, "2026-02-02T08:30:00-05:00", total=12)])
    report = load_fhir(folder, db)
    # one score, not two: the response is the source of the Observation (counted in the notes)
    assert query(db, "SELECT assessment_id, instrument, administered_at::VARCHAR, total_score, items "
                     "FROM assessments") == [
        ("phq9-total-1", "PHQ-9", "2026-02-02 08:30:00", 12.0, list(ANSWERS))]
    qr = next(f for f in report.files if f.file == "QuestionnaireResponse.ndjson")
    assert qr.read == 0 and any("derived from them" in n for n in qr.notes)
    assert query(db, "SELECT patient_id, sex, member_id FROM patients ORDER BY 1") == [
        ("P1", "f", "M100"), ("P2", "m", None)]


def test_questionnaire_response_alone_is_a_score_and_a_missing_total_is_scored_from_items(tmp_path, db):
    folder = export_folder(tmp_path)
    ndjson(folder, "QuestionnaireResponse.ndjson", [
        questionnaire_response("qr-a", ANSWERS, "2026-02-02T08:30:00Z", total=12),
        questionnaire_response("qr-b", (0, 0, 1, 1, 0, 0, 1, 0, 0), "2026-02-09"),  # no total: 3
    ])
    load_fhir(folder, db)
    assert query(db, "SELECT assessment_id, total_score, date_only FROM assessments ORDER BY 1") == [
        ("qr-a", 12.0, False), ("qr-b", 3.0, True)]


def test_item_observations_join_their_total_through_has_member(tmp_path, db):
    folder = export_folder(tmp_path)
    items = [{"resourceType": "Observation", "id": f"item-{n}", "status": "final",
              "code": {"coding": [{"system": LOINC, "code": code}]},
              "subject": {"reference": "Patient/P1"}, "effectiveDateTime": "2026-02-02T08:30:00",
              "valueCodeableConcept": {"coding": [{"system": LOINC, "code": LA[a]}]}}
             for n, (code, a) in enumerate(zip(PHQ9_ITEMS, ANSWERS, strict=True), start=1)]
    total = {**PHQ9_TOTAL, "derivedFrom": [],
             "hasMember": [{"reference": f"Observation/item-{n}"} for n in range(1, 10)]}
    orphan = {**items[0], "id": "orphan", "effectiveDateTime": "2026-03-01T10:00:00"}
    ndjson(folder, "Observation.ndjson", [*items, total, orphan])
    report = load_fhir(folder, db)
    assert query(db, "SELECT total_score, items FROM assessments") == [(12.0, list(ANSWERS))]
    # the orphan item (line 11) has no total to belong to: rejected at its line
    assert rejects(db, "Observation.ndjson") == [
        ("Observation.ndjson", 11, "item_1",
         "PHQ-9 item Observation without a total-score Observation linked by hasMember/derivedFrom "
         "or at the same time for the same patient; export the total score too")]
    obs = next(f for f in report.files if f.file == "Observation.ndjson")
    assert (obs.read, obs.loaded, obs.rejected) == (2, 1, 1)
    assert any(n.startswith("9 item Observations joined") for n in obs.notes)


def test_unknown_resource_types_and_unmapped_codes_are_counted_not_loaded(tmp_path, db):
    folder = export_folder(tmp_path)
    heart_rate = {"resourceType": "Observation", "id": "hr", "status": "final",
                  "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},
                  "subject": {"reference": "Patient/P1"}, "effectiveDateTime": "2026-02-02",
                  "valueQuantity": {"value": 72}}
    encounter = {"resourceType": "Encounter", "id": "e1", "status": "finished"}
    ndjson(folder, "Observation.ndjson", [PHQ9_TOTAL, heart_rate, encounter])
    ndjson(folder, "Condition.ndjson", [{"resourceType": "Condition", "id": "c1"}] * 3)
    report = load_fhir(folder, db)
    obs = next(f for f in report.files if f.file == "Observation.ndjson")
    assert (obs.read, obs.loaded, obs.rejected) == (1, 1, 0)
    assert "skipped (not loaded): 1 x Encounter resource (a type this pipeline does not read)" in obs.notes
    assert "skipped (not loaded): 1 x Observation with a code not mapped (8867-4)" in obs.notes
    assert report.ignored_files == [
        "Condition.ndjson (3 Condition resources, a type this pipeline does not read)"]
    assert rejects(db) == []


def test_a_line_that_is_not_json_is_rejected_at_its_line(tmp_path, db):
    folder = export_folder(tmp_path)
    ndjson(folder, "Observation.ndjson", [PHQ9_TOTAL, '{"resourceType": "Observation", "id": ', "[1, 2]"])
    report = load_fhir(folder, db)
    got = rejects(db, "Observation.ndjson")
    assert [(r[1], r[2]) for r in got] == [(2, None), (3, None)]
    assert got[0][3].startswith("not valid JSON")
    assert got[1][3] == "not a FHIR resource: the JSON has no resourceType"
    obs = next(f for f in report.files if f.file == "Observation.ndjson")
    assert (obs.read, obs.loaded, obs.rejected) == (3, 1, 2)


def test_infusions_from_medication_administration_and_procedure(tmp_path, db):
    folder = export_folder(tmp_path)
    other_drug = {**INFUSION, "id": "ma-2", "medicationCodeableConcept": {"coding": [
        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "26225"}]}}  # ondansetron
    ndjson(folder, "MedicationAdministration.ndjson", [INFUSION, other_drug])
    procedure = {
        "resourceType": "Procedure", "id": "pr-1", "status": "stopped",
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "96365"}]},
        "subject": {"reference": "Patient/P1"}, "performedDateTime": "2026-02-04T09:00:00+01:00",
        "instantiatesCanonical": ["http://clinic.example/PlanDefinition/ind6"],
        "complication": [{"text": "Nausea"}],
        "performer": [{"actor": {"display": "Dr Okafor"}}],
    }
    therapy = {**procedure, "id": "pr-2", "code": {"coding": [
        {"system": "http://www.ama-assn.org/go/cpt", "code": "90837"}]}}
    ndjson(folder, "1.Procedure.ndjson", [procedure, therapy])
    report = load_fhir(folder, db)
    assert query(db, "SELECT session_id, protocol_id, started_at::VARCHAR, status, dose_mg, "
                     "duration_minutes, adverse_events, cpt_codes, provider FROM sessions ORDER BY 1") == [
        ("ma-1", "IND6", "2026-02-02 09:00:00", "completed", 40.0, 40.0, None, None, None),
        ("pr-1", "IND6", "2026-02-04 09:00:00", "aborted", None, None, ["nausea"], ["96365"],
         "Dr Okafor"),
    ]
    notes = [n for f in report.files for n in f.notes]
    assert ("skipped (not loaded): 1 x Procedure that is not an infusion (code not in procedure_codes "
            "or protocol_codes)"
            in notes)
    assert any("MedicationAdministration of another medication" in n for n in notes)
