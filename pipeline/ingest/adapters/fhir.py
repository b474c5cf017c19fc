"""FHIR R4 Bulk Data NDJSON -> canonical load units (README "FHIR").

One resource per line, files named by resource type (`Patient.ndjson`, `1.Observation.ndjson`).
Patient -> patients; MedicationAdministration (ketamine) and Procedure (infusion codes) ->
sessions; Observation (total-score codes, item codes with LA answers) and
QuestionnaireResponse -> assessments. A row keeps the file and line of the resource it came
from, so rejects point into the NDJSON the clinic exported.

Grouping of item Observations (the issue left it open): an item joins the total-score
Observation of its instrument that it is linked to through `hasMember`/`derivedFrom` (in
either direction, also through a panel Observation); failing that, the one total of its
instrument with the same subject and effective time. An item with neither is rejected. A
total Observation `derivedFrom` a QuestionnaireResponse takes that response's answers as its
items, and the response is not loaded a second time (counted in the notes).

Skipped on purpose and counted in the notes: resource types this pipeline does not read,
Observations with codes that are not mapped, panel Observations (grouping only), medication
administrations of other drugs, procedures that are not infusions, questionnaires not mapped.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.errors import InputError
from pipeline.ingest.adapters.common import (
    Reject,
    Rows,
    check_keys,
    default_mapping,
    load_mapping,
    protocol_units,
    rows_unit,
)
from pipeline.ingest.contract import CONTRACTS
from pipeline.ingest.csv_text import _sha256
from pipeline.ingest.units import LoadUnit
from pipeline.instruments import normalize_key

MAPPING_NAME = "fhir_mapping.toml"
FORMAT = "fhir"
TABLE_OF = {
    "Patient": "patients",
    "MedicationAdministration": "sessions",
    "Procedure": "sessions",
    "Observation": "assessments",
    "QuestionnaireResponse": "assessments",
}
TYPE_PREFIX = re.compile(r"^(?:\d+[._-])?([A-Z][A-Za-z]+)")

# LOINC item codes in item order. PHQ-9 items 1-7 as verified in domain.md; 44253-3 (item 8),
# 44260-8 (item 9) and the GAD-7 item codes are from LOINC from memory: override under
# [fhir.item_codes] if a server uses others.
ITEM_CODES = {
    "PHQ-9": ("44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5",
              "44253-3", "44260-8"),
    "GAD-7": ("69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"),
}
PANEL_CODES = {"44249-1": "PHQ-9", "69737-5": "GAD-7"}
LA_ANSWERS = {"LA6568-5": 0, "LA6569-3": 1, "LA6570-1": 2, "LA6571-9": 3}
ORDINAL_URLS = ("http://hl7.org/fhir/StructureDefinition/ordinalValue",
                "http://hl7.org/fhir/StructureDefinition/itemWeight")
SESSION_STATUS = {"completed": "completed", "stopped": "aborted", "not-done": "cancelled"}
SEX = {"female": "F", "male": "M", "other": "X", "unknown": None}
FHIR_KEYS = {
    "member_id_system", "medication_codes", "procedure_codes", "observation_statuses",
    "questionnaire_statuses", "status", "sex", "protocol_refs", "codes", "item_codes", "answers",
    "questionnaires", "extensions",
}


# ---------------------------------------------------------------- small FHIR helpers


def ref_id(reference: Any) -> str | None:
    """`Patient/123`, `http://host/fhir/Patient/123/_history/2`, `urn:uuid:abc` -> the id."""
    if isinstance(reference, dict):
        reference = reference.get("reference")
    if not isinstance(reference, str) or not reference.strip():
        return None
    parts = reference.strip().removeprefix("urn:uuid:").split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return parts[-1] or None


def refs(resource: dict[str, Any], *keys: str) -> list[str]:
    """Reference strings under the given keys (single or list)."""
    out = []
    for key in keys:
        value = resource.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and isinstance(item.get("reference"), str):
                out.append(item["reference"])
    return out


def codings(concept: Any) -> list[dict[str, Any]]:
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or [] if isinstance(c, dict)]


def code_keys(concept: Any) -> list[str]:
    """Lookup keys of a CodeableConcept: `system|code` and the bare code, in coding order."""
    keys = []
    for c in codings(concept):
        code = str(c.get("code", "")).strip()
        if code:
            keys += [f"{c.get('system', '')}|{code}", code]
    return keys


def effective(resource: dict[str, Any]) -> str | None:
    for key in ("effectiveDateTime", "effectiveInstant", "performedDateTime", "authored"):
        if isinstance(resource.get(key), str):
            return resource[key]
    for key in ("effectivePeriod", "performedPeriod"):
        period = resource.get(key)
        if isinstance(period, dict) and period.get("start"):
            return str(period["start"])
    return None


def minutes_between(period: Any) -> float | None:
    if not isinstance(period, dict) or "T" not in str(period.get("start", "")) \
            or "T" not in str(period.get("end", "")):
        return None
    try:
        start = datetime.fromisoformat(str(period["start"]))
        end = datetime.fromisoformat(str(period["end"]))
        return round((end - start).total_seconds() / 60, 2)
    except (TypeError, ValueError):
        return None


def primitive(holder: dict[str, Any]) -> Any:
    """The value of a value[x] (extension, answer, Observation) as plain data."""
    for key, value in holder.items():
        if not key.startswith("value"):
            continue
        if key == "valueQuantity" and isinstance(value, dict):
            return value.get("value")
        if key == "valueCoding" and isinstance(value, dict):
            return value.get("code") or value.get("display")
        if key == "valueCodeableConcept":
            first = codings(value)
            return value.get("text") or (first[0].get("display") or first[0].get("code")
                                         if first else None)
        if key == "valueReference":
            return ref_id(value)
        return value
    return None


def extension_values(resource: dict[str, Any], url: str) -> list[Any]:
    return [primitive(e) for e in resource.get("extension") or []
            if isinstance(e, dict) and e.get("url") == url and primitive(e) is not None]


def joined(values: list[Any]) -> str | None:
    values = [str(v) for v in values if v is not None and str(v).strip()]
    return ";".join(values) if values else None


# ---------------------------------------------------------------- reading NDJSON


@dataclass
class Resource:
    file: str
    line: int
    body: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.body.get("resourceType"))

    @property
    def id(self) -> str | None:
        value = self.body.get("id")
        return str(value) if value is not None else None


@dataclass
class Unit:
    """What one (file, table) pair collects before it becomes a LoadUnit."""

    rows: Rows
    rejects: list[Reject] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    joined: Counter[str] = field(default_factory=Counter)  # lines folded into another row


class Sink:
    def __init__(self) -> None:
        self.units: dict[tuple[str, str], Unit] = {}
        self.sha: dict[str, str] = {}
        self.file_table: dict[str, str] = {}  # the table a file's type prefix names

    def unit(self, file: str, table: str) -> Unit:
        if (file, table) not in self.units:
            self.units[(file, table)] = Unit(Rows(CONTRACTS[table]))
        return self.units[(file, table)]

    def reject(self, res: Resource, column: str | None, value: Any, reason: str) -> None:
        self.unit(res.file, TABLE_OF[res.type]).rejects.append(
            (res.line, column, None if value is None else str(value), reason))

    def skip(self, res: Resource, what: str) -> None:
        table = TABLE_OF.get(res.type) or self.file_table.get(res.file, "assessments")
        self.unit(res.file, table).skipped[what] += 1


def file_type(path: Path) -> str | None:
    match = TYPE_PREFIX.match(path.name)
    return match.group(1) if match else None


def read_ndjson(path: Path, table: str, sink: Sink) -> list[Resource]:
    """Resources of one file; a line that is not a JSON object is a reject at its line."""
    sink.sha[path.name] = _sha256(path)
    sink.file_table[path.name] = table
    resources = []
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path.name}: not UTF-8 text ({exc}); NDJSON is UTF-8 by definition") from exc
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            body = json.loads(line)
        except json.JSONDecodeError as exc:
            sink.unit(path.name, table).rejects.append(
                (number, None, line[:200], f"not valid JSON ({exc.msg} at column {exc.colno}); "
                 "each line must be one complete FHIR resource"))
            continue
        if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
            sink.unit(path.name, table).rejects.append(
                (number, None, line[:200], "not a FHIR resource: the JSON has no resourceType"))
            continue
        resources.append(Resource(path.name, number, body))
    return resources


# ---------------------------------------------------------------- the mapping


class Mapping:
    def __init__(self, spec: dict[str, Any], path: Path | None, config: Config) -> None:
        check_keys(spec, {"fhir", "protocols"}, "the mapping", path)
        fhir = spec.get("fhir", {})
        check_keys(fhir, FHIR_KEYS, "[fhir]", path)
        self.path = path
        self.member_id_system = fhir.get("member_id_system")
        self.medication_codes = {str(c) for c in fhir.get("medication_codes", ["6130"])}
        self.procedure_codes = {str(c) for c in fhir.get("procedure_codes", ["96365"])}
        self.observation_statuses = set(fhir.get("observation_statuses",
                                                 ["final", "amended", "corrected"]))
        self.questionnaire_statuses = set(fhir.get("questionnaire_statuses",
                                                   ["completed", "amended"]))
        self.status = {**SESSION_STATUS, **fhir.get("status", {})}
        self.sex = {**SEX, **fhir.get("sex", {})}
        self.protocol_refs = {str(k): str(v) for k, v in fhir.get("protocol_refs", {}).items()}
        self.extensions = {str(k): str(v) for k, v in fhir.get("extensions", {}).items()}
        self.answers = {**LA_ANSWERS, **fhir.get("answers", {})}
        self.registry = config.instruments
        known = {normalize_key(n): n for n in config.instruments}

        def instrument(name: Any, where: str) -> str:
            if normalize_key(str(name)) not in known:
                raise InputError(f"{path}: {where}: instrument {name!r} is not in the registry; "
                                 "add it under [instruments] in the config")
            return known[normalize_key(str(name))]

        self.totals = {i.loinc: i.name for i in config.instruments.values() if i.loinc}
        self.totals.update({str(k): instrument(v, "[fhir.codes]")
                            for k, v in fhir.get("codes", {}).items()})
        self.items: dict[str, tuple[str, int]] = {
            code: (name, n) for name, codes in ITEM_CODES.items()
            for n, code in enumerate(codes, start=1) if name in config.instruments
        }
        for code, value in fhir.get("item_codes", {}).items():
            if not (isinstance(value, list) and len(value) == 2):
                raise InputError(f"{path}: [fhir.item_codes] {code} must be [instrument, item number]")
            self.items[str(code)] = (instrument(value[0], "[fhir.item_codes]"), int(value[1]))
        self.questionnaires: dict[str, dict[str, Any]] = {}
        for url, q in fhir.get("questionnaires", {}).items():
            check_keys(q, {"instrument", "items", "total"}, f'[fhir.questionnaires."{url}"]', path)
            self.questionnaires[str(url)] = {
                "instrument": instrument(q.get("instrument"), f'[fhir.questionnaires."{url}"]'),
                "items": {str(link): n for n, link in enumerate(q.get("items", []), start=1)},
                "total": q.get("total"),
            }

    def lookup(self, table: dict[str, Any], keys: list[str]) -> Any:
        return next((table[k] for k in keys if k in table), None)

    def ext(self, resource: dict[str, Any], column: str) -> str | None:
        url = self.extensions.get(column)
        return joined(extension_values(resource, url)) if url else None

    def answer(self, holder: dict[str, Any]) -> Any:
        """An item's score from an answer/Observation value: LA code, ordinal extension, number."""
        for key in ("valueCoding", "valueCodeableConcept"):
            value = holder.get(key)
            for c in [value] if key == "valueCoding" else codings(value):
                if not isinstance(c, dict):
                    continue
                if c.get("code") in self.answers:
                    return self.answers[c["code"]]
                for e in c.get("extension") or []:
                    if isinstance(e, dict) and e.get("url") in ORDINAL_URLS:
                        return primitive(e)
        return primitive(holder)


