"""Small writers for the round-trip tests: a canonical export as REDCap and as FHIR Bulk Data.

They write what a clinic's systems would export (REDCap raw codes + data dictionary, FHIR R4
resources one per line), from the canonical rows that a canonical load accepted, so an
adapter load of their output must give the same course outcomes.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from pipeline.demo.catalogue import AE_TYPES
from pipeline.instruments import BUILTIN, normalize_key

TABLES = ("protocols", "patients", "sessions", "assessments")
SPELLING = {normalize_key(name): name for name in BUILTIN}


def accepted_rows(demo_dir: Path, db: Path) -> dict[str, list[dict[str, str | None]]]:
    """The demo files' rows that the canonical load of `db` loaded: rows rejected there (by line)
    and exact duplicate rows are dropped, so every written row is clean (the fair comparison)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rejected = con.execute("SELECT file, list(DISTINCT line) FROM rejects GROUP BY file").fetchall()
    finally:
        con.close()
    bad = {file: set(lines) for file, lines in rejected}
    out = {}
    for table in TABLES:
        frame = pl.read_csv(demo_dir / f"{table}.csv", infer_schema_length=0)
        frame = frame.with_row_index("__line", offset=2)  # header = line 1, no multi-line fields
        frame = frame.filter(~pl.col("__line").is_in(sorted(bad.get(f"{table}.csv", set()))))
        frame = frame.drop("__line").unique(maintain_order=True)
        if table == "assessments":  # the demo spells instruments several ways (PHQ9, phq-9)
            frame = frame.with_columns(pl.col("instrument").map_elements(
                lambda name: SPELLING[normalize_key(name)], return_dtype=pl.String))
        out[table] = frame.to_dicts()
    return out


# ---------------------------------------------------------------- REDCap

LA = "0, Not at all | 1, Several days | 2, More than half the days | 3, Nearly every day"
TIMING = {"pre": "1", "post": "2", "followup": "3"}
STATUS = {"completed": "1", "aborted": "2", "cancelled": "3"}
SEX = {"F": "1", "M": "2", "X": "3"}
AE = {name: str(code) for code, name in enumerate(AE_TYPES, start=1)}
SCALES = {"phq9": ("PHQ-9", 9), "gad7": ("GAD-7", 7), "madrs": ("MADRS", 0)}
ITEM_FIELDS = {"PHQ-9": 9, "GAD-7": 7}


def _redcap_time(value: str | None) -> str:
    return (value or "").replace("T", " ")