# ---------------------------------------------------------------- resources -> rows


def _common(m: Mapping, body: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    """Canonical columns filled from extensions named in [fhir.extensions]."""
    return {c: v for c in columns if (v := m.ext(body, c)) is not None}


def patient_row(m: Mapping, res: Resource, sink: Sink) -> None:
    body = res.body
    gender = body.get("gender")
    row = _common(m, body, ("birth_date", "sex", "diagnosis_code", "payer", "member_id", "site"))
    row.update(patient_id=res.id, birth_date=body.get("birthDate"))
    if gender is not None:
        row["sex"] = m.sex.get(gender, gender)
    if m.member_id_system:
        row["member_id"] = next((i.get("value") for i in body.get("identifier") or []
                                 if isinstance(i, dict) and i.get("system") == m.member_id_system),
                                row.get("member_id"))
    sink.unit(res.file, "patients").rows.add(res.line, row)


def _protocol(m: Mapping, body: dict[str, Any]) -> str | None:
    """Extension first, else the first plan reference that the mapping knows, else its id."""
    from_ext = m.ext(body, "protocol_id")
    if from_ext:
        return from_ext
    candidates = [*refs(body, "request", "basedOn"),
                  *[str(c) for c in body.get("instantiatesCanonical") or []]]
    for candidate in candidates:
        if candidate in m.protocol_refs:
            return m.protocol_refs[candidate]
    return ref_id(candidates[0]) if candidates else None


def session_row(m: Mapping, res: Resource, sink: Sink) -> None:
    body = res.body
    if res.type == "MedicationAdministration":
        keys = code_keys(body.get("medicationCodeableConcept"))
        if not any(k.split("|")[-1] in m.medication_codes for k in keys):
            sink.skip(res, "MedicationAdministration of another medication (not in medication_codes)")
            return
    else:
        keys = code_keys(body.get("code")) + [k for u in body.get("usedCode") or []
                                              for k in code_keys(u)]
        wanted = m.procedure_codes | m.medication_codes
        if not any(k.split("|")[-1] in wanted for k in keys):
            sink.skip(res, "Procedure that is not an infusion (code not in procedure_codes)")
            return
    columns = tuple(c for c in CONTRACTS["sessions"].columns if c not in ("session_id", "patient_id"))
    row = _common(m, body, columns)
    status = body.get("status")
    row.update(
        session_id=res.id,
        patient_id=ref_id(body.get("subject")),
        protocol_id=_protocol(m, body),
        started_at=effective(body),
        status=m.status.get(status, status) if status is not None else None,
    )
    period = body.get("effectivePeriod") or body.get("performedPeriod")
    if "duration_minutes" not in row and (minutes := minutes_between(period)) is not None:
        row["duration_minutes"] = minutes
    dose = (body.get("dosage") or {}).get("dose") if isinstance(body.get("dosage"), dict) else None
    if isinstance(dose, dict) and dose.get("value") is not None:
        unit = str(dose.get("code") or dose.get("unit") or "").strip().lower()
        if unit in ("mg", "milligram", "milligrams"):
            row["dose_mg"] = dose["value"]
        elif unit in ("mg/kg", "mg/kg{body weight}"):
            row["dose_mg_per_kg"] = dose["value"]
        else:
            sink.reject(res, "dose_mg", dose.get("value"),
                        f"dosage.dose has unit {unit or 'none'!r}; use mg or mg/kg")
            return
    performer = body.get("performer")
    if "provider" not in row and isinstance(performer, list) and performer:
        actor = performer[0].get("actor") if isinstance(performer[0], dict) else None
        row["provider"] = actor.get("display") if isinstance(actor, dict) else None
    if "site" not in row and isinstance(body.get("location"), dict):
        row["site"] = body["location"].get("display")
    if res.type == "Procedure":
        events = [c.get("text") or (codings(c)[0].get("display") if codings(c) else None)
                  for c in body.get("complication") or [] if isinstance(c, dict)]
        row["adverse_events"] = joined([row.get("adverse_events"), *events])
        cpt = [c.get("code") for c in codings(body.get("code")) if "cpt" in str(c.get("system", "")).lower()]
        row["cpt_codes"] = joined([row.get("cpt_codes"), *cpt])
    sink.unit(res.file, "sessions").rows.add(res.line, row)


@dataclass
class Score:
    """A total-score Observation or a QuestionnaireResponse on its way to an assessments row."""

    res: Resource
    instrument: str
    total: Any
    items: dict[int, Any] = field(default_factory=dict)


def _assessment_row(m: Mapping, score: Score, sink: Sink) -> None:
    body = score.res.body
    row = _common(m, body, ("timing", "session_id"))
    row.update(
        assessment_id=score.res.id,
        patient_id=ref_id(body.get("subject")),
        instrument=score.instrument,
        administered_at=effective(body),
        total_score=score.total,
    )
    if "session_id" not in row:
        part_of = refs(body, "partOf")
        row["session_id"] = ref_id(part_of[0]) if part_of else None
    for n, value in score.items.items():
        row[f"item_{n}"] = value
    sink.unit(score.res.file, "assessments").rows.add(score.res.line, row)


def _link_ids(items: Any) -> list[dict[str, Any]]:
    out = []
    for item in items or []:
        if isinstance(item, dict):
            out.append(item)
            out += _link_ids(item.get("item"))
            for answer in item.get("answer") or []:
                if isinstance(answer, dict):
                    out += _link_ids(answer.get("item"))
    return out


def questionnaire_score(m: Mapping, res: Resource, sink: Sink) -> Score | None:
    """Instrument, items and total of a QuestionnaireResponse; None (counted) when not mapped."""
    body = res.body
    answered = {str(i.get("linkId", "")): i for i in _link_ids(body.get("item"))}
    spec = m.questionnaires.get(str(body.get("questionnaire", "")).split("|")[0])
    if spec is None:  # US Core style: linkIds are LOINC codes, `/44250-9`
        found = {m.items[k.lstrip("/")][0] for k in answered if k.lstrip("/") in m.items}
        found |= {m.totals[k.lstrip("/")] for k in answered if k.lstrip("/") in m.totals}
        if len(found) != 1:
            sink.skip(res, "QuestionnaireResponse of a questionnaire not mapped")
            return None
        instrument = found.pop()
        item_links = {k: m.items[k.lstrip("/")][1] for k in answered
                      if m.items.get(k.lstrip("/"), ("", 0))[0] == instrument}
        total_links = [k for k in answered if m.totals.get(k.lstrip("/")) == instrument]
    else:
        instrument = spec["instrument"]
        item_links = {k: n for k, n in spec["items"].items() if k in answered}
        total_links = [spec["total"]] if spec["total"] in answered else []

    def value(link: str) -> Any:
        answers = [a for a in answered[link].get("answer") or [] if isinstance(a, dict)]
        return m.answer(answers[0]) if answers else None

    items = {n: v for link, n in item_links.items() if (v := value(link)) is not None}
    total = value(total_links[0]) if total_links else None
    status = body.get("status")
    if status not in m.questionnaire_statuses:
        sink.reject(res, "status", status, f"QuestionnaireResponse status {status!r}; only "
                    f"{', '.join(sorted(m.questionnaire_statuses))} responses are scores")
        return None
    if total is None:  # no total answered: score complete item sets by the registry's rule
        answers = [items.get(n) for n in range(1, m.registry[instrument].item_count + 1)]
        if all(isinstance(v, int) for v in answers):
            total = m.registry[instrument].item_total(answers)  # type: ignore[arg-type]
    return Score(res, instrument, total, items)


class Groups:
    """Union-find over Observation ids linked by hasMember / derivedFrom."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def observation_scores(m: Mapping, observations: list[Resource], responses: dict[str, Resource],
                       sink: Sink) -> tuple[list[Score], set[str]]:
    """Total-score Observations with their items; and the ids of responses folded into them."""
    totals: list[Score] = []
    items: list[tuple[Resource, str, int]] = []
    groups = Groups()
    for res in observations:
        body = res.body
        keys = code_keys(body.get("code"))
        instrument = m.lookup(m.totals, keys)
        item = m.lookup(m.items, keys)
        if res.id:
            for target in refs(body, "hasMember", "derivedFrom"):
                if target.startswith("Observation/") or "/Observation/" in target:
                    groups.union(res.id, "Observation/" + (ref_id(target) or ""))
            groups.union(res.id, "Observation/" + res.id)
        if instrument is None and item is None:
            panel = m.lookup(PANEL_CODES, keys)
            sink.skip(res, "panel Observation (grouping only)" if panel else
                      f"Observation with a code not mapped ({keys[1] if len(keys) > 1 else 'no code'})")
            continue
        status = body.get("status")
        if status not in m.observation_statuses:
            sink.reject(res, "status", status, f"Observation status {status!r}; only "
                        f"{', '.join(sorted(m.observation_statuses))} results are scores")
            continue
        if instrument is not None:
            score = Score(res, instrument, m.answer(body))
            for comp in body.get("component") or []:
                if isinstance(comp, dict) and (hit := m.lookup(m.items, code_keys(comp.get("code")))):
                    if hit[0] == instrument:
                        score.items[hit[1]] = m.answer(comp)
            totals.append(score)
        else:
            items.append((res, *item))

    def key(res: Resource, instrument: str) -> tuple[Any, ...]:
        return (ref_id(res.body.get("subject")), effective(res.body), instrument)

    by_group: dict[tuple[str, str], list[Score]] = defaultdict(list)
    by_time: dict[tuple[Any, ...], list[Score]] = defaultdict(list)
    for score in totals:
        if score.res.id:
            by_group[(groups.find(score.res.id), score.instrument)].append(score)
        by_time[key(score.res, score.instrument)].append(score)
    folded = Counter[str]()
    for res, instrument, n in items:
        linked = by_group.get((groups.find(res.id), instrument), []) if res.id else []
        owners = linked if len(linked) == 1 else by_time.get(key(res, instrument), [])
        if len(owners) != 1:
            sink.reject(res, f"item_{n}", None, (
                f"{instrument} item Observation without a total-score Observation "
                f"{'(several match)' if owners else ''} linked by hasMember/derivedFrom or at the "
                "same time for the same patient; export the total score too").replace("  ", " "))
            continue
        owner = owners[0]
        if n in owner.items:
            sink.reject(res, f"item_{n}", None, f"a second {instrument} item {n} for the same "
                        "total-score Observation; keep one")
            continue
        owner.items[n] = m.answer(res.body)
        folded[res.file] += 1
    for file, count in folded.items():
        sink.unit(file, "assessments").joined[
            "item Observations joined to their total-score Observation's row"] += count

    used_responses: set[str] = set()
    for score in totals:
        for target in refs(score.res.body, "derivedFrom"):
            qr_id = ref_id(target)
            if "QuestionnaireResponse" in target and qr_id in responses:
                used_responses.add(qr_id)  # type: ignore[arg-type]
                if not score.items:
                    from_qr = questionnaire_score(m, responses[qr_id], Sink())  # type: ignore[index]
                    if from_qr is not None and from_qr.instrument == score.instrument:
                        score.items = from_qr.items
    return totals, used_responses


# ---------------------------------------------------------------- entry point


def units(data_dir: Path, config: Config, mapping: Path | None) -> tuple[list[LoadUnit], list[str]]:
    mapping_path = default_mapping(data_dir, mapping, MAPPING_NAME)
    spec = load_mapping(mapping_path, "FHIR")
    m = Mapping(spec, mapping_path, config)
    sink = Sink()
    resources: list[Resource] = []
    ignored: list[str] = []
    files = [p for p in sorted(data_dir.iterdir()) if p.is_file() and not p.name.startswith(".")]
    for path in files:
        kind = file_type(path) if path.suffix.lower() in (".ndjson", ".jsonl") else None
        if kind in TABLE_OF:
            sink.unit(path.name, TABLE_OF[kind])  # a file with no usable row still reports
            resources += read_ndjson(path, TABLE_OF[kind], sink)
        elif kind is not None:
            count = sum(1 for line in path.read_bytes().split(b"\n") if line.strip())
            ignored.append(f"{path.name} ({count} {kind} resources, a type this pipeline does "
                           "not read)")
        elif mapping_path is None or path.resolve() != mapping_path.resolve():
            if path.stem.lower() != "protocols":
                ignored.append(path.name)
    if not resources and not sink.units:
        raise InputError(f"{data_dir}: no FHIR NDJSON files found (Patient.ndjson, "
                         "Observation.ndjson, QuestionnaireResponse.ndjson, "
                         "MedicationAdministration.ndjson, Procedure.ndjson)")

    observations: list[Resource] = []
    responses: list[Resource] = []
    for res in resources:
        if res.type == "Patient":
            patient_row(m, res, sink)
        elif res.type in ("MedicationAdministration", "Procedure"):
            session_row(m, res, sink)
        elif res.type == "Observation":
            observations.append(res)
        elif res.type == "QuestionnaireResponse":
            responses.append(res)
        else:
            sink.skip(res, f"{res.type} resource (a type this pipeline does not read)")
    by_id = {r.id: r for r in responses if r.id}
    scores, used = observation_scores(m, observations, by_id, sink)
    for res in responses:
        if res.id is not None and res.id in used:
            sink.unit(res.file, "assessments").joined[
                "QuestionnaireResponses whose answers are the items of the total-score "
                "Observation derived from them"] += 1
        elif (score := questionnaire_score(m, res, sink)) is not None:
            scores.append(score)
    for score in sorted(scores, key=lambda s: (s.res.file, s.res.line)):
        _assessment_row(m, score, sink)

    result = []
    for (file, _table), unit in sorted(sink.units.items()):
        notes = [f"skipped (not loaded): {n} x {what}" for what, n in sorted(unit.skipped.items())]
        notes += [f"{n} {what} (not rows of their own, so not in read)"
                  for what, n in sorted(unit.joined.items())]
        result.append(rows_unit(file, unit.rows, FORMAT, sink.sha[file], unit.rejects, notes))
    protocols, _ = protocol_units(data_dir, spec, mapping_path, FORMAT)
    return protocols + result, ignored