def write_redcap(rows: dict[str, list[dict]], out: Path) -> None:
    """A longitudinal project: demographics in enrollment_arm_1; the infusion log and the
    PHQ-9 / GAD-7 / MADRS forms repeating in treatment_arm_1. Raw codes, with a dictionary."""
    out.mkdir(parents=True, exist_ok=True)
    protocols = [p["protocol_id"] for p in rows["protocols"]]
    proto_code = {pid: str(i) for i, pid in enumerate(protocols, start=1)}
    fields = [
        ("record_id", "demographics", "text", ""), ("dob", "demographics", "text", ""),
        ("sex", "demographics", "radio", "1, F | 2, M | 3, X"),
        ("dx", "demographics", "text", ""), ("payer", "demographics", "text", ""),
        ("member_id", "demographics", "text", ""), ("home_site", "demographics", "text", ""),
        ("inf_start", "infusion", "text", ""),
        ("inf_protocol", "infusion", "dropdown",
         " | ".join(f"{proto_code[p['protocol_id']]}, {p['name']}" for p in rows["protocols"])),
        ("inf_course", "infusion", "text", ""),
        ("inf_status", "infusion", "radio", "1, Completed | 2, Aborted | 3, Cancelled"),
        *[(f"inf_{c}", "infusion", "text", "") for c in
          ("dose_mgkg", "weight", "dose_mg", "minutes", "site", "provider", "bp_sys", "bp_dia", "cpt")],
        ("inf_ae", "infusion", "checkbox", " | ".join(f"{c}, {n}" for n, c in AE.items())),
    ]
    for form, (_, n) in SCALES.items():
        fields += [(f"{form}_date", form, "text", ""),
                   (f"{form}_timing", form, "radio", "1, pre | 2, post | 3, followup"),
                   (f"{form}_infusion", form, "text", "")]
        fields += [(f"{form}_{i}", form, "radio", LA) for i in range(1, n + 1)]
        fields += [(f"{form}_total", form, "calc" if n else "text", "")]
    with (out / "project_DataDictionary.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Variable / Field Name", "Form Name", "Section Header", "Field Type",
                    "Field Label", "Choices, Calculations, OR Slider Labels"])
        for name, form, kind, choices in fields:
            w.writerow([name, form, "", kind, name, choices])

    columns = ["record_id", "redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance"]
    forms: dict[str, list[str]] = defaultdict(list)
    for name, form, kind, _ in fields[1:]:
        forms[form] += [f"{name}___{c}" for c in AE.values()] if kind == "checkbox" else [name]
    for form, names in forms.items():
        columns += [*names, f"{form}_complete"]

    records = []
    for p in rows["patients"]:
        records.append({"record_id": p["patient_id"], "redcap_event_name": "enrollment_arm_1",
                        "dob": p["birth_date"], "sex": SEX.get(p["sex"] or "", ""), "dx": p["diagnosis_code"],
                        "payer": p["payer"], "member_id": p["member_id"], "home_site": p["site"],
                        "demographics_complete": "2"})
    instance: dict[tuple[str, str], int] = defaultdict(int)
    session_instance = {}
    for s in rows["sessions"]:
        instance[(s["patient_id"], "infusion")] += 1
        n = instance[(s["patient_id"], "infusion")]
        session_instance[s["session_id"]] = str(n)
        ae = set((s["adverse_events"] or "").split(";")) - {""}
        records.append({
            "record_id": s["patient_id"], "redcap_event_name": "treatment_arm_1",
            "redcap_repeat_instrument": "infusion", "redcap_repeat_instance": str(n),
            "inf_start": _redcap_time(s["started_at"]), "inf_protocol": proto_code[s["protocol_id"]],
            "inf_course": s["course_id"], "inf_status": STATUS[s["status"] or "completed"],
            "inf_dose_mgkg": s["dose_mg_per_kg"], "inf_weight": s["weight_kg"], "inf_dose_mg": s["dose_mg"],
            "inf_minutes": s["duration_minutes"], "inf_site": s["site"], "inf_provider": s["provider"],
            "inf_bp_sys": s["bp_systolic_max"], "inf_bp_dia": s["bp_diastolic_max"],
            "inf_cpt": s["cpt_codes"], "infusion_complete": "2",
            **{f"inf_ae___{code}": "1" if name in ae else "0" for name, code in AE.items()},
        })
    form_of = {instrument: form for form, (instrument, _) in SCALES.items()}
    for a in rows["assessments"]:
        form = form_of[a["instrument"]]
        instance[(a["patient_id"], form)] += 1
        number = str(instance[(a["patient_id"], form)])
        record = {
            "record_id": a["patient_id"], "redcap_event_name": "treatment_arm_1",
            "redcap_repeat_instrument": form, "redcap_repeat_instance": number,
            f"{form}_date": _redcap_time(a["administered_at"]),
            f"{form}_timing": TIMING.get(a["timing"] or "", ""),
            f"{form}_infusion": session_instance.get(a["session_id"] or "", ""),
            f"{form}_total": a["total_score"], f"{form}_complete": "2",
        }
        for i in range(1, SCALES[form][1] + 1):
            record[f"{form}_{i}"] = a[f"item_{i}"]
        records.append(record)
    with (out / "project_export.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, columns, restval="")
        w.writeheader()
        w.writerows([{k: ("" if v is None else v) for k, v in r.items()} for r in records])

    scale_sections = "".join(
        f'\n[[assessments]]\nform = "{form}"\ninstrument = "{instrument}"\n'
        f'administered_at = "{form}_date"\ntotal_score = "{form}_total"\ntiming = "{form}_timing"\n'
        f'session_instance = "{form}_infusion"\n'
        + (f"items = [{', '.join(repr(f'{form}_{i}').replace(chr(39), chr(34)) for i in range(1, n + 1))}]\n"
           if n else "")
        for form, (instrument, n) in SCALES.items())
    codes = "".join(f'"{code}" = "{pid}"\n' for pid, code in proto_code.items())
    (out / "redcap_mapping.toml").write_text(f"""\
[patients]
form = "demographics"
birth_date = "dob"
sex = "sex"
diagnosis_code = "dx"
payer = "payer"
member_id = "member_id"
site = "home_site"

[sessions]
form = "infusion"
started_at = "inf_start"
protocol_id = "inf_protocol"
course_id = "inf_course"
status = "inf_status"
dose_mg_per_kg = "inf_dose_mgkg"
weight_kg = "inf_weight"
dose_mg = "inf_dose_mg"
duration_minutes = "inf_minutes"
site = "inf_site"
provider = "inf_provider"
bp_systolic_max = "inf_bp_sys"
bp_diastolic_max = "inf_bp_dia"
adverse_events = "inf_ae"
cpt_codes = "inf_cpt"

[sessions.codes.protocol_id]
{codes}
[sessions.codes.status]
1 = "completed"
2 = "aborted"
3 = "cancelled"
{scale_sections}""", encoding="utf-8")
    _write_protocols(rows, out)


def _write_protocols(rows: dict[str, list[dict]], out: Path) -> None:
    pl.DataFrame(rows["protocols"]).write_csv(out / "protocols.csv")


# ---------------------------------------------------------------- FHIR

EXT = "http://clinic.example/fhir/StructureDefinition/"
LOINC = "http://loinc.org"
LA_CODES = ("LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9")
PHQ9_ITEMS = ("44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5",
              "44253-3", "44260-8")
GAD7_ITEMS = ("69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7")
TOTALS = {"PHQ-9": (LOINC, "44261-6"), "GAD-7": (LOINC, "70274-6"),
          "MADRS": ("http://clinic.example/scores", "madrs-total")}
MA_STATUS = {"completed": "completed", "aborted": "stopped", "cancelled": "not-done"}


def _fhir_time(value: str | None) -> str | None:
    """Date-times with a UTC offset (ingest keeps the wall-clock time); dates as dates."""
    if value is None or "T" not in value:
        return value
    return value + "-05:00"


def _ext(name: str, value: object, kind: str = "valueString") -> dict:
    return {"url": EXT + name, kind: value}


def _exts(pairs: list[tuple[str, object, str]]) -> list[dict]:
    return [_ext(name, value, kind) for name, value, kind in pairs if value not in (None, "")]


def _number(value: str | None) -> float | int | None:
    if value in (None, ""):
        return None
    number = float(value)  # type: ignore[arg-type]
    return int(number) if number.is_integer() else number


def _ndjson(path: Path, resources: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in resources),
                    encoding="utf-8")


def write_fhir(rows: dict[str, list[dict]], out: Path) -> None:
    """Patient, MedicationAdministration, Observation and QuestionnaireResponse NDJSON.

    PHQ-9 with items alternate between a total Observation with item Observations (hasMember)
    and a QuestionnaireResponse alone; GAD-7 with items is a total Observation derivedFrom a
    QuestionnaireResponse; other scores are total Observations (MADRS under a local code).
    """
    out.mkdir(parents=True, exist_ok=True)
    patients = []
    for p in rows["patients"]:
        patients.append({
            "resourceType": "Patient", "id": p["patient_id"], "birthDate": p["birth_date"],
            "gender": {"F": "female", "M": "male"}.get(p["sex"] or "", "unknown"),
            "identifier": [{"system": "http://payer.example/member-id", "value": p["member_id"]}]
            if p["member_id"] else [],
            "extension": _exts([("site", p["site"], "valueString"), ("payer", p["payer"], "valueString"),
                                ("diagnosis", p["diagnosis_code"], "valueCode")]),
        })
    _ndjson(out / "Patient.ndjson", patients)

    administrations = []
    for s in rows["sessions"]:
        resource: dict = {
            "resourceType": "MedicationAdministration", "id": s["session_id"],
            "status": MA_STATUS[s["status"] or "completed"],
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                      "code": "6130", "display": "ketamine"}]},
            "subject": {"reference": f"Patient/{s['patient_id']}"},
            "request": {"reference": f"MedicationRequest/plan-{s['protocol_id']}"},
        }
        start = s["started_at"]
        if s["duration_minutes"] and "T" in start:
            end = datetime.fromisoformat(start) + timedelta(minutes=float(s["duration_minutes"]))
            resource["effectivePeriod"] = {"start": _fhir_time(start),
                                           "end": _fhir_time(end.isoformat(timespec="seconds"))}
        else:
            resource["effectiveDateTime"] = _fhir_time(start)
        if s["dose_mg"]:
            resource["dosage"] = {"dose": {"value": _number(s["dose_mg"]), "unit": "mg",
                                           "system": "http://unitsofmeasure.org", "code": "mg"}}
        if s["provider"]:
            resource["performer"] = [{"actor": {"display": s["provider"]}}]
        resource["extension"] = _exts([
            ("dose-mg-per-kg", _number(s["dose_mg_per_kg"]), "valueDecimal"),
            ("weight-kg", _number(s["weight_kg"]), "valueDecimal"),
            ("bp-systolic-max", _number(s["bp_systolic_max"]), "valueInteger"),
            ("bp-diastolic-max", _number(s["bp_diastolic_max"]), "valueInteger"),
            ("site", s["site"], "valueString"), ("course", s["course_id"], "valueString"),
            *[("adverse-event", ae, "valueCode") for ae in (s["adverse_events"] or "").split(";")],
            *[("cpt", code, "valueCode") for code in (s["cpt_codes"] or "").split(";")],
        ])
        administrations.append(resource)
    _ndjson(out / "MedicationAdministration.ndjson", administrations)

    observations, responses = [], []
    for index, a in enumerate(rows["assessments"]):
        instrument = a["instrument"]
        n_items = {"PHQ-9": 9, "GAD-7": 7}.get(instrument, 0)
        items = [a[f"item_{i}"] for i in range(1, n_items + 1)]
        has_items = any(v not in (None, "") for v in items)
        common = {
            "subject": {"reference": f"Patient/{a['patient_id']}"},
            "extension": _exts([("timing", a["timing"], "valueCode")]),
        }
        if a["session_id"]:
            common["partOf"] = [{"reference": f"MedicationAdministration/{a['session_id']}"}]
        when = _fhir_time(a["administered_at"])
        codes = PHQ9_ITEMS if instrument == "PHQ-9" else GAD7_ITEMS
        qr_items = [{"linkId": f"/{codes[i]}", "answer": [{"valueCoding": {"system": LOINC,
                     "code": LA_CODES[int(v)]}}]} for i, v in enumerate(items) if v not in (None, "")]
        if instrument == "PHQ-9" and has_items and index % 2 == 1:
            if index % 4 == 3:  # every other response leaves the total to be scored from items
                qr_items.append({"linkId": "/44261-6", "answer": [{"valueInteger": int(a["total_score"])}]})
            responses.append({"resourceType": "QuestionnaireResponse", "id": a["assessment_id"],
                              "questionnaire": "http://hl7.org/fhir/us/core/Questionnaire/phq-9",
                              "status": "completed", "authored": when, "item": qr_items, **common})
            continue
        system, code = TOTALS[instrument]
        total = {
            "resourceType": "Observation", "id": a["assessment_id"], "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "survey"}]}],
            "code": {"coding": [{"system": system, "code": code}]},
            "effectiveDateTime": when,
            **({"valueInteger": int(a["total_score"])} if index % 3 else
               {"valueQuantity": {"value": int(a["total_score"]), "unit": "{score}"}}),
            **common,
        }
        if has_items and instrument == "PHQ-9":
            members = []
            for i, v in enumerate(items):
                if v in (None, ""):
                    continue
                item_id = f"{a['assessment_id']}-{i + 1}"
                members.append({"reference": f"Observation/{item_id}"})
                observations.append({
                    "resourceType": "Observation", "id": item_id, "status": "final",
                    "code": {"coding": [{"system": LOINC, "code": codes[i]}]},
                    "subject": common["subject"], "effectiveDateTime": when,
                    "valueCodeableConcept": {"coding": [{"system": LOINC, "code": LA_CODES[int(v)]}]},
                })
            total["hasMember"] = members
        elif has_items:  # GAD-7: the answers are in the response the total derives from
            qr_id = f"{a['assessment_id']}-qr"
            responses.append({"resourceType": "QuestionnaireResponse", "id": qr_id,
                              "status": "completed", "authored": when, "item": qr_items, **common})
            total["derivedFrom"] = [{"reference": f"QuestionnaireResponse/{qr_id}"}]
        observations.append(total)
    _ndjson(out / "Observation.ndjson", observations)
    _ndjson(out / "QuestionnaireResponse.ndjson", responses)

    refs = "".join(f'"MedicationRequest/plan-{p["protocol_id"]}" = "{p["protocol_id"]}"\n'
                   for p in rows["protocols"])
    (out / "fhir_mapping.toml").write_text(f"""\
[fhir]
member_id_system = "http://payer.example/member-id"

[fhir.protocol_refs]
{refs}
[fhir.codes]
"http://clinic.example/scores|madrs-total" = "MADRS"

[fhir.extensions]
timing = "{EXT}timing"
site = "{EXT}site"
payer = "{EXT}payer"
diagnosis_code = "{EXT}diagnosis"
dose_mg_per_kg = "{EXT}dose-mg-per-kg"
weight_kg = "{EXT}weight-kg"
bp_systolic_max = "{EXT}bp-systolic-max"
bp_diastolic_max = "{EXT}bp-diastolic-max"
course_id = "{EXT}course"
adverse_events = "{EXT}adverse-event"
cpt_codes = "{EXT}cpt"
""", encoding="utf-8")
    _write_protocols(rows, out)


def copy_canonical(demo_dir: Path, out: Path) -> None:
    shutil.copytree(demo_dir, out)
